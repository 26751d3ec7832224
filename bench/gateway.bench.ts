/**
 * npm run bench — issue 6: this gateway against ser2net, socat and a plain Node bridge, in one run, on the
 * same kind of pty, with the same workloads:
 *   A throughput (bulk 60-byte lines, 1 and 50 clients), B latency (1,000 stamped lines/s), C memory (RSS at
 *   0/100/500 clients, idle and under B), D stalled clients (B plus 10 clients that never read),
 *   E start-up (exec -> listening; the gateway also exec -> READY=1),
 *   R UDP amplification (the gateway alone: bytes sent to a source per byte received from it, issue 17).
 * The gateway runs twice: with TCP clients, and ("gateway, web clients") with the same workloads' clients as
 * browser tabs, WebSockets on a web listener (issue 18: a web client against a TCP one).
 * Each workload gets a fresh bridge process on a fresh pty. The device writes from a worker thread; the
 * clients live in a child process (bench/lib/client-farm.ts). Prints one table and the targets, writes
 * bench/results/latest.json, and prints the change against the previous latest.json.
 *
 * Nothing is installed here: a missing ser2net or socat is skipped with a line saying how to install it.
 *
 * Environment (defaults in brackets):
 *   BENCH_PEERS [gateway,transcript,web,ser2net,socat,plain]   BENCH_WORKLOADS [A,B,C,D,R]  (E comes from every start)
 *   (transcript = this gateway with transcript.enabled, A and B only)
 *   (web = this gateway with its clients as browser tabs: WebSockets on a web listener)
 *   BENCH_R_SECONDS [3] of device lines per R scenario  BENCH_R_SOURCES [1000]
 *   BENCH_A_MB [64]  MiB per throughput run     BENCH_A_CLIENTS [50]       BENCH_A_MAX_S [20] cap per run
 *   BENCH_B_RATE [1000] lines/s  BENCH_B_SECONDS [20]  BENCH_B1_SECONDS [5]  BENCH_B_CLIENTS [50]
 *   BENCH_C_LEVELS [0,100,500]   BENCH_C_SECONDS [3] of B traffic per level
 *   BENCH_D_STALLED [10]  BENCH_D_PREFILL_MB [2]  BENCH_D_SECONDS [= BENCH_B_SECONDS]
 *   BENCH_SER2NET_BUFSIZE [4096]  BENCH_GW_CLIENT_BUFFER [65536]  BENCH_GW_RING [1048576]
 *   BENCH_GW_NODE_ARGS ['']  extra node flags for the gateway, e.g. --max-semi-space-size=2
 *   BENCH_PROFILE=1  run the gateway under `node --cpu-prof` (profiles in bench/results/profiles/, top costs
 *                    printed; figures from such a run are slower and are not saved as latest.json)
 *   BENCH_OUT [bench/results/latest.json]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/daemon.js';
import { Device } from './lib/device.js';
import { Farm } from './lib/farm.js';
import { ALL_PEERS, GATEWAY_CLIENT_BUFFER, GATEWAY_RING, type Peer, type RunningPeer } from './lib/peers.js';
import { profilesUnder, topCosts } from './lib/profile.js';
import { changeText, evaluateTargets, rows, table, targetsText, type PeerResults, type SavedRun } from './lib/report.js';
import { reflection, reflectionTable, type ReflectionRow } from './lib/reflection.js';
import { median } from './lib/stats.js';
import { latency, memoryLevels, stalledClients, syncClients, throughput, type Run } from './lib/workloads.js';

const env = process.env;
const num = (name: string, dflt: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
};
const list = (name: string, dflt: string): string[] =>
  (env[name] ?? dflt)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const CFG = {
  peers: list('BENCH_PEERS', 'gateway,transcript,web,ser2net,socat,plain'),
  workloads: new Set(list('BENCH_WORKLOADS', 'A,B,C,D,R').map((w) => w.toUpperCase())),
  rSeconds: num('BENCH_R_SECONDS', 3),
  rSources: num('BENCH_R_SOURCES', 1000),
  aMiB: num('BENCH_A_MB', 64),
  aClients: num('BENCH_A_CLIENTS', 50),
  aMaxS: num('BENCH_A_MAX_S', 20),
  bRate: num('BENCH_B_RATE', 1000),
  bSeconds: num('BENCH_B_SECONDS', 20),
  b1Seconds: num('BENCH_B1_SECONDS', num('BENCH_B_SECONDS', 20)),
  bClients: num('BENCH_B_CLIENTS', 50),
  cLevels: list('BENCH_C_LEVELS', '0,100,500').map(Number),
  cSeconds: num('BENCH_C_SECONDS', 3),
  dStalled: num('BENCH_D_STALLED', 10),
  dPrefillMiB: num('BENCH_D_PREFILL_MB', 2),
  dSeconds: num('BENCH_D_SECONDS', num('BENCH_B_SECONDS', 20)),
  profile: env.BENCH_PROFILE === '1',
  out: env.BENCH_OUT ?? join(__dirname, '..', '..', 'bench', 'results', 'latest.json'),
};
const RESULTS_DIR = join(__dirname, '..', '..', 'bench', 'results');
const PROFILE_DIR = join(RESULTS_DIR, 'profiles');
const BASE = process.hrtime.bigint();
const MiB = 1048576;

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

interface StartSample {
  listenMs: number;
  readyMs?: number;
}

/** Starts `peer` on a fresh pty, runs `body`, and always tears everything down. */
async function withPeer<T>(
  peer: Peer,
  name: string,
  maxClients: number,
  farm: Farm,
  scratch: string,
  starts: StartSample[],
  body: (run: Run, running: RunningPeer) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const link = join(scratch, `tty-${peer.id}`);
  const device = Device.open(link, BASE);
  let running: RunningPeer | undefined;
  try {
    const profileDir = CFG.profile && (peer.id === 'gateway' || peer.id === 'transcript' || peer.id === 'web') ? join(PROFILE_DIR, `${peer.id}-${name}`) : undefined;
    const r = await peer.start({ dir: scratch, link, port, maxClients, ...(profileDir ? { profileDir } : {}) });
    running = r;
    starts.push({ listenMs: r.listenMs, ...(r.readyMs !== undefined ? { readyMs: r.readyMs } : {}) });
    const note = (m: string): void => log(`  ${peer.label}: ${m}`);
    return await body({ pid: r.pid, port, device, farm, base: BASE, note, status: () => lastStatus(r) }, r);
  } finally {
    await farm.closeAll().catch(() => {});
    await running?.stop();
    await device.close();
  }
}

