import { createServer, type Server, type Socket } from 'node:net';
import type { Bridge } from '../bridge.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { TcpListenerConfig } from '../config/types.js';
import { tcpClient } from '../events.js';
import { AllowList } from './allow.js';
import { noticeLine, notices } from '../session/notices.js';
import { ClientSession } from '../session/client-session.js';
import type { ClientTransport } from '../session/transport.js';
import { TcpLineReader } from './tcp-reader.js';
import { TcpLineWriter } from './tcp-writer.js';
import { TelnetDecoder } from './telnet.js';
import { peerLabel } from './peer.js';
import { overLimit } from '../session/limits.js';

export interface TcpListenerContext {
  bridge: Bridge;
  clock: Clock;
  log: Log;
  maxLineBytes: () => number;
  device(): { device: string; settings: string };
  /** A connection was refused (allow list, maxClients): the clients LED blinks. */
  refused(): void;
  /** The number of clients changed. */
  changed(): void;
  /** The instructor barred this address for a while (kick --ban): refused like a full listener. */
  barred?(address: string): boolean;
}

/** How long a client refused as busy may take to read its refusal line before its connection is dropped. */
const BUSY_LINGER_MS = 2000;

/**
 * One configured TCP port. Access is decided before any byte is read: an address outside `allow` is closed at
 * once; past `maxClients` or `maxClientsPerAddress` a client gets one refusal line and is closed.
 */
export class TcpListener {
  private server: Server | null = null;
  private serverClosed: Promise<void> = Promise.resolve();
  readonly sessions = new Set<ClientSession>();
  private readonly allow: AllowList;
  readonly stats = { accepted: 0, refused: 0 };

  constructor(
    private cfg: TcpListenerConfig,
    private readonly ctx: TcpListenerContext,
  ) {
    this.allow = new AllowList(cfg.allow);
  }

  get config(): TcpListenerConfig {
    return this.cfg;
  }

  /**
   * A reload changed keys that do not need a rebind (banner, limits, timings): clients that connect from now on
   * get them; connected ones keep the config they were accepted with.
   */
  reconfigure(cfg: TcpListenerConfig): void {
    this.cfg = cfg;
  }

  get name(): string {
    return this.config.name;
  }

  listen(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.host, port: this.config.port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.ctx.log.error(`${this.name}: ${err.message}`));
        resolve();
      });
    });
  }

  /** The port actually bound (tests listen on port 0). */
  get port(): number {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? addr.port : this.config.port;
  }

  /** New connections are refused from now on; connected clients stay (shutdown drains before closing them). */
  stopAccepting(): void {
    const server = this.server;
    this.server = null;
    if (server) this.serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops accepting; `notice` goes to each client, which gets a moment to take its last bytes. */
  async close(notice?: string): Promise<void> {
    this.stopAccepting();
    const closed = this.serverClosed;
    for (const s of [...this.sessions]) {
      if (notice) s.notice(notice);
      s.close('listener closed');
    }
    if (this.sessions.size > 0) await new Promise<void>((resolve) => this.ctx.clock.setTimeout(resolve, 200));
    for (const s of [...this.sessions]) s.destroy('listener closed');
    await closed;
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    const cfg = this.config;
    if (!this.allow.allows(address)) {
      this.stats.refused++;
      this.ctx.log.warn(`${cfg.name}: refused ${address}: not in the allow list`);
      if (this.ctx.bridge.recording) this.ctx.bridge.events.refused(tcpClient(cfg.name, socket), 'not in the allow list');
      socket.destroy();
      this.ctx.refused();
      return;
    }
    let why = '';
    if (this.ctx.barred?.(address)) why = 'barred';
    else why = overLimit(cfg, this.slotsTaken(), () => this.countFrom(address), address);
    if (why) {
      this.stats.refused++;
      this.ctx.log.info(`${cfg.name}: refused ${address}: ${why}`);
      if (this.ctx.bridge.recording) this.ctx.bridge.events.refused(tcpClient(cfg.name, socket), why);
      socket.on('error', () => {});
      const text = why === 'barred' ? notices.banned(address) : notices.busy(why);
      if (cfg.notices && cfg.framing !== 'raw') socket.end(noticeLine(text));
      else socket.end();
      // Read and discard what the client sent: a socket never read never sees the client's FIN, so it stayed
      // open for good (an fd per refusal, and server.close() and SIGTERM waited forever). A client that keeps
      // the connection open anyway is cut off after BUSY_LINGER_MS.
      socket.resume();
      const linger = this.ctx.clock.setTimeout(() => socket.destroy(), BUSY_LINGER_MS);
      socket.once('close', linger);
      this.ctx.refused();
      return;
    }
    this.stats.accepted++;
    const session = new ClientSession(tcpTransport(socket, cfg, this.ctx.maxLineBytes()), {
      bridge: this.ctx.bridge,
      policy: cfg,
      clock: this.ctx.clock,
      log: this.ctx.log,
      maxLineBytes: this.ctx.maxLineBytes(),
      device: () => this.ctx.device(),
      clientCount: () => this.sessions.size,
      closed: (s) => {
        this.sessions.delete(s);
        this.ctx.bridge.events.disconnected(s.who, { in: s.stats.linesIn, out: s.stats.linesOut, lost: s.stats.lost });
        this.ctx.changed();
      },
    });
    this.sessions.add(session);
    this.ctx.bridge.events.connected(session.who);
    session.start();
    this.ctx.log.debug(`${cfg.name}: ${session.peer} connected (${this.sessions.size} now)`);
    this.ctx.changed();
  }

  /**
   * Sessions that count against maxClients. One whose client has sent its EOF is only waiting for an answer
   * (a request's reply, or a shared listener's linger) and must not keep a classmate, or the same laptop
   * reconnecting, out.
   */
  private slotsTaken(): number {
    let n = 0;
    for (const s of this.sessions) if (!s.leaving) n++;
    return n;
  }

  private countFrom(address: string): number {
    let n = 0;
    for (const s of this.sessions) if (!s.leaving && s.transport.address === address) n++;
    return n;
  }
}

/** A TCP client's transport: one telnet decoder shared by its reader (decoding) and writer (IAC escaping). */
export function tcpTransport(socket: Socket, cfg: TcpListenerConfig, maxLineBytes: number): ClientTransport {
  const telnet = cfg.framing === 'raw' ? null : new TelnetDecoder({ mode: cfg.telnet });
  const address = socket.remoteAddress ?? '';
  return {
    label: { via: 'tcp', listener: cfg.name, peer: peerLabel(address, socket.remotePort ?? 0) },
    address,
    port: socket.remotePort ?? 0,
    reader: new TcpLineReader(socket, cfg, telnet, maxLineBytes),
    writer: new TcpLineWriter(socket, { ...cfg, visibleOnly: cfg.mode === 'monitor' && cfg.controlBytes !== 'raw' }, telnet),
  };
}
