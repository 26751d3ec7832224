import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { PtyPair } from '../../support/pty.js';
import { Random, seedFromEnv } from '../../support/random.js';
import { fdCount, rssOf, sleep, waitUntil } from '../measure.js';

/**
 * Issue 7, case 6: UDP abuse. A UDP port is open to anyone on the network, so anyone can fill its subscriber
 * table, send nothing, send too much, or send noise.
 *
 * The abuse: waves of short-lived sockets (each its own source port; at most WAVE open at once), each sending
 * one datagram: empty (only takes a lease), random bytes (lines for the device), or now and then an oversized
 * one (65,507 bytes, the most an IPv4 UDP datagram can carry on Linux loopback; the 64 KiB of the issue does
 * not fit in one datagram) which must be answered with `! datagram refused`. The device is a real pty that the
 * test drains.
 *
 * Then, from outside, the bound: PROBES sockets (MAX_PEERS + EXTRA) each take a lease in turn, the device sends
 * numbered lines, and only the newest MAX_PEERS may receive them: the EXTRA oldest leases (and every abuser's)
 * gave way. The peer count on STATUS= never exceeds MAX_PEERS. Finally the daemon must still answer, and its fd
 * count and RSS are compared with a baseline taken after a warm-up wave.
 *
 * Reflection (issue 17): a second UDP port trusts nobody, as the Pi's port does for addresses outside its own
 * networks. In each round REFLECTORS fresh sources send it one datagram (empty or random) while the device
 * talks; none of them may get back more than 3x the bytes it sent, IP and UDP headers counted.
 */

interface Params {
  /** Rounds of abuse, each followed by the bound check; the sockets of a round go out in waves of WAVE. */
  rounds: number;
  socketsPerRound: number;
  /** A pause between rounds, so the soak spreads its source ports over time. */
  pauseMs: number;
}

const PARAMS: Record<Scale, Params> = {
  fast: { rounds: 1, socketsPerRound: 300, pauseMs: 0 },
  soak: { rounds: 20, socketsPerRound: 500, pauseMs: 1000 },
};

const MAX_PEERS = 64;
const EXTRA = 16;
const PROBE_LINES = 10;
const WAVE = 100;
const REFLECTORS = 100;
const IPV4_OVERHEAD = 28;
const OVERSIZED = 65507;
const MAX_LINE = 4096;
const WARMUP = 100;
const RSS_BOUND = 16e6;
/**
 * With V8's defaults the heap grows lazily (young generation up to 48 MB, old space until the next major GC),
 * so RSS climbed 35 MB over a soak while the heap in use after a full GC stayed at 7 MB (measured with a
 * preloaded probe). A small heap makes V8 collect early, so RSS follows live memory, and a real leak would
 * show as growth or end in an out-of-memory crash, which the "still answers" check catches.
 */
const SMALL_HEAP = '--max-semi-space-size=1 --max-old-space-size=32';

