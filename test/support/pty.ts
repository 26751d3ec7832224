/**
 * A pseudo-terminal pair for integration tests: the code under test opens a stable path (a symlink to the
 * pty's slave end) as if it were a USB serial adapter, and the test plays the device on the master end.
 *
 * Built on libc through koffi (an FFI library with prebuilt binaries), so a fresh machine with only Node and
 * npm needs neither socat nor python. Linux (glibc) only: `ptyUnavailableReason()` says why it cannot run
 * elsewhere, for `t.test(..., { skip })`.
 *
 * Lifecycle, as the code under test sees it:
 * - `open(link)`: `link` -> /dev/pts/N appears; opening it gives a raw serial line.
 * - `unplug()`: the master closes. Whoever has the slave open sees a hang-up (serialport 13 emits `close` with
 *   a DisconnectedError, see test/serial/pty.test.ts); /dev/pts/N vanishes, so `link` dangles and a reopen
 *   fails with ENOENT, like a USB adapter that was pulled.
 * - `replug()`: a fresh pty pair; `link` is atomically repointed at its slave.
 * - `close()`: everything closed, `link` removed.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as tty from 'node:tty';
// koffi's package is "type": "module", so TypeScript refuses a plain import of it into this CommonJS build
// (TS1479/TS1542) although its CommonJS entry (index.cjs) works: value from require, types from the ESM
// typings via resolution-mode.
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });

// O_CLOEXEC is missing from fs.constants; this is its value on every Linux architecture Node runs on
// (x86, x86_64, arm, arm64), the only platform this helper supports.
const O_CLOEXEC = 0o2000000;
const TCSANOW = 0;
// struct termios is 60 bytes on glibc (x86_64, arm, arm64); we only hand it from tcgetattr through cfmakeraw
// to tcsetattr, so an opaque, slightly larger buffer keeps us independent of its layout.
const TERMIOS_BYTES = 64;
const WRITE_RETRY_MS = 2;

interface Libc {
  posix_openpt(flags: number): number;
  grantpt(fd: number): number;
  unlockpt(fd: number): number;
  ptsname_r(fd: number, buf: Buffer, len: number): number;
  tcgetattr(fd: number, termios: Buffer): number;
  cfmakeraw(termios: Buffer): void;
  tcsetattr(fd: number, action: number, termios: Buffer): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc !== undefined) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    posix_openpt: lib.func('int posix_openpt(int flags)'),
    grantpt: lib.func('int grantpt(int fd)'),
    unlockpt: lib.func('int unlockpt(int fd)'),
    ptsname_r: lib.func('int ptsname_r(int fd, _Out_ uint8_t *buf, size_t len)'),
    tcgetattr: lib.func('int tcgetattr(int fd, _Out_ uint8_t *termios)'),
    cfmakeraw: lib.func('void cfmakeraw(_Inout_ uint8_t *termios)'),
    tcsetattr: lib.func('int tcsetattr(int fd, int action, const uint8_t *termios)'),
  };
  return libc;
}

/** Why PtyPair cannot run here, or undefined when it can. Use as `{ skip: ptyUnavailableReason() }`. */
export function ptyUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `PtyPair needs Linux (this is ${process.platform})`;
  try {
    loadLibc();
    return undefined;
  } catch (err) {
    return `PtyPair cannot load libc.so.6 through koffi: ${(err as Error).message}`;
  }
}

function libcError(call: string): NodeJS.ErrnoException {
  const errno = koffi.errno();
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
  const err: NodeJS.ErrnoException = new Error(`${call} failed: ${name}`);
  err.code = name;
  err.errno = errno;
  return err;
}

interface PtyEnds {
  master: number;
  slave: number;
  slavePath: string;
}

