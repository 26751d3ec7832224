import { Bridge } from './bridge.js';
import type { Clock, Disposer } from './core/clock.js';
import type { Log } from './core/log.js';
import { formatErrors, loadConfig } from './config/load.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatewayConfig, SerialConfig, TcpListenerConfig, TranscriptConfig, UdpListenerConfig, WebListenerConfig } from './config/types.js';
import { noEvents } from './events.js';
import { TcpListener } from './net/tcp-listener.js';
import { UdpListener } from './net/udp-listener.js';
import { localNetworks } from './net/local-networks.js';
import { AMPLIFICATION } from './net/udp-proof.js';
import { randomBytes } from 'node:crypto';
import { SerialLink } from './serial/serial-link.js';
import { describeSettings, linkTargetFor } from './serial/targets.js';
import { createLedController } from './led/controller.js';
import { StatusModel, type DeviceState } from './status/model.js';
import type { Notifier } from './status/notify.js';
import { watchdogIntervalMs } from './status/notify.js';
import { localDay } from './transcript/record.js';
import { TranscriptRecorder, droppedLine } from './transcript/recorder.js';
import { TranscriptWriter } from './transcript/writer.js';
import { notices } from './session/notices.js';
import type { ClientSession } from './session/client-session.js';
import { patternsFor } from './status/led-patterns.js';
import { formatMetrics } from './web/metrics.js';
import type { ApiStatus, ClientInfo, ListenerStatus, TranscriptStatus } from './web/protocol.js';
import { loadAssets, webDevice, WebListener, type Asset } from './web/web-listener.js';
import { Instructor, type ClientRow } from './control/instructor.js';
import { ControlSocket } from './control/control-socket.js';
import { pulseReset } from './control/reset.js';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { hostPart, peerLabel } from './net/peer.js';

/**
 * The composition root: config -> objects -> wiring; reload as a diff of configs; orderly stop.
 * Everything with I/O is created here and nowhere else.
 */
export interface DaemonOptions {
  file: string;
  config: GatewayConfig;
  clock: Clock;
  log: Log;
  notifier: Notifier;
  env: NodeJS.ProcessEnv;
  /** Wall time (ms since the epoch) for the transcript's record times and daily files; Date.now by default. */
  wallNow?: () => number;
  /** This machine's host name (os.hostname()): web pages answer to it and to NAME.local. */
  hostname?: string;
}

export class Daemon {
  private config: GatewayConfig;
  private readonly bridge: Bridge;
  private readonly link: SerialLink;
  private readonly tcp = new Map<string, TcpListener>();
  private readonly udp = new Map<string, UdpListener>();
  private readonly web = new Map<string, WebListener>();
  /** The pages, read once (web/ at the package root). */
  private assets: ReadonlyMap<string, Asset> = new Map();
  /** This process, for browsers resuming a stream (a new boot means a new ring). */
  private readonly boot = randomBytes(6).toString('base64url');
  private readonly startedAt = Date.now();
  private readonly extra = { reconnects: 0, connectionsRefused: 0, everOpen: false };
  private lastReload: { ok: boolean; at: number; error: string } | null = null;
  private lastFeed = { status: '', clients: '', instructor: '' };
  private readonly studentCounts = new Map<string, number>();
  private lastFlash = 0;
  private timers: Disposer[] = [];
  private lastStatus = '';
  private lastStatusAt = -Infinity;
  private reloadError = '';
  private stopping = false;
  readonly status = new StatusModel();
  private readonly leds: ReturnType<typeof createLedController>;
  private degradedUntil = 0;
  private lastDrops = 0;
  /** Keys UDP cookies for this run: a restart makes every outstanding cookie useless, as intended. */
  private readonly cookieSecret = randomBytes(32);
  private transcript: TranscriptRecorder | null = null;
  /** The instructor's actions (dashboard and control socket); pauses and bans end with the process. */
  readonly instructor: Instructor;
  private control: ControlSocket | null = null;