function lastStatus(running: RunningPeer): string | undefined {
  const msgs = running.notify?.messages ?? [];
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i]!.STATUS !== undefined) return msgs[i]!.STATUS;
  return undefined;
}

async function benchPeer(peer: Peer, farm: Farm, scratch: string): Promise<PeerResults> {
  const res: PeerResults = { id: peer.id, label: peer.label, settings: peer.settings, errors: {} };
  const why = peer.unavailable();
  if (why) {
    res.skipped = why;
    log(`skip ${peer.label}: ${why}`);
    return res;
  }
  const starts: StartSample[] = [];
  farm.clientKind = peer.clients ?? 'tcp';
  const maxC = Math.max(CFG.aClients, CFG.bClients + CFG.dStalled, ...CFG.cLevels) + 10;
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const t0 = Date.now();
    log(`${peer.label}: ${name} ...`);
    try {
      await fn();
      log(`${peer.label}: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      res.errors[name] = (err as Error).message.split('\n')[0]!;
      log(`${peer.label}: ${name} FAILED: ${(err as Error).message}`);
    }
  };
  const readers = async (run: Run, n: number): Promise<void> => {
    const got = await farm.readers(run.port, n);
    if (got < n) throw new Error(`only ${got} of ${n} clients could connect`);
    await syncClients(run, n);
  };
  const aBytes = CFG.aMiB * MiB;
  const runs = (w: string): boolean => CFG.workloads.has(w) && (peer.workloads === undefined || peer.workloads.includes(w));

  if (runs('A')) {
    await step('A1', () =>
      withPeer(peer, 'A1', maxC, farm, scratch, starts, async (run) => {
        await readers(run, 1);
        res.A1 = await throughput(run, 1, aBytes, CFG.aMaxS * 1000);
      }),
    );
    if (peer.fanOut) {
      await step(`A${CFG.aClients}`, () =>
        withPeer(peer, 'A50', maxC, farm, scratch, starts, async (run) => {
          await readers(run, CFG.aClients);
          res.A50 = await throughput(run, CFG.aClients, aBytes, CFG.aMaxS * 1000);
        }),
      );
    }
  }
  if (runs('B')) {
    await step('B1', () =>
      withPeer(peer, 'B1', maxC, farm, scratch, starts, async (run) => {
        await readers(run, 1);
        res.B1 = await latency(run, CFG.bRate, CFG.b1Seconds);
      }),
    );
    if (peer.fanOut) {
      await step(`B${CFG.bClients}`, () =>
        withPeer(peer, 'B50', maxC, farm, scratch, starts, async (run) => {
          await readers(run, CFG.bClients);
          res.B50 = await latency(run, CFG.bRate, CFG.bSeconds);
        }),
      );
    }
  }
  if (runs('C') && peer.fanOut) {
    await step('C', () =>
      withPeer(peer, 'C', maxC, farm, scratch, starts, async (run) => {
        res.C = await memoryLevels(run, CFG.cLevels, CFG.bRate, CFG.cSeconds);
      }),
    );
  }
  if (runs('D') && peer.fanOut) {
    await step('D', () =>
      withPeer(peer, 'D', maxC, farm, scratch, starts, async (run) => {
        await farm.readers(run.port, CFG.bClients);
        const stalled = await farm.stalled(run.port, CFG.dStalled);
        if (stalled < CFG.dStalled) throw new Error(`only ${stalled} of ${CFG.dStalled} stalled clients connected`);
        await syncClients(run, CFG.bClients);
        res.D = await stalledClients(run, CFG.dStalled, CFG.dPrefillMiB * MiB, CFG.bRate, CFG.dSeconds);
      }),
    );
  }
  if (starts.length > 0) {
    const ready = starts.map((s) => s.readyMs).filter((v): v is number => v !== undefined);
    res.E = {
      listenMs: median(starts.map((s) => s.listenMs)),
      ...(ready.length > 0 ? { readyMs: median(ready) } : {}),
      starts: starts.length,
    };
  }
  return res;
}

/** Issue 18: a browser tab costs about what a TCP client does (same session core, other transport). */
function webTargets(results: PeerResults[], clientsA: number, clientsB: number): ReturnType<typeof evaluateTargets> {
  const tcp = results.find((r) => r.id === 'gateway' && !r.skipped);
  const web = results.find((r) => r.id === 'web' && !r.skipped);
  if (!tcp || !web) return [];
  const out: ReturnType<typeof evaluateTargets> = [];
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const p99 = ratio(web.B50?.p99Ms, tcp.B50?.p99Ms);
  out.push({
    id: 'web.B50.p99',
    text: `B a web client's p99 latency at ${clientsB} clients within 1.5x of a TCP client's`,
    met: p99 !== undefined && p99 <= 1.5,
    detail: p99 === undefined ? 'not measured' : `web ${web.B50!.p99Ms.toFixed(3)} ms, tcp ${tcp.B50!.p99Ms.toFixed(3)} ms: ${p99.toFixed(2)}x`,
  });
  const cpu = ratio(web.A50?.cpuPerMB, tcp.A50?.cpuPerMB);
  out.push({
    id: 'web.A50.cpuPerMB',
    text: `A the gateway's CPU per MB at ${clientsA} web clients within 1.5x of ${clientsA} TCP clients`,
    met: cpu !== undefined && cpu <= 1.5,
    detail: cpu === undefined ? 'not measured' : `web ${(web.A50!.cpuPerMB * 1000).toFixed(2)} ms/MB, tcp ${(tcp.A50!.cpuPerMB * 1000).toFixed(2)} ms/MB: ${cpu.toFixed(2)}x`,
  });
  const level = 100;
  const webRss = web.C?.idleMB[level];
  const tcpRss = tcp.C?.idleMB[level];
  out.push({
    id: 'web.C100.rss',
    text: `C RSS with ${level} connected browsers within +15 MB of ${level} TCP clients`,
    met: webRss !== undefined && tcpRss !== undefined && webRss - tcpRss <= 15,
    detail: webRss === undefined || tcpRss === undefined ? `not measured (BENCH_C_LEVELS must include ${level})` : `web ${webRss.toFixed(1)} MB, tcp ${tcpRss.toFixed(1)} MB: ${(webRss - tcpRss >= 0 ? '+' : '')}${(webRss - tcpRss).toFixed(1)} MB`,
  });
  return out;
}

