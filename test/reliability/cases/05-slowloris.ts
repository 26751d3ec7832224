import { connect, type Socket } from 'node:net';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { rssOf, sleep, waitUntil } from '../measure.js';

/**
 * Issue 7, case 5: slowloris. Many clients each send one byte at a time of a line that never ends.
 *
 * Device: the built-in simulator (sim:labbox), which answers any line that reaches it (`ERR unknown command`
 * for junk), so a slowloris byte that got through would show up at every client in shared mode.
 * - `lab` (no idle timeout): N slowloris clients trickle `x` bytes, one every B ms, past maxLineBytes (64).
 *   Meanwhile a normal client sends `id` every Q ms and must get `6510500000` back promptly (bound 500 ms).
 *   The daemon's RSS must not grow with the trickle (each client's partial line is bounded by maxLineBytes:
 *   past it the bytes are counted, not kept). At the end every slowloris sends LF: each must get
 *   `! line too long` (the notice comes at the terminator, with the full length, by the framer's design),
 *   and no junk line may have reached the device.
 * - `short` (idleTimeoutMs I): a silent client, a slowloris (a byte every I/5 ms, never a line) and a client
 *   sending a whole line every I/2 ms. idleTimeoutMs counts complete lines only (src/net/tcp-session.ts): the
 *   silent client and the slowloris are closed with `! idle for ...`, the line sender stays.
 */

interface Params {
  slowloris: number;
  byteEveryMs: number;
  runMs: number;
  idEveryMs: number;
  idleMs: number;
}

const PARAMS: Record<Scale, Params> = {
  fast: { slowloris: 40, byteEveryMs: 20, runMs: 2000, idEveryMs: 100, idleMs: 600 },
  soak: { slowloris: 200, byteEveryMs: 1000, runMs: 90_000, idEveryMs: 1000, idleMs: 3000 },
};

const MAX_LINE = 64;
const ID_BOUND_MS = 500;
const RSS_BOUND = 16 * 1024 * 1024;