  constructor(private readonly opts: DaemonOptions) {
    this.config = opts.config;
    const { clock, log } = opts;
    const c = this.config;
    this.bridge = new Bridge({
      clock,
      log,
      ringBytes: c.lines.ringBytes,
      maxLineBytes: c.lines.maxLineBytes,
      delimiter: c.lines.delimiter,
      idleFlushMs: c.lines.idleFlushMs,
      outputDelimiter: c.lines.outputDelimiter,
      writeQueueBytes: c.serial.writeQueueBytes,
    });
    this.link = new SerialLink({
      target: linkTargetFor(c.serial, c.labbox, clock),
      clock,
      log,
      reconnectMinMs: c.serial.reconnectMinMs,
      reconnectMaxMs: c.serial.reconnectMaxMs,
      onData: (chunk) => this.bridge.deviceData(chunk),
      onState: (state, detail) => {
        const level = state === 'OPEN' || state === 'STOPPED' ? 'info' : state === 'FAILED' ? 'error' : 'warn';
        log[level](`device ${state.toLowerCase()}: ${detail}`);
        this.bridge.deviceState(state, detail);
        this.bridge.events.deviceState(state, detail);
        if (state === 'OPEN') {
          if (this.extra.everOpen) this.extra.reconnects++;
          this.extra.everOpen = true;
        }
        this.status.update({ device: DEVICE_STATES[state] });
        this.publishStatus();
      },
    });
    this.bridge.attachLink(this.link);
    this.bridge.onActivity = () => this.status.emit('activity');
    this.status.subscribe({
      changed: () => {},
      event: (kind) => {
        if (kind === 'refused') this.extra.connectionsRefused++;
        // The dashboard's LEDs flash like the real ones, at most 10 times a second.
        const now = this.opts.clock.now();
        if (this.web.size === 0 || (kind === 'activity' && now - this.lastFlash < 100)) return;
        if (kind === 'activity') this.lastFlash = now;
        for (const l of this.web.values()) l.toMonitors({ flash: kind });
      },
    });
    this.leds = createLedController(c.leds, this.status, clock, log);
    this.instructor = new Instructor(
      {
        broadcast: (text) => this.broadcast(text),
        remove: (pick, reason) => this.removeClients(pick, reason),
        clients: () => this.classList(),
        reset: () => this.resetBox(),
        clearQueue: () => this.bridge.clearQueue(),
        setPause: (p) => {
          this.bridge.inputPause = p;
        },
        record: (text, who) => this.transcript?.instructor(text, who),
        changed: (state) => {
          for (const l of this.web.values()) l.toMonitors({ instructor: state });
          this.publishStatus();
        },
      },
      clock,
      log,
    );
  }

  /** The control socket's path: relative paths are taken from the config file's directory. */
  static controlSocketPath(config: GatewayConfig, file: string): string {
    const p = config.control.socket;
    if (p === '') return '';
    return isAbsolute(p) ? p : resolvePath(dirname(resolvePath(file)), p);
  }

  /** Binds every listener (READY=1 follows), then starts the device link: a missing device is a state. */
  async start(): Promise<void> {
    await this.startTranscript(this.config.transcript);
    for (const cfg of this.config.tcp) await this.addTcp(cfg);
    for (const cfg of this.config.udp) await this.addUdp(cfg);
    if (this.config.web.length > 0) this.assets = loadAssets(join(__dirname, '..', '..', 'web'), this.opts.log);
    for (const cfg of this.config.web) await this.addWeb(cfg);
    this.link.start();
    const controlPath = Daemon.controlSocketPath(this.config, this.opts.file);
    if (controlPath !== '') {
      const control = new ControlSocket(controlPath, (req, who) => this.instructor.handle(req, who), this.opts.log);
      if (await control.listen()) this.control = control;
    }
    const { clock, notifier, env, log } = this.opts;
    this.timers.push(clock.setInterval(() => this.publishStatus(), 1000));
    const wd = watchdogIntervalMs(env);
    if (wd !== null) this.timers.push(clock.setInterval(() => notifier.watchdog(), wd));
    const where = [...this.tcp.values()].map((l) => `tcp ${l.name} ${l.config.host}:${l.port}`).concat(
      [...this.udp.values()].map((l) => `udp ${l.name} ${l.config.host}:${l.port} (${l.proofPolicy})`),
      [...this.web.values()].map((l) => `web ${l.name} http://${hostPart(l.config.host)}:${l.port}/`),
      this.control ? [`control ${this.control.path}`] : [],
    );
    log.info(`serial-gateway ready: ${where.join(', ')}; device ${this.link.describe} ${describeSettings(this.config.serial)}`);
    notifier.ready();
    this.status.update({ phase: 'running' });
    this.publishStatus();
  }

