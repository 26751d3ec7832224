import type { Clock } from './core/clock.js';
import type { Log } from './core/log.js';
import { noEvents, type ClientRef, type GatewayEvents } from './events.js';
import { LineRing, RecordFlag, type Delimiter } from './line/ring.js';
import { RequestArbiter, type Request, type RequestTiming } from './route/request-arbiter.js';
import { notices } from './session/notices.js';
import { WriteQueue, type QueuedLine, type WriteSource } from './route/write-queue.js';
import type { LinkState, SerialLink } from './serial/serial-link.js';
import type { ClientLabel } from './session/transport.js';

/**
 * The bridge: the device on one side, every client on the other, and the rules between them.
 *
 * Device -> clients: bytes go into the LineRing once; every client reads the same views through its own cursor
 * (see ClientSession/UdpListener). While a request is in flight, each framed line is tagged with its requester so
 * request-mode clients see only their own replies.
 *
 * Clients -> device: each line goes through the fair, bounded WriteQueue and is written whole, followed by
 * the output delimiter, one at a time; monitors get a copy of every line the device is sent.
 */

/** A client as the bridge sees it: client sessions (TCP, web) and UDP listeners (for their peers) implement it. */
export interface Consumer {
  /** New device records are in the ring. */
  kick(): void;
  /** The device went away or came back. */
  deviceChanged(state: LinkState, detail: string): void;
}

/** Where monitors get the lines clients sent. */
export interface MonitorSink {
  clientLine(from: ClientLabel, line: Buffer): void;
}

export interface ClientLineOptions {
  source: WriteSource;
  /** Shown to monitors: via, listener and `10.0.0.7:51234`. */
  from: ClientLabel;
  /** Who sent it, for the transcript. */
  sender?: ClientRef;
  /** Raw framing: the bytes go as they are, with no delimiter added. */
  raw?: boolean;
  /** The instructor's own console: its lines pass a pause. */
  instructor?: boolean;
  /** Request mode: the routing tag of the sender and the reply timing. */
  request?: { owner: number; timing: RequestTiming; finished(r: { lines: number; timedOut: boolean; sent: boolean }): void };
}

/** 'paused': the instructor paused input; the line was not queued (the caller tells its sender). */
export type SubmitResult = 'queued' | 'full' | 'paused';

/** The instructor's pause of every student's input (none survives a restart). */
export interface InputPause {
  /** Unix ms when it lifts by itself; null = until resumed. */
  until: number | null;
  /** Who paused it, for the log and the dashboard. */
  by: string;
}

export interface BridgeOptions {
  clock: Clock;
  log: Log;
  ringBytes: number;
  maxLineBytes: number;
  delimiter: Delimiter;
  idleFlushMs: number;
  outputDelimiter: 'crlf' | 'lf' | 'cr' | 'none';
  writeQueueBytes: number;
}

const OUTPUT_DELIMITERS = { crlf: Buffer.from('\r\n'), lf: Buffer.from('\n'), cr: Buffer.from('\r'), none: Buffer.alloc(0) };

let nextTag = 1;
/** Routing tags for request-mode clients: never 0 (0 means "everyone"), unique while the process lives. */
export function newClientTag(): number {
  const tag = nextTag;
  nextTag = nextTag >= 0xfffffffe ? 1 : nextTag + 1;
  return tag;
}

export class Bridge {
  readonly ring: LineRing;
  readonly queue: WriteQueue;
  readonly arbiter: RequestArbiter;
  private link: SerialLink | null = null;
  private readonly consumers = new Set<Consumer>();
  private readonly monitors = new Set<MonitorSink>();
  private outputDelimiter: Buffer;
  /** The item being written now; kept so an unplug mid-write sends it again after reconnecting. */
  private writingItem: QueuedLine | null = null;
  private retryItem: QueuedLine | null = null;
  private readonly log: Log;
  /** Activity hook for the LEDs: called once per push or client line, not per byte. */
  onActivity: (direction: 'in' | 'out') => void = () => {};
  /** Where events go for the record (the transcript); the daemon sets it, nothing is kept by default. */
  events: GatewayEvents = noEvents;

