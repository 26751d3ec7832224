/**
 * sd_notify(3) for the daemon: readiness, STATUS=, watchdog pings, reload and stop announcements.
 *
 * Node has no AF_UNIX datagram socket, and the Pi has no compiler for a native module, so the datagram is
 * sent through libc with koffi (an FFI library that ships prebuilt binaries for linux arm, arm64 and x64).
 * The datagram then leaves from the daemon's own PID, which is what `NotifyAccess=main` in the unit accepts,
 * and nothing forks per message.
 *
 * If koffi cannot be loaded, every message is handed to the `systemd-notify` CLI instead. That child has
 * its own PID, so systemd drops its messages unless the unit says `NotifyAccess=all` (a warning says so
 * once). When NOTIFY_SOCKET is unset (not started by systemd, or in tests) everything is a no-op.
 *
 * Contract: nothing here throws once the notifier exists. A failed send is reported through `log`, once
 * per kind of failure, because a watchdog ping every few seconds must not flood the journal.
 */
import { execFile } from 'node:child_process';
import { endianness } from 'node:os';

export type NotifyLog = (message: string) => void;

/** How messages leave: `none` when NOTIFY_SOCKET is unset or unusable. */
export type NotifyTransport = 'none' | 'socket' | 'systemd-notify';

export interface Notifier {
  readonly transport: NotifyTransport;
  /** Sends the fields as one datagram of newline-separated KEY=VALUE. Newlines in values become spaces. */
  notify(fields: Readonly<Record<string, string>>): void;
  /** READY=1: startup finished, and also the end of a reload that began with reloading(). */
  ready(): void;
  /** RELOADING=1 with MONOTONIC_USEC; follow it with ready() once the new config is in force. */
  reloading(): void;
  /** STOPPING=1: shutdown has begun. */
  stopping(): void;
  /** STATUS=text, shown by `systemctl status`. */
  status(text: string): void;
  /** WATCHDOG=1: call every watchdogIntervalMs() while the event loop is healthy. */
  watchdog(): void;
  /** Releases the socket; later calls are no-ops. */
  close(): void;
}

// Linux values, identical on x86, x86-64, arm and arm64 (they differ only on MIPS, SPARC and Alpha).
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): a 2-byte family then a 108-byte path. */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_OFFSET = 2;
const SUN_PATH_MAX = 108;

const KEY_PATTERN = /^[A-Z_][A-Z0-9_]*$/;

const defaultLog: NotifyLog = (message) => {
  process.stderr.write(`serial-gateway: ${message}\n`);
};

/**
 * CLOCK_MONOTONIC in microseconds, as systemd expects in MONOTONIC_USEC. process.hrtime is libuv's
 * uv_hrtime, which on Linux reads clock_gettime(CLOCK_MONOTONIC) (libuv src/unix/linux.c, uv__hrtime with
 * UV_CLOCK_PRECISE); test/status/notify.test.ts checks it against libc's clock_gettime.
 */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/**
 * Half of WATCHDOG_USEC in milliseconds (the interval sd_watchdog_enabled(3) recommends), or null when
 * there is no watchdog for this process: unset, not a positive integer, or WATCHDOG_PID naming another PID.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]+$/.test(usec)) return null;
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) return null;
  const ms = Number(usec) / 2000;
  if (!Number.isFinite(ms) || ms <= 0) return null;
  return Math.max(1, Math.floor(ms));
}

/** The datagram body; keys that are not KEY-shaped are returned in `rejected` rather than sent. */
export function formatNotifyMessage(fields: Readonly<Record<string, string>>): { text: string; rejected: string[] } {
  const lines: string[] = [];
  const rejected: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (!KEY_PATTERN.test(key)) {
      rejected.push(key);
      continue;
    }
    // A newline inside a value would start a new assignment (STATUS=x\nREADY=1): flatten it.
    lines.push(`${key}=${String(value).replace(/[\r\n]+/g, ' ')}`);
  }
  return { text: lines.join('\n'), rejected };
}

/**
 * NOTIFY_SOCKET as a struct sockaddr_un and its length, as sd_notify builds it: a path, or an abstract
 * name when it starts with '@' (the '@' becomes a NUL and the length covers the name only).
 */
export function sockaddrUn(notifySocket: string): { addr: Buffer; length: number } {
  const abstract = notifySocket.startsWith('@');
  if (!abstract && !notifySocket.startsWith('/')) {
    throw new TypeError(`NOTIFY_SOCKET=${notifySocket}: expected an absolute path or an @abstract name`);
  }
  const name = Buffer.from(notifySocket, 'utf8');
  if (abstract) name[0] = 0;
  // A path needs room for its terminating NUL; an abstract name does not.
  if (name.length > (abstract ? SUN_PATH_MAX : SUN_PATH_MAX - 1)) {
    throw new TypeError(`NOTIFY_SOCKET=${notifySocket}: longer than the ${SUN_PATH_MAX} bytes of sun_path`);
  }
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  // sa_family_t is in host byte order.
  if (endianness() === 'LE') addr.writeUInt16LE(AF_UNIX, 0);
  else addr.writeUInt16BE(AF_UNIX, 0);
  name.copy(addr, SUN_PATH_OFFSET);
  return { addr, length: SUN_PATH_OFFSET + name.length + (abstract ? 0 : 1) };
}

