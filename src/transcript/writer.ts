import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { TranscriptConfig } from '../config/types.js';
import { dayBefore, fileName, parseFileName, retentionPlan, type TranscriptFile } from './files.js';
import { localDay } from './record.js';

/**
 * Appends transcript lines to files in a directory, off the data path: `append` only copies the line's bytes
 * into a block of memory (64 KiB blocks, reused); a timer (or 64 KiB of backlog) starts one asynchronous write
 * of the whole batch, and at most one file operation runs at a time (libuv's thread pool does the disk work,
 * the event loop never waits for it). Lines are encoded as they come: no string is kept, joined or re-encoded.
 *
 * Bounds: queued plus in-flight text stays under `bufferBytes`. When the disk cannot keep up, lines are
 * dropped and counted, and the count is written as a record (`dropRecord`) once there is room again.
 *
 * Crash safety: every write is whole lines; a short write (disk full, RLIMIT_FSIZE) is cut back to the last
 * whole line. A SIGKILL can still leave a torn last line: on start, a file that does not end in a newline is
 * not appended to (the next index is opened), and readers skip a line they cannot parse.
 *
 * Faults: any file error (full disk, read-only or missing permission) logs one warning and stops the
 * transcript; `failure` says why (for STATUS=); the gateway goes on serving. Reopening is a reload's job.
 *
 * States: STARTING (opening the directory), OPEN, FAILED, CLOSED.
 */
/** The transcript's config keys (src/config/types.ts) but `enabled`, and what the daemon wires in. */
export interface TranscriptWriterOptions extends Omit<TranscriptConfig, 'enabled'> {
  clock: Clock;
  /** Wall time in ms since the epoch: file days and record times. */
  wallNow: () => number;
  log: Log;
  /** The line that records `count` dropped lines. */
  dropRecord: (count: number) => string;
  /** The transcript stopped (failure is set). */
  failed?: () => void;
}

export type WriterState = 'STARTING' | 'OPEN' | 'FAILED' | 'CLOSED';

interface Block {
  buf: Buffer;
  used: number;
}

const BLOCK_BYTES = 64 * 1024;
const MAX_SPARE_BLOCKS = 4;
const FLUSH_NOW_BYTES = 64 * 1024;
const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
const NEWLINE = 0x0a;

export class TranscriptWriter {
  private state: WriterState = 'STARTING';
  /** Queued lines' bytes: filled blocks, the last one in use. */
  private pending: Block[] = [];
  private pendingBytes = 0;
  private pendingLines = 0;
  private spare: Block[] = [];
  private writingBytes = 0;
  private writing = false;
  private timer: Disposer | null = null;
  private droppedUntold = 0;
  private handle: FileHandle | null = null;
  private file: { day: string; index: number; size: number } | null = null;
  private io: Promise<void> = Promise.resolve();
  private why: string | null = null;
  readonly stats = { lines: 0, bytes: 0, dropped: 0, files: 0, deleted: 0 };

  constructor(private readonly o: TranscriptWriterOptions) {}

  /** Why the transcript stopped, or null while it runs. */
  get failure(): string | null {
    return this.why;
  }

  /** The local day of the file being written (null before the first is open). */
  get fileDay(): string | null {
    return this.file?.day ?? null;
  }

  get currentFile(): string | null {
    return this.file ? join(this.o.dir, fileName(this.file.day, this.file.index)) : null;
  }

  /** Creates the directory if needed and opens today's file. Never throws: a failure is a state. */
  start(): Promise<void> {
    return this.enqueueIo(async () => {
      const made = await fsp.mkdir(this.o.dir, { recursive: true, mode: DIR_MODE });
      // The unit's UMask=0077 would leave what was just made 0700: the service group must be able to enter.
      for (let p = this.o.dir; made !== undefined; p = dirname(p)) {
        await fsp.chmod(p, DIR_MODE);
        if (p === made || dirname(p) === p) break;
      }
      await this.openFor(localDay(this.o.wallNow()));
      if (this.state === 'STARTING') this.state = 'OPEN';
      this.schedule();
    });
  }

  /** Queues one line (newline included). Cheap and synchronous; never touches the disk. */
  append(line: string): void {
    const n = Buffer.byteLength(line, 'utf8');
    const b = this.room(n);
    if (!b) return;
    b.used += b.buf.write(line, b.used, 'utf8');
    this.queued(n);
  }