export const reliabilityCase: ReliabilityCase = { name: '06 udp abuse', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const rnd = new Random(seedFromEnv());
  r.notes.push(`seed ${rnd.seed} (SEED=${rnd.seed} replays the datagrams)`);
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  // The device side only has to keep reading what the abusers' datagrams became; bytes are counted, not kept.
  let deviceBytes = 0;
  const drain = setInterval(() => (deviceBytes += pty.takeBuffered().length), 20);
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const outsidePort = await freePort();
  let d: RunningDaemon | undefined;
  const open = new Set<DgramSocket>();
  try {
    d = await startDaemon(dir, config(pty.linkPath, tcpPort, udpPort, outsidePort), { NODE_OPTIONS: SMALL_HEAP });
    await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
    const pid = d.child.pid!;

    const abuse = new Abuse(udpPort, rnd, open);
    await abuse.wave(WARMUP, 0);
    await sleep(200);
    const fdsBefore = fdCount(pid);
    const rssBefore = rssOf(pid);
    let rssMost = rssBefore;
    let fdsMost = fdsBefore;
    const rssTrend: number[] = [];

    const bound = { rounds: 0, full: 0, leaked: 0, disorder: 0 };
    const reflection = { sources: 0, inWire: 0, outWire: 0, worst: 0 };
    for (let round = 0; round < p.rounds; round++) {
      if (round > 0) await sleep(p.pauseMs);
      for (let sent = 0; sent < p.socketsPerRound; sent += WAVE) await abuse.wave(Math.min(WAVE, p.socketsPerRound - sent), sent);
      // The wave's datagrams fill the daemon's receive buffer (about 200 KB); a 64 KiB datagram sent while the
      // daemon is still reading them is dropped by the kernel, not by the gateway (seen on a loaded machine).
      await sleep(200);
      await abuse.oversized(OVERSIZED);
      await abuse.oversized(MAX_LINE + 1);

      // The bound, seen from outside: only the newest MAX_PEERS leases get device lines.
      const probes: Probe[] = [];
      for (let i = 0; i < MAX_PEERS + EXTRA; i++) {
        const probe = await Probe.open(open);
        probes.push(probe);
        probe.socket.send(Buffer.alloc(0), udpPort, '127.0.0.1');
        // One datagram at a time, so the daemon sees the leases in this order.
        await sleep(2);
      }
      await sleep(50);
      for (let n = 0; n < PROBE_LINES; n++) await pty.write(`probe ${round} ${n}\r\n`);
      const newest = probes.slice(EXTRA);
      const oldest = probes.slice(0, EXTRA);
      await waitUntil(() => newest.every((q) => q.lines.length >= PROBE_LINES), 3000);
      await sleep(200); // any line an evicted peer might still get
      const expected = Array.from({ length: PROBE_LINES }, (_, n) => `probe ${round} ${n}\r\n`).join('');
      r.linesSent += newest.length * PROBE_LINES;
      for (const q of newest) r.linesDelivered += q.lines.filter((l) => l.startsWith(`probe ${round} `)).length;
      bound.rounds++;
      bound.full += newest.filter((q) => q.lines.length === PROBE_LINES).length;
      bound.disorder += newest.filter((q) => q.lines.length === PROBE_LINES && q.lines.join('') !== expected).length;
      bound.leaked += oldest.filter((q) => q.lines.length > 0).length;
      for (const q of probes) q.close();

      // Forged-looking sources on the port that trusts nobody, while the device talks.
      const reflectors = await Promise.all(Array.from({ length: REFLECTORS }, () => Probe.open(open)));
      for (const [i, q] of reflectors.entries()) {
        const body = i % 2 === 0 ? Buffer.alloc(0) : rnd.bytes(rnd.int(1, 64));
        q.sentWire += body.length + IPV4_OVERHEAD;
        q.socket.send(body, outsidePort, '127.0.0.1');
      }
      for (let n = 0; n < PROBE_LINES * 10; n++) await pty.write(`to no one ${round} ${n}\r\n`);
      await sleep(300);
      for (const q of reflectors) {
        const out = q.wireFrom.get(outsidePort) ?? 0;
        reflection.sources++;
        reflection.inWire += q.sentWire;
        reflection.outWire += out;
        reflection.worst = Math.max(reflection.worst, out / q.sentWire);
        q.close();
      }
      r.faults += REFLECTORS;
      rssTrend.push(rssOf(pid));
      rssMost = Math.max(rssMost, rssTrend.at(-1)!);
      fdsMost = Math.max(fdsMost, fdCount(pid));
    }
    r.faults += abuse.datagrams;
    r.checks.push({
      ok: abuse.refusals === abuse.oversizedSent,
      what: `every oversized datagram (${abuse.oversizedSent}: ${OVERSIZED} and ${MAX_LINE + 1} bytes) was answered \`! datagram refused\` (${abuse.refusals} answers${abuse.badRefusal ? `; unexpected answer ${JSON.stringify(abuse.badRefusal)}` : ''})`,
    });
    r.checks.push({
      ok: bound.full === bound.rounds * MAX_PEERS && bound.disorder === 0,
      what: `after each of ${bound.rounds} rounds the newest ${MAX_PEERS} peers each got all ${PROBE_LINES} device lines, in order (${bound.full} of ${bound.rounds * MAX_PEERS} did; ${bound.disorder} out of order)`,
    });
    r.checks.push({
      ok: bound.leaked === 0,
      what: `the ${EXTRA} oldest leases of each round gave way: none got a device line (${bound.leaked} of ${bound.rounds * EXTRA} did)`,
    });
    r.checks.push({
      ok: reflection.worst <= 3,
      what: `no unproven source got more than 3x the bytes it sent, headers counted (${reflection.sources} sources: worst ${reflection.worst.toFixed(2)}x; all ${reflection.inWire} B in, ${reflection.outWire} B out)`,
    });
    // STATUS= comes at most once a second: wait for one that shows the full table.
    await d.notify.waitFor((m) => udpPeers(m.STATUS) >= MAX_PEERS, 2500).catch(() => undefined);
    const most = Math.max(0, ...d.notify.messages.map((m) => udpPeers(m.STATUS)));
    r.checks.push({ ok: most <= MAX_PEERS, what: `the subscriber table never held more than maxPeers ${MAX_PEERS} (most seen on STATUS=: ${most})` });

    // Still serving: a fresh peer's line reaches the device, and it gets a device line.
    clearInterval(drain);
    deviceBytes += pty.takeBuffered().length;
    const alive = await stillServing(pty, udpPort, open);
    r.checks.push({ ok: d.child.exitCode === null && alive === '', what: alive || 'the daemon still answers afterwards (UDP peer got a device line, a UDP line reached the device)' });

    await sleep(300);
    const fdsAfter = fdCount(pid);
    const rssAfter = rssOf(pid);
    r.fdsLeaked = fdsAfter - fdsBefore;
    r.rssGrowth = rssAfter - rssBefore;
    r.checks.push({ ok: r.fdsLeaked <= 0, what: `daemon fds stable: ${fdsBefore} before, ${fdsAfter} after ${abuse.sockets} source ports (most ${fdsMost})` });
    r.checks.push({
      ok: r.rssGrowth < RSS_BOUND,
      what: `daemon RSS stable: ${(rssBefore / 1e6).toFixed(1)} MB -> ${(rssAfter / 1e6).toFixed(1)} MB, most ${(rssMost / 1e6).toFixed(1)} MB (bound: +${RSS_BOUND / 1e6} MB)`,
    });
    r.notes.push(`daemon run with NODE_OPTIONS="${SMALL_HEAP}" so RSS follows live memory; RSS after each round, MB: ${rssTrend.map((x) => (x / 1e6).toFixed(1)).join(' ')}`);
    r.notes.push(
      `${abuse.sockets} source ports sent ${abuse.datagrams} datagrams (${abuse.empty} empty, ${abuse.random} random, ${abuse.oversizedSent} oversized); ` +
        `the device received ${deviceBytes} bytes of their lines; ${abuse.answers} datagrams came back to abusers`,
    );
    return r;
  } finally {
    clearInterval(drain);
    for (const s of open) s.close();
    await d?.stop();
    pty.close();
  }
}

