/**
 * WriteQueue: lines from many clients on their way to the one device.
 *
 * - Fair: each source has its own FIFO and the queue takes one line from each source in turn, so a client
 *   flooding the port cannot push a classmate's line behind megabytes of its own.
 * - Whole lines: an item is written in one piece, and the next item is taken only after the device accepted the
 *   previous one, so lines from two clients never interleave on the wire.
 * - Bounded: all queued bytes together stay under `maxBytes`; a line that does not fit is refused (its sender is
 *   told). Each source may hold at most `sourceBytes`: past that it is asked to pause (TCP stops reading its
 *   socket, so the sender is slowed by backpressure rather than by memory) and resumed once it drained.
 */
import type { ClientLabel } from '../session/transport.js';

export interface WriteSource {
  /** Stable id, for logs. */
  readonly id: number;
  /** Stop reading input: this source holds its share of the queue. */
  pause(): void;
  /** Input may flow again. */
  resume(): void;
  /** Tells the sender something about its lines (the instructor cleared the queue); optional. */
  tell?(text: string): void;
}

export interface QueuedLine {
  source: WriteSource;
  /** The exact bytes for the device (the line plus the output delimiter). */
  bytes: Buffer;
  /** The line as the client sent it (without the delimiter), for monitors and request matching. */
  line: Buffer;
  /** Who sent it, as monitors show it. */
  from: ClientLabel;
  /** Who sent it, for the transcript (a ClientRef; typed loosely to keep this module free of the gateway's types). */
  sender?: { via: 'tcp' | 'udp' | 'web'; listener: string; address: string; port: number } | undefined;
  /** Called once the device accepted the bytes (or with an error when the queue dropped them). */
  done?: (err: Error | null) => void;
}

interface SourceQueue {
  source: WriteSource;
  items: QueuedLine[];
  head: number;
  bytes: number;
  paused: boolean;
}

export type EnqueueResult = 'queued' | 'full';

export class WriteQueue {
  private readonly sources = new Map<WriteSource, SourceQueue>();
  /** Sources with queued lines, in turn order. */
  private readonly turn: SourceQueue[] = [];
  private bytes = 0;
  readonly stats = { queued: 0, written: 0, refused: 0, dropped: 0 };

  constructor(
    private maxBytes: number,
    private sourceBytes: number,
  ) {
    if (!(maxBytes > 0) || !(sourceBytes > 0)) throw new TypeError(`WriteQueue: bounds must be positive (${maxBytes}, ${sourceBytes})`);
  }

  /** New bounds (reload); lines already queued stay. */
  resize(maxBytes: number, sourceBytes: number): void {
    this.maxBytes = maxBytes;
    this.sourceBytes = sourceBytes;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.turn.length === 0;
  }

  /** Queues a line unless it would break the global bound; may pause its source. */
  enqueue(item: QueuedLine): EnqueueResult {
    const size = item.bytes.length;
    if (this.bytes + size > this.maxBytes) {
      this.stats.refused++;
      return 'full';
    }
    let q = this.sources.get(item.source);
    if (!q) {
      q = { source: item.source, items: [], head: 0, bytes: 0, paused: false };
      this.sources.set(item.source, q);
    }
    if (q.items.length === q.head) this.turn.push(q);
    q.items.push(item);
    q.bytes += size;
    this.bytes += size;
    this.stats.queued++;
    if (!q.paused && q.bytes >= this.sourceBytes) {
      q.paused = true;
      item.source.pause();
    }
    return 'queued';
  }

  /** The next line for the device, taking sources in turn; undefined when nothing waits. */
  take(): QueuedLine | undefined {
    const q = this.turn.shift();
    if (!q) return undefined;
    const item = q.items[q.head]!;
    q.items[q.head] = undefined as unknown as QueuedLine; // let the buffer go
    q.head++;
    q.bytes -= item.bytes.length;
    this.bytes -= item.bytes.length;
    if (q.head === q.items.length) {
      q.items = [];
      q.head = 0;
    } else {
      this.turn.push(q);
    }
    if (q.paused && q.bytes < this.sourceBytes / 2) {
      q.paused = false;
      q.source.resume();
    }
    this.stats.written++;
    return item;
  }

  /**
   * Drops every queued line (the instructor's clear-queue); the line being written now is not here and goes on.
   * Returns how many each source lost; paused sources are resumed.
   */
  clear(): Map<WriteSource, number> {
    const out = new Map<WriteSource, number>();
    const dropped: QueuedLine[] = [];
    const resumed: WriteSource[] = [];
    for (const q of this.sources.values()) {
      const n = q.items.length - q.head;
      if (n === 0) continue;
      out.set(q.source, n);
      dropped.push(...q.items.slice(q.head));
      this.stats.dropped += n;
      q.items = [];
      q.head = 0;
      q.bytes = 0;
      if (q.paused) {
        q.paused = false;
        resumed.push(q.source);
      }
    }
    this.turn.length = 0;
    this.bytes = 0;
    // Callbacks only once the queue is empty: a dropped request's callback may queue the next request.
    for (const item of dropped) item.done?.(new Error('cleared by the instructor'));
    for (const source of resumed) source.resume();
    return out;
  }

  /** A source went away: its queued lines are dropped (and counted), and it is forgotten. */
  removeSource(source: WriteSource): number {
    const q = this.sources.get(source);
    if (!q) return 0;
    this.sources.delete(source);
    const dropped = q.items.length - q.head;
    for (let i = q.head; i < q.items.length; i++) q.items[i]!.done?.(new Error('client gone'));
    this.bytes -= q.bytes;
    const at = this.turn.indexOf(q);
    if (at >= 0) this.turn.splice(at, 1);
    this.stats.dropped += dropped;
    return dropped;
  }
}
