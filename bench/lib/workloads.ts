/**
 * Issue 6's workloads A-D, each against one running bridge. Every function gets a fresh bridge process on a
 * fresh pty (see gateway.bench.ts `withPeer`), so CPU and memory figures belong to that workload alone.
 */
import type { Device } from './device.js';
import type { Farm, FarmReport } from './farm.js';
import { LINE_BYTES } from './lines.js';
import { cpuSeconds, establishedOn, memory, sampleMemory } from './proc.js';
import { median, min, sleep } from './stats.js';

export interface Run {
  pid: number;
  port: number;
  device: Device;
  farm: Farm;
  /** process.hrtime.bigint() at the benchmark's start: the zero of every stamp. */
  base: bigint;
  /** Progress notes (stderr). */
  note(msg: string): void;
  /** The bridge's last systemd STATUS= text, for the bridges that send one (this gateway). */
  status(): string | undefined;
}

const MB = 1e6;
const toMB = (bytes: number): number => bytes / 1048576;
let syncToken = 1;

/**
 * Sends `SYNC n` lines until `expected` readers have seen the last one sent: then every bridge has the device
 * open, every client is attached and nothing older is still in flight.
 */
export async function syncClients(run: Run, expected: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = { seen: 0, open: 0 };
  while (Date.now() < deadline) {
    const token = syncToken++;
    await run.device.sync(token);
    const until = Date.now() + 300;
    while (Date.now() < until) {
      last = await run.farm.synced(token);
      if (last.seen >= expected) return;
      await sleep(10);
    }
  }
  throw new Error(`only ${last.seen} of ${expected} clients (${last.open} open) saw the device's sync line within ${timeoutMs} ms`);
}

export interface ThroughputResult {
  clients: number;
  writtenMB: number;
  /** How fast the pty took the bytes (the bridge's read rate). */
  deviceMBps: number;
  /** Per client: bytes received / (last byte - first write); median and slowest client. */
  mbpsPerClient: number;
  mbpsSlowest: number;
  deliveredPct: number;
  cpuSeconds: number;
  /** Bridge CPU seconds per MB (10^6 bytes) read from the device. */
  cpuPerMB: number;
  /** The client process's CPU use, % of one core: near 100 means the clients, not the bridge, set the pace. */
  farmCpuPct: number;
}

/** A: `bytes` of 60-byte lines as fast as the pty takes them, to `clients` readers already connected. */
export async function throughput(run: Run, clients: number, bytes: number, maxMs: number): Promise<ThroughputResult> {
  await run.farm.measure('bytes', run.base);
  const cpu0 = cpuSeconds(run.pid);
  const farm0 = cpuSeconds(run.farm.pid);
  const bulk = await run.device.bulk(bytes, maxMs);
  await run.farm.wait(bulk.written, 1000, 60_000);
  const report = await run.farm.report();
  const cpu = cpuSeconds(run.pid) - cpu0;
  const startMs = bulk.startNs / 1e6;
  const lastMs = Math.max(...report.readers.map((r) => r.lastAtMs));
  const rates = report.readers.map((r) => (r.bytes > 0 ? r.bytes / MB / ((r.lastAtMs - startMs) / 1000) : 0));
  const received = report.readers.reduce((n, r) => n + r.bytes, 0);
  return {
    clients: report.readers.length,
    writtenMB: bulk.written / MB,
    deviceMBps: bulk.written / MB / (bulk.ms / 1000),
    mbpsPerClient: median(rates),
    mbpsSlowest: min(rates),
    deliveredPct: (100 * received) / (bulk.written * Math.max(1, report.readers.length)),
    cpuSeconds: cpu,
    cpuPerMB: cpu / (bulk.written / MB),
    farmCpuPct: (100 * (cpuSeconds(run.farm.pid) - farm0)) / Math.max(0.001, (lastMs - startMs) / 1000),
  };
}

export interface LatencyResult {
  clients: number;
  linesWritten: number;
  linesScheduled: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Stamped lines received / (lines written x readers). */
  deliveredPct: number;
  /** How long the device's writes waited for the pty (a bridge that stopped reading). */
  deviceBlockedMs: number;
  /** Bridge CPU, % of one core, while the lines flowed. */
  cpuPct: number;
  rssMaxMB: number;
}

