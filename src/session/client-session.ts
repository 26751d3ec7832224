import type { Bridge, Consumer, MonitorSink } from '../bridge.js';
import { newClientTag } from '../bridge.js';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { LineRing, RingCursor } from '../line/ring.js';
import type { RequestTiming } from '../route/request-arbiter.js';
import type { LinkState } from '../serial/serial-link.js';
import type { ClientRef } from '../events.js';
import { notices } from './notices.js';
import type { ClientLabel, ClientTransport, CloseWhy, HistoryInfo, InputHandlers, RecordRuns } from './transport.js';

/**
 * One client, whatever carries it (TCP or WebSocket: see transport.ts). Output: reads the ring through its own
 * cursor and hands the transport runs of device lines as views of the ring, one batch in flight at a time (the
 * batch is pinned until the transport's `done`). Input: framed lines from the transport go to the bridge.
 *
 * Bounds: at most one batch (<= 64 KiB, and <= clientBufferBytes) is held by the transport, and the queued
 * backlog in the ring is kept under clientBufferBytes by skipping to the newest data; what is skipped is counted
 * and the client is told how many lines it missed once it catches up.
 *
 * Session states: OPEN (both ways), CLOSING (output drains, then the transport ends), CLOSED.
 */
export type SessionState = 'OPEN' | 'CLOSING' | 'CLOSED';

/** The listener keys a session obeys: shared by `tcp:` and `web:` listeners. */
export interface SessionPolicy extends RequestTiming {
  name: string;
  port: number;
  mode: 'shared' | 'request' | 'monitor';
  clientBufferBytes: number;
  notices: boolean;
  /** 0 = never. */
  idleTimeoutMs: number;
  /** '' = none. */
  closeOn: string;
  closeAfterReply: boolean;
  /** Placeholders: {listener} {port} {device} {settings} {clients}. */
  banner: string;
  /** Device lines a new client is sent before live data (0 = none), ... */
  historyLines: number;
  /** ... none framed longer ago than this (0 = no age limit). */
  historySeconds: number;
}

export interface SessionContext {
  bridge: Bridge;
  policy: SessionPolicy;
  clock: Clock;
  log: Log;
  maxLineBytes: number;
  /** Text for banners: `/dev/ttyUSB0` and `115200 8N1`. */
  device(): { device: string; settings: string };
  clientCount(): number;
  /** Resume: start at this record (if the ring still holds it) instead of the newest; a resumed client gets no history. */
  startAt?: number;
  /** Unix ms, for the dashboard's "since"; default now. */
  connectedAt?: number;
  closed(session: ClientSession): void;
}

const NOTICE_INTERVAL_MS = 2000;
/** Notices kept for a client too backed up to take them now; past this they are dropped. */
const MAX_HELD_NOTICES = 16;
/**
 * The most one batch (one socket write) holds. A batch stays pinned in the ring until the kernel has taken it,
 * so this, not clientBufferBytes, is what a client that stops reading holds of the ring: the backlog beyond it
 * is only positions, and a larger clientBufferBytes costs no memory.
 */
const MAX_BATCH_BYTES = 64 * 1024;

export class ClientSession implements Consumer, MonitorSink {
  readonly tag = newClientTag();
  readonly label: ClientLabel;
  /** This client as the transcript names it. */
  readonly who: ClientRef;
  readonly since: number;
  private state: SessionState = 'OPEN';
  private readonly cursor: RingCursor;
  private inFlight = false;
  private readonly runs: RecordRuns;
  private lostUntold = 0;
  private lostSince = 0;
  private lastLostNotice = -Infinity;
  private lostTimer: Disposer | null = null;
  private closeAtSeq = -1;
  private deviceAway = false;
  private idleTimer: Disposer | null = null;
  private lingerTimer: Disposer | null = null;
  /** The ring's end when this client's last line was accepted for the device (-1: none yet). */
  private lastLineAtSeq = -1;
  private lastInputAt: number;
  private toldReadOnly = false;
  private inputEnded = false;
  private readonly heldNotices: string[] = [];
  private pendingRequests = 0;
  private readonly closeOn: Buffer | null;
  /** Records a resumed client missed between its last connection and this one. */
  private readonly resumeLost: number;
  private readonly resumed: boolean;
  /** History on connect: the records before historyEnd are the recent past, marked by notices (-1: none, or told). */
  private historyEnd = -1;
  private readonly history: HistoryInfo | null = null;
  private readonly onBatchWritten = (): void => this.batchWritten();
  readonly stats = { linesOut: 0, bytesOut: 0, lost: 0, linesIn: 0, refused: 0 };