// koffi's types are declared as ESM; at run time require() gets its CommonJS build with the same API.
type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'require' } });

interface Sender {
  send(text: string): void;
  close(): void;
}

/** Reports a failure; each `kind` at most once. */
type Report = (kind: string, message: string) => void;

function loadKoffi(): Koffi {
  // Required lazily so that a Pi without koffi still starts and falls back to systemd-notify.
  return require('koffi') as Koffi;
}

function createSocketSender(koffi: Koffi, notifySocket: string, report: Report): Sender {
  const { addr, length } = sockaddrUn(notifySocket);
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int domain, int type, int protocol)') as (
    domain: number,
    type: number,
    protocol: number,
  ) => number;
  const sendto = libc.func(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
  ) as (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number | bigint;
  const closeFd = libc.func('int close(int fd)') as (fd: number) => number;
  const errnoNames = new Map<number, string>(Object.entries(koffi.os.errno).map(([name, code]) => [code, name]));
  const errnoText = (): string => {
    const code = koffi.errno();
    return errnoNames.get(code) ?? `errno ${code}`;
  };

  let fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed: ${errnoText()}`);
  return {
    send(text) {
      if (fd < 0) return;
      const body = Buffer.from(text, 'utf8');
      // MSG_DONTWAIT: if PID 1 stops draining its queue, drop the message rather than freeze the event
      // loop (a frozen loop would also stop the watchdog pings that tell systemd we are stuck).
      const sent = Number(sendto(fd, body, body.length, MSG_DONTWAIT | MSG_NOSIGNAL, addr, length));
      if (sent < 0) {
        const name = errnoText();
        report(name, `could not notify systemd at ${notifySocket}: ${name}`);
      }
    },
    close() {
      if (fd >= 0) closeFd(fd);
      fd = -1;
    },
  };
}

function createExecSender(env: NodeJS.ProcessEnv, notifySocket: string, report: Report): Sender {
  let closed = false;
  // One child at a time, so READY=1 cannot overtake the STATUS= sent before it.
  let queue: Promise<void> = Promise.resolve();
  return {
    send(text) {
      if (closed) return;
      const args = text.split('\n');
      queue = queue.then(
        () =>
          new Promise<void>((resolve) => {
            const options = { env: { ...env, NOTIFY_SOCKET: notifySocket } };
            execFile('systemd-notify', args, options, (error, _out, stderr) => {
              if (error) {
                const code = (error as NodeJS.ErrnoException).code;
                const why = String(stderr).trim() || error.message;
                report(`exec:${String(code)}`, `systemd-notify ${args.join(' ')} failed: ${why}`);
              }
              resolve();
            });
          }),
      );
    },
    close() {
      closed = true;
    },
  };
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env, log: NotifyLog = defaultLog): Notifier {
  const notifySocket = env.NOTIFY_SOCKET;
  const reported = new Set<string>();
  const report: Report = (kind, message) => {
    if (reported.has(kind)) return;
    reported.add(kind);
    try {
      log(message);
    } catch {
      // A broken logger must not turn a notification into a crash.
    }
  };

  let sender: Sender | null = null;
  let transport: NotifyTransport = 'none';
  if (notifySocket !== undefined && notifySocket !== '') {
    let addressError: string | null = null;
    try {
      sockaddrUn(notifySocket);
    } catch (error) {
      addressError = error instanceof Error ? error.message : String(error);
    }
    if (addressError !== null) {
      report('address', addressError);
    } else {
      let why = '';
      try {
        sender = createSocketSender(loadKoffi(), notifySocket, report);
        transport = 'socket';
      } catch (error) {
        why = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      }
      if (sender === null) {
        report(
          'fallback',
          `koffi is unavailable (${why}); notifying systemd through the systemd-notify command, ` +
            'whose messages systemd accepts only with NotifyAccess=all in the unit',
        );
        sender = createExecSender(env, notifySocket, report);
        transport = 'systemd-notify';
      }
    }
  }

  const notify = (fields: Readonly<Record<string, string>>): void => {
    if (sender === null) return;
    try {
      const { text, rejected } = formatNotifyMessage(fields);
      for (const key of rejected) report(`key:${key}`, `not sent to systemd: "${key}" is not a valid KEY`);
      if (text !== '') sender.send(text);
    } catch (error) {
      report('send', `could not notify systemd: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  return {
    get transport() {
      return transport;
    },
    notify,
    ready: () => notify({ READY: '1' }),
    reloading: () => notify({ RELOADING: '1', MONOTONIC_USEC: monotonicUsec().toString() }),
    stopping: () => notify({ STOPPING: '1' }),
    status: (text) => notify({ STATUS: text }),
    watchdog: () => notify({ WATCHDOG: '1' }),
    close() {
      if (sender === null) return;
      try {
        sender.close();
      } catch {
        // Closing is best effort at shutdown.
      }
      sender = null;
      transport = 'none';
    },
  };
}