  /**
   * Queues `head` + `body` as the content of a JSON string + `"}\n`, when `body` is printable ASCII: the hot path
   * for device lines, whose bytes are checked, escaped (`"` and `\`) and copied from the ring in one pass, with
   * no string made. Returns false, having queued nothing, for any other byte: the caller writes the record the
   * general way.
   */
  appendJsonLine(head: Uint8Array, body: Uint8Array): boolean {
    const most = head.length + 2 * body.length + 3;
    const b = this.room(most, true);
    if (!b) return this.state !== 'OPEN' && this.state !== 'STARTING' ? true : this.full();
    const buf = b.buf;
    let at = b.used + head.length;
    for (let i = 0; i < body.length; i++) {
      const c = body[i]!;
      if (c < 0x20 || c > 0x7e) return false;
      if (c === 0x22 || c === 0x5c) buf[at++] = 0x5c;
      buf[at++] = c;
    }
    buf.set(head, b.used);
    buf[at++] = 0x22; // "
    buf[at++] = 0x7d; // }
    buf[at++] = NEWLINE;
    const n = at - b.used;
    b.used = at;
    this.queued(n);
    return true;
  }

  /** No room for a line: it is dropped (counted). Returns true: the line is dealt with. */
  private full(): boolean {
    this.droppedUntold++;
    this.stats.dropped++;
    return true;
  }

  /**
   * The block to write n bytes into, or null when the line is dropped (counted, unless `quiet`: the caller
   * counts it). `n` may be more than the line will take: the block is only filled as far as it is used.
   */
  private room(n: number, quiet = false): Block | null {
    if (this.state === 'FAILED' || this.state === 'CLOSED') return null;
    if (this.pendingBytes + this.writingBytes + n > this.o.bufferBytes) {
      if (!quiet) this.full();
      return null;
    }
    if (this.droppedUntold > 0) {
      const note = this.o.dropRecord(this.droppedUntold);
      this.droppedUntold = 0;
      const len = Buffer.byteLength(note, 'utf8');
      const nb = this.block(len);
      nb.used += nb.buf.write(note, nb.used, 'utf8');
      this.pendingBytes += len;
      this.pendingLines++;
    }
    return this.block(n);
  }

  private block(n: number): Block {
    const last = this.pending[this.pending.length - 1];
    if (last && last.buf.length - last.used >= n) return last;
    const b = n <= BLOCK_BYTES ? (this.spare.pop() ?? { buf: Buffer.allocUnsafe(BLOCK_BYTES), used: 0 }) : { buf: Buffer.allocUnsafe(n), used: 0 };
    this.pending.push(b);
    return b;
  }

  private queued(n: number): void {
    this.pendingBytes += n;
    this.pendingLines++;
    if (this.timer === null || this.pendingBytes >= FLUSH_NOW_BYTES) this.schedule();
  }

  /** Writes what is queued now and resolves once it is on disk (or the transcript has stopped). */
  async drain(): Promise<void> {
    this.cancelTimer();
    while (this.state === 'OPEN' && (this.pending.length > 0 || this.writing)) {
      if (!this.writing) this.flush();
      await this.io;
    }
    await this.io;
  }


  /** Writes what is queued, closes the file. */
  async close(): Promise<void> {
    if (this.state === 'CLOSED') return;
    this.cancelTimer();
    // Whatever is queued goes out first (unless the transcript has failed).
    while (this.state !== 'FAILED' && (this.pending.length > 0 || this.writing)) {
      if (!this.writing) this.flush();
      await this.io;
    }
    this.state = 'CLOSED';
    this.cancelTimer();
    await this.io;
    await this.closeHandle();
  }

  private cancelTimer(): void {
    this.timer?.();
    this.timer = null;
  }