  constructor(
    readonly transport: ClientTransport,
    private readonly ctx: SessionContext,
  ) {
    const policy = ctx.policy;
    this.label = transport.label;
    this.who = { via: transport.label.via, listener: transport.label.listener, address: transport.address, port: transport.port };
    this.since = ctx.connectedAt ?? Date.now();
    this.lastInputAt = ctx.clock.now();
    this.closeOn = policy.closeOn ? Buffer.from(policy.closeOn) : null;
    const ring = ctx.bridge.ring;
    const onEvicted = (): void => this.destroy('did not accept any data while the device filled the whole ring');
    this.resumed = ctx.startAt !== undefined;
    let startAt = ctx.startAt;
    if (!this.resumed && policy.historyLines > 0) {
      this.history = historyFor(ctx.bridge.ring, policy, ctx.clock.now());
      if (this.history) {
        startAt = this.history.from;
        this.historyEnd = this.history.to;
      }
    }
    this.cursor = ring.attach(onEvicted, startAt);
    this.resumeLost = ctx.startAt !== undefined ? Math.max(0, this.cursor.seq - ctx.startAt) : 0;
    this.stats.lost += this.resumeLost;
    this.runs = { ring, bounds: [], at: this.cursor.seq };
    transport.reader.listen(this.inputHandlers());
    if (policy.mode === 'monitor') ctx.bridge.addMonitor(this);
    ctx.bridge.addConsumer(this);
    this.armIdleTimeout();
  }

  get peer(): string {
    return this.label.peer;
  }

  /** Called once the listener counts this client: the banner can say how many are connected. */
  start(): void {
    const banner = this.ctx.policy.banner ? expandBanner(this.ctx.policy.banner, this.ctx) : '';
    this.transport.writer.greet({ banner, seq: this.cursor.seq, lost: this.resumeLost, resumed: this.resumed, history: this.history });
    // Someone connecting while the box is unplugged is told at once, not left wondering why nothing answers.
    const link = this.ctx.bridge.deviceLink;
    if (link.state !== 'OPEN' && link.state !== 'OPENING') this.deviceChanged(link.state, link.detail);
    if (this.history) this.notice(notices.history(this.history.lines, this.history.ageMs));
    // A resumed client, or one given history, has records waiting already.
    this.flush();
  }

  get isOpen(): boolean {
    return this.state === 'OPEN';
  }

  /** The client has sent its EOF (or the session is closing): it is only waiting for output and frees its slot. */
  get leaving(): boolean {
    return this.inputEnded || this.state !== 'OPEN';
  }

  /**
   * WriteSource: the device queue holds this client's share; the transport stops reading (TCP backpressure)
   * and stops framing the chunk already read, or one 64 KiB paste would overrun the share and fill the whole
   * device queue, and classmates' lines would be refused.
   */
  readonly source = {
    id: this.tag,
    pause: () => this.transport.reader.pause(),
    resume: () => {
      if (this.state === 'OPEN') this.transport.reader.resume();
    },
    tell: (text: string) => void this.notice(text),
  };

  // ------------------------------------------------------------------ device -> client

  kick(): void {
    this.flush();
  }