function config(link: string, tcpPort: number, udpPort: number, outsidePort: number): string {
  return `serial:
  path: ${link}
lines:
  maxLineBytes: ${MAX_LINE}
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${tcpPort}
udp:
  - name: udp
    host: 127.0.0.1
    port: ${udpPort}
    maxPeers: ${MAX_PEERS}
    leaseSeconds: 600
  - name: outside
    host: 127.0.0.1
    port: ${outsidePort}
    trusted: []
log:
  level: warning
`;
}

/** The abusers: one socket per datagram, so every datagram comes from a fresh source port. */
class Abuse {
  sockets = 0;
  datagrams = 0;
  empty = 0;
  random = 0;
  answers = 0;
  oversizedSent = 0;
  refusals = 0;
  badRefusal = '';

  constructor(
    private readonly port: number,
    private readonly rnd: Random,
    private readonly open: Set<DgramSocket>,
  ) {}

  /** `n` sockets open at once, one datagram each, then all closed. */
  async wave(n: number, offset: number): Promise<void> {
    const wave: DgramSocket[] = [];
    for (let i = 0; i < n; i++) {
      const s = createSocket('udp4');
      this.open.add(s);
      s.on('error', () => {});
      s.on('message', () => this.answers++);
      wave.push(s);
      const kind = (offset + i) % 3;
      const body = kind === 0 ? Buffer.alloc(0) : this.rnd.bytes(this.rnd.int(1, kind === 1 ? 64 : MAX_LINE));
      if (body.length === 0) this.empty++;
      else this.random++;
      this.sockets++;
      this.datagrams++;
      s.send(body, this.port, '127.0.0.1');
    }
    // Long enough for the daemon to take the wave in, and for any answer (a refused line) to come back.
    await sleep(30);
    for (const s of wave) {
      this.open.delete(s);
      s.close();
    }
  }

