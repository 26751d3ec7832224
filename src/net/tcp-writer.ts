import type { Socket } from 'node:net';
import type { Framing, TelnetMode } from '../config/types.js';
import { RecordFlag } from '../line/ring.js';
import type { ClientLabel, CloseWhy, Greeting, RecordRuns, SessionWriter } from '../session/transport.js';
import { encodeLengthPrefix } from './length-prefix.js';
import { escapeIac, type TelnetDecoder } from './telnet.js';
import { makeVisible } from './visible.js';

export interface TcpWriterOptions {
  framing: Framing;
  lengthDigits: number;
  telnet: TelnetMode;
  /**
   * A monitor read by a person: control bytes and bytes outside UTF-8, from the device and from other clients'
   * lines, are shown as `\xNN`, so nobody can act on the instructor's terminal.
   */
  visibleOnly: boolean;
}

const CRLF = Buffer.from('\r\n');
const LF = 0x0a;

/**
 * What a TCP client is sent, encoded in one place (the `Sender` to TcpLineReader's `Receiver`): device runs,
 * the gateway's own lines (banner, notices) and monitor copies of client lines. So all three agree on:
 * - framing: `lines` and `raw` send bytes as they are; `length-prefixed` sends each record's content with its
 *   prefix (the LF of a split CR LF is not a message);
 * - IAC: every 0xFF is doubled once the client speaks telnet (or telnet: on), whoever's bytes they are;
 * - visibleOnly (a monitor): control bytes of device lines and client lines are shown as text (visible.ts);
 * - line starts: a gateway line never glues onto a device prompt or a line cut short by an unplug: it starts
 *   with CRLF when the last device bytes did not end a line.
 * Writes within one call go out under cork: one segment, one callback for the batch.
 */
export class TcpLineWriter implements SessionWriter {
  /** The last device bytes written did not end a line. */
  private midLine = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: TcpWriterOptions,
    /** The reader's telnet decoder (null for raw framing): IAC is escaped once it is active. */
    private readonly telnet: TelnetDecoder | null,
  ) {}

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  write(runs: RecordRuns, done: () => void): void {
    const { ring, bounds } = runs;
    const socket = this.socket;
    const prefixed = this.opts.framing === 'length-prefixed';
    const visibleOnly = this.opts.visibleOnly;
    let last: Buffer | null = null;
    socket.cork();
    for (let i = 0; i < bounds.length; i += 2) {
      const from = bounds[i]!;
      const to = bounds[i + 1]!;
      if (!prefixed && !visibleOnly) {
        if (last) socket.write(last);
        last = this.escape(ring.span(from, to));
        continue;
      }
      for (let s = from; s < to; s++) {
        if (prefixed) {
          if (ring.flags(s) & RecordFlag.TERM_TAIL) continue;
          const content = visibleOnly ? makeVisible(ring.content(s)) : ring.content(s);
          for (const part of encodeLengthPrefix(content, this.opts.lengthDigits)) {
            if (last) socket.write(last);
            last = part;
          }
          continue;
        }
        // The device may echo what a student sent (the chat lab relays it): a monitor shows that as text too.
        // A record that needs no change goes as the ring's own view.
        const content = ring.content(s);
        const shown = makeVisible(content);
        if (last) socket.write(last);
        if (shown === content) {
          last = this.escape(ring.view(s));
        } else {
          const term = ring.terminator(s);
          if (term.length === 0) {
            last = shown;
          } else {
            socket.write(shown);
            last = term;
          }
        }
      }
    }
    if (last) {
      // LF is what ends a line for nc, terminals and scripts alike; a lone CR does not.
      if (!prefixed && last.length > 0) this.midLine = last[last.length - 1] !== LF;
      socket.write(last, done);
    } else {
      queueMicrotask(done);
    }
    socket.uncork();
  }

  notice(text: string): boolean {
    return this.line(Buffer.from(`! ${text}`));
  }

  greet(g: Greeting): void {
    if (g.banner) this.line(Buffer.from(g.banner));
  }

  /**
   * `[10.0.0.7:51234] id` for every client line the device took. The bytes are another person's: the IAC
   * escape below keeps them from being read as telnet commands by this client.
   */
  clientLine(from: ClientLabel, line: Buffer): void {
    const who = from.via === 'tcp' ? from.peer : `${from.peer} (${from.via})`;
    // A copy is fine here: monitors are few, and the sender's buffer is reused.
    const shown = this.opts.visibleOnly ? makeVisible(line) : line;
    this.line(Buffer.concat([Buffer.from(`[${who}] `), shown]), true);
  }

  end(_why: CloseWhy): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * A line of the gateway's own; false on raw framing, which carries no notices or banner (a raw monitor
   * still gets its copies of client lines: that is what it is for).
   */
  private line(body: Buffer, evenRaw = false): boolean {
    const socket = this.socket;
    if (this.opts.framing === 'raw' && !evenRaw) return false;
    socket.cork();
    if (this.opts.framing === 'length-prefixed') {
      for (const part of encodeLengthPrefix(body, this.opts.lengthDigits)) socket.write(part);
    } else {
      if (this.midLine) socket.write(CRLF);
      this.midLine = false;
      socket.write(this.escape(body));
      socket.write(CRLF);
    }
    socket.uncork();
    return true;
  }

  private escape(view: Buffer): Buffer {
    const telnet = this.telnet;
    if (telnet && (this.opts.telnet === 'on' || telnet.active)) return escapeIac(view);
    return view;
  }
}