  private schedule(): void {
    if (this.state !== 'OPEN' || this.writing || this.pending.length === 0) return;
    if (this.pendingBytes >= FLUSH_NOW_BYTES) {
      this.timer?.();
      this.timer = null;
      this.flush();
      return;
    }
    if (this.timer === null) {
      this.timer = this.o.clock.setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.o.flushMs);
    }
  }

  private flush(): void {
    if (this.writing || this.pending.length === 0 || this.state === 'FAILED') return;
    const blocks = this.pending;
    // One writev of the blocks as they are: a batch is never copied into one buffer.
    const parts = blocks.map((b) => b.buf.subarray(0, b.used));
    const lines = this.pendingLines;
    this.pending = [];
    this.pendingLines = 0;
    this.writingBytes = this.pendingBytes;
    this.pendingBytes = 0;
    this.writing = true;
    void this.enqueueIo(() => this.write(parts, lines)).then(() => {
      // The blocks are free once the write is done.
      for (const b of blocks) {
        if (b.buf.length !== BLOCK_BYTES || this.spare.length >= MAX_SPARE_BLOCKS) continue;
        b.used = 0;
        this.spare.push(b);
      }
      this.writing = false;
      this.writingBytes = 0;
      this.schedule();
    });
  }

  private async write(parts: Buffer[], lines: number): Promise<void> {
    const length = parts.reduce((n, p) => n + p.length, 0);
    await this.rotateFor(length);
    const handle = this.handle!;
    const file = this.file!;
    const before = file.size;
    let done = 0;
    let err: Error | null = null;
    try {
      done = (await handle.writev(parts)).bytesWritten;
      if (done < length) {
        // A short write (rare: a full disk, a signal): the rest in one piece, until it is all out or nothing goes.
        const rest = Buffer.concat(parts).subarray(done);
        while (done < length) {
          const { bytesWritten } = await handle.write(rest, done - (length - rest.length), length - done, null);
          if (bytesWritten === 0) break;
          done += bytesWritten;
        }
      }
    } catch (e) {
      err = e as Error;
    }
    if (done < length) {
      // Cut back to the last whole line, so the file stays a list of whole records.
      const whole = done === 0 ? 0 : Buffer.concat(parts).lastIndexOf(NEWLINE, done - 1) + 1;
      await handle.truncate(before + whole).catch(() => {});
      file.size = before + whole;
      throw err ?? Object.assign(new Error('short write (the disk is full or the file size limit was reached)'), { code: 'ENOSPC' });
    }
    file.size += length;
    this.stats.lines += lines;
    this.stats.bytes += length;
  }

  /** A new file at the start of a day and when this batch would take the current one past maxFileBytes. */
  private async rotateFor(batchBytes: number): Promise<void> {
    const today = localDay(this.o.wallNow());
    const f = this.file;
    if (f && this.handle && f.day === today && (f.size === 0 || f.size + batchBytes <= this.o.maxFileBytes)) return;
    await this.closeHandle();
    await this.openFor(today, f && f.day === today ? f.index + 1 : undefined);
  }

  /**
   * Opens the file to append to on `day`: the newest one of that day if it ends with a whole line and has
   * room, else the next index. Then applies retention.
   */
  private async openFor(day: string, index?: number): Promise<void> {
    const files = await this.list();
    let next = index;
    if (next === undefined) {
      const newest = files.filter((f) => f.day === day).sort((a, b) => b.index - a.index)[0];
      next = newest === undefined ? 0 : (await this.appendable(newest)) ? newest.index : newest.index + 1;
    }
    const path = join(this.o.dir, fileName(day, next));
    const handle = await fsp.open(path, 'a', FILE_MODE);
    try {
      // The unit's UMask=0077 would leave 0600: the service group (the instructor's account) reads these.
      await handle.chmod(FILE_MODE);
      const { size } = await handle.stat();
      this.handle = handle;
      this.file = { day, index: next, size };
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
    this.stats.files++;
    await this.applyRetention(files, fileName(day, next), day);
  }

  private async appendable(f: TranscriptFile): Promise<boolean> {
    if (f.size === 0) return true;
    if (f.size >= this.o.maxFileBytes) return false;
    const h = await fsp.open(join(this.o.dir, f.name), 'r');
    try {
      const last = Buffer.alloc(1);
      await h.read(last, 0, 1, f.size - 1);
      return last[0] === NEWLINE;
    } finally {
      await h.close();
    }
  }

  private async list(): Promise<TranscriptFile[]> {
    const out: TranscriptFile[] = [];
    for (const name of await fsp.readdir(this.o.dir)) {
      const p = parseFileName(name);
      if (!p) continue;
      const st = await fsp.stat(join(this.o.dir, name)).catch(() => null);
      if (st?.isFile()) out.push({ name, ...p, size: st.size });
    }
    return out;
  }

  private async applyRetention(files: TranscriptFile[], current: string, today: string): Promise<void> {
    const doomed = retentionPlan(files, {
      current,
      oldestDay: dayBefore(today, this.o.keepDays - 1),
      maxBytes: this.o.maxBytes,
      maxFileBytes: this.o.maxFileBytes,
    });
    for (const name of doomed) {
      await fsp.unlink(join(this.o.dir, name));
      this.stats.deleted++;
      this.o.log.debug(`transcript: deleted ${name} (retention)`);
    }
  }

  private async closeHandle(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close().catch(() => {});
  }

  /** One file operation at a time; the first failure stops the transcript. */
  private enqueueIo(op: () => Promise<void>): Promise<void> {
    this.io = this.io.then(async () => {
      if (this.state === 'FAILED') return;
      try {
        await op();
      } catch (e) {
        await this.fail(e as NodeJS.ErrnoException);
      }
    });
    return this.io;
  }

  private async fail(err: NodeJS.ErrnoException): Promise<void> {
    if (this.state === 'FAILED') return;
    const wasClosed = this.state === 'CLOSED';
    this.state = 'FAILED';
    this.cancelTimer();
    this.stats.dropped += this.pendingLines;
    this.pending = [];
    this.pendingLines = 0;
    this.pendingBytes = 0;
    this.why = `${err.code ?? 'error'}: ${err.message.replace(/^[A-Z]+: /, '')}`;
    this.o.log.warn(
      `transcript stopped (${this.why}) in ${this.o.dir}; the gateway goes on without it. ` +
        'Free space or fix the directory, then reload (systemctl reload serial-gateway) to start it again.',
    );
    await this.closeHandle();
    if (wasClosed) this.state = 'CLOSED';
    this.o.failed?.();
  }
}
