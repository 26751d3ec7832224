import type { Clock, Disposer } from '../core/clock.js';

/**
 * RequestArbiter: one shared lab box, a class of clients, each wanting its own answer.
 *
 * Requests queue first come, first served; one is in flight at a time. Device lines that arrive while a
 * request is in flight belong to its sender (the router tags them with the sender's id) until the reply ends:
 * after `replyMaxLines` lines (0 = no limit) or `replyQuietMs` without a line. If no line comes within
 * `requestTimeoutMs` of the request reaching the device, the sender is told and the next request goes.
 *
 * Pure: the arbiter decides and keeps time through the injected clock; the gateway does the I/O through the
 * callbacks of each request.
 */

export interface RequestTiming {
  replyMaxLines: number;
  replyQuietMs: number;
  requestTimeoutMs: number;
}

export interface Request {
  /** The requester's routing tag (> 0), stamped on every reply line. */
  owner: number;
  line: Buffer;
  timing: RequestTiming;
  /**
   * Hand the line to the device; call `written(true)` once the device accepted it (that starts the timeout),
   * or `written(false)` if it never will (the line was dropped): the next request goes at once.
   */
  send(written: (ok: boolean) => void): void;
  /** The reply ended (lines counted), timed out (timedOut), or the line never reached the device (!sent). */
  finished(result: { lines: number; timedOut: boolean; sent: boolean }): void;
}

type Phase = 'idle' | 'sending' | 'waiting' | 'replying';

export class RequestArbiter {
  private readonly queue: Request[] = [];
  private current: Request | null = null;
  private phase: Phase = 'idle';
  private lines = 0;
  private timer: Disposer | null = null;
  readonly stats = { requests: 0, replies: 0, timeouts: 0, canceled: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly maxQueued = 1024,
  ) {}

  /** The tag for a device line arriving now: the requester's while a reply is open, else 0 (everyone). */
  get replyOwner(): number {
    return this.phase === 'waiting' || this.phase === 'replying' ? this.current!.owner : 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Queues a request; false when the queue is full (the caller refuses the line). */
  submit(request: Request): boolean {
    if (this.queue.length >= this.maxQueued) return false;
    this.queue.push(request);
    this.stats.requests++;
    if (this.phase === 'idle') this.startNext();
    return true;
  }

  /** A device line (a whole line, or the last piece of one) arrived. Returns its owner tag. */
  onDeviceLine(): number {
    const owner = this.replyOwner;
    if (owner === 0) return 0;
    this.lines++;
    this.phase = 'replying';
    const { replyMaxLines, replyQuietMs } = this.current!.timing;
    if (replyMaxLines > 0 && this.lines >= replyMaxLines) this.finish(false);
    else this.arm(replyQuietMs, () => this.finish(false));
    return owner;
  }

  /** A piece of a line (fragment or idle-flushed prompt) arrived: it belongs to the reply but ends nothing. */
  onDevicePiece(): number {
    const owner = this.replyOwner;
    if (owner !== 0) {
      this.phase = 'replying';
      this.arm(this.current!.timing.replyQuietMs, () => this.finish(false));
    }
    return owner;
  }

  /**
   * The instructor's clear-queue: every request not yet sent is dropped (each finishes with `sent: false`);
   * the one in progress goes on. Returns the dropped ones, so their senders can be told.
   */
  clearQueued(): Request[] {
    const dropped = this.queue.splice(0);
    this.stats.canceled += dropped.length;
    for (const r of dropped) r.finished({ lines: 0, timedOut: false, sent: false });
    return dropped;
  }

  /** The requester went away: its queued requests are dropped; an open reply of its ends now. */
  cancelOwner(owner: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i]!.owner === owner) {
        this.queue.splice(i, 1);
        this.stats.canceled++;
      }
    }
    // A request already sent keeps the device busy until its reply ends; its lines then go to nobody in
    // particular, so only a request not yet sent is skipped at once.
  }

  dispose(): void {
    this.timer?.();
    this.timer = null;
    this.queue.length = 0;
    this.current = null;
    this.phase = 'idle';
  }

  private startNext(): void {
    const next = this.queue.shift();
    if (!next) {
      this.current = null;
      this.phase = 'idle';
      return;
    }
    this.current = next;
    this.phase = 'sending';
    this.lines = 0;
    next.send((ok) => {
      if (this.current !== next || this.phase !== 'sending') return;
      if (!ok) {
        this.finish(false, false);
        return;
      }
      this.phase = 'waiting';
      this.arm(next.timing.requestTimeoutMs, () => this.finish(true));
    });
  }

  private arm(ms: number, fn: () => void): void {
    this.timer?.();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
  }

  private finish(timedOut: boolean, sent = true): void {
    this.timer?.();
    this.timer = null;
    const done = this.current!;
    if (timedOut) this.stats.timeouts++;
    else this.stats.replies++;
    const lines = this.lines;
    this.current = null;
    this.phase = 'idle';
    done.finished({ lines, timedOut, sent });
    this.startNext();
  }
}
