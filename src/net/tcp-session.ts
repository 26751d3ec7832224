import type { Socket } from 'node:net';
import type { Bridge, Consumer, MonitorSink } from '../bridge.js';
import { newClientTag } from '../bridge.js';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { tcpClient, type ClientRef } from '../events.js';
import type { TcpListenerConfig } from '../config/types.js';
import { RecordFlag, type RingCursor } from '../line/ring.js';
import type { LinkState } from '../serial/serial-link.js';
import { InputFramer } from './input-framer.js';
import { LengthPrefixDecoder, encodeLengthPrefix } from './length-prefix.js';
import { TelnetDecoder, escapeIac } from './telnet.js';
import { makeVisible } from './visible.js';
import { notices } from '../session/notices.js';

/**
 * One TCP client. Output: reads the ring through its own cursor and writes runs of device lines as views of the
 * ring, one batch in flight at a time (the batch is pinned until its write callback). Input: telnet decoding,
 * then framing (lines, raw or length-prefixed), then the bridge.
 *
 * Bounds: at most one batch (<= 64 KiB, and <= clientBufferBytes) is held by the socket, and the queued
 * backlog in the ring is kept under clientBufferBytes by skipping to the newest data; what is skipped is counted
 * and the client is told how many lines it missed once it catches up.
 *
 * Session states: OPEN (both ways), CLOSING (output drains, then FIN), CLOSED.
 */
export type SessionState = 'OPEN' | 'CLOSING' | 'CLOSED';

export interface SessionContext {
  bridge: Bridge;
  config: TcpListenerConfig;
  clock: Clock;
  log: Log;
  maxLineBytes: number;
  /** Text for banners: `/dev/ttyUSB0` and `115200 8N1`. */
  device(): { device: string; settings: string };
  clientCount(): number;
  closed(session: TcpSession): void;
}

const CRLF = Buffer.from('\r\n');
const NOTICE_INTERVAL_MS = 2000;
/** Notices kept for a client too backed up to take them now; past this they are dropped. */
const MAX_HELD_NOTICES = 16;
/**
 * The most one batch (one socket write) holds. A batch stays pinned in the ring until the kernel has taken it,
 * so this, not clientBufferBytes, is what a client that stops reading holds of the ring: the backlog beyond it
 * is only positions, and a larger clientBufferBytes costs no memory.
 */
const MAX_BATCH_BYTES = 64 * 1024;

export class TcpSession implements Consumer, MonitorSink {
  readonly tag = newClientTag();
  readonly peer: string;
  /** This client as the transcript names it. */
  readonly who: ClientRef;
  private state: SessionState = 'OPEN';
  private readonly cursor: RingCursor;
  private inFlight = false;
  private lostUntold = 0;
  private lostSince = 0;
  private lastLostNotice = -Infinity;
  private lostTimer: Disposer | null = null;
  private closeAtSeq = -1;
  private deviceAway = false;
  private readonly telnet: TelnetDecoder | null;
  private readonly framer: InputFramer | null;
  private readonly prefixed: LengthPrefixDecoder | null;
  private idleTimer: Disposer | null = null;
  private lingerTimer: Disposer | null = null;
  /** The ring's end when this client's last line was accepted for the device (-1: none yet). */
  private lastLineAtSeq = -1;
  private lastInputAt: number;
  private inputPaused = false;
  /** Input read before the device queue paused this client, framed once it resumes. */
  private readonly held: Buffer[] = [];
  private toldReadOnly = false;
  private inputEnded = false;
  private readonly heldNotices: string[] = [];
  /** The last device bytes written to this client did not end a line. */
  private midLine = false;
  private pendingRequests = 0;
  private readonly closeOn: Buffer | null;
  private readonly onBatchWritten = (): void => this.batchWritten();
  private readonly onFramedLine = (line: Buffer): void => this.onLine(line);
  private readonly isInputPaused = (): boolean => this.inputPaused;
  private readonly onTooLong = (dropped: number): void => {
    this.notice(notices.lineTooLong(dropped, this.ctx.maxLineBytes));
  };
  readonly stats = { linesOut: 0, bytesOut: 0, lost: 0, linesIn: 0, refused: 0 };