  /** SIGHUP: re-read the file; a bad file changes nothing. */
  async reload(): Promise<boolean> {
    const { notifier, log } = this.opts;
    notifier.reloading();
    this.status.update({ phase: 'reloading' });
    const result = loadConfig(this.opts.file, this.opts.env);
    if (!result.ok) {
      this.status.update({ phase: 'running', reloadRejected: true });
      this.reloadError = result.errors.length === 1 ? formatErrors(result.errors) : `${result.errors.length} errors, first: ${formatErrors(result.errors.slice(0, 1))}`;
      log.error(`reload rejected, still running the previous config:\n${formatErrors(result.errors)}`);
      this.bridge.events.reloaded(false, this.reloadError);
      this.lastReload = { ok: false, at: Date.now(), error: this.reloadError };
      notifier.ready();
      this.publishStatus();
      return false;
    }
    const next = result.config;
    const prev = this.config;
    this.config = next;
    this.reloadError = '';
    log.setLevel(next.log.level);
    if (Daemon.controlSocketPath(next, this.opts.file) !== Daemon.controlSocketPath(prev, this.opts.file)) {
      log.warn('control.socket changed: takes effect at the next restart');
    }
    if (next.lines.ringBytes !== prev.lines.ringBytes) {
      log.warn(`lines.ringBytes changed (${prev.lines.ringBytes} -> ${next.lines.ringBytes}): takes effect at the next restart`);
    }
    this.bridge.reconfigure({
      maxLineBytes: next.lines.maxLineBytes,
      delimiter: next.lines.delimiter,
      idleFlushMs: next.lines.idleFlushMs,
      outputDelimiter: next.lines.outputDelimiter,
      writeQueueBytes: next.serial.writeQueueBytes,
    });
    if (serialChanged(prev.serial, next.serial) || JSON.stringify(prev.labbox) !== JSON.stringify(next.labbox)) {
      log.info(`serial settings changed: reopening ${linkTargetFor(next.serial, next.labbox, this.opts.clock).describe}`);
      this.link.restart(linkTargetFor(next.serial, next.labbox, this.opts.clock), next.serial.reconnectMinMs, next.serial.reconnectMaxMs);
    }
    await this.applyListeners(
      this.tcp,
      next.tcp,
      (cfg) => this.addTcp(cfg),
      (l) => l.close(notices.reconfigured()),
      TCP_REBIND_KEYS,
    );
    // `trusted` applies without rebinding (peers keep their leases), and local-networks is looked up again.
    for (const l of this.udp.values()) {
      const wanted = next.udp.find((c) => c.name === l.name);
      if (wanted) l.retrust(wanted.trusted);
      if (wanted && JSON.stringify(wanted) === JSON.stringify(l.config)) log.info(`${l.name}: ${l.proofPolicy}`);
    }
    await this.applyListeners(this.udp, next.udp, (cfg) => this.addUdp(cfg), (l) => l.close(notices.reconfigured()), null);
    if (next.web.length > 0 && this.assets.size === 0) this.assets = loadAssets(join(__dirname, '..', '..', 'web'), log);
    await this.applyListeners(
      this.web,
      next.web,
      (cfg) => this.addWeb(cfg),
      (l, removed) => l.close(notices.reconfigured(), removed ? 'removed' : 'reconfigured'),
      WEB_REBIND_KEYS,
    );
    this.lastReload = { ok: true, at: Date.now(), error: '' };
    this.leds.reconfigure(next.leds);
    // A changed transcript section takes effect now; a reload also restarts a transcript stopped by a disk fault.
    if (JSON.stringify(prev.transcript) !== JSON.stringify(next.transcript) || this.transcript?.writer.failure) {
      await this.stopTranscript('the transcript settings changed');
      await this.startTranscript(next.transcript);
    }
    this.bridge.events.reloaded(true);
    log.info('reload applied');
    this.status.update({ phase: 'running', reloadRejected: false });
    notifier.ready();
    this.publishStatus();
    return true;
  }

