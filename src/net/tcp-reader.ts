import type { Socket } from 'node:net';
import type { InputHandlers, SessionReader } from '../session/transport.js';
import { InputFramer } from './input-framer.js';
import { LengthPrefixDecoder } from './length-prefix.js';
import type { TelnetDecoder } from './telnet.js';
import type { TcpWriterOptions } from './tcp-writer.js';

/**
 * A TCP client's input, from socket bytes to lines (the `Receiver` to TcpLineWriter's `Sender`): telnet
 * decoding (its replies go straight back), then framing: lines (InputFramer), length-prefixed messages, or
 * raw pieces of at most maxLineBytes. Owns the pause: a paused reader stops the socket and stops framing the
 * chunk it already read at once; the unframed rest waits in `held` (at most that one chunk and what the kernel
 * delivered with it) and is framed first on resume. A FIN becomes `end`.
 */
export class TcpLineReader implements SessionReader {
  private h: InputHandlers | null = null;
  private paused = false;
  private stopped = false;
  private readonly held: Buffer[] = [];
  private readonly framer: InputFramer | null;
  private readonly prefixed: LengthPrefixDecoder | null;
  private readonly onLine = (line: Buffer): void => this.h!.line(line);
  private readonly onTooLong = (dropped: number): void => this.h!.tooLong(dropped);
  private readonly onMalformed = (reason: string): void => {
    this.stopped = true;
    this.h!.malformed(reason);
  };
  private readonly isPaused = (): boolean => this.paused || this.stopped;
  private readonly onData = (data: Buffer): void => this.take(data);

  constructor(
    private readonly socket: Socket,
    opts: Pick<TcpWriterOptions, 'framing' | 'lengthDigits'>,
    private readonly telnet: TelnetDecoder | null,
    private readonly maxLineBytes: number,
  ) {
    this.framer = opts.framing === 'lines' ? new InputFramer({ maxLineBytes }) : null;
    this.prefixed = opts.framing === 'length-prefixed' ? new LengthPrefixDecoder({ lengthDigits: opts.lengthDigits }) : null;
  }

  listen(h: InputHandlers): void {
    this.h = h;
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.stopped) return;
      if (this.telnet) this.telnet.decode(chunk, this.onData, (reply) => socket.write(reply));
      else this.take(chunk);
    });
    socket.on('end', () => h.end());
    socket.on('error', (err) => h.error(`socket error: ${err.message}`));
    socket.on('close', () => h.closed());
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    // Called from inside the device queue's take(), while the bridge is between taking a line and writing it:
    // the held lines are submitted after that, not re-entrantly.
    queueMicrotask(() => {
      if (this.stopped || this.paused) return;
      this.drainHeld();
      if (!this.paused) this.socket.resume();
    });
  }

  /** No more input is wanted (the session is closing). */
  stop(): void {
    this.stopped = true;
    this.socket.pause();
  }

  private take(data: Buffer): void {
    if (this.paused || this.held.length > 0) {
      this.held.push(data);
      return;
    }
    const used = this.frame(data);
    if (used < data.length) this.held.push(data.subarray(used));
  }

  private drainHeld(): void {
    while (this.held.length > 0 && !this.paused && !this.stopped) {
      const data = this.held[0]!;
      const used = this.frame(data);
      if (used < data.length) this.held[0] = data.subarray(used);
      else this.held.shift();
    }
  }

  /** Frames `data` until the session pauses this reader; returns how many bytes were used. */
  private frame(data: Buffer): number {
    if (this.prefixed) return this.prefixed.push(data, this.onLine, this.onMalformed, this.isPaused);
    if (this.framer) return this.framer.push(data, this.onLine, this.onTooLong, this.isPaused);
    // raw framing: bytes go on as they came, bounded by the device queue like any line.
    let at = 0;
    while (at < data.length) {
      if (this.isPaused()) return at;
      const end = Math.min(data.length, at + this.maxLineBytes);
      this.h!.raw(data.subarray(at, end));
      at = end;
    }
    return at;
  }
}