function printProfiles(): void {
  const files = profilesUnder(PROFILE_DIR);
  if (files.length === 0) {
    log('BENCH_PROFILE=1 but no .cpuprofile was written (did the gateway exit cleanly?)');
    return;
  }
  for (const f of files) {
    const { totalMs, busyPct, lines } = topCosts(f, 15);
    console.log(`\nprofile ${f} (${(totalMs / 1000).toFixed(1)} s sampled, ${busyPct.toFixed(0)}% busy); self time:`);
    for (const l of lines) console.log(`  ${l.selfPct.toFixed(1).padStart(5)}%  ${l.selfMs.toFixed(0).padStart(6)} ms  ${l.where}`);
  }
}

async function main(): Promise<void> {
  const peers = CFG.peers.map((id) => {
    const p = ALL_PEERS.find((x) => x.id === id);
    if (!p) throw new TypeError(`BENCH_PEERS: unknown peer ${JSON.stringify(id)} (known: ${ALL_PEERS.map((x) => x.id).join(', ')})`);
    return p;
  });
  if (CFG.profile) {
    rmSync(PROFILE_DIR, { recursive: true, force: true });
    log('BENCH_PROFILE=1: the gateway runs under --cpu-prof; its figures are slower than normal and not saved.');
  }
  const scratch = mkdtempSync(join(tmpdir(), 'sgw-bench-'));
  const farm = new Farm();
  const results: PeerResults[] = [];
  const started = Date.now();
  let reflected: ReflectionRow[] = [];
  try {
    for (const peer of peers) results.push(await benchPeer(peer, farm, scratch));
    if (CFG.workloads.has('R') && peers.some((p) => p.id === 'gateway')) {
      log('R: UDP amplification');
      reflected = await reflection(scratch, { rate: CFG.bRate, seconds: CFG.rSeconds, manySources: CFG.rSources });
    }
  } finally {
    await farm.exit();
    rmSync(scratch, { recursive: true, force: true });
  }

  const rowDefs = rows(CFG.cLevels, CFG.bClients, CFG.aClients);
  const shown = results.filter((r) => !r.skipped);
  console.log(`\nserial-gateway benchmark, ${new Date().toISOString()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}, Linux ${release()}`);
  console.log(
    `A ${CFG.aMiB} MiB of 60-byte lines; B ${CFG.bRate} lines/s for ${CFG.bSeconds} s (1 client: ${CFG.b1Seconds} s); ` +
      `C ${CFG.cLevels.join('/')} clients, ${CFG.cSeconds} s of B each; D ${CFG.dStalled} stalled clients after a ${CFG.dPrefillMiB} MiB burst, ${CFG.dSeconds} s of B\n`,
  );
  console.log(table(shown, rowDefs));
  for (const r of results) {
    if (r.skipped) console.log(`skipped ${r.label}: ${r.skipped}`);
    for (const [w, e] of Object.entries(r.errors)) console.log(`${r.label} ${w} failed: ${e}`);
  }
  console.log('\nsettings:');
  for (const p of peers) console.log(`  ${p.label}: ${p.settings}`);
  if (reflected.length > 0) console.log(`\n${reflectionTable(reflected, { rate: CFG.bRate, seconds: CFG.rSeconds })}`);
  const targets = evaluateTargets(results, { stalled: CFG.dStalled, clientBufferBytes: GATEWAY_CLIENT_BUFFER, levels: CFG.cLevels });
  const unproven = reflected.filter((r) => r.trusted === '[]');
  if (unproven.length > 0) {
    const worst = Math.max(...unproven.map((r) => r.worst));
    const before = Math.max(...reflected.filter((r) => r.trusted !== '[]').map((r) => r.worst));
    targets.push({
      id: 'R.amplification',
      text: 'R an unproven UDP source gets <= 3x the bytes it sent, every mode and scenario (issue 17)',
      met: worst <= 3,
      detail: `worst ${worst.toFixed(2)}x; a trusted source (every source before issue 17) got up to ${before.toFixed(0)}x`,
    });
  }
  targets.push(...webTargets(results, CFG.aClients, CFG.bClients));
  console.log(`\ntargets (issues 6, 15, 17 and 18):\n${targetsText(targets)}`);

  const saved: SavedRun & Record<string, unknown> = {
    date: new Date().toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, kernel: release() },
    config: { ...CFG, workloads: [...CFG.workloads], gatewayClientBufferBytes: GATEWAY_CLIENT_BUFFER, gatewayRingBytes: GATEWAY_RING },
    rows: rowDefs.map((row) => ({
      key: row.key,
      label: row.label,
      values: Object.fromEntries(shown.map((r) => {
        const v = row.get(r);
        return [r.id, v !== undefined && Number.isFinite(v) ? v : null];
      })),
    })),
    targets,
    peers: results,
    reflection: reflected,
  };
  if (existsSync(CFG.out)) {
    try {
      const prev = JSON.parse(readFileSync(CFG.out, 'utf8')) as SavedRun;
      console.log(`\n${changeText(prev, saved)}`);
    } catch (err) {
      console.log(`\n(previous ${CFG.out} unreadable: ${(err as Error).message})`);
    }
  }
  if (CFG.profile) {
    printProfiles();
  } else {
    mkdirSync(join(CFG.out, '..'), { recursive: true });
    writeFileSync(CFG.out, `${JSON.stringify(saved, null, 2)}\n`);
    console.log(`\nwrote ${CFG.out} (${saved.durationS} s run)`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