function latencyFrom(report: FarmReport, written: number, scheduled: number, blockedMs: number, cpuPct: number, rssMax: number): LatencyResult {
  const s = report.hist.summary();
  const lines = report.readers.reduce((n, r) => n + r.lines, 0);
  return {
    clients: report.readers.length,
    linesWritten: written,
    linesScheduled: scheduled,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
    deliveredPct: (100 * lines) / Math.max(1, written * report.readers.length),
    deviceBlockedMs: blockedMs,
    cpuPct,
    rssMaxMB: toMB(rssMax),
  };
}

/** B: `rate` stamped lines a second for `seconds` to the readers already connected. */
export async function latency(run: Run, rate: number, seconds: number): Promise<LatencyResult> {
  await run.farm.measure('stamps', run.base);
  const rss = sampleMemory(run.pid);
  const cpu0 = cpuSeconds(run.pid);
  const paced = await run.device.paced(rate, seconds);
  await run.farm.wait(paced.written * LINE_BYTES, 500, 5000);
  const cpuPct = (100 * (cpuSeconds(run.pid) - cpu0)) / (paced.ms / 1000);
  const mem = rss.stop();
  const report = await run.farm.report();
  return latencyFrom(report, paced.written, paced.scheduled, paced.blockedMs, cpuPct, mem.max);
}

export interface MemoryResult {
  /** Clients asked for -> connected. */
  connected: Record<string, number>;
  /** RSS in MB (2^20) with that many clients, idle (after 1 s) and the highest sample under B traffic. */
  idleMB: Record<string, number>;
  underBMB: Record<string, number>;
}

/** C: RSS at 0, 100 and 500 clients (cumulative), idle and under `rate` lines/s for `seconds` each. */
export async function memoryLevels(run: Run, levels: number[], rate: number, seconds: number): Promise<MemoryResult> {
  const res: MemoryResult = { connected: {}, idleMB: {}, underBMB: {} };
  let have = 0;
  for (const level of levels) {
    const t0 = Date.now();
    if (level > have) have += await run.farm.readers(run.port, level - have);
    res.connected[level] = have;
    const t1 = Date.now();
    if (have > 0) await syncClients(run, have);
    run.note(`C: ${have} clients connected in ${t1 - t0} ms, all receiving after ${Date.now() - t1} ms more`);
    await sleep(1000);
    res.idleMB[level] = toMB(memory(run.pid).rss);
    await run.farm.measure('bytes', run.base);
    const rss = sampleMemory(run.pid);
    await run.device.paced(rate, seconds, 500);
    res.underBMB[level] = toMB(rss.stop().max);
  }
  return res;
}

export interface StallResult extends LatencyResult {
  stalled: number;
  /** Stalled clients the bridge still had open at the end (it may close clients that never read). */
  stalledOpenAtEnd: number;
  prefillMB: number;
  prefillBlockedMs: number;
  rssEndMB: number;
  /** Lines the gateway reports dropped (its STATUS= `dropped N`): what the stalled clients lost. */
  droppedReported?: number;
}

/**
 * D: `stalled` clients that never read (connected with a tiny SO_RCVBUF) next to the readers. A burst of
 * `prefillBytes` first fills every socket buffer between the bridge and the stalled clients, so that during
 * the paced phase the bridge really holds data it cannot send. Then B as usual, measured on the readers.
 */
export async function stalledClients(
  run: Run,
  stalled: number,
  prefillBytes: number,
  rate: number,
  seconds: number,
): Promise<StallResult> {
  await run.farm.measure('bytes', run.base);
  const prefill = await run.device.bulk(prefillBytes, 5000);
  await run.farm.wait(prefill.written, 1000, 10_000);
  const lat = await latency(run, rate, seconds);
  const open = establishedOn(run.port);
  const readersOpen = (await run.farm.report()).readers.filter((r) => !r.closed).length;
  // STATUS= goes out at most once a second: wait for one written after the lines stopped.
  await sleep(1100);
  const dropped = /dropped (\d+)/.exec(run.status() ?? '');
  return {
    ...lat,
    stalled,
    stalledOpenAtEnd: Math.max(0, open - readersOpen),
    prefillMB: prefill.written / MB,
    prefillBlockedMs: prefill.blockedMs,
    rssEndMB: toMB(memory(run.pid).rss),
    ...(dropped ? { droppedReported: Number(dropped[1]) } : {}),
  };
}
