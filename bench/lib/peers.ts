/**
 * The four bridges the benchmark compares, each started as its own process on the same kind of pty, with one
 * TCP listener on 127.0.0.1. "Up" means the same thing for all of them: the listening socket exists (read from
 * /proc/net/tcp, so the probe does not use up socat's only connection). The gateway also reports READY=1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNotifyListener, type NotifyListener } from '../../test/support/notify-listener.js';
import { isListening } from './proc.js';

export type PeerId = 'gateway' | 'transcript' | 'web' | 'ser2net' | 'socat' | 'plain';

export interface PeerContext {
  /** A private scratch directory for config files. */
  dir: string;
  /** The pty link the bridge opens as its serial port. */
  link: string;
  port: number;
  maxClients: number;
  /** Set to write a V8 CPU profile (gateway and plain bridge) into this directory. */
  profileDir?: string;
}

export interface RunningPeer {
  pid: number;
  /** exec -> listening socket, ms. */
  listenMs: number;
  /** exec -> READY=1 (gateway only), ms; the notify socket is polled every 5 ms. */
  readyMs?: number;
  /** The gateway's notify socket (STATUS= lines), if any. */
  notify?: NotifyListener;
  output(): string;
  stop(): Promise<void>;
}

export interface Peer {
  id: PeerId;
  label: string;
  /** Whether every client gets every line (socat serves exactly one client). */
  fanOut: boolean;
  /** What its clients are: TCP sockets (default) or browser tabs on a web listener. */
  clients?: 'tcp' | 'web';
  /** Why it cannot run here (and how to fix that), or undefined. */
  unavailable(): string | undefined;
  /** What was configured, for the report. */
  settings: string;
  /** The workloads it runs (all when absent). */
  workloads?: readonly string[];
  start(ctx: PeerContext): Promise<RunningPeer>;
}

const ROOT = join(__dirname, '..', '..');
const GATEWAY_MAIN = join(ROOT, 'src', 'main.js');
const PLAIN_MAIN = join(ROOT, 'bench', 'peers', 'plain-bridge.js');
const START_TIMEOUT_MS = 15_000;
const OUTPUT_KEEP = 16 * 1024;

/**
 * ser2net's serial-to-network buffer: its default is 64 bytes, which makes it read a pty 64 bytes at a time (A:
 * about 11 MB/s and 6x the CPU per MB); 4096 is the most one read of a pty returns. Env BENCH_SER2NET_BUFSIZE.
 */
const SER2NET_BUFSIZE = Number(process.env.BENCH_SER2NET_BUFSIZE ?? 4096);
/** Gateway per-client backlog and ring; env BENCH_GW_CLIENT_BUFFER / BENCH_GW_RING (defaults are the daemon's). */
export const GATEWAY_CLIENT_BUFFER = Number(process.env.BENCH_GW_CLIENT_BUFFER ?? 262144);
export const GATEWAY_RING = Number(process.env.BENCH_GW_RING ?? 1048576);
/**
 * Node flags for the gateway: the ones the systemd unit's ExecStart gives it, so the benchmark runs the daemon as
 * it is deployed; env BENCH_GW_NODE_ARGS replaces them (to try V8 settings; '' = none).
 */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GW_NODE_ARGS ?? unitNodeFlags()).split(' ').filter(Boolean);

