import type { Clock, Disposer } from '../core/clock.js';

/**
 * LineRing: the one copy of the device's bytes, framed into lines that many consumers read as views.
 *
 * Layout: a bip buffer. Bytes are copied in exactly once, at the write offset. Every record (a line, or a piece
 * of one) is contiguous in memory, so a consumer gets one `subarray` per line and, for consecutive lines, one
 * `subarray` over the whole run. When the write offset reaches the end of the buffer, only the unterminated
 * partial line (at most maxLineBytes + 1 bytes) is moved to the start: a small bounded copy, once per lap,
 * instead of handing out split lines that every consumer would have to stitch or write twice.
 *
 * INVARIANT (what makes views safe): bytes of a record are overwritten only after the record is evicted, and a
 * record is evicted only when no cursor pins it. A consumer pins the records it handed to a socket (the socket
 * holds the very Buffer until its write completes) and releases them when the write callback runs. If the ring
 * needs the space of a pinned record, it calls that cursor's `onPinnedEvicted`, which must release the pin
 * synchronously (the bridge closes that client: see `PinnedEvictionPolicy` below) before a byte is written.
 * If it does not, the ring throws rather than corrupt data a socket is still sending.
 *
 * Queued lines are different: a cursor's unread records are just positions. When the ring evicts records a
 * cursor has not read yet, the cursor lags: on its next read it learns how many it lost and resumes from the
 * newest data. The device is never blocked; every record is, per cursor, either read or counted as lost.
 *
 * Memory is the buffer plus a fixed table of record slots, both allocated in the constructor.
 */

export type Delimiter = 'crlf' | 'lf' | 'cr' | 'any' | 'none';

/** Why a record has the shape it has; consumers that want whole lines look at these. */
export const RecordFlag = {
  /** Cut at maxLineBytes: no terminator; the line goes on in the next record. */
  FRAGMENT: 1,
  /** Delivered after idleFlushMs of quiet (a prompt such as "> "): no terminator; more may follow. */
  PARTIAL: 2,
  /** Continues the line of the previous record (which was a FRAGMENT or PARTIAL). */
  CONTINUATION: 4,
  /** Only the LF of a CR LF whose CR already ended the previous record (delimiter `any`): not a new line. */
  TERM_TAIL: 8,
  /** Delimiter `none`: a piece of the raw byte stream, as it came. */
  RAW: 16,
} as const;

/**
 * What happens when the ring needs the space of a record that a consumer's socket still holds.
 * Copying the pinned lines out is not possible: the socket references the ring's own Buffer objects and
 * cannot be handed different memory. So the consumer is released (the bridge closes the client). This
 * only happens to a client that did not accept a single batch while the device filled the whole ring.
 */
export type PinnedEvictionPolicy = (cursor: RingCursor) => void;

export interface LineRingOptions {
  /** Bytes of line memory, allocated once. At least 8 * maxLineBytes. */
  capacityBytes: number;
  /** The longest record; a longer line is delivered in FRAGMENT records of this size. */
  maxLineBytes: number;
  delimiter?: Delimiter;
  /** Quiet time after which a partial line is delivered as a PARTIAL record; 0 = never. */
  idleFlushMs?: number;
  /** Record slots (a bound on lines held, whatever their size). Default capacityBytes / 32, at least 1024. */
  maxRecords?: number;
  clock: Clock;
  /** Called once per record, in order, as it is framed (the router tags replies here). */
  onRecord?: (seq: number) => void;
  /** Called after a push (or idle flush) framed at least one record: time to feed consumers. */
  onRecords?: () => void;
}

const CR = 0x0d;
const LF = 0x0a;
const NOT_PINNED = -1;