function openPtyEnds(): PtyEnds {
  const c = loadLibc();
  // O_NONBLOCK on the master's open file description is what lets write() below return EAGAIN instead of
  // blocking the event loop when the code under test (often in this same process) is not reading.
  const master = c.posix_openpt(fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK | O_CLOEXEC);
  if (master < 0) throw libcError('posix_openpt');
  try {
    if (c.grantpt(master) !== 0) throw libcError('grantpt');
    if (c.unlockpt(master) !== 0) throw libcError('unlockpt');
    const name = Buffer.alloc(256);
    // ptsname_r returns the error number itself rather than setting errno.
    const rc = c.ptsname_r(master, name, name.length);
    if (rc !== 0) throw new Error(`ptsname_r failed: errno ${rc}`);
    const end = name.indexOf(0);
    const slavePath = name.toString('latin1', 0, end < 0 ? name.length : end);
    // Holding the slave open ourselves means the master never sees EIO when the code under test closes and
    // reopens its end, and it keeps /dev/pts/N's number reserved after an unplug (see unplug()).
    const slave = fs.openSync(slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    try {
      const termios = Buffer.alloc(TERMIOS_BYTES);
      if (c.tcgetattr(slave, termios) !== 0) throw libcError('tcgetattr');
      c.cfmakeraw(termios);
      if (c.tcsetattr(slave, TCSANOW, termios) !== 0) throw libcError('tcsetattr');
    } catch (err) {
      fs.closeSync(slave);
      throw err;
    }
    return { master, slave, slavePath };
  } catch (err) {
    fs.closeSync(master);
    throw err;
  }
}

/** Points linkPath at target without a moment where linkPath is missing (symlink to a temp name, rename). */
function pointLink(linkPath: string, target: string): void {
  const temp = `${linkPath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.symlinkSync(target, temp);
  try {
    fs.renameSync(temp, linkPath);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * What a read waits for: a string (as latin1 bytes) or bytes, taken up to and including their first
 * occurrence; or a function that sees all unread bytes (a view, valid during the call) and returns true to
 * take all of them.
 */
export type ReadMatch = string | Buffer | ((received: Buffer) => boolean);

/** Received bytes not yet read: one growable buffer, so a long readUntil costs O(n), not O(n²). */
class ByteStore {
  private buf = Buffer.alloc(64 * 1024);
  private head = 0;
  private tail = 0;

  get length(): number {
    return this.tail - this.head;
  }

  append(chunk: Buffer): void {
    if (this.tail + chunk.length > this.buf.length) {
      const need = this.length + chunk.length;
      const next = need <= this.buf.length ? this.buf : Buffer.alloc(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, this.head, this.tail); // copy() allows overlap when next === buf
      this.tail -= this.head;
      this.head = 0;
      this.buf = next;
    }
    chunk.copy(this.buf, this.tail);
    this.tail += chunk.length;
  }

  /** The unread bytes, without copying; valid until the next append or take. */
  view(): Buffer {
    return this.buf.subarray(this.head, this.tail);
  }

  /** The first n unread bytes, copied out, and consumed. */
  take(n: number): Buffer {
    const out = Buffer.from(this.buf.subarray(this.head, this.head + n));
    this.head += n;
    if (this.head === this.tail) this.head = this.tail = 0;
    return out;
  }
}

interface PendingRead {
  match: ReadMatch | number;
  /** Bytes already searched for a string match, so each byte is searched about once. */
  scanned: number;
  resolve(bytes: Buffer): void;
  reject(err: Error): void;
  cancelTimer(): void;
}

interface PendingWrite {
  data: Buffer;
  offset: number;
  resolve(): void;
  reject(err: Error): void;
}

export interface PtyPairEvents {
  data: [chunk: Buffer];
}

/**
 * Device-side I/O on the master fd, chosen after trying the alternatives (Node 20, Linux):
 * - Reading uses `tty.ReadStream(master)`: libuv watches the fd with epoll, so a read costs no thread-pool
 *   thread and arrives with no polling delay. The stream is unref'd, so a test that forgets close() still
 *   exits, and destroying it closes the fd at once (that is the unplug).
 * - Writing does NOT use `tty.WriteStream` (nor the ReadStream's write side): libuv can only make a tty
 *   non-blocking by reopening it by name, which it cannot do for a master, so it writes in blocking mode
 *   (WriteStream even clears O_NONBLOCK). Measured: a 1 MiB write to a raw pty that nobody reads never
 *   returns, freezing the event loop, and with it the code under test in this same process that should
 *   read it. Instead the master is opened O_NONBLOCK and we call write(2) through fs.writeSync, retrying
 *   EAGAIN on a short timer. fs streams are no better: a read on a pty waits in a thread-pool thread until
 *   bytes arrive, which can hold a thread (and process exit) forever.
 */
export class PtyPair extends EventEmitter<PtyPairEvents> {
  readonly linkPath: string;
  private ends: PtyEnds;
  private reader: tty.ReadStream | undefined;
  /** The old slave fd after an unplug, kept until replug()/close(): see unplug(). */
  private unpluggedSlave: number | undefined;
  private received = new ByteStore();
  private reads: PendingRead[] = [];
  private writes: PendingWrite[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readingPaused = false;

  /** Creates a pty pair and points linkPath (created or replaced) at its slave end. */
  static open(linkPath: string): PtyPair {
    return new PtyPair(linkPath, openPtyEnds());
  }

  private constructor(linkPath: string, ends: PtyEnds) {
    super();
    this.linkPath = linkPath;
    this.ends = ends;
    try {
      pointLink(linkPath, ends.slavePath);
    } catch (err) {
      fs.closeSync(ends.slave);
      fs.closeSync(ends.master);
      throw err;
    }
    this.startReader();
  }

  /** The current /dev/pts/N (changes on replug; linkPath does not). */
  get slavePath(): string {
    return this.ends.slavePath;
  }

  /**
   * The master end's fd (O_NONBLOCK; changes on replug), for a writer that must not go through write()'s retry
   * timer, such as the benchmark's device thread. Whoever uses it leaves its flags alone and never closes it.
   */
  get masterFd(): number {
    return this.ends.master;
  }

  get plugged(): boolean {
    return this.reader !== undefined;
  }

  /** How many received bytes no readUntil/readBytes has taken yet. */
  get bufferedBytes(): number {
    return this.received.length;
  }

  /**
   * Stops reading the master, as a device that is busy: the pty fills up (some tens of KiB) and then the
   * writer on the slave side waits (serialport: write() returns false, its callback waits). resumeReading()
   * undoes it.
   */
  pauseReading(): void {
    this.readingPaused = true;
    this.reader?.pause();
  }

  resumeReading(): void {
    this.readingPaused = false;
    this.reader?.resume();
  }

  /**
   * Sends bytes as the device; resolves once all of them are in the pty. Writes go out in call order. A
   * string is sent as latin1, one byte per character ('\xff' is 0xFF), not as UTF-8.
   */
  write(data: Buffer | string): Promise<void> {
    if (!this.plugged) return Promise.reject(new Error('PtyPair.write: the device is unplugged'));
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    return new Promise((resolve, reject) => {
      this.writes.push({ data: bytes, offset: 0, resolve, reject });
      if (this.writes.length === 1) this.flushWrites();
    });
  }

  /**
   * Resolves with the received bytes up to and including the first `match` (string as latin1 bytes), or with
   * everything buffered once a predicate returns true. Bytes after the match stay for the next read. Rejects
   * after timeoutMs (the message shows what did arrive), on unplug and on close.
   */
  readUntil(match: ReadMatch, timeoutMs: number): Promise<Buffer> {
    return this.enqueueRead(match, timeoutMs);
  }

  /** Resolves with exactly `count` received bytes. */
  readBytes(count: number, timeoutMs: number): Promise<Buffer> {
    return this.enqueueRead(count, timeoutMs);
  }

  /** Drops and returns whatever was received and not yet read. */
  takeBuffered(): Buffer {
    return this.received.take(this.received.length);
  }

  /**
   * Closes the master, which is what a USB unplug looks like to whoever has the slave open. The symlink
   * stays and now dangles. We keep our old slave fd until replug()/close(): while any slave fd is open the
   * kernel does not reuse the number N, so another pty (another test running in parallel) cannot appear at
   * /dev/pts/N and be opened through our dangling link.
   */
  unplug(): void {
    if (this.closed) throw new Error('PtyPair.unplug: already closed');
    if (!this.plugged) return;
    this.stopReader();
    this.unpluggedSlave = this.ends.slave;
    this.failPending(new Error('PtyPair: the device was unplugged'));
  }

  /** A fresh pty pair at the same linkPath (unplugging first if still plugged). */
  replug(): void {
    if (this.closed) throw new Error('PtyPair.replug: already closed');
    this.unplug();
    const ends = openPtyEnds();
    try {
      pointLink(this.linkPath, ends.slavePath);
    } catch (err) {
      fs.closeSync(ends.slave);
      fs.closeSync(ends.master);
      throw err;
    }
    this.ends = ends;
    this.releaseUnpluggedSlave();
    this.received = new ByteStore();
    this.startReader();
  }

  /** Closes both ends, rejects pending reads and writes, removes the symlink. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.plugged) {
      this.stopReader();
      fs.closeSync(this.ends.slave);
    }
    this.releaseUnpluggedSlave();
    this.failPending(new Error('PtyPair: closed'));
    fs.rmSync(this.linkPath, { force: true });
  }

  private startReader(): void {
    const reader = new tty.ReadStream(this.ends.master);
    reader.on('data', (chunk: Buffer) => this.onReaderData(chunk));
    // Only reachable if every slave fd closed (we hold one) or the fd broke; either way the device is gone.
    reader.on('error', () => {
      if (!this.closed) this.unplug();
    });
    reader.unref();
    if (this.readingPaused) reader.pause();
    this.reader = reader;
  }

  private stopReader(): void {
    const reader = this.reader;
    if (reader === undefined) return;
    this.reader = undefined;
    reader.removeAllListeners('data');
    // destroy() closes the master fd synchronously (uv_close on the tty handle).
    reader.destroy();
  }

  private releaseUnpluggedSlave(): void {
    if (this.unpluggedSlave === undefined) return;
    fs.closeSync(this.unpluggedSlave);
    this.unpluggedSlave = undefined;
  }

  private onReaderData(chunk: Buffer): void {
    this.received.append(chunk);
    this.emit('data', chunk);
    this.settleReads();
  }

  private enqueueRead(match: ReadMatch | number, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('PtyPair.read: closed'));
    if (!this.plugged) {
      // Bytes that arrived before the unplug can still be read; nothing more will come.
      const take = matchLength(match, this.received.view(), 0);
      if (take < 0) return Promise.reject(new Error('PtyPair.read: the device is unplugged'));
      return Promise.resolve(this.received.take(take));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads = this.reads.filter((r) => r !== read);
        const got = this.received.view();
        reject(new Error(`PtyPair.read: timed out after ${timeoutMs} ms waiting for ${describeMatch(match)}; ` +
          `have ${got.length} bytes: ${JSON.stringify(got.subarray(0, 200).toString('latin1'))}`));
      }, timeoutMs);
      const read: PendingRead = { match, scanned: 0, resolve, reject, cancelTimer: () => clearTimeout(timer) };
      this.reads.push(read);
      this.settleReads();
    });
  }

  private settleReads(): void {
    while (this.reads.length > 0) {
      const read = this.reads[0]!;
      const unread = this.received.view();
      const take = matchLength(read.match, unread, read.scanned);
      if (take < 0) {
        read.scanned = unread.length;
        return;
      }
      this.reads.shift();
      read.cancelTimer();
      read.resolve(this.received.take(take));
    }
  }

  private flushWrites(): void {
    this.retryTimer = undefined;
    while (this.writes.length > 0 && this.plugged) {
      const w = this.writes[0]!;
      try {
        while (w.offset < w.data.length) {
          w.offset += fs.writeSync(this.ends.master, w.data, w.offset, w.data.length - w.offset);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // The pty's buffer is full until the other end reads; timers (not setImmediate) so waiting costs
          // no CPU.
          this.retryTimer = setTimeout(() => this.flushWrites(), WRITE_RETRY_MS);
          return;
        }
        this.writes.shift();
        w.reject(err as Error);
        continue;
      }
      this.writes.shift();
      w.resolve();
    }
  }

  private failPending(err: Error): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const writes = this.writes;
    const reads = this.reads;
    this.writes = [];
    this.reads = [];
    for (const w of writes) w.reject(err);
    for (const r of reads) {
      r.cancelTimer();
      r.reject(err);
    }
  }
}

/** How many bytes of `received` a read takes, or -1 to wait; `scanned` bytes were already searched. */
function matchLength(match: ReadMatch | number, received: Buffer, scanned: number): number {
  if (typeof match === 'number') return received.length >= match ? match : -1;
  if (typeof match === 'function') return match(received) ? received.length : -1;
  const needle = typeof match === 'string' ? Buffer.from(match, 'latin1') : match;
  const at = received.indexOf(needle, Math.max(0, scanned - needle.length + 1));
  return at < 0 ? -1 : at + needle.length;
}

function describeMatch(match: ReadMatch | number): string {
  if (typeof match === 'number') return `${match} bytes`;
  if (typeof match === 'function') return 'a predicate';
  return JSON.stringify(typeof match === 'string' ? match : match.toString('latin1'));
}

/**
 * Resolves once a serialport SerialPort (13.x, Linux) has its read or write parked on its poller. Unplug only
 * then in tests: a hang-up that lands while bindings-cpp is between read(2) calls makes it retry a 0-byte read
 * forever (serialport/bindings-cpp#162), with no close event. Reaches into bindings-cpp internals on purpose.
 */
export async function serialportWaiting(port: object, event: 'readable' | 'writable', timeoutMs = 2000): Promise<void> {
  const binding = (port as { port?: { poller?: { listenerCount(e: string): number } } }).port;
  const deadline = Date.now() + timeoutMs;
  while ((binding?.poller?.listenerCount(event) ?? 0) === 0) {
    if (Date.now() > deadline) throw new Error(`serialport did not wait for ${event} within ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
