/**
 * The local control socket: a unix stream socket (never on the network) where `serial-gateway reset|pause|...`
 * sends one JSON request line and reads one JSON reply line. Created mode 0660 with the daemon's group
 * (the unit's RuntimeDirectory= holds it); each connection's peer credentials are checked (peer.ts). A socket
 * file left by a crash is replaced at start; the file is removed at stop.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Log } from '../core/log.js';
import type { ActionReply } from './instructor.js';
import { mayControl, peerCredentials, userName } from './peer.js';

/** A request longer than this is not a request. */
const MAX_REQUEST_BYTES = 16 * 1024;
/** A client that connects and says nothing is dropped after this. */
const REQUEST_TIMEOUT_MS = 10_000;

export type ControlHandler = (request: unknown, who: string) => Promise<ActionReply>;

export class ControlSocket {
  private server: Server | null = null;

  constructor(
    readonly path: string,
    private readonly handle: ControlHandler,
    private readonly log: Log,
  ) {}

  /** Listens; false (with a warning) when the socket cannot be made: the daemon runs on without it. */
  async listen(): Promise<boolean> {
    const path = this.path;
    // Outside systemd, /run/serial-gateway (the unit's RuntimeDirectory=) usually does not exist: normal, not a fault.
    if (!existsSync(dirname(path))) {
      this.log.info(`control socket ${path}: its directory does not exist; running without a control socket (the dashboard's actions still work)`);
      return false;
    }
    const stale = await staleSocket(path);
    if (stale === 'live') {
      this.log.warn(`control socket ${path}: another gateway answers there; running without a control socket`);
      return false;
    }
    if (stale === 'not-a-socket') {
      this.log.warn(`control socket ${path}: the path exists and is not a socket; running without a control socket`);
      return false;
    }
    if (stale === 'stale') {
      try {
        unlinkSync(path);
        this.log.info(`control socket ${path}: removed a stale socket (left by a crash)`);
      } catch (err) {
        this.log.warn(`control socket ${path}: cannot remove the stale socket: ${(err as Error).message}`);
        return false;
      }
    }
    const server = createServer((s) => this.accept(s));
    // 0660 from the first instant: no window in which the socket is open to others.
    const umask = process.umask(0o117);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.log.warn(`control socket ${path}: ${(err as Error).message}; running without a control socket (the dashboard's actions still work)`);
      return false;
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o660);
    server.on('error', (err) => this.log.error(`control socket: ${err.message}`));
    this.server = server;
    return true;
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      // The file goes with the daemon; node removes it on close, but not if the path was replaced since.
      try {
        if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
      } catch {
        // already gone
      }
    });
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {});
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    const reply = (r: ActionReply): void => void socket.end(`${JSON.stringify(r)}\n`);
    const peer = peerCredentials(socket);
    if (peer instanceof Error) {
      this.log.warn(`control socket: refused a connection: ${peer.message}`);
      return reply({ ok: false, text: `refused: ${peer.message}` });
    }
    const who = `local user ${userName(peer.uid)} (uid ${peer.uid})`;
    const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    if (!mayControl(peer, self)) {
      this.log.warn(`control socket: refused ${who}: not root, not ${userName(self.uid)}, not in the daemon's group (gid ${self.gid})`);
      return reply({ ok: false, text: `refused: ${who} may not control this gateway (only root, ${userName(self.uid)} and members of its group, gid ${self.gid})` });
    }
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        socket.removeAllListeners('data');
        return reply({ ok: false, text: `request too long (over ${MAX_REQUEST_BYTES} bytes)` });
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      socket.removeAllListeners('data');
      let request: unknown;
      try {
        request = JSON.parse(buf.slice(0, nl));
      } catch {
        return reply({ ok: false, text: 'a request is one line of JSON' });
      }
      void this.handle(request, who).then(reply, (err: Error) => reply({ ok: false, text: `internal error: ${err.message}` }));
    });
  }
}

/** 'none' (free), 'stale' (a socket nobody answers on), 'live', or 'not-a-socket'. */
function staleSocket(path: string): Promise<'none' | 'stale' | 'live' | 'not-a-socket'> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return Promise.resolve('none');
  }
  if (!isSocket) return Promise.resolve('not-a-socket');
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve('live');
    });
    c.once('error', () => resolve('stale'));
  });
}

/** Sends one request to the daemon's control socket and resolves with its reply. */
export function askDaemon(path: string, request: object, timeoutMs = 15_000): Promise<ActionReply> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(Object.assign(new Error(`no answer from ${path} within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify(request)}\n`));
    c.on('data', (d: string) => (buf += d));
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    c.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ActionReply);
      } catch {
        reject(new Error(`the daemon's answer is not JSON: ${JSON.stringify(buf.slice(0, 200))}`));
      }
    });
  });
}