  /** SIGTERM: stop accepting, give queued device lines drainMs to go out, tell clients, close, stop. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { notifier, clock, log } = this.opts;
    notifier.stopping();
    this.status.update({ phase: 'stopping' });
    log.info('stopping');
    for (const l of this.tcp.values()) l.stopAccepting();
    for (const l of this.web.values()) l.stopAccepting();
    const deadline = clock.now() + this.config.shutdown.drainMs;
    while (this.bridge.pendingWrites > 0 && this.link.state === 'OPEN' && clock.now() < deadline) {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 10));
    }
    if (this.bridge.pendingWrites > 0) log.warn('stopping with device lines still queued');
    await Promise.all([...this.tcp.values()].map((l) => l.close(notices.stopping())));
    await Promise.all([...this.udp.values()].map((l) => l.close(notices.stopping())));
    await Promise.all([...this.web.values()].map((l) => l.close(notices.stopping(), 'stopping')));
    await this.stopTranscript('the gateway is stopping');
    for (const t of this.timers) t();
    this.timers = [];
    this.instructor.dispose();
    await this.control?.close();
    this.link.stop();
    this.bridge.dispose();
    this.status.update({ phase: 'stopped' });
    this.leds.dispose();
    await this.leds.settled();
    notifier.close();
  }

  statusLine(): string {
    const link = this.link;
    const device =
      link.state === 'OPEN'
        ? `device open ${link.stateDetail} ${describeSettings(this.config.serial)}`
        : `device ${link.state.toLowerCase()}: ${link.stateDetail}`;
    const clients = [...this.tcp.values()]
      .map((l) => `${l.name} ${l.sessions.size}`)
      .concat([...this.udp.values()].map((l) => `${l.name} ${l.peerCount}`))
      .concat([...this.web.values()].map((l) => `${l.name} ${l.clientCount}`));
    const k = this.bridge.counters;
    const parts = [device, `clients: ${clients.join(', ') || 'none'}`, `lines in ${k.deviceLines} out ${k.clientLines}`, `dropped ${k.lost} refused ${k.refused}`];
    for (const l of this.udp.values()) {
      const u = l.stats;
      parts.push(`${l.name} unproven ${l.unprovenCount} (sent at most ${AMPLIFICATION}x; ${u.validations} proven, ${u.withheldBytes} B withheld)`);
    }
    const paused = this.bridge.inputPause;
    if (paused) parts.push(`input paused by the instructor${paused.until === null ? '' : ` until ${new Date(paused.until).toISOString().slice(11, 16)} UTC`}`);
    if (this.reloadError) parts.push(`last reload rejected: ${this.reloadError}`);
    const stopped = this.transcript?.writer.failure;
    if (stopped) parts.push(`transcript stopped: ${stopped}`);
    return parts.join('; ');
  }

  /** For tests: the ports actually bound. */
  boundPorts(): { tcp: Record<string, number>; udp: Record<string, number>; web: Record<string, number> } {
    return {
      tcp: Object.fromEntries([...this.tcp].map(([n, l]) => [n, l.port])),
      udp: Object.fromEntries([...this.udp].map(([n, l]) => [n, l.port])),
      web: Object.fromEntries([...this.web].map(([n, l]) => [n, l.port])),
    };
  }