  deviceChanged(state: LinkState, detail: string): void {
    this.transport.writer.deviceState?.(state, detail);
    const away = state !== 'OPEN';
    if (away === this.deviceAway) return;
    this.deviceAway = away;
    this.notice(away ? notices.deviceAway(detail) : notices.deviceBack(detail));
  }

  /** Monitors: a line some client sent to the device. */
  clientLine(from: ClientLabel, line: Buffer): void {
    if (this.state !== 'OPEN') return;
    if (this.transport.writer.bufferedAmount > this.ctx.policy.clientBufferBytes) {
      this.stats.lost++;
      return;
    }
    this.transport.writer.clientLine(from, line);
  }

  private flush(): void {
    if (this.state === 'CLOSED') return;
    if (this.state === 'CLOSING') {
      if (!this.inFlight) this.endOutput();
      return;
    }
    const ring = this.ctx.bridge.ring;
    const policy = this.ctx.policy;
    const backlogLimit = policy.clientBufferBytes;
    const limit = Math.min(backlogLimit, MAX_BATCH_BYTES);
    let s = ring.next(this.cursor);
    // The queued backlog is bounded: past clientBufferBytes the client skips to the newest data.
    if (s >= 0 && ring.backlogBytes(s) > backlogLimit) {
      ring.skipToNewest(this.cursor);
      s = -1;
    }
    this.countLost();
    if (this.inFlight) return;

    const bounds = this.runs.bounds;
    bounds.length = 0;
    let bytes = 0;
    let first = -1;
    const filtered = policy.mode === 'request' || this.closeOn !== null;
    // Once closeOn or closeAfterReply has set the last record, nothing past it goes out; history goes in batches
    // of its own, so `! live` falls between the past and the present.
    const stopAt = this.closeAtSeq >= 0 ? this.closeAtSeq : this.historyEnd >= 0 ? this.historyEnd : Infinity;
    while (bytes < limit && (s = ring.next(this.cursor)) >= 0 && s < stopAt) {
      if (first < 0) {
        first = s;
        ring.pin(this.cursor, s);
      }
      if (!filtered) {
        const end = ring.runEnd(s, limit - bytes, Math.min(ring.endSeq, stopAt));
        bounds.push(s, end);
        for (let r = s; r < end; r++) bytes += ring.recordLength(r);
        this.stats.linesOut += end - s;
        ring.advance(this.cursor, end);
        continue;
      }
      ring.advance(this.cursor, s + 1);
      const tag = ring.tag(s);
      if (policy.mode === 'request' && tag !== 0 && tag !== this.tag) continue;
      // Consecutive records of one reply join one run when they lie back to back in the ring.
      const n = bounds.length;
      if (n > 0 && bounds[n - 1] === s && ring.runEnd(s - 1, Infinity, s + 1) === s + 1) bounds[n - 1] = s + 1;
      else bounds.push(s, s + 1);
      bytes += ring.recordLength(s);
      this.stats.linesOut++;
      if (this.closeOn && this.historyEnd < 0 && ring.contentEquals(s, this.closeOn)) {
        this.closeAtSeq = s + 1;
        break;
      }
    }
    this.runs.at = this.cursor.seq;
    if (bounds.length > 0) {
      this.inFlight = true;
      this.stats.bytesOut += bytes;
      this.transport.writer.write(this.runs, this.onBatchWritten);
    } else if (first >= 0) {
      ring.release(this.cursor);
    }
    this.maybeTellLost(ring.next(this.cursor) < 0);
    if (!this.inFlight && this.historyEnd >= 0 && this.cursor.seq >= this.historyEnd) {
      // The past is out (or was skipped as too slow: the missed notice says so): live lines follow.
      this.historyEnd = -1;
      this.notice(notices.live());
      this.flush();
      return;
    }
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
    if (this.heldNotices.length > 0 && this.transport.writer.bufferedAmount <= this.ctx.policy.clientBufferBytes) {
      for (const text of this.heldNotices.splice(0)) this.transport.writer.notice(text);
    }
    this.flush();
  }