export const reliabilityCase: ReliabilityCase = { name: '05 slowloris', run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const lab = await freePort();
  const short = await freePort();
  let d: RunningDaemon | undefined;
  const clients: Peer[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    d = await startDaemon(dir, config(lab, short, p.idleMs, p.slowloris + 10));
    const pid = d.child.pid!;
    const normal = await Peer.connect(lab);
    const loris = await Promise.all(Array.from({ length: p.slowloris }, () => Peer.connect(lab)));
    clients.push(normal, ...loris);
    normal.send('id\n');
    await waitUntil(() => normal.text.includes('6510500000\r\n'), 3000);
    const rss0 = rssOf(pid);
    let rssPeak = rss0;

    // The idle-timeout listener: silent, slowloris, and one that sends whole lines.
    const silent = await Peer.connect(short);
    const idleLoris = await Peer.connect(short);
    const talker = await Peer.connect(short);
    clients.push(silent, idleLoris, talker);
    const t0 = performance.now();
    timers.push(setInterval(() => idleLoris.send('y'), Math.max(1, Math.floor(p.idleMs / 5))));
    timers.push(setInterval(() => talker.send('name\n'), Math.floor(p.idleMs / 2)));

    // The trickle: staggered, one byte per client every B ms.
    let bytesSent = 0;
    loris.forEach((c, i) => {
      setTimeout(() => {
        if (c.closed) return;
        timers.push(
          setInterval(() => {
            c.send('x');
            bytesSent++;
          }, p.byteEveryMs),
        );
      }, (i * p.byteEveryMs) / loris.length);
    });

    // The normal client: `id` every Q ms, each answer timed.
    const delays: number[] = [];
    let asked = 0;
    const askLoop = (async () => {
      while (performance.now() - t0 < p.runMs) {
        const before = normal.count('6510500000\r\n');
        const at = performance.now();
        normal.send('id\n');
        asked++;
        const ok = await waitUntil(() => normal.count('6510500000\r\n') > before, 3000);
        delays.push(ok ? performance.now() - at : Infinity);
        rssPeak = Math.max(rssPeak, rssOf(pid));
        await sleep(p.idEveryMs);
      }
    })();
    await askLoop;
    for (const t of timers) clearInterval(t);
    timers.length = 0;
    const rss1 = rssOf(pid);
    rssPeak = Math.max(rssPeak, rss1);

    const sorted = [...delays].sort((a, b) => a - b);
    const worst = sorted.at(-1) ?? Infinity;
    r.checks.push({
      ok: delays.length > 0 && worst < ID_BOUND_MS,
      what:
        `a normal client was served during the trickle: ${asked} \`id\` answered, median ${(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1)} ms, ` +
        `worst ${worst.toFixed(1)} ms (bound ${ID_BOUND_MS})`,
    });
    r.rssGrowth = rss1 - rss0;
    r.checks.push({
      ok: rssPeak - rss0 <= RSS_BOUND,
      what:
        `per-client input is bounded: ${p.slowloris} clients trickled ${bytesSent} bytes (~${Math.round(bytesSent / p.slowloris)} each, ` +
        `maxLineBytes ${MAX_LINE}); daemon RSS ${mb(rss0)} -> peak ${mb(rssPeak)} (bound +${mb(RSS_BOUND)})`,
    });

    // Every slowloris ends its line now: each is told it was too long; none of it reached the device.
    const past = loris.filter((c) => c.sent > MAX_LINE).length;
    for (const c of loris) c.send('\n');
    await waitUntil(() => loris.every((c) => c.text.includes('! line too long') || c.closed), 3000);
    const told = loris.filter((c) => c.text.includes('! line too long')).length;
    normal.send('id\n');
    await sleep(100);
    const junk = clients.filter((c) => c.text.includes('ERR')).length;
    r.checks.push({
      ok: told === past && past === loris.length && junk === 0 && loris.every((c) => !c.closed),
      what:
        `${past} of ${loris.length} slowloris clients passed maxLineBytes; after LF ${told} got \`! line too long\`, none was disconnected, ` +
        `and no junk reached the device (${junk} clients saw an ERR answer)`,
    });

    // Idle timeout: what counts as activity is a complete line.
    const idleOk = await waitUntil(() => silent.closed && idleLoris.closed, p.idleMs * 3);
    const silentTold = silent.text.includes('! idle for');
    const lorisTold = idleLoris.text.includes('! idle for');
    r.checks.push({
      ok: idleOk && silentTold && lorisTold && !talker.closed,
      what:
        `idleTimeoutMs ${p.idleMs} counts complete lines only: the silent client was closed (${silent.closed}, told: ${silentTold}), ` +
        `the slowloris sending a byte every ${Math.floor(p.idleMs / 5)} ms too (${idleLoris.closed}, told: ${lorisTold}), ` +
        `the client sending a line every ${Math.floor(p.idleMs / 2)} ms stayed (${!talker.closed})`,
    });
    r.faults = p.slowloris + 2;
    return r;
  } finally {
    for (const t of timers) clearInterval(t);
    for (const c of clients) c.socket.destroy();
    await d?.stop();
  }
}

function config(lab: number, short: number, idleMs: number, maxClients: number): string {
  return `serial:
  path: sim:labbox
lines:
  maxLineBytes: ${MAX_LINE}
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${lab}
    telnet: off
    maxClients: ${maxClients}
  - name: short
    host: 127.0.0.1
    port: ${short}
    telnet: off
    idleTimeoutMs: ${idleMs}
udp: []
log:
  level: warning
`;
}

class Peer {
  closed = false;
  sent = 0;
  private buf = '';

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => (this.buf = (this.buf + s).slice(-65536)));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new Peer(s)));
      s.once('error', reject);
    });
  }

  get text(): string {
    return this.buf;
  }

  count(what: string): number {
    return this.buf.split(what).length - 1;
  }

  send(text: string): void {
    if (this.closed) return;
    this.sent += text.length;
    this.socket.write(text);
  }
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