  private async startTranscript(cfg: TranscriptConfig): Promise<void> {
    if (!cfg.enabled) return;
    const { clock, log } = this.opts;
    const wallNow = this.opts.wallNow ?? Date.now;
    let recorder: TranscriptRecorder | null = null;
    const writer = new TranscriptWriter({
      ...cfg,
      clock,
      wallNow,
      log,
      dropRecord: droppedLine(wallNow),
      failed: () => {
        // Nothing more can be written: stop formatting records too.
        if (this.bridge.events === recorder) this.bridge.events = noEvents;
        this.status.update({ transcript: 'stopped' });
        this.lastStatus = '';
        this.lastStatusAt = -Infinity;
        this.publishStatus();
      },
    });
    recorder = new TranscriptRecorder(writer, wallNow);
    this.transcript = recorder;
    this.bridge.events = recorder;
    recorder.lifecycle('start', `device ${this.link.describe}`);
    const link = this.link;
    if (link.state !== 'STOPPED') recorder.deviceState(link.state, link.stateDetail);
    await writer.start();
    if (!writer.failure) {
      this.status.update({ transcript: 'on' });
      log.info(`transcript: ${writer.currentFile}`);
    }
  }

  private async stopTranscript(why: string): Promise<void> {
    const t = this.transcript;
    if (!t) return;
    t.lifecycle('stop', why);
    this.transcript = null;
    this.bridge.events = noEvents;
    this.status.update({ transcript: 'off' });
    await t.writer.close();
  }

  private publishStatus(): void {
    // Degraded while lines are being dropped or refused, and for 5 s after the last one.
    const k = this.bridge.counters;
    const drops = k.lost + k.refused;
    const now = this.opts.clock.now();
    if (drops !== this.lastDrops) {
      this.lastDrops = drops;
      this.degradedUntil = now + 5000;
    }
    const clients =
      [...this.tcp.values()].reduce((n, l) => n + l.sessions.size, 0) +
      [...this.udp.values()].reduce((n, l) => n + l.peerCount, 0) +
      [...this.web.values()].reduce((n, l) => n + l.clientCount, 0);
    this.status.update({ clients, degraded: now < this.degradedUntil });
    this.feedMonitors();
    const text = this.statusLine();
    // STATUS= at most once a second: a class connecting at once is one update, not thirty datagrams.
    if (text === this.lastStatus || now - this.lastStatusAt < 1000) return;
    this.lastStatus = text;
    this.lastStatusAt = now;
    this.opts.notifier.status(text);
  }

  private async addTcp(cfg: TcpListenerConfig): Promise<void> {
    const l = new TcpListener(cfg, {
      bridge: this.bridge,
      clock: this.opts.clock,
      log: this.opts.log,
      maxLineBytes: () => this.config.lines.maxLineBytes,
      device: () => ({ device: this.link.describe, settings: describeSettings(this.config.serial) }),
      refused: () => this.status.emit('refused'),
      changed: () => this.publishStatus(),
      barred: (address) => this.instructor.barred(address),
    });
    await l.listen();
    this.tcp.set(cfg.name, l);
  }

