/**
 * Plays systemd's side of sd_notify in tests: an AF_UNIX datagram socket (which Node lacks) bound through
 * libc with koffi, nonblocking and polled by an unref'd timer. It records each message as a KEY=VALUE map,
 * with the sender's PID from SCM_CREDENTIALS (the check behind NotifyAccess=main), and closes any file
 * descriptors that arrive, which is how systemd answers systemd-notify's BARRIER=1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sockaddrUn } from '../../src/status/notify.js';

export type NotifyFields = Readonly<Record<string, string>>;

export interface NotifyListener {
  /** The value to put in NOTIFY_SOCKET: a path, or @name for an abstract socket. */
  readonly address: string;
  /** Parsed messages in arrival order. */
  readonly messages: NotifyFields[];
  /** The sending process of each message (same index), or null if the kernel sent no credentials. */
  readonly senders: (number | null)[];
  /** Resolves with the first message (already received or yet to come) that matches; rejects on timeout. */
  waitFor(match: (msg: NotifyFields) => boolean, timeoutMs: number): Promise<NotifyFields>;
  close(): void;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const POLL_MS = 5;

// koffi's types are declared as ESM; require() gets its CommonJS build with the same API.
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'require' } });
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int, int, int)') as (d: number, t: number, p: number) => number;
const bind = libc.func('int bind(int, const void *, uint32_t)') as (fd: number, a: Buffer, l: number) => number;
const setsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  length: number,
) => number;
const closeFd = libc.func('int close(int)') as (fd: number) => number;
const iovec = koffi.struct('sgw_iovec', { iov_base: 'void *', iov_len: 'size_t' });
koffi.struct('sgw_msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: koffi.pointer(iovec),
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
});
interface MsgHdr {
  msg_name: null;
  msg_namelen: number;
  msg_iov: { iov_base: Buffer; iov_len: number }[];
  msg_iovlen: number;
  msg_control: Buffer;
  msg_controllen: number | bigint;
  msg_flags: number;
}
const recvmsg = libc.func('intptr_t recvmsg(int, _Inout_ sgw_msghdr *, int)') as (
  fd: number,
  msg: MsgHdr,
  flags: number,
) => number | bigint;
const clockGettime = libc.func('int clock_gettime(int, _Out_ int64_t *ts)') as (
  id: number,
  ts: BigInt64Array,
) => number;
const SIZE_T = koffi.sizeof('size_t');

/** clock_gettime(CLOCK_MONOTONIC) in microseconds, straight from libc. */
export function libcMonotonicUsec(): bigint {
  const ts = new BigInt64Array(2);
  if (koffi.sizeof('long') !== 8) {
    // 32-bit time_t layouts are not needed on the machines that run the tests.
    throw new Error('libcMonotonicUsec supports 64-bit targets only');
  }
  if (clockGettime(1, ts) !== 0) throw new Error(`clock_gettime failed: errno ${koffi.errno()}`);
  return (ts[0] as bigint) * 1_000_000n + (ts[1] as bigint) / 1000n;
}

function parse(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

/** Walks the control messages: returns the sender PID and closes any passed descriptors. */
function readControl(control: Buffer, length: number): number | null {
  const align = (n: number): number => Math.ceil(n / SIZE_T) * SIZE_T;
  const headerSize = align(SIZE_T + 8);
  let pid: number | null = null;
  let offset = 0;
  while (offset + headerSize <= length) {
    const cmsgLen = SIZE_T === 8 ? Number(control.readBigUInt64LE(offset)) : control.readUInt32LE(offset);
    const level = control.readInt32LE(offset + SIZE_T);
    const type = control.readInt32LE(offset + SIZE_T + 4);
    if (cmsgLen < headerSize) break;
    const data = offset + headerSize;
    if (level === SOL_SOCKET && type === SCM_CREDENTIALS) pid = control.readInt32LE(data);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = data; p + 4 <= offset + cmsgLen; p += 4) closeFd(control.readInt32LE(p));
    }
    offset += align(cmsgLen);
  }
  return pid;
}

/**
 * Binds a listener. With `abstract: true` the socket lives in the abstract namespace under a unique name;
 * otherwise at `notify.sock` in `dir`, or by default in a private dir under os.tmpdir() removed by close()
 * (t.testdir() paths are usually longer than the 108 bytes a socket path may have).
 */
export function createNotifyListener(options: { dir?: string; abstract?: boolean } = {}): NotifyListener {
  let ownDir: string | null = null;
  let address: string;
  if (options.abstract === true) {
    address = `@serial-gateway-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  } else {
    const dir = options.dir ?? (ownDir = mkdtempSync(join(tmpdir(), 'sgw-notify-')));
    address = join(dir, 'notify.sock');
  }
  const { addr, length } = sockaddrUn(address);
  const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket failed: errno ${koffi.errno()}`);
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4) !== 0 || bind(fd, addr, length) !== 0) {
    const errno = koffi.errno();
    closeFd(fd);
    throw new Error(`cannot listen at ${address}: errno ${errno}`);
  }

  const messages: NotifyFields[] = [];
  const senders: (number | null)[] = [];
  const waiters = new Set<() => void>();
  const data = Buffer.alloc(65536);
  const control = Buffer.alloc(512);
  let closed = false;

  const drain = (): void => {
    for (;;) {
      const hdr: MsgHdr = {
        msg_name: null,
        msg_namelen: 0,
        msg_iov: [{ iov_base: data, iov_len: data.length }],
        msg_iovlen: 1,
        msg_control: control,
        msg_controllen: control.length,
        msg_flags: 0,
      };
      const n = Number(recvmsg(fd, hdr, 0));
      if (n < 0) return; // EAGAIN: nothing more queued
      senders.push(readControl(control, Number(hdr.msg_controllen)));
      messages.push(parse(data.subarray(0, n).toString('utf8')));
      for (const wake of waiters) wake();
    }
  };
  const timer = setInterval(drain, POLL_MS);
  timer.unref();

  return {
    address,
    messages,
    senders,
    waitFor(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = (): boolean => {
          for (; seen < messages.length; seen++) {
            const msg = messages[seen] as NotifyFields;
            if (match(msg)) {
              waiters.delete(wake);
              clearTimeout(deadline);
              resolve(msg);
              return true;
            }
          }
          return false;
        };
        const wake = (): void => {
          check();
        };
        const deadline = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`no matching notify message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        waiters.add(wake);
        drain();
        check();
      });
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      drain();
      closeFd(fd);
      if (ownDir !== null) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}
