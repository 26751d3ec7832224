import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { PtyPair } from '../../support/pty.js';
import { Random, seedFromEnv } from '../../support/random.js';
import { fdCount, rssOf, sleep, waitUntil } from '../measure.js';
import { labConfig } from '../lab-config.js';

/**
 * Issue 7, case 1: the lab box is unplugged and plugged back in, again and again, while it talks.
 *
 * The device (the test, on a real pty) writes numbered lines without pause whenever it is plugged in; three
 * clients read them. Each cycle pulls the pty (`unplug`, the master closes: a hang-up for the daemon), waits a
 * random pause, and re-creates it at the same path (`replug`). Checked from outside:
 * - reconnect time: from replug() to the `! device back` notice at a client, and to the first device line
 *   after it; bound 1 s. The bound is a property of the config: reconnectMaxMs 100 caps the wait between two
 *   open attempts, and the backoff restarts at reconnectMinMs 20 after every loss.
 * - no client is ever disconnected;
 * - every line the gateway read from the device is, for each client, delivered or announced as missed
 *   (`! missed N lines`). The gateway's own count (`lines in X` on STATUS=) is the reference: lines still in
 *   the pty's kernel buffer when it was pulled never reached the gateway, as bytes in a USB adapter's FIFO
 *   never would; they are reported in the notes, not hidden.
 */

interface Params {
  cycles: number;
  pauseMs: [number, number];
  plugMs: [number, number];
}

const PARAMS: Record<Scale, Params> = {
  fast: { cycles: 5, pauseMs: [20, 120], plugMs: [60, 160] },
  soak: { cycles: 50, pauseMs: [20, 800], plugMs: [200, 1500] },
};

const CLIENTS = 3;
const RECONNECT_BOUND_MS = 1000;
const LINE = /^L(\d{8}) x{40}$/;
const NOTICE = /! (device away|device back|missed (\d+) lines?)[^\r\n]*$/;