/** A consumer's position in the ring. Created by `LineRing.attach`, owned by one consumer. */
export class RingCursor {
  /** The next record this consumer will read. */
  seq: number;
  /** First record still held by this consumer's socket, or -1. */
  pinnedFrom = NOT_PINNED;
  /** Records lost since the consumer last called `takeLost()`. */
  lost = 0;
  /** Totals since attach, for the counts that must add up. */
  totalRead = 0;
  totalLost = 0;
  detached = false;

  constructor(
    seq: number,
    readonly onPinnedEvicted: PinnedEvictionPolicy,
  ) {
    this.seq = seq;
  }

  /** Returns and clears the count of records lost since the last call (for one notice to the client). */
  takeLost(): number {
    const n = this.lost;
    this.lost = 0;
    return n;
  }
}

export class LineRing {
  readonly capacityBytes: number;
  readonly maxRecords: number;
  private readonly mask: number;
  private maxLineBytes: number;
  private delimiter: Delimiter;
  private idleFlushMs: number;
  private readonly clock: Clock;
  private readonly onRecord: ((seq: number) => void) | undefined;
  private readonly onRecords: (() => void) | undefined;

  private readonly buf: Buffer;
  // The record table: slot = seq & mask.
  private readonly recStart: Uint32Array;
  private readonly recContent: Uint32Array;
  private readonly recTerm: Uint8Array;
  private readonly recFlags: Uint8Array;
  private readonly recTag: Uint32Array;
  private readonly recStreamPos: Float64Array;
  /** clock.now() when the record was framed: how old a newcomer's history is (historySeconds). */
  private readonly recTime: Float64Array;

  /** Oldest record still held. */
  private oldest = 0;
  /** One past the newest record. */
  private end = 0;

  private writeOff = 0;
  /** Start of the unterminated partial line; the partial is [lineStart, writeOff), always contiguous. */
  private lineStart = 0;
  /** Where the delimiter search resumes (everything before it in the partial holds no terminator). */
  private scanOff = 0;
  /** Bytes ever written, so backlogs can be measured in bytes across laps. */
  private streamPos = 0;
  /** The next record continues a line cut by FRAGMENT or PARTIAL. */
  private continuing = false;
  /** Delimiter `any`: the previous record ended on a CR that was the last byte seen; an LF now is its tail. */
  private crEnded = false;

  private readonly cursors = new Set<RingCursor>();
  private minPinned = Infinity;
  private minPinnedStale = false;

  private idleTimer: Disposer | null = null;
  private lastPushAt = 0;

  /** Counters for status and tests. */
  readonly stats = { bytesIn: 0, records: 0, lines: 0, evicted: 0, partialMoves: 0, partialMoveBytes: 0 };

