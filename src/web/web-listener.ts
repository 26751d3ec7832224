import { createHash, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Bridge } from '../bridge.js';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { WebListenerConfig } from '../config/types.js';
import { AllowList } from '../net/allow.js';
import { peerLabel } from '../net/peer.js';
import { ClientSession, type SessionPolicy } from '../session/client-session.js';
import { notices } from '../session/notices.js';
import type { CloseWhy } from '../session/transport.js';
import { dayFiles, parseDownloadName, streamDay } from '../transcript/download.js';
import { CloseCode, PING_INTERVAL_MS, ROUTES, SUBPROTOCOL, type ServerMessage, type WebDevice, type WebDeviceState } from './protocol.js';
import { wsTransport, type WsLineWriter } from './ws-transport.js';
import { overLimit } from '../session/limits.js';

/** A request or upgrade turned away: the status, a sentence for the body, and a header to send with it. */
interface Refusal {
  code: 401 | 403 | 404;
  text: string;
  header?: [string, string];
  /** Worth a line in the log (the refusals a student's retrying tab makes are not). */
  log?: boolean;
}

const REASONS: Record<Refusal['code'], string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' };

/** Why an unguarded dashboard refuses `what`. */
const UNGUARDED = (listener: string, what: string): string =>
  `${what} need${what.endsWith('s') ? '' : 's'} monitorPassword or monitorAllow on web listener ${listener}: without either, every student who can open the page could use it`;

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The pages, read once at start from the package's `web/` directory and served from memory (the Pi's SD card
 * is not read per request, and an upgrade in place cannot serve half-old, half-new files). A missing directory
 * is logged; the routes then answer 404.
 */
export function loadAssets(dir: string, log: Log): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    log.warn(`web pages not found (${(err as Error).message}): web listeners will answer 404`);
    return assets;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const dot = name.lastIndexOf('.');
    const type = TYPES[dot >= 0 ? name.slice(dot) : ''] ?? 'application/octet-stream';
    const body = readFileSync(path);
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return assets;
}

export interface WebListenerContext {
  bridge: Bridge;
  clock: Clock;
  log: Log;
  assets: ReadonlyMap<string, Asset>;
  maxLineBytes: () => number;
  device(): { device: string; settings: string };
  /** Identifies this daemon process, for resume (protocol.ts). */
  boot: string;
  /** GET /api/status. */
  status(): object;
  /** GET /metrics. */
  metrics(): string;
  /** The transcript's directory while it is enabled (the downloads read it), else null. */
  transcriptDir?(): string | null;
  refused(): void;
  changed(): void;
  /** This machine's own names (its hostname, NAME.local): the pages answer to them besides hostNames. */
  machineNames?: readonly string[];
  /** The instructor barred this address for a while (kick --ban). */
  barred?(address: string): boolean;
  /** A dashboard (monitor socket) asked for an instructor action: `reply` answers that one socket. */
  action?(request: unknown, from: ClientSession, reply: (message: ServerMessage) => void): void;
}

/**
 * The largest frame a socket takes: a line too long by a little is refused with a notice (like a TCP client's);
 * a frame past this closes the socket with 1009 before it is buffered whole.
 */