  /** One oversized datagram from a fresh port; waits for the refusal. */
  async oversized(size: number): Promise<void> {
    const s = createSocket('udp4');
    this.open.add(s);
    s.on('error', () => {});
    const answer = new Promise<string>((resolve) => {
      s.once('message', (m) => resolve(m.toString('latin1')));
      setTimeout(() => resolve(''), 2000);
    });
    this.sockets++;
    this.datagrams++;
    this.oversizedSent++;
    s.send(Buffer.alloc(size, 0x5a), this.port, '127.0.0.1');
    const text = await answer;
    if (text.startsWith(`! datagram refused: ${size} bytes`)) this.refusals++;
    else this.badRefusal ||= text || `(nothing within 2 s for ${size} bytes)`;
    this.open.delete(s);
    s.close();
  }
}

/** A peer that keeps its lease and collects the device lines it gets. */
class Probe {
  readonly lines: string[] = [];
  sentWire = 0;
  /** Bytes on the wire from each of the daemon's ports: a reused source port may still hold a lease on the other. */
  readonly wireFrom = new Map<number, number>();

  private constructor(
    readonly socket: DgramSocket,
    private readonly open: Set<DgramSocket>,
  ) {
    socket.on('message', (m, from) => {
      this.lines.push(m.toString('latin1'));
      this.wireFrom.set(from.port, (this.wireFrom.get(from.port) ?? 0) + m.length + IPV4_OVERHEAD);
    });
    socket.on('error', () => {});
  }

  static async open(open: Set<DgramSocket>): Promise<Probe> {
    const s = createSocket('udp4');
    open.add(s);
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return new Probe(s, open);
  }

  close(): void {
    this.open.delete(this.socket);
    this.socket.close();
  }
}

/** '' when a fresh peer's line reaches the device and a device line reaches the peer; else what failed. */
async function stillServing(pty: PtyPair, udpPort: number, open: Set<DgramSocket>): Promise<string> {
  const q = await Probe.open(open);
  try {
    pty.takeBuffered();
    q.socket.send('still there?', udpPort, '127.0.0.1');
    const seen = await pty.readUntil('still there?\r\n', 2000).then(
      () => true,
      () => false,
    );
    if (!seen) return 'a UDP line from a fresh peer did not reach the device within 2 s';
    await pty.write('yes\r\n');
    if (!(await waitUntil(() => q.lines.includes('yes\r\n'), 2000))) return 'a fresh UDP peer got no device line within 2 s';
    return '';
  } finally {
    q.close();
  }
}

function udpPeers(status: string | undefined): number {
  const m = /\budp (\d+)\b/.exec(status ?? '');
  return m ? Number(m[1]) : -1;
}