  private async addWeb(cfg: WebListenerConfig): Promise<void> {
    const l = new WebListener(cfg, {
      bridge: this.bridge,
      clock: this.opts.clock,
      log: this.opts.log,
      assets: this.assets,
      maxLineBytes: () => this.config.lines.maxLineBytes,
      device: () => ({ device: this.link.describe, settings: describeSettings(this.config.serial) }),
      boot: this.boot,
      status: () => this.apiStatus(),
      metrics: () => this.metrics(),
      transcriptDir: () => (this.transcript ? this.config.transcript.dir : null),
      machineNames: this.opts.hostname ? [this.opts.hostname, `${this.opts.hostname}.local`] : [],
      refused: () => this.status.emit('refused'),
      changed: () => {
        // Someone joined or left: a monitor that just connected gets the whole picture, not only what changes next.
        this.lastFeed = { status: '', clients: '', instructor: '' };
        this.publishStatus();
      },
      barred: (address) => this.instructor.barred(address),
      action: (request, session, reply) => {
        const id = (request as { id?: unknown }).id;
        const who = `dashboard ${session.peer} (web ${session.label.listener})`;
        void this.instructor
          .handle(request, who, (line) => session.instructorLine(Buffer.from(line, 'utf8')))
          .then((r) => reply({ reply: { ...(typeof id === 'number' ? { id } : {}), ok: r.ok, text: r.text } }));
      },
    });
    await l.listen();
    this.web.set(cfg.name, l);
  }

  /** GET /api/status and the dashboard's {status}: the facts STATUS= is made from. */
  apiStatus(): ApiStatus {
    const k = this.bridge.counters;
    const ring = this.bridge.ring;
    const link = this.link.reportedState;
    const listeners: ListenerStatus[] = [
      ...[...this.tcp.values()].map((l) => ({ name: l.name, kind: 'tcp' as const, host: l.config.host, port: l.port, mode: l.config.mode, clients: l.sessions.size })),
      ...[...this.udp.values()].map((l) => ({ name: l.name, kind: 'udp' as const, host: l.config.host, port: l.port, mode: l.config.mode, clients: l.peerCount })),
      ...[...this.web.values()].map((l) => ({ name: l.name, kind: 'web' as const, host: l.config.host, port: l.port, mode: l.config.mode, clients: l.clientCount })),
    ];
    const snap = this.status.snapshot;
    return {
      version: packageVersion(),
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      phase: snap.phase,
      device: webDevice(link.state, link.detail, { device: this.link.describe, settings: describeSettings(this.config.serial) }),
      listeners,
      clients: snap.clients,
      counters: {
        linesFromDevice: k.deviceLines,
        linesToDevice: k.clientLines,
        bytesFromDevice: k.deviceBytes,
        dropped: k.lost,
        refused: k.refused,
        connectionsRefused: this.extra.connectionsRefused,
        reconnects: this.extra.reconnects,
      },
      ring: { bytes: ring.capacityBytes, usedBytes: ring.backlogBytes(ring.oldestSeq), oldestSeq: ring.oldestSeq, endSeq: ring.endSeq },
      reload: this.lastReload,
      degraded: snap.degraded,
      statusLine: this.statusLine(),
      leds: patternsFor(snap, { foldDevice: this.config.leds.serial.pin < 0 && this.config.leds.ready.pin >= 0 }),
      transcript: this.transcriptStatus(),
    };
  }

  private transcriptStatus(): TranscriptStatus {
    const writer = this.transcript?.writer;
    if (!writer) return { state: 'off', detail: '', today: null };
    const today = localDay((this.opts.wallNow ?? Date.now)());
    return {
      state: writer.failure ? 'stopped' : 'on',
      detail: writer.failure ?? '',
      today: writer.fileDay === today ? today : null,
    };
  }

  /** Every TCP and web client, for the dashboard. (UDP peers are counted per listener in {status}.) */
  clientList(): ClientInfo[] {
    const out: ClientInfo[] = [];
    const add = (s: ClientSession, mode: ClientInfo['mode']): void => {
      out.push({
        id: s.tag,
        listener: s.label.listener,
        via: s.label.via,
        peer: s.label.peer,
        mode,
        since: s.since,
        linesIn: s.stats.linesIn,
        linesOut: s.stats.linesOut,
        lost: s.stats.lost,
      });
    };
    for (const l of this.tcp.values()) for (const s of l.sessions) add(s, l.config.mode);
    for (const l of this.web.values()) for (const c of l.clients) add(c.session, c.monitor ? 'monitor' : l.config.mode);
    return out;
  }