  private maybeCloseAfterOutput(): void {
    if (this.closeAtSeq >= 0 && this.cursor.seq >= this.closeAtSeq) this.close('closed as configured');
    else if (this.state === 'CLOSING' && this.ctx.bridge.ring.next(this.cursor) < 0) this.endOutput();
  }

  // ------------------------------------------------------------------ client -> device

  private inputHandlers(): InputHandlers {
    return {
      line: (bytes) => this.onLine(bytes),
      raw: (bytes) => {
        if (this.state !== 'OPEN') return;
        this.lastInputAt = this.ctx.clock.now();
        this.submit(bytes, true);
      },
      tooLong: (dropped) => this.notice(notices.lineTooLong(dropped, this.ctx.maxLineBytes)),
      refused: (text) => this.notice(text),
      malformed: (reason) => {
        this.notice(notices.malformed(reason));
        this.close('malformed input', 'policy');
      },
      // The server allows half-open connections: a client that sends `id` and then EOF (nc -N, a script)
      // still gets its reply before the connection closes.
      end: () => {
        this.inputEnded = true;
        if (this.pendingRequests > 0) return;
        if (this.ctx.policy.mode === 'shared' && this.awaitingAnswer) this.lingerForAnswer();
        else this.close('client closed');
      },
      error: (message) => this.destroy(message),
      closed: () => this.finish(),
    };
  }

  private onLine(line: Buffer): void {
    if (this.state !== 'OPEN') return;
    // Only a complete line is activity for idleTimeoutMs: a trickle of bytes that never ends a line (slowloris)
    // reaches nobody and must not hold a slot forever.
    this.lastInputAt = this.ctx.clock.now();
    const policy = this.ctx.policy;
    if (policy.mode === 'monitor') {
      if (!this.toldReadOnly) this.notice(notices.readOnly());
      this.toldReadOnly = true;
      return;
    }
    this.stats.linesIn++;
    this.submit(line, false);
    if (this.closeOn && line.equals(this.closeOn)) this.close('closeOn line from client');
  }

  private submit(line: Buffer, raw: boolean): void {
    const policy = this.ctx.policy;
    // Every way to the device passes here: raw framing skips onLine, so a raw monitor wrote to the device.
    if (policy.mode === 'monitor') return;
    const request =
      policy.mode === 'request' && !raw
        ? {
            owner: this.tag,
            timing: policy,
            finished: (r: { lines: number; timedOut: boolean; sent: boolean }) => {
              this.pendingRequests--;
              if (r.timedOut) this.notice(notices.noReply(policy.requestTimeoutMs));
              if ((policy.closeAfterReply || (this.inputEnded && this.pendingRequests === 0)) && this.state === 'OPEN') {
                this.closeAtSeq = this.ctx.bridge.ring.endSeq;
                this.flush();
                this.maybeCloseAfterOutput();
              }
            },
          }
        : undefined;
    const result = this.ctx.bridge.submit(line, { source: this.source, from: this.label, sender: this.who, raw, ...(request ? { request } : {}) });
    if (result === 'queued') this.lastLineAtSeq = this.ctx.bridge.ring.endSeq;
    if (request && result === 'queued') this.pendingRequests++;
    if (result === 'full') {
      this.stats.refused++;
      this.notice(notices.queueFull(this.deviceAway));
    } else if (result === 'paused') {
      this.stats.refused++;
      this.notice(notices.pausedRefused());
    }
  }

  /**
   * A line typed in the instructor's dashboard (a monitor session): it reaches the device even while input is
   * paused, and monitors see it with this session's label.
   */
  instructorLine(line: Buffer): 'queued' | 'full' | 'closed' {
    if (this.state !== 'OPEN') return 'closed';
    // With its sender, so the transcript has it (and a --client filter does not credit the answer to a student).
    const result = this.ctx.bridge.submit(line, { source: this.source, from: this.label, sender: this.who, instructor: true });
    if (result === 'queued') this.stats.linesIn++;
    return result === 'queued' ? 'queued' : 'full';
  }