function maxPayloadFor(maxLineBytes: number): number {
  return maxLineBytes + 64;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

/** How long a client may take to send its request headers, and its whole request (slowloris). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

export function webDevice(state: string, detail: string, device: { device: string; settings: string }): WebDevice {
  const map: Record<string, WebDeviceState> = { OPEN: 'open', OPENING: 'away', WAITING: 'away', FAILED: 'failed', STOPPED: 'stopped' };
  return { state: map[state] ?? 'away', path: device.device, settings: device.settings, detail };
}

interface WebClient {
  session: ClientSession;
  writer: WsLineWriter;
  monitor: boolean;
  alive: boolean;
}

/**
 * One `web:` listener: node:http serves the pages and the status routes; `ws` (noServer) takes the upgrades of
 * /ws (a student tab, in the listener's mode) and /ws/monitor (read-only). Each socket is a ClientSession over
 * a WebSocket transport: the same cursor, batches, backlog bound and notices as a TCP client.
 */
export class WebListener {
  private server: Server | null = null;
  private serverClosed: Promise<void> = Promise.resolve();
  private readonly wss: WebSocketServer;
  readonly clients = new Set<WebClient>();
  private readonly allow: AllowList;
  private readonly monitorAllow: AllowList;
  private policy: SessionPolicy;
  private monitorPolicy: SessionPolicy;
  private pingTimer: Disposer | null = null;
  /** Transcript downloads in progress: a stop must not wait for a slow one. */
  private readonly downloads = new Set<ServerResponse>();
  readonly stats = { accepted: 0, refused: 0 };

  constructor(
    private cfg: WebListenerConfig,
    private readonly ctx: WebListenerContext,
  ) {
    const config = cfg;
    this.allow = new AllowList(config.allow);
    this.monitorAllow = new AllowList(config.monitorAllow.length > 0 ? config.monitorAllow : config.allow);
    this.policy = { ...config, closeOn: '', closeAfterReply: false };
    this.monitorPolicy = { ...this.policy, mode: 'monitor', idleTimeoutMs: 0 };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxPayloadFor(ctx.maxLineBytes()),
      perMessageDeflate: false,
      handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  get name(): string {
    return this.config.name;
  }

  get config(): WebListenerConfig {
    return this.cfg;
  }

  /** A reload changed keys that need no rebind (title, banner, limits, timings): new tabs get them. */
  reconfigure(cfg: WebListenerConfig): void {
    this.cfg = cfg;
    this.policy = { ...cfg, closeOn: '', closeAfterReply: false };
    this.monitorPolicy = { ...this.policy, mode: 'monitor', idleTimeoutMs: 0 };
  }

  /**
   * The dashboard is guarded when the instructor said who may open it: a password, or a monitorAllow list of its
   * own. Only then does it take actions and hand out the transcript: left as `allow`, every student could.
   */
  private get guarded(): boolean {
    return this.config.monitorPassword !== '' || this.config.monitorAllow.length > 0;
  }

  get port(): number {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? addr.port : this.config.port;
  }

  /** Student tabs and monitors. */
  get clientCount(): number {
    return this.clients.size;
  }

  listen(): Promise<void> {
    if (this.config.monitor && !this.guarded) {
      // Worth a warning where students can reach it; on a loopback-only listener (the demo) a note is enough.
      const local = ['127.0.0.1', '::1', 'localhost'].includes(this.config.host);
      this.ctx.log[local ? 'info' : 'warn'](
        `${this.name}: /monitor shows every line and is open to every address allowed on the page; its actions and ` +
          'transcript download stay off until monitorPassword or monitorAllow is set',
      );
    }
    const server = createServer((req, res) => this.onRequest(req, res));
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server = server;
    return new Promise((resolve, reject) => {
      // A failed bind (a reload onto a busy port) drops this object: nothing of it may keep running.
      const failed = (err: Error): void => {
        this.server = null;
        this.wss.close();
        reject(err);
      };
      server.once('error', failed);
      server.listen({ host: this.config.host, port: this.config.port, exclusive: true }, () => {
        server.off('error', failed);
        server.on('error', (err) => this.ctx.log.error(`${this.name}: ${err.message}`));
        this.pingTimer = this.ctx.clock.setInterval(() => this.ping(), PING_INTERVAL_MS);
        resolve();
      });
    });
  }

  stopAccepting(): void {
    const server = this.server;
    this.server = null;
    if (server) {
      this.serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
    }
  }

  /** Stops accepting; each tab gets `notice` and a close code saying whether to come back. */
  async close(notice?: string, why: CloseWhy = 'stopping'): Promise<void> {
    this.stopAccepting();
    this.pingTimer?.();
    this.pingTimer = null;
    for (const c of [...this.clients]) {
      if (notice) c.session.notice(notice);
      c.session.close('listener closed', why);
    }
    if (this.clients.size > 0) await new Promise<void>((resolve) => this.ctx.clock.setTimeout(resolve, 200));
    for (const c of [...this.clients]) c.session.destroy('listener closed');
    for (const res of this.downloads) res.destroy();
    this.wss.close();
    await this.serverClosed;
  }

  /** To every monitor socket (the dashboard's feed). */
  toMonitors(message: ServerMessage): void {
    for (const c of this.clients) if (c.monitor && c.session.isOpen) c.writer.send(message);
  }

  /** To every student socket. */
  toStudents(message: ServerMessage): void {
    for (const c of this.clients) if (!c.monitor && c.session.isOpen) c.writer.send(message);
  }

  // ---------------------------------------------------------------- HTTP

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.answer(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    // The dashboard's own files (its script, the stylesheet) are assets too: an instructor's laptop that is only
    // in monitorAllow must be able to load them.
    const sharedFile = path.startsWith(ROUTES.assets) || path === '/favicon.ico';
    const kind = this.isMonitorRoute(path) ? 'monitor' : sharedFile ? 'asset' : 'page';
    const no = this.refusal(req, kind, path === ROUTES.monitor || path.startsWith(ROUTES.transcript));
    if (no) return this.answer(res, no.code, `${no.text}\n`, no.header ? { [no.header[0]]: no.header[1] } : {});
    if (path === ROUTES.console) return this.asset(req, res, 'console.html');
    if (path.startsWith(ROUTES.assets)) {
      const name = path.slice(ROUTES.assets.length);
      if (name.includes('/') || name.endsWith('.html')) return this.answer(res, 404, 'not found\n');
      return this.asset(req, res, name);
    }
    if (path === '/favicon.ico') return this.asset(req, res, 'favicon.svg');
    if (this.isMonitorRoute(path)) {
      if (path === ROUTES.monitor) return this.asset(req, res, 'monitor.html');
      if (path.startsWith(ROUTES.transcript)) {
        // Never an unhandled rejection from a request: the daemon must outlive any one download.
        return void this.download(req, res, path.slice(ROUTES.transcript.length)).catch((err: Error) => {
          this.ctx.log.warn(`${this.name}: transcript download failed: ${err.message}`);
          res.destroy();
        });
      }
      if (path === ROUTES.status) return this.answer(res, 200, `${JSON.stringify(this.ctx.status())}\n`, { 'Content-Type': 'application/json' });
      return this.answer(res, 200, this.ctx.metrics(), { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    }
    this.answer(res, 404, 'not found\n');
  }

  /**
   * DNS rebinding: a page from another site whose name is made to resolve to the Pi is, to the browser, the same
   * origin as this one, Origin check and all; only the name it asks for (Host) gives it away. So the pages answer
   * to IP addresses, localhost, this machine's names and the configured hostNames, and to nothing else. Returns
   * the refused name, or null when the Host is fine (or absent: only a non-browser client omits it).
   */
  private unknownHost(host: string | undefined): string | null {
    if (host === undefined || host === '') return null;
    const name = hostName(host);
    if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost')) return null;
    const known = [...(this.ctx.machineNames ?? []), ...this.config.hostNames];
    return known.some((k) => k.toLowerCase().replace(/\.$/, '') === name) ? null : name;
  }

  private unknownHostWhy(name: string): string {
    const known = [...(this.ctx.machineNames ?? []), ...this.config.hostNames];
    return (
      `this gateway does not answer to the name "${name.slice(0, 100)}" (a guard against DNS rebinding); open it by its ` +
      `IP address${known.length ? ` or as ${known.join(', ')}` : ''}, or add the name to hostNames of web listener ${this.name}`
    );
  }

  private isMonitorRoute(path: string): boolean {
    return path === ROUTES.monitor || path === ROUTES.status || path === ROUTES.metrics || path.startsWith(ROUTES.transcript);
  }

  /**
   * Who may have what, one set of checks for page requests and WebSocket upgrades alike. The Host must name this
   * gateway; the dashboard's routes (`monitor`) need an address in monitorAllow and the password, and those
   * `hidden` by `monitor: false` are 404; the pages need an address in allow; the files both use (`asset`)
   * either. Returns null to go ahead.
   */
  private refusal(req: IncomingMessage, kind: 'page' | 'asset' | 'monitor', hidden: boolean): Refusal | null {
    const name = this.unknownHost(req.headers.host);
    if (name !== null) return { code: 403, text: `forbidden: ${this.unknownHostWhy(name)}`, log: true };
    if (kind === 'monitor' && hidden && !this.config.monitor) return { code: 404, text: 'not found (monitor: false on this listener)' };
    const address = req.socket.remoteAddress ?? '';
    const inAllow = this.allow.allows(address);
    const inMonitorAllow = this.monitorAllow.allows(address);
    const ok = kind === 'page' ? inAllow : kind === 'monitor' ? inMonitorAllow : inAllow || (this.config.monitor && inMonitorAllow);
    if (!ok) {
      this.stats.refused++;
      this.ctx.refused();
      return { code: 403, text: `forbidden: ${address} is not in this listener's ${kind === 'monitor' ? 'monitorAllow' : 'allow'} list` };
    }
    if (kind === 'monitor' && !this.passwordOk(req)) {
      return { code: 401, text: 'the monitor needs its password', header: ['WWW-Authenticate', `Basic realm="serial-gateway ${this.name}", charset="UTF-8"`] };
    }
    return null;
  }

  private passwordOk(req: IncomingMessage): boolean {
    const want = this.config.monitorPassword;
    if (want === '') return true;
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Basic ')) return false;
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const given = Buffer.from(decoded.slice(decoded.indexOf(':') + 1));
    const expected = Buffer.from(want);
    // Compared in constant time (hashing first makes the lengths equal).
    return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
  }

  /**
   * GET /transcript/2026-12-01.txt (or .jsonl): one day of the transcript, streamed from the files as they are
   * now. What every student typed is in it, so an unguarded dashboard (no password, monitorAllow left as allow)
   * does not serve it.
   */
  private async download(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const want = parseDownloadName(name);
    if (!want) return this.answer(res, 404, 'not found (a transcript download is /transcript/YYYY-MM-DD.txt or .jsonl)\n');
    if (!this.guarded) return this.answer(res, 403, `forbidden: ${UNGUARDED(this.name, 'the transcript download')}\n`);
    const dir = this.ctx.transcriptDir?.() ?? null;
    if (dir === null) return this.answer(res, 404, 'not found: the transcript is off (transcript.enabled: false)\n');
    const files = await dayFiles(dir, want.day).catch(() => []);
    if (files.length === 0) return this.answer(res, 404, `not found: no transcript for ${want.day}\n`);
    const file = `transcript-${name}`;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': want.format === 'chat' ? 'text/plain; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'Content-Disposition': `attachment; filename="${file}"`,
    });
    if (req.method === 'HEAD') return void res.end();
    this.downloads.add(res);
    const gone = new Promise<never>((_, reject) => res.once('close', () => reject(new Error('the receiver went away'))));
    gone.catch(() => {});
    try {
      await streamDay(dir, want.day, want.format, {
        write: (text) => res.write(text),
        drained: () => Promise.race([new Promise<void>((resolve) => res.once('drain', resolve)), gone]),
      });
      res.end();
    } catch (err) {
      if (!res.destroyed) {
        this.ctx.log.warn(`${this.name}: transcript download ${file} cut short: ${(err as Error).message}`);
        res.destroy();
      }
    } finally {
      this.downloads.delete(res);
    }
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const a = this.ctx.assets.get(name);
    if (!a) return this.answer(res, 404, 'not found\n');
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, { ...SECURITY_HEADERS, ETag: a.etag });
      res.end();
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': a.type, 'Content-Length': a.body.length, ETag: a.etag });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  private answer(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...headers });
    res.end(body);
  }

  // ---------------------------------------------------------------- WebSocket

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {});
    const refuse = (code: number, text: string, headers = ''): void => {
      socket.end(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n${headers}Content-Length: ${text.length + 1}\r\n\r\n${text}\n`);
    };
    if (!this.server) return refuse(503, 'Service Unavailable');
    const path = pathOf(req.url);
    const monitor = path === ROUTES.wsMonitor;
    if (path !== ROUTES.ws && !monitor) return refuse(404, 'Not Found');
    // A page on another site must not drive this console with the student's browser (cross-site WebSocket
    // hijacking): a browser always sends Origin, and it must name the host the page came from.
    const origin = req.headers.origin;
    if (origin !== undefined && !sameHost(origin, req.headers.host)) {
      this.ctx.log.info(`${this.name}: refused an upgrade from origin ${origin} (host ${req.headers.host ?? 'none'})`);
      return refuse(403, 'Forbidden');
    }
    const no = this.refusal(req, monitor ? 'monitor' : 'page', monitor);
    if (no) {
      if (no.log) this.ctx.log.info(`${this.name}: refused an upgrade: ${no.text}`);
      return refuse(no.code, REASONS[no.code], no.header ? `${no.header[0]}: ${no.header[1]}\r\n` : '');
    }
    const address = req.socket.remoteAddress ?? '';
    // lines.maxLineBytes may have changed in a reload that left this listener as it was. ws reads its options
    // for each upgrade (the socket's Receiver gets maxPayload then), so this tab gets the limit of now; tabs
    // already open keep the one they were opened with, as they keep the rest of their policy.
    this.wss.options.maxPayload = maxPayloadFor(this.ctx.maxLineBytes());
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, address, monitor));
  }

  private accept(ws: WebSocket, req: IncomingMessage, address: string, monitor: boolean): void {
    const cfg = this.config;
    if (this.ctx.barred?.(address)) {
      this.stats.refused++;
      this.ctx.log.info(`${cfg.name}: refused ${address}: barred by the instructor`);
      ws.close(CloseCode.POLICY, notices.banned(address).slice(0, 120));
      this.ctx.refused();
      return;
    }
    const taken = [...this.clients].filter((c) => !c.session.leaving);
    const why = overLimit(cfg, taken.length, () => taken.filter((c) => c.session.transport.address === address).length, address);
    if (why) {
      // A browser cannot read an HTTP refusal of an upgrade; a close code with the reason it can.
      this.stats.refused++;
      this.ctx.log.info(`${cfg.name}: refused ${address}: ${why}`);
      if (this.ctx.bridge.recording) this.ctx.bridge.events.refused({ via: 'web', listener: cfg.name, address, port: req.socket.remotePort ?? 0 }, why);
      ws.close(CloseCode.BUSY, notices.busy(why).slice(0, 120));
      this.ctx.refused();
      return;
    }
    const startAt = resumeFrom(req.url, this.ctx.boot);
    const peer = peerLabel(address, req.socket.remotePort ?? 0);
    const device = (state: string, detail: string): WebDevice => webDevice(state, detail, this.ctx.device());
    const transport = wsTransport(ws, {
      socket: req.socket,
      label: { via: 'web', listener: cfg.name, peer },
      address,
      port: req.socket.remotePort ?? 0,
      maxLineBytes: this.ctx.maxLineBytes(),
      hello: (g) => {
        const link = this.ctx.bridge.deviceLink;
        return {
          v: 1,
          listener: cfg.name,
          mode: monitor ? 'monitor' : cfg.mode,
          title: cfg.title,
          banner: g.banner,
          device: device(link.state, link.detail),
          clients: this.clients.size,
          seq: g.seq,
          lost: g.lost,
          resumed: g.resumed,
          boot: this.ctx.boot,
          maxLineBytes: this.ctx.maxLineBytes(),
          history: g.history,
          ...(monitor ? { actions: this.guarded } : {}),
        };
      },
      device,
      // The dashboard's actions: a JSON object on the monitor socket, answered on that socket alone.
      ...(monitor && this.ctx.action
        ? {
            control: (text: string) => {
              const act = this.ctx.action!;
              let request: unknown;
              try {
                request = JSON.parse(text);
              } catch {
                return false;
              }
              if (request === null || typeof request !== 'object' || !('action' in request)) return false;
              if (!this.guarded) {
                const id = (request as { id?: unknown }).id;
                client.writer.send({ reply: { ...(typeof id === 'number' ? { id } : {}), ok: false, text: UNGUARDED(this.name, 'actions') } });
                return true;
              }
              act(request, client.session, (m) => client.writer.send(m));
              return true;
            },
          }
        : {}),
    });
    const client: WebClient = { session: null as unknown as ClientSession, writer: transport.writer as WsLineWriter, monitor, alive: true };
    ws.on('pong', () => (client.alive = true));
    client.session = new ClientSession(transport, {
      bridge: this.ctx.bridge,
      policy: monitor ? this.monitorPolicy : this.policy,
      clock: this.ctx.clock,
      log: this.ctx.log,
      maxLineBytes: this.ctx.maxLineBytes(),
      device: () => this.ctx.device(),
      clientCount: () => this.clients.size,
      ...(startAt !== undefined ? { startAt } : {}),
      closed: (s) => {
        this.clients.delete(client);
        this.ctx.bridge.events.disconnected(s.who, { in: s.stats.linesIn, out: s.stats.linesOut, lost: s.stats.lost });
        this.ctx.changed();
      },
    });
    this.clients.add(client);
    this.ctx.bridge.events.connected(client.session.who);
    this.stats.accepted++;
    client.session.start();
    this.ctx.log.debug(`${cfg.name}: ${peer} connected${monitor ? ' (monitor)' : ''} (${this.clients.size} now)`);
    this.ctx.changed();
  }

  /** Browsers answer pings by themselves; a tab that missed a whole interval (asleep, cable pulled) is dropped. */
  private ping(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.session.destroy('no answer to ping');
        continue;
      }
      c.alive = false;
      c.writer.ping();
    }
  }
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/** `?since=N&boot=B`: the record to resume from. A different boot (a restarted daemon) resumes from 0. */
export function resumeFrom(url: string | undefined, boot: string): number | undefined {
  const u = new URL(url ?? '/', 'http://x');
  const since = u.searchParams.get('since');
  if (since === null || !/^\d{1,15}$/.test(since)) return undefined;
  const theirs = u.searchParams.get('boot');
  if (theirs !== null && theirs !== boot) return 0;
  return Number(since);
}

/** The name part of a Host header, lower case, without port, brackets or a final dot. */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\]/.exec(h);
  if (bracketed) return bracketed[1]!;
  return h.replace(/:\d*$/, '').replace(/\.$/, '');
}

function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