  // ------------------------------------------------------------------ the instructor's classroom

  /** Every TCP session, web tab and UDP subscriber, as `clients` lists them. */
  private classList(): ClientRow[] {
    const rows: ClientRow[] = this.clientList().map((c) => ({ id: c.id, listener: c.listener, via: c.via, peer: c.peer, mode: c.mode }));
    for (const l of this.udp.values()) {
      for (const p of l.subscribers()) rows.push({ id: p.tag, listener: l.name, via: 'udp', peer: p.peer, mode: l.config.mode });
    }
    return rows;
  }

  /** A notice to every client of every listener, in its own framing; returns how many were told. */
  private broadcast(text: string): number {
    let n = 0;
    for (const l of this.tcp.values()) for (const s of l.sessions) if (s.notice(text)) n++;
    for (const l of this.web.values()) for (const c of l.clients) if (c.session.notice(text)) n++;
    for (const l of this.udp.values()) n += l.broadcast(text);
    return n;
  }

  private removeClients(pick: (c: ClientRow) => boolean, reason: string): number {
    const row = (s: ClientSession, mode: string): ClientRow => ({ id: s.tag, listener: s.label.listener, via: s.label.via, peer: s.label.peer, mode });
    let n = 0;
    for (const l of this.tcp.values()) {
      for (const s of [...l.sessions]) {
        if (s.isOpen && pick(row(s, l.config.mode))) {
          s.remove(reason);
          n++;
        }
      }
    }
    for (const l of this.web.values()) {
      for (const c of [...l.clients]) {
        if (c.session.isOpen && pick(row(c.session, c.monitor ? 'monitor' : l.config.mode))) {
          c.session.remove(reason);
          n++;
        }
      }
    }
    for (const l of this.udp.values()) {
      n += l.remove((address, port, tag) => pick({ id: tag, listener: l.name, via: 'udp', peer: peerLabel(address, port), mode: l.config.mode }), notices.removed(reason));
    }
    return n;
  }

  /** The instructor's reset: refused while the device is away (nothing to reset, and no lines to pulse). */
  private async resetBox(): Promise<string> {
    if (this.link.state !== 'OPEN') throw new Error(`the device is away (${this.link.stateDetail})`);
    const how = await pulseReset(this.config.serial, {
      clock: this.opts.clock,
      log: this.opts.log,
      signal: (s) => this.link.signal(s),
      roots: this.config.leds,
      env: this.opts.env,
    });
    return how;
  }

  private metrics(): string {
    let linesOut = 0;
    let bytesOut = 0;
    for (const l of this.tcp.values()) for (const s of l.sessions) (linesOut += s.stats.linesOut), (bytesOut += s.stats.bytesOut);
    for (const l of this.web.values()) for (const c of l.clients) (linesOut += c.session.stats.linesOut), (bytesOut += c.session.stats.bytesOut);
    return formatMetrics(this.apiStatus(), { linesOut, bytesOut });
  }

  /** The dashboard: the client list and the status, each sent when it changed (checked at most once a second, and on joins and leaves). */
  private feedMonitors(): void {
    if (this.web.size === 0) return;
    const list = this.clientList();
    const clients = JSON.stringify(list);
    if (clients !== this.lastFeed.clients) {
      this.lastFeed.clients = clients;
      for (const l of this.web.values()) l.toMonitors({ clients: list });
    }
    // Students see only how many are connected, sent when that number changes (not with every line counted).
    for (const l of this.web.values()) {
      if (this.studentCounts.get(l.name) === l.clientCount) continue;
      this.studentCounts.set(l.name, l.clientCount);
      l.toStudents({ clients: l.clientCount });
    }
    const instructor = JSON.stringify(this.instructor.state);
    if (instructor !== this.lastFeed.instructor) {
      this.lastFeed.instructor = instructor;
      for (const l of this.web.values()) l.toMonitors({ instructor: this.instructor.state });
    }
    const status = this.apiStatus();
    const key = JSON.stringify({ ...status, uptimeS: 0 });
    if (key !== this.lastFeed.status) {
      this.lastFeed.status = key;
      for (const l of this.web.values()) l.toMonitors({ status });
    }
  }