  /** The instructor removes this client: it is told why, its output drains, and the connection ends. */
  remove(reason: string): void {
    this.notice(notices.removed(reason));
    this.close(`removed by the instructor${reason ? `: ${reason}` : ''}`, 'policy');
  }

  // ------------------------------------------------------------------ notices and lifecycle

  /** A gateway message (a `!` line on TCP, {notice} on a WebSocket); false if it could not be given. */
  notice(text: string): boolean {
    if (!this.ctx.policy.notices || this.state !== 'OPEN') return false;
    this.ctx.bridge.events.notice(this.who, text);
    // A client backed up past its bound gets its notices once it drains (batchWritten), a few of them at most:
    // memory stays bounded and the notices keep their order.
    if (this.transport.writer.bufferedAmount > this.ctx.policy.clientBufferBytes) {
      if (this.heldNotices.length >= MAX_HELD_NOTICES) return false;
      this.heldNotices.push(text);
      return true;
    }
    return this.transport.writer.notice(text);
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
    const { replyQuietMs, requestTimeoutMs } = this.ctx.policy;
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

  private closeWhy: CloseWhy = 'done';

  /** Stops input, lets queued output drain, then ends the connection. */
  close(why: string, kind: CloseWhy = 'done'): void {
    if (this.state !== 'OPEN') return;
    this.state = 'CLOSING';
    this.closeWhy = kind;
    this.ctx.log.debug(`${this.ctx.policy.name}: ${this.peer} closing (${why})`);
    this.transport.reader.pause();
    if (!this.inFlight) this.endOutput();
    // If a batch is in flight, batchWritten -> flush -> maybeCloseAfterOutput ends it.
  }

  private endOutput(): void {
    this.transport.writer.end(this.closeWhy);
  }

  /** Ends the connection now. */
  destroy(why: string): void {
    if (this.state === 'CLOSED') return;
    this.ctx.log.info(`${this.ctx.policy.name}: ${this.peer} disconnected: ${why}`);
    this.transport.writer.destroy();
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
    const ms = this.ctx.policy.idleTimeoutMs;
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

/**
 * The recent past a new client is sent first (issue: late joiners see what they missed): the newest
 * historyLines device lines no older than historySeconds, within half of clientBufferBytes so the live lines that
 * come while it is sent still fit the client's backlog. Null when there is none to send. Nothing is copied: the
 * client's cursor just starts at `from`, and the lines go out as ordinary batches.
 */
export function historyFor(
  ring: Pick<LineRing, 'historyStart' | 'endSeq' | 'framedAt'>,
  policy: Pick<SessionPolicy, 'historyLines' | 'historySeconds' | 'clientBufferBytes' | 'mode'>,
  now: number,
): HistoryInfo | null {
  const notBefore = policy.historySeconds > 0 ? now - policy.historySeconds * 1000 : -Infinity;
  const { seq, lines } = ring.historyStart(policy.historyLines, notBefore, Math.floor(policy.clientBufferBytes / 2), policy.mode === 'request');
  if (lines === 0) return null;
  return { from: seq, to: ring.endSeq, lines, ageMs: Math.max(0, now - ring.framedAt(seq)) };
}

export function expandBanner(banner: string, ctx: Pick<SessionContext, 'policy' | 'device' | 'clientCount'>): string {
  const { device, settings } = ctx.device();
  const values: Record<string, string> = {
    listener: ctx.policy.name,
    port: String(ctx.policy.port),
    device,
    settings,
    clients: String(ctx.clientCount()),
  };
  return banner.replace(/\{(listener|port|device|settings|clients)\}/g, (_, key: string) => values[key] ?? '');
}