  constructor(
    readonly socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    const cfg = ctx.config;
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.who = tcpClient(cfg.name, socket);
    this.lastInputAt = ctx.clock.now();
    this.closeOn = cfg.closeOn ? Buffer.from(cfg.closeOn) : null;
    this.telnet = cfg.framing === 'raw' ? null : new TelnetDecoder({ mode: cfg.telnet });
    this.framer = cfg.framing === 'lines' ? new InputFramer({ maxLineBytes: ctx.maxLineBytes }) : null;
    this.prefixed = cfg.framing === 'length-prefixed' ? new LengthPrefixDecoder({ lengthDigits: cfg.lengthDigits }) : null;
    this.cursor = ctx.bridge.ring.attach(() => this.destroy('did not accept any data while the device filled the whole ring'));

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onInput(chunk));
    // The server allows half-open connections: a client that sends `id` and then EOF (nc -N, a script) still
    // gets its reply before the connection closes.
    socket.on('end', () => {
      this.inputEnded = true;
      if (this.pendingRequests > 0) return;
      if (this.ctx.config.mode === 'shared' && this.awaitingAnswer) this.lingerForAnswer();
      else this.close('client closed');
    });
    socket.on('error', (err) => this.destroy(`socket error: ${err.message}`));
    socket.on('close', () => this.finish());
    if (cfg.mode === 'monitor') ctx.bridge.addMonitor(this);
    ctx.bridge.addConsumer(this);
    this.armIdleTimeout();
  }

  /** Called once the listener counts this client: the banner can say how many are connected. */
  start(): void {
    if (this.ctx.config.banner && this.ctx.config.framing !== 'raw') this.sendText(expandBanner(this.ctx.config.banner, this.ctx), true);
    // Someone connecting while the box is unplugged is told at once, not left wondering why nothing answers.
    const link = this.ctx.bridge.deviceLink;
    if (link.state !== 'OPEN' && link.state !== 'OPENING') this.deviceChanged(link.state, link.detail);
  }

  get isOpen(): boolean {
    return this.state === 'OPEN';
  }

  /** The client has sent its EOF (or the session is closing): it is only waiting for output and frees its slot. */
  get leaving(): boolean {
    return this.inputEnded || this.state !== 'OPEN';
  }

  /**
   * WriteSource: the device queue holds this client's share; stop reading its socket (TCP backpressure), and
   * stop framing the chunk already read: its remaining lines wait in `held` (at most that one chunk), or one
   * 64 KiB paste would overrun the share and fill the whole device queue, and classmates' lines would be refused.
   */
  readonly source = {
    id: this.tag,
    pause: () => {
      this.inputPaused = true;
      this.socket.pause();
    },
    resume: () => {
      this.inputPaused = false;
      // Called from inside the queue's take(), while the bridge is between taking a line and writing it: the
      // held lines are submitted after that, not re-entrantly.
      queueMicrotask(() => {
        if (this.state !== 'OPEN' || this.inputPaused) return;
        this.drainHeld();
        if (!this.inputPaused) this.socket.resume();
      });
    },
  };

  // ------------------------------------------------------------------ device -> client

  kick(): void {
    this.flush();
  }

  deviceChanged(state: LinkState, detail: string): void {
    const away = state !== 'OPEN';
    if (away === this.deviceAway) return;
    this.deviceAway = away;
    this.notice(away ? notices.deviceAway(detail) : notices.deviceBack(detail));
  }

  /** Monitors: a line some client sent to the device. */
  clientLine(from: string, line: Buffer): void {
    if (this.state !== 'OPEN') return;
    if (this.socket.writableLength > this.ctx.config.clientBufferBytes) {
      this.stats.lost++;
      return;
    }
    // A copy is fine here: monitors are few, and the client's buffer is reused.
    // What one student typed reaches the instructor's terminal as text, never as a control sequence.
    const text = Buffer.concat([Buffer.from(`[${from}] `), this.visibleOnly ? makeVisible(line) : line]);
    if (this.ctx.config.framing === 'length-prefixed') {
      for (const part of encodeLengthPrefix(text, this.ctx.config.lengthDigits)) this.socket.write(part);
    } else {
      this.socket.write(text);
      this.socket.write(CRLF);
    }
  }

  private flush(): void {
    if (this.state === 'CLOSED') return;
    if (this.state === 'CLOSING') {
      if (!this.inFlight) this.socket.end();
      return;
    }
    const ring = this.ctx.bridge.ring;
    const backlogLimit = this.ctx.config.clientBufferBytes;
    const limit = Math.min(backlogLimit, MAX_BATCH_BYTES);
    let s = ring.next(this.cursor);
    // The queued backlog is bounded: past clientBufferBytes the client skips to the newest data.
    if (s >= 0 && ring.backlogBytes(s) > backlogLimit) {
      ring.skipToNewest(this.cursor);
      s = -1;
    }
    this.countLost();
    if (this.inFlight) return;

    const socket = this.socket;
    let last: Buffer | null = null;
    let bytes = 0;
    let first = -1;
    socket.cork();
    const cfg = this.ctx.config;
    const framing = cfg.framing;
    const visibleOnly = this.visibleOnly;
    const plain = framing !== 'length-prefixed' && cfg.mode !== 'request' && this.closeOn === null && !visibleOnly;
    while (bytes < limit && (s = ring.next(this.cursor)) >= 0) {
      if (first < 0) {
        first = s;
        ring.pin(this.cursor, s);
      }
      if (plain) {
        const end = ring.runEnd(s, limit - bytes);
        const view = ring.span(s, end);
        this.stats.linesOut += end - s;
        ring.advance(this.cursor, end);
        if (last) socket.write(last);
        last = this.escape(view);
        bytes += view.length;
        continue;
      }
      ring.advance(this.cursor, s + 1);
      const tag = ring.tag(s);
      if (cfg.mode === 'request' && tag !== 0 && tag !== this.tag) continue;
      const flags = ring.flags(s);
      if (framing === 'length-prefixed') {
        if (flags & RecordFlag.TERM_TAIL) continue;
        const content = visibleOnly ? makeVisible(ring.content(s)) : ring.content(s);
        for (const part of encodeLengthPrefix(content, cfg.lengthDigits)) {
          if (last) socket.write(last);
          last = part;
        }
        bytes += ring.recordLength(s) + cfg.lengthDigits;
      } else if (visibleOnly) {
        // The device may echo what a student sent (the chat lab relays it): a monitor shows that as text too.
        const content = ring.content(s);
        const shown = makeVisible(content);
        if (last) socket.write(last);
        const term = ring.terminator(s);
        if (shown === content) {
          last = ring.view(s);
        } else if (term.length === 0) {
          last = shown;
        } else {
          socket.write(shown);
          last = term;
        }
        bytes += ring.recordLength(s);
      } else {
        const view = ring.view(s);
        if (last) socket.write(last);
        last = this.escape(view);
        bytes += view.length;
      }
      this.stats.linesOut++;
      if (this.closeOn && ring.contentEquals(s, this.closeOn)) {
        this.closeAtSeq = s + 1;
        break;
      }
    }
    if (last) {
      // A notice must not be glued to a prompt or to a line cut short by an unplug.
      // (LF is what ends a line for nc, terminals and scripts alike; a lone CR does not.)
      this.midLine = framing !== 'length-prefixed' && last.length > 0 && last[last.length - 1] !== 0x0a;
      this.inFlight = true;
      this.stats.bytesOut += bytes;
      socket.write(last, this.onBatchWritten);
    } else if (first >= 0) {
      ring.release(this.cursor);
    }
    this.maybeTellLost(ring.next(this.cursor) < 0);
    socket.uncork();
    if (!this.inFlight) this.maybeCloseAfterOutput();
  }

  /**
   * One `! missed N lines` when the client has caught up (nothing left to send), not one per skip: a client
   * that keeps falling behind hears at most every NOTICE_INTERVAL_MS, with the total since the last notice.
   */
  private maybeTellLost(caughtUp: boolean): void {
    if (this.lostUntold === 0 || this.lostTimer !== null) return;
    const now = this.ctx.clock.now();
    const wait = NOTICE_INTERVAL_MS - (now - this.lastLostNotice);
    if (!caughtUp && now - this.lostSince < NOTICE_INTERVAL_MS) return;
    if (wait > 0) {
      this.lostTimer = this.ctx.clock.setTimeout(() => {
        this.lostTimer = null;
        if (!this.inFlight) this.flush();
      }, wait);
      return;
    }
    const n = this.lostUntold;
    if (this.notice(notices.missed(n))) {
      this.lostUntold = 0;
      this.lastLostNotice = now;
    }
  }

  /** Lines this client will never get are counted the moment they are skipped, and told when it catches up. */
  private countLost(): void {
    const lost = this.cursor.takeLost();
    if (lost === 0) return;
    if (this.lostUntold === 0) this.lostSince = this.ctx.clock.now();
    this.lostUntold += lost;
    this.stats.lost += lost;
    this.ctx.bridge.counters.lost += lost;
  }

  private batchWritten(): void {
    this.inFlight = false;
    if (this.state === 'CLOSED') return;
    this.ctx.bridge.ring.release(this.cursor);
    if (this.heldNotices.length > 0 && this.socket.writableLength <= this.ctx.config.clientBufferBytes) {
      for (const text of this.heldNotices.splice(0)) this.sendText(text, true);
    }
    this.flush();
  }

  /** A monitor that shows control bytes as `\xNN` (the default); every other listener passes bytes on as they are. */
  private get visibleOnly(): boolean {
    return this.ctx.config.mode === 'monitor' && this.ctx.config.controlBytes !== 'raw';
  }

  private escape(view: Buffer): Buffer {
    if (this.telnet && (this.ctx.config.telnet === 'on' || this.telnet.active)) {
      const out = escapeIac(view);
      return out;
    }
    return view;
  }

  private maybeCloseAfterOutput(): void {
    if (this.closeAtSeq >= 0 && this.cursor.seq >= this.closeAtSeq) this.close('closed as configured');
    else if (this.state === 'CLOSING' && this.ctx.bridge.ring.next(this.cursor) < 0) this.socket.end();
  }

  // ------------------------------------------------------------------ client -> device

  private onInput(chunk: Buffer): void {
    if (this.state !== 'OPEN') return;
    if (this.telnet) {
      this.telnet.decode(
        chunk,
        (data) => this.onData(data),
        (reply) => this.socket.write(reply),
      );
    } else {
      this.onData(chunk);
    }
  }

  private onData(data: Buffer): void {
    if (this.inputPaused || this.held.length > 0) {
      this.held.push(data);
      return;
    }
    const rest = this.frameUntilPaused(data);
    if (rest) this.held.push(rest);
  }

  private drainHeld(): void {
    while (this.held.length > 0 && !this.inputPaused && this.state === 'OPEN') {
      const rest = this.frameUntilPaused(this.held[0]!);
      if (rest) this.held[0] = rest;
      else this.held.shift();
    }
  }

  /**
   * Frames `data` one line (raw: one maxLineBytes piece; length-prefixed: one message) at a time and stops once
   * the device queue pauses this client; returns what is left, or null. Line ends are found with indexOf, each
   * position searched once.
   */
  private frameUntilPaused(data: Buffer): Buffer | null {
    const framer = this.framer;
    if (this.prefixed) {
      const used = this.prefixed.push(
        data,
        this.onFramedLine,
        (reason) => {
          this.notice(notices.malformed(reason));
          this.close('malformed length prefix');
        },
        this.isInputPaused,
      );
      return used < data.length ? data.subarray(used) : null;
    }
    let at = 0;
    let lf = -2;
    let cr = -2;
    while (at < data.length) {
      if (this.inputPaused) return data.subarray(at);
      let end: number;
      if (framer) {
        if (lf !== -1 && lf < at) lf = data.indexOf(0x0a, at);
        if (cr !== -1 && cr < at) cr = data.indexOf(0x0d, at);
        const next = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
        end = next < 0 ? data.length : next + 1;
        framer.push(data.subarray(at, end), this.onFramedLine, this.onTooLong);
      } else {
        // raw framing: bytes go on as they came, bounded by the device queue like any line.
        end = Math.min(data.length, at + this.ctx.maxLineBytes);
        this.lastInputAt = this.ctx.clock.now();
        this.submit(data.subarray(at, end), true);
      }
      at = end;
    }
    return null;
  }

  private onLine(line: Buffer): void {
    if (this.state !== 'OPEN') return;
    // Only a complete line is activity for idleTimeoutMs: a trickle of bytes that never ends a line (slowloris)
    // reaches nobody and must not hold a slot forever.
    this.lastInputAt = this.ctx.clock.now();
    const cfg = this.ctx.config;
    if (cfg.mode === 'monitor') {
      if (!this.toldReadOnly) this.notice(notices.readOnly());
      this.toldReadOnly = true;
      return;
    }
    this.stats.linesIn++;
    this.submit(line, false);
    if (this.closeOn && line.equals(this.closeOn)) this.close('closeOn line from client');
  }

  private submit(line: Buffer, raw: boolean): void {
    const cfg = this.ctx.config;
    // Every way to the device passes here: raw framing skips onLine, so a raw monitor wrote to the device.
    if (cfg.mode === 'monitor') return;
    const request =
      cfg.mode === 'request' && !raw
        ? {
            owner: this.tag,
            timing: cfg,
            finished: (r: { lines: number; timedOut: boolean; sent: boolean }) => {
              this.pendingRequests--;
              if (r.timedOut) this.notice(notices.noReply(cfg.requestTimeoutMs));
              if ((cfg.closeAfterReply || (this.inputEnded && this.pendingRequests === 0)) && this.state === 'OPEN') {
                this.closeAtSeq = this.ctx.bridge.ring.endSeq;
                this.flush();
                this.maybeCloseAfterOutput();
              }
            },
          }
        : undefined;
    const result = this.ctx.bridge.submit(line, { source: this.source, from: this.peer, sender: this.who, raw, ...(request ? { request } : {}) });
    if (result === 'queued') this.lastLineAtSeq = this.ctx.bridge.ring.endSeq;
    if (request && result === 'queued') this.pendingRequests++;
    if (result === 'full') {
      this.stats.refused++;
      this.notice(notices.queueFull(this.deviceAway));
    }
  }

  // ------------------------------------------------------------------ notices and lifecycle

  /** A gateway message: one line starting with `!` (length-prefixed on such listeners; never on raw ones). */
  notice(text: string): boolean {
    if (!this.ctx.config.notices || this.ctx.config.framing === 'raw' || this.state !== 'OPEN') return false;
    this.ctx.bridge.events.notice(this.who, text);
    return this.sendText(`! ${text}`, false);
  }

  /** Writes a line of the gateway's own; false when the client's socket is too backed up to take it. */
  private sendText(text: string, always: boolean): boolean {
    // A client backed up past its bound gets its notices once it drains (batchWritten), a few of them at most:
    // memory stays bounded and the notices keep their order.
    if (!always && this.socket.writableLength > this.ctx.config.clientBufferBytes) {
      if (this.heldNotices.length >= MAX_HELD_NOTICES) return false;
      this.heldNotices.push(text);
      return true;
    }
    const body = Buffer.from(text);
    if (this.ctx.config.framing === 'length-prefixed') {
      for (const part of encodeLengthPrefix(body, this.ctx.config.lengthDigits)) this.socket.write(part);
    } else {
      if (this.midLine) this.socket.write(CRLF);
      this.midLine = false;
      this.socket.write(body);
      this.socket.write(CRLF);
    }
    return true;
  }

  /** The client's last line went to the device and the device has said nothing since. */
  private get awaitingAnswer(): boolean {
    return this.lastLineAtSeq >= 0 && this.ctx.bridge.ring.endSeq === this.lastLineAtSeq;
  }

  /**
   * A shared-mode client whose EOF comes right after a line the device has not answered yet (`echo id | nc -N`,
   * `nc -q 1`, a script) is waiting for that answer, which has no owner in shared mode. So, as socat lingers
   * after EOF, the output stays open until device lines have come and then paused for replyQuietMs, or for
   * requestTimeoutMs if none come. (A client that heard the device after its last line is closed at its EOF.)
   */
  private lingerForAnswer(): void {
    const { replyQuietMs, requestTimeoutMs } = this.ctx.config;
    const ring = this.ctx.bridge.ring;
    const clock = this.ctx.clock;
    const since = clock.now();
    let seen = ring.endSeq;
    let heard = false;
    const check = (): void => {
      this.lingerTimer = null;
      if (this.state !== 'OPEN') return;
      const end = ring.endSeq;
      if (end !== seen) {
        heard = true;
        seen = end;
      } else if (heard) {
        this.close('client closed (after the device answered)');
        return;
      }
      if (clock.now() - since >= requestTimeoutMs) {
        this.close('client closed');
        return;
      }
      this.lingerTimer = clock.setTimeout(check, replyQuietMs);
    };
    this.lingerTimer = clock.setTimeout(check, replyQuietMs);
  }

  /** Stops input, lets queued output drain, then ends the connection. */
  close(why: string): void {
    if (this.state !== 'OPEN') return;
    this.state = 'CLOSING';
    this.ctx.log.debug(`${this.ctx.config.name}: ${this.peer} closing (${why})`);
    this.socket.pause();
    if (!this.inFlight) this.socket.end();
    // If a batch is in flight, batchWritten -> flush -> maybeCloseAfterOutput ends it.
  }

  /** Ends the connection now. */
  destroy(why: string): void {
    if (this.state === 'CLOSED') return;
    this.ctx.log.info(`${this.ctx.config.name}: ${this.peer} disconnected: ${why}`);
    this.socket.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.idleTimer?.();
    this.idleTimer = null;
    this.lostTimer?.();
    this.lostTimer = null;
    this.lingerTimer?.();
    this.lingerTimer = null;
    const bridge = this.ctx.bridge;
    // Whatever this client had not read yet is lost to it: counted, so the books still balance.
    bridge.ring.skipToNewest(this.cursor);
    this.countLost();
    bridge.ring.detach(this.cursor);
    bridge.removeConsumer(this);
    bridge.removeMonitor(this);
    bridge.forgetSource(this.source, this.tag);
    this.ctx.closed(this);
  }

  private armIdleTimeout(): void {
    const ms = this.ctx.config.idleTimeoutMs;
    if (ms <= 0) return;
    const check = (): void => {
      this.idleTimer = null;
      if (this.state !== 'OPEN') return;
      const quiet = this.ctx.clock.now() - this.lastInputAt;
      if (quiet >= ms) {
        this.notice(notices.idle(ms));
        this.close('idle timeout');
      } else {
        this.idleTimer = this.ctx.clock.setTimeout(check, ms - quiet);
      }
    };
    this.idleTimer = this.ctx.clock.setTimeout(check, ms);
  }
}

export function expandBanner(banner: string, ctx: Pick<SessionContext, 'config' | 'device' | 'clientCount'>): string {
  const { device, settings } = ctx.device();
  const values: Record<string, string> = {
    listener: ctx.config.name,
    port: String(ctx.config.port),
    device,
    settings,
    clients: String(ctx.clientCount()),
  };
  return banner.replace(/\{(listener|port|device|settings|clients)\}/g, (_, key: string) => values[key] ?? '');
}