export const reliabilityCase: ReliabilityCase = { name: '01 unplug/replug', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const rnd = new Random(seedFromEnv());
  r.notes.push(`seed ${rnd.seed} (SEED=${rnd.seed} replays the pauses)`);
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  const port = await freePort();
  let d: RunningDaemon | undefined;
  const clients: Tally[] = [];
  const device = new Device(pty);
  try {
    d = await startDaemon(dir, labConfig(pty.linkPath, port));
    for (let i = 0; i < CLIENTS; i++) clients.push(await Tally.connect(port));
    // A line from each client reaching the pty proves the port is open and every client is attached (STATUS=
    // would say so too, but only once a second).
    clients.forEach((c, i) => c.send(`hello ${i}\n`));
    for (let i = 0; i < CLIENTS; i++) await pty.readUntil('\r\n', 5000);
    const watch = clients[0]!;

    const pid = d.child.pid!;
    const fdsBefore = fdCount(pid);
    const rssBefore = rssOf(pid);
    device.start();
    const reconnects: number[] = [];
    // Per cycle, the lines that may rightly be missing: from the first one no client had yet at the unplug (in
    // the kernel's pty buffer or the gateway's hands) up to the last one written before the gateway was back
    // (open flushes the tty's input, as a UART's would be).
    const windows: [number, number][] = [];
    const firstLines: number[] = [];
    let stuck = '';
    for (let cycle = 0; cycle < p.cycles; cycle++) {
      await sleep(rnd.int(...p.plugMs));
      const backBefore = watch.backAt.length;
      // Every other unplug lands mid-sentence: half a line is out, its end never comes.
      if (cycle % 2 === 1) await device.cutMidLine();
      const inFlightFrom = Math.min(...clients.map((c) => c.last)) + 1;
      pty.unplug();
      r.faults++;
      await sleep(rnd.int(...p.pauseMs));
      const linesBefore = watch.lineAt.length;
      const replugAt = performance.now();
      pty.replug();
      device.resume();
      const back = await waitUntil(() => watch.backAt.length > backBefore && watch.lineAt.length > linesBefore, 3000);
      if (!back) {
        stuck = `cycle ${cycle + 1}: no \`! device back\` and no device line within 3 s of the replug`;
        break;
      }
      windows.push([inFlightFrom, device.next]);
      reconnects.push(watch.backAt[backBefore]! - replugAt);
      firstLines.push(watch.lineAt[linesBefore]! - replugAt);
    }
    await device.stop();
    // Quiet: everything the gateway read has reached the clients (or been counted) before we add up.
    await waitUntil(() => clients.every((c) => performance.now() - c.lastDataAt > 150), 3000);

    const worst = Math.max(0, ...reconnects);
    const worstLine = Math.max(0, ...firstLines);
    r.checks.push({
      ok: stuck === '' && reconnects.length === p.cycles && worst < RECONNECT_BOUND_MS,
      what:
        stuck ||
        `reconnected after each of ${reconnects.length} replugs within ${RECONNECT_BOUND_MS} ms (device back: median ${median(reconnects).toFixed(0)} ms, ` +
          `worst ${worst.toFixed(0)} ms; first device line: worst ${worstLine.toFixed(0)} ms; reconnectMinMs 20, reconnectMaxMs 100)`,
    });
    const dropped = clients.filter((c) => c.closed).length;
    r.checks.push({ ok: dropped === 0, what: `no client disconnected during ${r.faults} unplugs (${dropped} of ${CLIENTS} were)` });

    // The gateway's own count, published at most once a second: wait until it agrees with what every client saw.
    const seen = Math.max(...clients.map((c) => c.lines + c.missed));
    const status = await d.notify
      .waitFor((m) => linesIn(m.STATUS) === seen, 4000)
      .then((m) => linesIn(m.STATUS))
      .catch(() => linesIn(d!.notify.messages.filter((m) => m.STATUS).at(-1)?.STATUS));
    const gatewayIn = status ?? -1;
    for (const c of clients) {
      r.linesSent += gatewayIn;
      r.linesDelivered += c.lines;
      r.linesDropped += c.missed;
    }
    r.fdsLeaked = fdCount(pid) - fdsBefore;
    r.rssGrowth = rssOf(pid) - rssBefore;
    r.checks.push({ ok: r.fdsLeaked === 0, what: `no file descriptor leaked over ${r.faults} reopens (${fdsBefore} before, ${fdsBefore + r.fdsLeaked} after)` });
    const unexplained = clients.map((c) => c.gaps.filter(([a, b]) => !windows.some(([lo, hi]) => a >= lo && b < hi)).reduce((n, [a, b]) => n + b - a + 1, 0) - c.missed);
    const gapLines = clients[0]!.gaps.reduce((n, [a, b]) => n + b - a + 1, 0);
    r.checks.push({
      ok: unexplained.every((n) => n <= 0),
      what:
        `no line went missing while the device was connected: every gap in a client's numbering lies between an unplug and the gateway's return ` +
        `(${gapLines} lines in ${clients[0]!.gaps.length} gaps at client 1; unexplained per client: ${unexplained.map((n) => Math.max(0, n)).join(', ')})`,
    });
    const bad = clients.flatMap((c) => c.disorder);
    r.checks.push({
      ok: bad.length === 0,
      what: bad.length === 0 ? 'every client got the device lines in order, none twice' : `out of order or repeated: ${bad.slice(0, 3).join('; ')}`,
    });
    const joined = clients.reduce((n, c) => n + c.joined, 0);
    const partials = clients.reduce((n, c) => n + c.partials, 0);
    const glued = clients.reduce((n, c) => n + c.glued, 0);
    r.notes.push(
      `device wrote ${device.written} whole lines (${device.rejected} writes cut by an unplug); the gateway read ${gatewayIn}; the other ` +
        `${device.written - gatewayIn} were in the pty's kernel buffer when it was pulled, or written before the gateway reopened it (open flushes input)`,
    );
    r.notes.push(
      `reconnect (replug -> \`! device back\`) ms: ${reconnects.map((x) => x.toFixed(0)).join(' ')}`,
    );
    r.checks.push({
      ok: glued === 0 && joined === 0,
      what:
        `${device.halfLines} unplugs came mid-sentence; summed over ${CLIENTS} clients the cut line's piece arrived as a line of its own ` +
        `${partials} times, glued to the next notice ${glued} times and to the next device line ${joined} times`,
    });
    r.notes.push(`daemon RSS ${(rssBefore / 1e6).toFixed(1)} MB before the unplugs, ${(rssOf(pid) / 1e6).toFixed(1)} MB after`);
    return r;
  } finally {
    await device.stop();
    for (const c of clients) c.close();
    await d?.stop();
    pty.close();
  }
}