  private async addUdp(cfg: UdpListenerConfig): Promise<void> {
    const l = new UdpListener(cfg, {
      bridge: this.bridge,
      clock: this.opts.clock,
      log: this.opts.log,
      maxLineBytes: () => this.config.lines.maxLineBytes,
      localNetworks,
      cookieSecret: this.cookieSecret,
      changed: () => this.publishStatus(),
      barred: (address) => this.instructor.barred(address),
    });
    await l.listen();
    this.udp.set(cfg.name, l);
  }

  /**
   * Unchanged listeners keep their socket and clients; removed ones close. A changed one is rebound (its clients
   * closed) only when a key in `rebindKeys` changed (where it listens, or what its connected clients are
   * promised: mode, framing, who is allowed); any other change (banner, timings, limits) applies to clients that
   * connect from now on, and the connected ones keep theirs, as ser2net applies a port's new config when its
   * users have gone. `rebindKeys` null: every change rebinds.
   */
  private async applyListeners<C extends { name: string }, L extends { config: C; reconfigure?(cfg: C): void }>(
    current: Map<string, L>,
    wanted: C[],
    add: (cfg: C) => Promise<void>,
    close: (l: L, removed: boolean) => Promise<void>,
    rebindKeys: readonly (keyof C)[] | null,
  ): Promise<void> {
    const names = new Set(wanted.map((c) => c.name));
    for (const [name, l] of current) {
      const next = wanted.find((c) => c.name === name);
      if (next && l.reconfigure && rebindKeys && JSON.stringify(next) !== JSON.stringify(l.config)) {
        const changed = (Object.keys(next) as (keyof C)[]).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(l.config[k]));
        if (!changed.some((k) => rebindKeys.includes(k))) {
          l.reconfigure(next);
          this.opts.log.info(`listener ${name}: ${changed.join(', ')} changed: applies to clients that connect from now on`);
          continue;
        }
      }
      if (!names.has(name) || JSON.stringify(next) !== JSON.stringify(l.config)) {
        current.delete(name);
        await close(l, !names.has(name));
        this.opts.log.info(`listener ${name}: ${names.has(name) ? 'changed, rebinding' : 'removed'}`);
      }
    }
    for (const cfg of wanted) {
      if (current.has(cfg.name)) continue;
      try {
        await add(cfg);
      } catch (err) {
        this.opts.log.error(`listener ${cfg.name}: cannot bind: ${(err as Error).message}`);
      }
    }
  }
}

/** What a connected client was promised: a change here closes the listener's clients (see applyListeners). */
const TCP_REBIND_KEYS: readonly (keyof TcpListenerConfig)[] = ['host', 'port', 'mode', 'framing', 'lengthDigits', 'telnet', 'allow', 'controlBytes'];
const WEB_REBIND_KEYS: readonly (keyof WebListenerConfig)[] = ['host', 'port', 'mode', 'allow', 'monitor', 'monitorAllow', 'monitorPassword'];

const DEVICE_STATES: Record<string, DeviceState> = { OPEN: 'open', OPENING: 'waiting', WAITING: 'waiting', FAILED: 'failed', STOPPED: 'stopped' };

function serialChanged(a: SerialConfig, b: SerialConfig): boolean {
  // The queue bound and the reset method apply without reopening the port.
  return JSON.stringify(a) !== JSON.stringify({ ...b, writeQueueBytes: a.writeQueueBytes, reset: a.reset });
}

let version = '';
function packageVersion(): string {
  if (version === '') {
    try {
      version = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
