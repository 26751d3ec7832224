import type { GatewayEvents, ClientRef } from '../events.js';
import { RecordFlag } from '../line/ring.js';
import type { LinkState } from '../serial/serial-link.js';
import { formatRecord, isoTime, make, type DevicePart, type TranscriptRecord } from './record.js';
import type { TranscriptWriter } from './writer.js';

/**
 * The gateway's events as transcript records: stamps each with the wall time and hands the line to the writer,
 * which only queues it. Device bytes are copied out of the ring here (into the record's string), so the ring's
 * views are never held.
 */
export class TranscriptRecorder implements GatewayEvents {
  private deviceAway: boolean | null = null;
  private lastMs = -1;
  private lastIso = '';
  /** `{"t":"<now>","k":"device","text":"` as bytes, made once per millisecond. */
  private devicePrefix = Buffer.alloc(0);
  /** The clock was read in this synchronous run of device lines (cleared by a microtask when it ends). */
  private inBurst = false;
  private readonly endBurst = (): void => {
    this.inBurst = false;
  };

  constructor(
    readonly writer: TranscriptWriter,
    private readonly wallNow: () => number,
  ) {}

  /** The ISO string is made once per millisecond. */
  private now(): string {
    const ms = this.wallNow();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = isoTime(ms);
      this.devicePrefix = Buffer.from(`{"t":"${this.lastIso}","k":"device","text":"`, 'latin1');
    }
    return this.lastIso;
  }

  private put(r: TranscriptRecord): void {
    this.writer.append(formatRecord(r));
  }

  deviceLine(content: Buffer, flags: number): void {
    if (flags & RecordFlag.TERM_TAIL) return;
    if (flags === 0) {
      // Lines framed in one synchronous run came in one read: they share its time, and the clock is read once.
      if (!this.inBurst) {
        this.inBurst = true;
        this.now();
        queueMicrotask(this.endBurst);
      }
      // The common case, a whole line of printable ASCII: its bytes go into the record as they are (`"` and `\`
      // escaped), the same bytes formatRecord(make.device(...)) gives, without building an object or a string.
      if (this.writer.appendJsonLine(this.devicePrefix, content)) return;
    }
    const part: DevicePart | undefined =
      flags & RecordFlag.RAW ? 'raw' : flags & RecordFlag.FRAGMENT ? 'fragment' : flags & RecordFlag.PARTIAL ? 'partial' : undefined;
    this.put(make.device(this.now(), content, part, (flags & RecordFlag.CONTINUATION) !== 0));
  }

  clientLine(from: ClientRef, line: Buffer): void {
    this.put(make.client(this.now(), from, line));
  }

  connected(client: ClientRef): void {
    this.put(make.connect(this.now(), client));
  }

  disconnected(client: ClientRef, detail: { why?: string; in?: number; out?: number; lost?: number }): void {
    this.put(make.disconnect(this.now(), client, detail));
  }

  refused(client: ClientRef, why: string): void {
    this.put(make.refused(this.now(), client, why));
  }

  notice(client: ClientRef, text: string): void {
    this.put(make.notice(this.now(), client, text));
  }

  deviceState(state: LinkState, detail: string): void {
    if (state === 'OPENING') return;
    const away = state !== 'OPEN';
    if (away === this.deviceAway) return;
    this.deviceAway = away;
    this.put(make.device_state(this.now(), away, detail));
  }

  reloaded(ok: boolean, detail?: string): void {
    this.put(make.reload(this.now(), ok, detail));
  }

  /** An instructor's action, with who asked (not a GatewayEvents event: only the daemon records it). */
  instructor(text: string, by: string): void {
    this.put(make.instructor(this.now(), by, text));
  }

  lifecycle(k: 'start' | 'stop', detail?: string): void {
    this.put(make.lifecycle(this.now(), k, detail));
  }
}

/** The line that records how many lines the writer had to drop. */
export function droppedLine(wallNow: () => number): (count: number) => string {
  return (count) => formatRecord(make.dropped(isoTime(wallNow()), count));
}