  /** Whether anyone keeps a record: callers on busy paths (a datagram flood) skip building events when not. */
  get recording(): boolean {
    return this.events !== noEvents;
  }
  readonly counters = { deviceLines: 0, deviceBytes: 0, clientLines: 0, refused: 0, lost: 0 };
  /** Set by the instructor's pause: students' lines are refused, not queued (the instructor's still go). */
  inputPause: InputPause | null = null;

  constructor(private readonly opts: BridgeOptions) {
    this.log = opts.log;
    this.outputDelimiter = OUTPUT_DELIMITERS[opts.outputDelimiter];
    this.queue = new WriteQueue(opts.writeQueueBytes, sourceShare(opts.writeQueueBytes, opts.maxLineBytes));
    this.arbiter = new RequestArbiter(opts.clock);
    this.ring = new LineRing({
      capacityBytes: opts.ringBytes,
      maxLineBytes: opts.maxLineBytes,
      delimiter: opts.delimiter,
      idleFlushMs: opts.idleFlushMs,
      clock: opts.clock,
      onRecord: (seq) => this.onRecord(seq),
      onRecords: () => {
        this.onActivity('in');
        for (const c of this.consumers) c.kick();
      },
    });
  }

  attachLink(link: SerialLink): void {
    this.link = link;
  }

  /** The device link as clients should hear of it when they connect. */
  get deviceLink(): { state: LinkState; detail: string } {
    return this.link ? this.link.reportedState : { state: 'STOPPED', detail: 'no device link' };
  }

  /** Called by the link adapter for every chunk of device bytes. */
  deviceData(chunk: Buffer): void {
    this.counters.deviceBytes += chunk.length;
    this.ring.push(chunk);
  }

  deviceState(state: LinkState, detail: string): void {
    if (state !== 'OPEN') this.ring.endLine();
    for (const c of this.consumers) c.deviceChanged(state, detail);
    if (state === 'OPEN') this.pump();
  }

  addConsumer(c: Consumer): void {
    this.consumers.add(c);
  }

  removeConsumer(c: Consumer): void {
    this.consumers.delete(c);
  }

  addMonitor(m: MonitorSink): void {
    this.monitors.add(m);
  }

  removeMonitor(m: MonitorSink): void {
    this.monitors.delete(m);
  }

  /** Live framing and queue changes from a reload. */
  reconfigure(opts: Pick<BridgeOptions, 'maxLineBytes' | 'delimiter' | 'idleFlushMs' | 'outputDelimiter' | 'writeQueueBytes'>): void {
    this.outputDelimiter = OUTPUT_DELIMITERS[opts.outputDelimiter];
    this.queue.resize(opts.writeQueueBytes, sourceShare(opts.writeQueueBytes, opts.maxLineBytes));
    this.ring.reframe({ delimiter: opts.delimiter, maxLineBytes: opts.maxLineBytes, idleFlushMs: opts.idleFlushMs });
    Object.assign(this.opts, opts);
  }

  /**
   * A line from a client for the device (content only; the output delimiter is added here). Returns 'full'
   * when the device queue cannot take it: the caller tells its sender the line was refused.
   */
  submit(line: Buffer, o: ClientLineOptions): SubmitResult {
    if (this.inputPause && !o.instructor) return 'paused';
    const delimiter = o.raw ? EMPTY : this.outputDelimiter;
    const bytes = Buffer.allocUnsafe(line.length + delimiter.length);
    line.copy(bytes, 0);
    delimiter.copy(bytes, line.length);
    const item: QueuedLine = { source: o.source, bytes, line: bytes.subarray(0, line.length), from: o.from, sender: o.sender };
    const request = o.request;
    if (request) {
      const req: Request = {
        owner: request.owner,
        line: item.line,
        timing: request.timing,
        send: (written) => {
          item.done = (err) => written(err === null);
          if (this.enqueue(item) === 'full') written(false);
        },
        finished: request.finished,
      };
      requestSources.set(req, o.source);
      const accepted = this.arbiter.submit(req);
      if (!accepted) {
        this.counters.refused++;
        return 'full';
      }
      return 'queued';
    }
    return this.enqueue(item);
  }