  constructor(opts: LineRingOptions) {
    const { capacityBytes, maxLineBytes } = opts;
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new TypeError(`LineRing: maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    if (!Number.isInteger(capacityBytes) || capacityBytes < 8 * maxLineBytes || capacityBytes > 0xffffffff) {
      throw new TypeError(
        `LineRing: capacityBytes must be an integer >= 8 * maxLineBytes (${8 * maxLineBytes}), got ${capacityBytes}`,
      );
    }
    const wanted = opts.maxRecords ?? Math.max(1024, Math.floor(capacityBytes / 32));
    if (!Number.isInteger(wanted) || wanted < 2) {
      throw new TypeError(`LineRing: maxRecords must be an integer >= 2, got ${wanted}`);
    }
    // A power of two, so a slot is `seq & mask` rather than a division on every access. (`&` works on the low
    // 32 bits, which for a power-of-two table is still seq modulo its size for any safe integer seq.)
    const maxRecords = 2 ** Math.ceil(Math.log2(wanted));
    this.capacityBytes = capacityBytes;
    this.maxRecords = maxRecords;
    this.mask = maxRecords - 1;
    this.maxLineBytes = maxLineBytes;
    this.delimiter = opts.delimiter ?? 'crlf';
    this.idleFlushMs = opts.idleFlushMs ?? 200;
    this.clock = opts.clock;
    this.onRecord = opts.onRecord;
    this.onRecords = opts.onRecords;
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
    this.buf = Buffer.allocUnsafeSlow(capacityBytes);
    this.recStart = new Uint32Array(maxRecords);
    this.recContent = new Uint32Array(maxRecords);
    this.recTerm = new Uint8Array(maxRecords);
    this.recFlags = new Uint8Array(maxRecords);
    this.recTag = new Uint32Array(maxRecords);
    this.recStreamPos = new Float64Array(maxRecords);
    this.recTime = new Float64Array(maxRecords);
  }

  // ---------------------------------------------------------------- configuration (reload)

  /** Framing changes apply to bytes not yet framed; the partial line is re-scanned under the new rules. */
  reframe(opts: { delimiter?: Delimiter; maxLineBytes?: number; idleFlushMs?: number }): void {
    if (opts.maxLineBytes !== undefined) {
      if (!Number.isInteger(opts.maxLineBytes) || opts.maxLineBytes < 1 || 8 * opts.maxLineBytes > this.capacityBytes) {
        throw new TypeError(`LineRing: maxLineBytes ${opts.maxLineBytes} does not fit a ring of ${this.capacityBytes}`);
      }
      this.maxLineBytes = opts.maxLineBytes;
    }
    if (opts.delimiter !== undefined) this.delimiter = opts.delimiter;
    if (opts.idleFlushMs !== undefined) this.idleFlushMs = opts.idleFlushMs;
    this.scanOff = this.lineStart;
    this.crEnded = false;
    const before = this.end;
    this.frame();
    if (this.end !== before) this.onRecords?.();
  }

  // ---------------------------------------------------------------- writing

  /** Copies a chunk of device bytes in (once) and frames it. Never blocks, never throws for any input bytes. */
  push(chunk: Uint8Array): void {
    const before = this.end;
    let i = 0;
    const n = chunk.length;
    this.stats.bytesIn += n;
    while (i < n) {
      if (this.writeOff === this.capacityBytes) this.wrapPartialToStart();
      const step = Math.min(n - i, this.capacityBytes - this.writeOff);
      this.makeRoom(this.writeOff + step);
      this.buf.set(step === n ? chunk : chunk.subarray(i, i + step), this.writeOff);
      this.writeOff += step;
      this.streamPos += step;
      i += step;
      if (this.delimiter === 'none') this.emitRaw();
      else this.frame();
    }
    if (this.writeOff > this.lineStart) this.armIdleFlush();
    if (this.end !== before) this.onRecords?.();
  }

  /** Delivers the partial line now (what the idle timer does); returns whether a record was made. */
  flushPartial(): boolean {
    let len = this.writeOff - this.lineStart;
    // A trailing CR under crlf may be the first half of a terminator: keep it for the next byte to decide.
    if (this.delimiter === 'crlf' && len > 0 && this.buf[this.writeOff - 1] === CR) len--;
    if (len <= 0) return false;
    this.emit(len, 0, RecordFlag.PARTIAL);
    this.continuing = true;
    this.onRecords?.();
    return true;
  }

  /**
   * The device went away mid-line: what arrived of the line is delivered now (a PARTIAL record, nothing lost) and
   * the next byte starts a new line, not a continuation of a sentence the device never finished.
   */
  endLine(): void {
    const len = this.writeOff - this.lineStart;
    if (len > 0) {
      this.emit(len, 0, RecordFlag.PARTIAL);
      this.onRecords?.();
    }
    this.continuing = false;
    this.crEnded = false;
  }

  /** Stops the idle timer; the ring keeps its contents. */
  dispose(): void {
    this.idleTimer?.();
    this.idleTimer = null;
  }

  private armIdleFlush(): void {
    this.lastPushAt = this.clock.now();
    if (this.idleFlushMs <= 0 || this.idleTimer !== null) return;
    // One timer per quiet period, not one per chunk: it re-arms itself for the remainder while data flows.
    const check = (): void => {
      this.idleTimer = null;
      if (this.writeOff === this.lineStart || this.idleFlushMs <= 0) return;
      const quiet = this.clock.now() - this.lastPushAt;
      if (quiet >= this.idleFlushMs) this.flushPartial();
      else this.idleTimer = this.clock.setTimeout(check, this.idleFlushMs - quiet);
    };
    this.idleTimer = this.clock.setTimeout(check, this.idleFlushMs);
  }

  /** Moves the partial line to offset 0 so it stays contiguous; the bytes after it at the end become a gap. */
  private wrapPartialToStart(): void {
    const len = this.writeOff - this.lineStart;
    // The oldest records may sit at the start of the buffer: they must go before the partial lands there.
    while (this.end > this.oldest && this.recStart[this.oldest & this.mask]! < len) this.evictOldest();
    if (len > 0) {
      this.buf.copy(this.buf, 0, this.lineStart, this.writeOff);
      this.stats.partialMoves++;
      this.stats.partialMoveBytes += len;
    }
    this.scanOff -= this.lineStart;
    this.lineStart = 0;
    this.writeOff = len;
  }

  /** Evicts the oldest records until [writeOff, endOff) holds no record's bytes. */
  private makeRoom(endOff: number): void {
    // Records above the write offset are older than every record below it (the ring has wrapped), and the
    // oldest of them is the lowest; records below the write offset never overlap what comes next.
    while (this.end > this.oldest) {
      const start = this.recStart[this.oldest & this.mask]!;
      if (start < this.writeOff || start >= endOff) break;
      this.evictOldest();
    }
  }

  private evictOldest(): void {
    const seq = this.oldest;
    // minPinned only rises when pins are released (stale), so a record below it is certainly free.
    if (seq >= this.minPinned) {
      if (this.minPinnedStale) this.refreshMinPinned();
      if (seq >= this.minPinned) this.releasePinsOn(seq);
    }
    this.oldest++;
    this.stats.evicted++;
  }

  private releasePinsOn(seq: number): void {
    for (const cursor of this.cursors) {
      if (cursor.pinnedFrom === NOT_PINNED || cursor.pinnedFrom > seq) continue;
      cursor.onPinnedEvicted(cursor);
      if (!cursor.detached && cursor.pinnedFrom !== NOT_PINNED && cursor.pinnedFrom <= seq) {
        throw new Error(
          `LineRing invariant: record ${seq} is still pinned after onPinnedEvicted; refusing to overwrite bytes a socket holds`,
        );
      }
    }
    this.refreshMinPinned();
  }

  private refreshMinPinned(): void {
    let min = Infinity;
    for (const c of this.cursors) if (c.pinnedFrom !== NOT_PINNED && c.pinnedFrom < min) min = c.pinnedFrom;
    this.minPinned = min;
    this.minPinnedStale = false;
  }

  // ---------------------------------------------------------------- framing

  private emitRaw(): void {
    while (this.writeOff > this.lineStart) {
      this.emit(Math.min(this.writeOff - this.lineStart, this.maxLineBytes), 0, RecordFlag.RAW);
    }
    this.scanOff = this.lineStart;
  }

  /**
   * Frames [scanOff, writeOff). A state machine over the partial line: it stops on "need more"; a line that
   * outgrows maxLineBytes is cut into FRAGMENT records, so nothing here grows with the input.
   */
  private frame(): void {
    const win = this.buf.subarray(0, this.writeOff);
    const max = this.maxLineBytes;
    const delim = this.delimiter;
    if (this.crEnded && this.writeOff > this.lineStart) {
      this.crEnded = false;
      if (this.buf[this.lineStart] === LF) this.emit(0, 1, RecordFlag.TERM_TAIL);
    }
    for (;;) {
      let termAt = -1; // offset of the terminator's first byte
      let termLen = 0;
      while (this.scanOff < this.writeOff) {
        if (delim === 'lf' || delim === 'crlf') {
          const t = win.indexOf(LF, this.scanOff);
          if (t < 0) {
            this.scanOff = this.writeOff;
            break;
          }
          if (delim === 'lf') {
            termAt = t;
            termLen = 1;
            break;
          }
          if (t > this.lineStart && this.buf[t - 1] === CR) {
            termAt = t - 1;
            termLen = 2;
            break;
          }
          this.scanOff = t + 1; // a bare LF is content under crlf
        } else if (delim === 'cr') {
          const t = win.indexOf(CR, this.scanOff);
          if (t < 0) {
            this.scanOff = this.writeOff;
            break;
          }
          termAt = t;
          termLen = 1;
          break;
        } else {
          // any: the first CR or LF ends the line; a CR directly followed by LF ends it once.
          let t = this.scanOff;
          while (t < this.writeOff && this.buf[t] !== CR && this.buf[t] !== LF) t++;
          if (t === this.writeOff) {
            this.scanOff = t;
            break;
          }
          termAt = t;
          termLen = this.buf[t] === CR && t + 1 < this.writeOff && this.buf[t + 1] === LF ? 2 : 1;
          break;
        }
      }

      if (termAt >= 0) {
        const contentLen = termAt - this.lineStart;
        if (contentLen > max) {
          this.emitFragment(max);
          continue;
        }
        const endedOnLoneCr = delim === 'any' && termLen === 1 && this.buf[termAt] === CR;
        this.emit(contentLen, termLen, 0);
        this.continuing = false;
        if (endedOnLoneCr && this.lineStart === this.writeOff) this.crEnded = true;
        continue;
      }

      // Need more bytes; but a partial that already exceeds the limit is cut now.
      let pending = this.writeOff - this.lineStart;
      if (delim === 'crlf' && pending > 0 && this.buf[this.writeOff - 1] === CR) pending--;
      if (pending > max) {
        this.emitFragment(max);
        continue;
      }
      // (Under crlf a trailing CR needs no re-scan: the LF that completes it is checked against the byte before.)
      return;
    }
  }

  private emitFragment(len: number): void {
    this.emit(len, 0, RecordFlag.FRAGMENT);
    this.continuing = true;
  }

  /** Makes a record of [lineStart, lineStart + contentLen + termLen) and moves the line start past it. */
  private emit(contentLen: number, termLen: number, flags: number): void {
    if (this.end - this.oldest === this.maxRecords) this.evictOldest();
    const seq = this.end;
    const slot = seq & this.mask;
    if (this.continuing && (flags & (RecordFlag.TERM_TAIL | RecordFlag.RAW)) === 0) flags |= RecordFlag.CONTINUATION;
    this.recStart[slot] = this.lineStart;
    this.recContent[slot] = contentLen;
    this.recTerm[slot] = termLen;
    this.recFlags[slot] = flags;
    this.recTag[slot] = 0;
    this.recStreamPos[slot] = this.streamPos - (this.writeOff - this.lineStart);
    this.recTime[slot] = this.clock.now();
    this.end = seq + 1;
    this.lineStart += contentLen + termLen;
    if (this.scanOff < this.lineStart) this.scanOff = this.lineStart;
    this.stats.records++;
    if ((flags & (RecordFlag.FRAGMENT | RecordFlag.PARTIAL | RecordFlag.TERM_TAIL)) === 0) this.stats.lines++;
    this.onRecord?.(seq);
  }

  // ---------------------------------------------------------------- reading

  /** Records [oldestSeq, endSeq) are held. */
  get oldestSeq(): number {
    return this.oldest;
  }

  get endSeq(): number {
    return this.end;
  }

  /** Bytes of the partial line not yet delivered. */
  get partialBytes(): number {
    return this.writeOff - this.lineStart;
  }

  /**
   * A new consumer starts at the newest data, or at `fromSeq` (a client resuming where it left off), kept within
   * the records still held: a seq already evicted starts at the oldest, one not framed yet at the newest. The
   * caller learns how many it missed from `cursor.seq - fromSeq`; they are not counted as this cursor's `lost`.
   */
  attach(onPinnedEvicted: PinnedEvictionPolicy, fromSeq: number = this.end): RingCursor {
    const seq = Math.min(Math.max(fromSeq, this.oldest), this.end);
    const cursor = new RingCursor(seq, onPinnedEvicted);
    this.cursors.add(cursor);
    return cursor;
  }

  detach(cursor: RingCursor): void {
    cursor.detached = true;
    cursor.pinnedFrom = NOT_PINNED;
    this.cursors.delete(cursor);
    this.minPinnedStale = true;
  }

  get consumerCount(): number {
    return this.cursors.size;
  }

  /**
   * The next record for this cursor, or -1 when it is up to date. If records it had not read were evicted,
   * the cursor lags: it resumes from the newest data and `lost` counts every record it skipped.
   */
  next(cursor: RingCursor): number {
    if (cursor.seq < this.oldest) this.skipToNewest(cursor);
    return cursor.seq < this.end ? cursor.seq : -1;
  }

  /** Marks records up to (not including) seq as read. */
  advance(cursor: RingCursor, toSeq: number): void {
    if (toSeq < cursor.seq || toSeq > this.end) throw new RangeError(`advance to ${toSeq} outside [${cursor.seq}, ${this.end}]`);
    cursor.totalRead += toSeq - cursor.seq;
    cursor.seq = toSeq;
  }

  /** Drops everything this cursor has not read (its backlog grew past its bound), counting it as lost. */
  skipToNewest(cursor: RingCursor): void {
    const skipped = this.end - cursor.seq;
    if (skipped <= 0) return;
    cursor.lost += skipped;
    cursor.totalLost += skipped;
    cursor.seq = this.end;
  }

  /** Bytes from the start of record seq to the newest byte framed: a consumer's backlog. */
  backlogBytes(seq: number): number {
    if (seq >= this.end) return 0;
    const from = seq < this.oldest ? this.oldest : seq;
    return this.streamPos - (this.writeOff - this.lineStart) - this.recStreamPos[from & this.mask]!;
  }

  /** clock.now() when record seq was framed. */
  framedAt(seq: number): number {
    return this.recTime[seq & this.mask]!;
  }

  /**
   * Where a newcomer's history starts: the first record of the newest `maxLines` lines still held that were framed
   * at or after `notBefore` (clock ms) and, from there to the newest, take at most `maxBytes`. Only whole lines:
   * a line whose start has left the ring (or lies past a bound) is not shown from its middle. With `untaggedOnly`
   * (request mode) a record some client's request claimed is neither counted nor a start (the session skips it
   * when sending, as it does live). `lines` counts lines begun in [seq, endSeq), a partial one (a prompt) included.
   */
  historyStart(maxLines: number, notBefore: number, maxBytes: number, untaggedOnly: boolean): { seq: number; lines: number } {
    const m = this.mask;
    const newest = this.streamPos - (this.writeOff - this.lineStart);
    let start = this.end;
    let lines = 0;
    for (let seq = this.end - 1; seq >= this.oldest && lines < maxLines; seq--) {
      const slot = seq & m;
      if (this.recTime[slot]! < notBefore || newest - this.recStreamPos[slot]! > maxBytes) break;
      if ((this.recFlags[slot]! & (RecordFlag.CONTINUATION | RecordFlag.TERM_TAIL)) !== 0) continue;
      if (untaggedOnly && this.recTag[slot] !== 0) continue;
      start = seq;
      lines++;
    }
    return { seq: start, lines };
  }

  /** The cursor's socket now holds records from `fromSeq` on; they must not be overwritten until released. */
  pin(cursor: RingCursor, fromSeq: number): void {
    if (cursor.pinnedFrom !== NOT_PINNED) return;
    if (fromSeq < this.oldest) throw new RangeError(`pin(${fromSeq}): record already evicted`);
    cursor.pinnedFrom = fromSeq;
    if (fromSeq < this.minPinned) this.minPinned = fromSeq;
  }

  /** The socket finished with records before `untilSeq` (all of them when untilSeq >= cursor.seq). */
  release(cursor: RingCursor, untilSeq = Infinity): void {
    if (cursor.pinnedFrom === NOT_PINNED) return;
    cursor.pinnedFrom = untilSeq >= cursor.seq ? NOT_PINNED : Math.max(cursor.pinnedFrom, untilSeq);
    this.minPinnedStale = true;
  }

  /**
   * The end of the run of records from `fromSeq` that lie back to back in memory (at most maxBytes, at least
   * one record, at most up to `limitSeq`): such a run goes to a socket as one view.
   */
  runEnd(fromSeq: number, maxBytes: number, limitSeq = this.end): number {
    const m = this.mask;
    let seq = fromSeq;
    let slot = seq & m;
    const first = this.recStart[slot]!;
    let expected = first + this.recContent[slot]! + this.recTerm[slot]!;
    seq++;
    const last = Math.min(limitSeq, this.end);
    while (seq < last) {
      slot = seq & m;
      const start = this.recStart[slot]!;
      if (start !== expected) break;
      const next = start + this.recContent[slot]! + this.recTerm[slot]!;
      if (next - first > maxBytes) break;
      expected = next;
      seq++;
    }
    return seq;
  }

  /** One view over records [fromSeq, toSeq), which must be a run (see runEnd). */
  span(fromSeq: number, toSeq: number): Buffer {
    const a = this.recStart[fromSeq & this.mask]!;
    const lastSlot = (toSeq - 1) & this.mask;
    return this.buf.subarray(a, this.recStart[lastSlot]! + this.recContent[lastSlot]! + this.recTerm[lastSlot]!);
  }

  /** The record's bytes as the device sent them: content and terminator. */
  view(seq: number): Buffer {
    const slot = seq & this.mask;
    const start = this.recStart[slot]!;
    return this.buf.subarray(start, start + this.recContent[slot]! + this.recTerm[slot]!);
  }

  /** The record's content without its terminator. */
  content(seq: number): Buffer {
    const slot = seq & this.mask;
    const start = this.recStart[slot]!;
    return this.buf.subarray(start, start + this.recContent[slot]!);
  }

  /** The record's terminator (empty for fragments, partials and raw records). */
  terminator(seq: number): Buffer {
    const slot = seq & this.mask;
    const at = this.recStart[slot]! + this.recContent[slot]!;
    return this.buf.subarray(at, at + this.recTerm[slot]!);
  }

  contentLength(seq: number): number {
    return this.recContent[seq & this.mask]!;
  }

  recordLength(seq: number): number {
    const slot = seq & this.mask;
    return this.recContent[slot]! + this.recTerm[slot]!;
  }

  flags(seq: number): number {
    return this.recFlags[seq & this.mask]!;
  }

  /** A routing mark set by the router while framing (e.g. the client a reply belongs to); 0 = everyone. */
  tag(seq: number): number {
    return this.recTag[seq & this.mask]!;
  }

  setTag(seq: number, tag: number): void {
    this.recTag[seq & this.mask] = tag;
  }

  /** Compares a record's content with bytes, without a copy. */
  contentEquals(seq: number, bytes: Uint8Array): boolean {
    const slot = seq & this.mask;
    const len = this.recContent[slot]!;
    if (len !== bytes.length) return false;
    const start = this.recStart[slot]!;
    return this.buf.compare(bytes, 0, len, start, start + len) === 0;
  }
}