/** `--max-semi-space-size=1` from `ExecStart=/usr/bin/node --max-semi-space-size=1 /opt/…/main.js …`. */
function unitNodeFlags(): string {
  const unit = readFileSync(join(ROOT, '..', 'systemd', 'serial-gateway.service'), 'utf8');
  const exec = /^ExecStart=\S*node((?:\s+--\S+)*)\s/m.exec(unit);
  if (!exec) throw new Error('systemd/serial-gateway.service: no ExecStart=…node line to take the node flags from');
  return exec[1]!.trim();
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

interface Spawned {
  child: ChildProcess;
  listenMs: number;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a process and waits until `port` listens; rejects if it exits first or takes too long. */
async function spawnAndWaitListening(cmd: string, args: string[], port: number, env?: NodeJS.ProcessEnv): Promise<Spawned> {
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString('utf8')).slice(-OUTPUT_KEEP);
  };
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let listenMs = -1;
  while (listenMs < 0) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}:\n${out}`);
    }
    if (isListening(port)) listenMs = Number(process.hrtime.bigint() - t0) / 1e6;
    else if (Number(process.hrtime.bigint() - t0) / 1e6 > START_TIMEOUT_MS) {
      child.kill('SIGKILL');
      throw new Error(`${cmd} did not listen on ${port} within ${START_TIMEOUT_MS} ms:\n${out}`);
    } else await new Promise((r) => setTimeout(r, 1));
  }
  return {
    child,
    listenMs,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

function gatewayPeer(o: { id: 'gateway' | 'transcript' | 'web'; label: string; transcript: boolean; web?: boolean; workloads?: readonly string[] }): Peer {
  return {
    id: o.id,
    label: o.label,
    fanOut: true,
    ...(o.web ? { clients: 'web' as const } : {}),
    ...(o.workloads ? { workloads: o.workloads } : {}),
    settings: `node ${GATEWAY_NODE_ARGS.join(' ')}${GATEWAY_NODE_ARGS.length ? ' ' : ''}dist/src/main.js; ${o.web ? 'web listener (WebSocket clients)' : 'tcp listener telnet off'}, clientBufferBytes ${GATEWAY_CLIENT_BUFFER}, lines.ringBytes ${GATEWAY_RING}, ${o.transcript ? 'transcript.enabled true (dir in the scratch directory), ' : ''}other keys default`,
    unavailable: () => (existsSync(GATEWAY_MAIN) ? undefined : `${GATEWAY_MAIN} is missing: run \`npm run build\` first`),
    async start(ctx) {
      const file = join(ctx.dir, `${o.id}.yaml`);
      const transcriptDir = join(ctx.dir, `transcript-${ctx.port}`);
      writeFileSync(
        file,
        `serial:
  path: ${ctx.link}
  baudRate: 115200
  reconnectMinMs: 50
  reconnectMaxMs: 200
lines:
  ringBytes: ${GATEWAY_RING}
${
  o.web
    ? `tcp: []
web:
  - name: bench
    host: 127.0.0.1
    port: ${ctx.port}
    maxClients: ${ctx.maxClients}
    clientBufferBytes: ${GATEWAY_CLIENT_BUFFER}
    monitor: false`
    : `tcp:
  - name: bench
    host: 127.0.0.1
    port: ${ctx.port}
    telnet: off
    maxClients: ${ctx.maxClients}
    clientBufferBytes: ${GATEWAY_CLIENT_BUFFER}`
}
udp: []
${o.transcript ? `transcript:\n  enabled: true\n  dir: ${transcriptDir}\n` : ''}`,
      );
      const notify = createNotifyListener();
      const t0 = process.hrtime.bigint();
      const flags = GATEWAY_NODE_ARGS.slice();
      if (ctx.profileDir) {
        mkdirSync(ctx.profileDir, { recursive: true });
        flags.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`);
      }
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: notify.address };
      let s: Spawned;
      try {
        s = await spawnAndWaitListening(process.execPath, [...flags, GATEWAY_MAIN, '--config', file], ctx.port, env);
        await notify.waitFor((m) => m.READY === '1', START_TIMEOUT_MS);
      } catch (err) {
        notify.close();
        throw err;
      }
      const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
      return {
        pid: s.child.pid!,
        listenMs: s.listenMs,
        readyMs,
        notify,
        output: s.output,
        async stop() {
          await s.stop();
          notify.close();
          if (o.transcript) {
            // What the transcript kept of the run (its own count of drops is in the file as `dropped` records).
            const files = existsSync(transcriptDir) ? readdirSync(transcriptDir) : [];
            let bytes = 0;
            let dropped = 0;
            for (const f of files) {
              const text = readFileSync(join(transcriptDir, f), 'utf8');
              bytes += statSync(join(transcriptDir, f)).size;
              for (const m of text.matchAll(/"k":"dropped","count":(\d+)/g)) dropped += Number(m[1]);
            }
            process.stderr.write(`  transcript: ${(bytes / 1e6).toFixed(1)} MB in ${files.length} file(s), ${dropped} record(s) dropped\n`);
            rmSync(transcriptDir, { recursive: true, force: true });
          }
        },
      };
    },
  };
}

export const gateway = gatewayPeer({ id: 'gateway', label: 'this gateway', transcript: false });
/** The same gateway with the class transcript on: its cost is the ratio to `gateway` (issue 15: within 1.3x). */
export const transcriptGateway = gatewayPeer({ id: 'transcript', label: '+ transcript', transcript: true, workloads: ['A', 'B'] });

export const ser2net: Peer = {
  id: 'ser2net',
  label: 'ser2net',
  fanOut: true,
  settings: `ser2net -n -u; accepter tcp(nodelay=true); serialdev local; max-connections = clients; chardelay: false; dev-to-net-bufsize: ${SER2NET_BUFSIZE}`,
  unavailable: () => (onPath('ser2net') ? undefined : 'ser2net is not installed: sudo apt-get install ser2net (Debian 12 ships 4.3)'),
  async start(ctx) {
    const file = join(ctx.dir, 'ser2net.yaml');
    // chardelay (default on) holds each read for 2 character times, at least 1 ms, to batch network writes:
    // off, so ser2net sends at once as the gateway does. nodelay: Nagle would otherwise hold small writes.
    writeFileSync(
      file,
      `%YAML 1.1
---
connection: &bench
  accepter: tcp(nodelay=true,tcpd=off),127.0.0.1,${ctx.port}
  connector: serialdev,${ctx.link},115200n81,local
  options:
    max-connections: ${ctx.maxClients}
    chardelay: false
    dev-to-net-bufsize: ${SER2NET_BUFSIZE}
`,
    );
    const s = await spawnAndWaitListening('ser2net', ['-n', '-u', '-c', file, '-P', join(ctx.dir, 'ser2net.pid')], ctx.port);
    return { pid: s.child.pid!, listenMs: s.listenMs, output: s.output, stop: s.stop };
  },
};

export const socat: Peer = {
  id: 'socat',
  label: 'socat',
  fanOut: false,
  settings: 'socat FILE:pty,raw,echo=0 TCP-LISTEN:port,bind=127.0.0.1,reuseaddr,nodelay (one client)',
  unavailable: () => (onPath('socat') ? undefined : 'socat is not installed: sudo apt-get install socat'),
  async start(ctx) {
    const s = await spawnAndWaitListening(
      'socat',
      [`FILE:${ctx.link},raw,echo=0`, `TCP-LISTEN:${ctx.port},bind=127.0.0.1,reuseaddr,nodelay`],
      ctx.port,
    );
    return { pid: s.child.pid!, listenMs: s.listenMs, output: s.output, stop: s.stop };
  },
};

export const plain: Peer = {
  id: 'plain',
  label: 'plain Node',
  fanOut: true,
  settings: 'bench/peers/plain-bridge.ts: serialport + ReadlineParser + net, socket.write per line per client',
  unavailable: () => (existsSync(PLAIN_MAIN) ? undefined : `${PLAIN_MAIN} is missing: run \`npm run build\` first`),
  async start(ctx) {
    const flags: string[] = [];
    if (ctx.profileDir) {
      mkdirSync(ctx.profileDir, { recursive: true });
      flags.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`);
    }
    const s = await spawnAndWaitListening(process.execPath, [...flags, PLAIN_MAIN, ctx.link, String(ctx.port)], ctx.port);
    return { pid: s.child.pid!, listenMs: s.listenMs, output: s.output, stop: s.stop };
  },
};

/** The same gateway, its clients browser tabs (WebSockets on a web listener) instead of TCP sockets (issue 18). */
export const gatewayWeb = gatewayPeer({ id: 'web', label: 'gateway, web clients', transcript: false, web: true });
export const ALL_PEERS: Peer[] = [gateway, transcriptGateway, gatewayWeb, ser2net, socat, plain];