/** The lab box: numbered lines, a few at a time, as long as it is plugged in. */
class Device {
  written = 0;
  rejected = 0;
  halfLines = 0;
  /** The number the next line will carry. */
  next = 0;
  private running: Promise<void> | null = null;
  private stopping = false;
  private held = false;
  private busy = false;

  constructor(private readonly pty: PtyPair) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** Holds the loop after its current write and sends the first half of the next line, as a box cut off mid-sentence. */
  async cutMidLine(): Promise<void> {
    this.held = true;
    await waitUntil(() => !this.busy, 1000);
    await this.pty.write(`L${String(this.next++).padStart(8, '0')} ${'x'.repeat(15)}`);
    this.halfLines++;
    await sleep(20); // the gateway has read it
  }

  resume(): void {
    this.held = false;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (!this.pty.plugged || this.held) {
        await sleep(1);
        continue;
      }
      this.busy = true;
      let batch = '';
      for (let i = 0; i < 4; i++) batch += `L${String(this.next++).padStart(8, '0')} ${'x'.repeat(40)}\r\n`;
      try {
        await this.pty.write(batch);
        this.written += 4;
      } catch {
        this.rejected++; // unplugged mid-write: some of it may be in the kernel buffer, some not
      }
      this.busy = false;
      await sleep(2);
    }
  }
}

/** A client that reads device lines and notices, timestamped on arrival. */
class Tally {
  lines = 0;
  missed = 0;
  joined = 0;
  partials = 0;
  glued = 0;
  closed = false;
  lastDataAt = performance.now();
  readonly backAt: number[] = [];
  readonly lineAt: number[] = [];
  readonly disorder: string[] = [];
  /** Missing numbers, as [first, last] ranges. */
  readonly gaps: [number, number][] = [];
  /** The last line number received. */
  last = -1;
  private rest = '';

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => this.onData(s));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number): Promise<Tally> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new Tally(s)));
      s.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(s: string): void {
    const now = performance.now();
    this.lastDataAt = now;
    const parts = (this.rest + s).split('\r\n');
    this.rest = parts.pop()!;
    for (const line of parts) {
      const n = NOTICE.exec(line);
      if (n) {
        // A piece of a line cut by an unplug is followed on the wire by the next notice.
        if (n.index > 0) this.glued++;
        if (n[1] === 'device back') this.backAt.push(now);
        if (n[2] !== undefined) this.missed += Number(n[2]);
        continue;
      }
      // The piece of a line cut by an unplug: the gateway delivers it as it got it (and puts the next notice on a
      // line of its own); it is no line the device finished, so it is not counted as one.
      if (/^L\d{8} x{0,39}$/.test(line)) {
        this.partials++;
        continue;
      }
      const m = LINE.exec(line);
      let seq: number;
      if (m) {
        seq = Number(m[1]);
      } else {
        // A line glued to the piece of one cut by an unplug: it still counts once, by its last number.
        const all = [...line.matchAll(/L(\d{8}) /g)];
        if (all.length === 0) {
          this.disorder.push(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
          continue;
        }
        this.joined++;
        seq = Number(all.at(-1)![1]);
      }
      if (seq <= this.last) this.disorder.push(`L${seq} after L${this.last}`);
      else if (seq > this.last + 1) this.gaps.push([this.last + 1, seq - 1]);
      this.last = seq;
      this.lines++;
      this.lineAt.push(now);
    }
  }
}

function linesIn(status: string | undefined): number | undefined {
  const m = /lines in (\d+)/.exec(status ?? '');
  return m ? Number(m[1]) : undefined;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
