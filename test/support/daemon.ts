import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createNotifyListener, type NotifyListener } from './notify-listener.js';

/** The built entry point, as systemd and `npm run demo` run it. */
export const MAIN = join(__dirname, '..', '..', 'src', 'main.js');

/** A free TCP port on 127.0.0.1 (bound and released; good enough on a test machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningDaemon {
  child: ChildProcess;
  notify: NotifyListener;
  output: () => string;
  /**
   * The output once it holds `what`: the log arrives through a pipe, and READY=1 (a datagram) can overtake the
   * lines logged before it.
   */
  outputWith(what: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Writes `yaml` to dir/config.yaml, starts the daemon on it and waits for READY=1 (never sleeps). */
export async function startDaemon(
  dir: string,
  yaml: string,
  env: Record<string, string> = {},
  opts: {
    wrap?: string[];
    beforeSpawn?: (notifyAddress: string) => void;
    /** The entry point to run instead of this checkout's (e.g. a copy another user can read). */
    main?: string;
    /**
     * Start through `env -i`, so the daemon gets exactly PATH, NOTIFY_SOCKET and `env`: tap adds its own
     * NODE_OPTIONS to every child it sees spawned, naming a module other users may not be able to read.
     */
    isolateEnv?: boolean;
  } = {},
): Promise<RunningDaemon> {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  const notify = createNotifyListener();
  opts.beforeSpawn?.(notify.address);
  let out = '';
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: notify.address, ...env };
  const isolate = opts.isolateEnv ? ['env', '-i', ...Object.entries(childEnv).map(([k, v]) => `${k}=${v}`)] : [];
  const wrap = [...isolate, ...(opts.wrap ?? [])];
  const [command, ...prefix] = wrap.length > 0 ? wrap : [process.execPath];
  const child = spawn(command!, [...prefix, ...(wrap.length > 0 ? [process.execPath] : []), opts.main ?? MAIN, '--config', file], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const ready = notify.waitFor((m) => m.READY === '1', 15_000);
  const failed = exited.then((code) => {
    throw new Error(`daemon exited (${code}) before READY=1:\n${out}`);
  });
  await Promise.race([ready, failed]);
  failed.catch(() => {});
  return {
    child,
    notify,
    output: () => out,
    async outputWith(what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      const has = (): boolean => (typeof what === 'string' ? out.includes(what) : what.test(out));
      while (!has() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return out;
    },
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      notify.close();
      return code;
    },
  };
}

/** A line-oriented TCP client for tests: collects everything, waits for text. */
export class TestClient {
  readonly socket: Socket;
  /**
   * What arrived, in a buffer that doubles when full: a client that reads 9 MB in thousands of chunks must not
   * copy all it has at each one (it then fell behind the gateway and lost lines in a flood test, under load).
   */
  private store = Buffer.alloc(0);
  private size = 0;
  /** `from`: the bytes before it were there at the last look, so a text search starts near it. */
  private waiters: { match: (s: Buffer, from: number) => boolean; resolve: () => void }[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      const from = this.size;
      if (from + d.length > this.store.length) {
        const bigger = Buffer.allocUnsafe(Math.max(2 * this.store.length, from + d.length, 4096));
        this.store.copy(bigger, 0, 0, from);
        this.store = bigger;
      }
      d.copy(this.store, from);
      this.size += d.length;
      this.waiters = this.waiters.filter((w) => (w.match(this.buf, from) ? (w.resolve(), false) : true));
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w.resolve();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new TestClient(s)));
      s.once('error', reject);
    });
  }

  /** Everything received so far (a view: later bytes go after it, never into it). */
  private get buf(): Buffer {
    return this.store.subarray(0, this.size);
  }

  get received(): Buffer {
    return this.buf;
  }

  get text(): string {
    return this.buf.toString('latin1');
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received bytes contain `what` (or the connection closes); rejects after timeoutMs. */
  async waitFor(what: string | ((s: Buffer) => boolean), timeoutMs = 5000): Promise<string> {
    const match =
      typeof what === 'string'
        ? (b: Buffer, from = 0) => b.includes(what, Math.max(0, from - Buffer.byteLength(what, 'latin1') + 1), 'latin1')
        : (b: Buffer) => what(b);
    if (!match(this.buf)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${String(what)}; got ${JSON.stringify(this.text.slice(-300))}`)), timeoutMs);
        this.waiters.push({
          match: (b, from) => match(b, from) || this.closed,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    if (!match(this.buf)) throw new Error(`connection closed before ${String(what)}; got ${JSON.stringify(this.text.slice(-300))}`);
    return this.text;
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.closed, timeoutMs).then(() => undefined);
  }

  close(): void {
    this.socket.destroy();
  }
}