  /** A client went away: its queued lines go (counted), its requests are withdrawn. */
  forgetSource(source: WriteSource, owner = 0): void {
    const dropped = this.queue.removeSource(source);
    if (dropped > 0) this.log.debug(`dropped ${dropped} queued line(s) of a client that left`);
    if (owner) this.arbiter.cancelOwner(owner);
  }

  /**
   * The instructor's clear-queue: drops every client line still waiting for the device (the write queue and
   * request mode's turn), tells each sender how many of its lines went, and returns the total.
   */
  clearQueue(): number {
    // Requests waiting their turn first: dropping the one in the write queue lets the arbiter start the next.
    const waiting = this.arbiter.clearQueued();
    const perSource = this.queue.clear();
    for (const r of waiting) {
      const source = requestSources.get(r);
      if (source) perSource.set(source, (perSource.get(source) ?? 0) + 1);
    }
    let total = 0;
    for (const [source, n] of perSource) {
      total += n;
      source.tell?.(notices.queueCleared(n));
    }
    return total;
  }

  /** Lines still waiting for the device (for shutdown). */
  get pendingWrites(): number {
    return (this.writingItem ? 1 : 0) + (this.retryItem ? 1 : 0) + (this.queue.isEmpty ? 0 : 1);
  }

  dispose(): void {
    this.ring.dispose();
    this.arbiter.dispose();
  }

  private enqueue(item: QueuedLine): SubmitResult {
    if (this.queue.enqueue(item) === 'full') {
      this.counters.refused++;
      return 'full';
    }
    this.pump();
    return 'queued';
  }

  /** Feeds the device one whole item at a time. */
  private pump(): void {
    const link = this.link;
    if (!link || !link.writable || this.writingItem) return;
    const item = this.retryItem ?? this.queue.take();
    this.retryItem = null;
    if (!item) return;
    this.writingItem = item;
    link.write(item.bytes, (err) => {
      this.writingItem = null;
      if (err && err.canceled) {
        // Unplugged mid-write: the device may have seen part of it; it is sent again, whole, when it returns.
        this.retryItem = item;
        return;
      }
      if (err) {
        this.log.warn(`device write failed: ${err.message}`);
        item.done?.(err);
      } else {
        this.counters.clientLines++;
        this.onActivity('out');
        for (const m of this.monitors) m.clientLine(item.from, item.line);
        if (item.sender) this.events.clientLine(item.sender, item.line);
        item.done?.(null);
      }
      this.pump();
    });
  }

  private onRecord(seq: number): void {
    const flags = this.ring.flags(seq);
    if (flags & RecordFlag.TERM_TAIL) {
      // The LF of a split CR LF goes wherever its line went.
      if (seq > this.ring.oldestSeq) this.ring.setTag(seq, this.ring.tag(seq - 1));
      return;
    }
    if (this.events !== noEvents) this.events.deviceLine(this.ring.content(seq), flags);
    let owner: number;
    if (flags & (RecordFlag.FRAGMENT | RecordFlag.PARTIAL)) {
      owner = this.arbiter.onDevicePiece();
    } else {
      this.counters.deviceLines++;
      owner = this.arbiter.onDeviceLine();
    }
    if (owner !== 0) this.ring.setTag(seq, owner);
  }
}

const EMPTY = Buffer.alloc(0);
/** Who sent each request still waiting its turn (for clear-queue's "N of yours"). */
const requestSources = new WeakMap<Request, WriteSource>();

/** A client may hold at most this much of the device queue before its input is paused. */
function sourceShare(writeQueueBytes: number, maxLineBytes: number): number {
  return Math.max(Math.min(writeQueueBytes, 4 * (maxLineBytes + 2)), Math.floor(writeQueueBytes / 8));
}
