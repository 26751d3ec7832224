import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { TestClient, freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import type { NotifyFields } from '../../support/notify-listener.js';
import { PtyPair } from '../../support/pty.js';
import { sleep, waitUntil } from '../measure.js';
import { NumberedLineDevice, NumberedLineTally } from '../numbered-device.js';

/**
 * Issue 7, case 7: a reload storm. The instructor edits the config while the class works, saves half-edited
 * files, and sends SIGHUP each time.
 *
 * The device (a real pty) writes numbered lines without pause; CLIENTS clients on the `lab` listener read them.
 * SIGHUPs alternate a valid file (the `other` listener's banner and the log level change; `lab` does not) with
 * a broken one (a YAML syntax error, a typo'd key, a bad port, a wrong type, a duplicate name), each of which
 * also sets a `BROKEN` banner on `other` that must never be seen. After every reload, a fresh client on `other`
 * reads its banner: the valid file's, or after a broken file the previous valid file's. Checked from outside:
 * - each SIGHUP gives one RELOADING=1 followed by one READY=1 on the notify socket;
 * - STATUS= says `last reload rejected` after a broken file and stops saying it after a valid one (STATUS= is
 *   published at most once a second, so it is waited for after the last reload, and in the soak after both
 *   reloads of every 4th pair);
 * - the `lab` clients are never disconnected, and every device line is delivered to each of them or announced
 *   as missed (unaccounted 0);
 * - the daemon still answers afterwards.
 */

interface Params {
  reloads: number;
  /** Wait for STATUS= after both reloads of every Nth valid/broken pair (up to a second each), and after the last. */
  statusEveryPairs: number;
}

const PARAMS: Record<Scale, Params> = {
  fast: { reloads: 10, statusEveryPairs: Infinity },
  soak: { reloads: 100, statusEveryPairs: 4 },
};

const CLIENTS = 3;

interface Broken {
  what: string;
  yaml: (o: ConfigOptions) => string;
}

interface ConfigOptions {
  device: string;
  lab: number;
  other: number;
  banner: string;
  level: 'info' | 'debug';
}

/** What the instructor saves by mistake; each one also carries a banner that must never take effect. */
const BROKEN: Broken[] = [
  { what: 'YAML syntax error', yaml: (o) => `${config(o)}tcp_extra: [\n  - name: x\n` },
  { what: "typo'd key", yaml: (o) => config(o).replace('    maxClients: 16\n', '    maxClient: 16\n') },
  { what: 'bad port', yaml: (o) => config({ ...o }).replace(`port: ${o.other}\n`, 'port: 70000\n') },
  { what: 'wrong type', yaml: (o) => config(o).replace('    maxClients: 16\n', '    maxClients: many\n') },
  { what: 'duplicate listener name', yaml: (o) => config(o).replace('  - name: other\n', '  - name: lab\n') },
  { what: 'a scalar where a section belongs', yaml: (o) => config(o).replace(/^lines:\n  idleFlushMs: 100\n/m, 'lines: crlf\n') },
];

export const reliabilityCase: ReliabilityCase = { name: '07 reload storm', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  const lab = await freePort();
  const other = await freePort();
  const file = join(dir, 'config.yaml');
  let d: RunningDaemon | undefined;
  const clients: NumberedLineTally[] = [];
  const device = new NumberedLineDevice(pty, { paceMs: 3 });
  try {
    const base: ConfigOptions = { device: pty.linkPath, lab, other, banner: 'valid start', level: 'info' };
    d = await startDaemon(dir, config(base));
    await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
    for (let i = 0; i < CLIENTS; i++) clients.push(await NumberedLineTally.connect(lab));
    await d.notify.waitFor((m) => new RegExp(`\\blab ${CLIENTS}\\b`).test(m.STATUS ?? ''), 5000);
    device.start();

    let inForce = base.banner;
    const problems: string[] = [];
    const statusProblems: string[] = [];
    let validCount = 0;
    let brokenCount = 0;
    let statusChecked = 0;
    for (let i = 1; i <= p.reloads; i++) {
      const valid = i % 2 === 1;
      const opts: ConfigOptions = { ...base, banner: valid ? `valid ${i}` : `BROKEN ${i}`, level: i % 4 === 1 ? 'debug' : 'info' };
      const broken = BROKEN[(Math.floor(i / 2) + BROKEN.length - 1) % BROKEN.length]!;
      writeFileSync(file, valid ? config(opts) : broken.yaml(opts));
      const seen = d.notify.messages.length;
      d.child.kill('SIGHUP');
      r.faults++;
      const ended = await d.notify
        .waitFor(() => readyAfterReloading(d!.notify.messages, seen), 5000)
        .then(() => true)
        .catch(() => false);
      if (!ended) {
        problems.push(`reload ${i} (${valid ? 'valid' : broken.what}): no RELOADING=1 then READY=1 within 5 s`);
        break;
      }
      if (valid) {
        inForce = opts.banner;
        validCount++;
      } else {
        brokenCount++;
      }
      const banner = await bannerOf(other);
      if (banner !== inForce) problems.push(`after reload ${i} (${valid ? 'valid' : broken.what}) \`other\` greeted with ${JSON.stringify(banner)}, expected ${JSON.stringify(inForce)}`);
      if (Math.ceil(i / 2) % p.statusEveryPairs === 0 || i === p.reloads) {
        statusChecked++;
        const want = (m: NotifyFields) => (m.STATUS !== undefined && /last reload rejected/.test(m.STATUS)) === !valid;
        const ok = await d.notify
          .waitFor((m) => d!.notify.messages.indexOf(m) >= seen && m.STATUS !== undefined && want(m), 2500)
          .then(() => true)
          .catch(() => false);
        if (!ok) statusProblems.push(`reload ${i} (${valid ? 'valid' : broken.what}): STATUS= did not ${valid ? 'drop' : 'show'} "last reload rejected" within 2.5 s`);
      }
    }
    await device.stop();
    const quiet = await waitUntil(() => clients.every((c) => c.lines + c.missed >= device.written), 5000);

    const ms = d.notify.messages;
    const reloading = ms.filter((m) => m.RELOADING === '1').length;
    const ready = ms.filter((m) => m.READY === '1').length;
    // READY=1 at start, then RELOADING=1 and READY=1 for each SIGHUP, never two of a kind in a row.
    const sequence = ms.filter((m) => m.READY === '1' || m.RELOADING === '1').map((m) => (m.RELOADING === '1' ? 'L' : 'R')).join('');
    r.checks.push({
      ok: problems.length === 0 && sequence === `R${'LR'.repeat(r.faults)}`,
      what:
        problems[0] ??
        `${r.faults} SIGHUPs (${validCount} valid, ${brokenCount} broken): ${reloading} RELOADING=1, ${ready - 1} READY=1 after them, each in pairs; the banner in force was always the last valid file's`,
    });
    r.checks.push({
      ok: statusProblems.length === 0,
      what: statusProblems[0] ?? `STATUS= showed "last reload rejected" after each broken file and not after a valid one (checked after ${statusChecked} reloads)`,
    });
    const out = d.output();
    const applied = out.match(/reload applied/g)?.length ?? 0;
    const rejected = out.match(/reload rejected/g)?.length ?? 0;
    r.checks.push({ ok: applied === validCount && rejected === brokenCount, what: `the log says ${applied} reloads applied and ${rejected} rejected (expected ${validCount} and ${brokenCount})` });

    const dropped = clients.filter((c) => c.closed).length;
    r.checks.push({ ok: dropped === 0, what: `no client on the unchanged listener was disconnected (${dropped} of ${CLIENTS} were)` });
    const disorder = clients.flatMap((c) => c.disorder);
    r.checks.push({
      ok: quiet && disorder.length === 0,
      what:
        disorder[0] ??
        (quiet ? `every client got all ${device.written} device lines in order or was told it missed them` : 'the clients did not catch up within 5 s of the device stopping'),
    });
    for (const c of clients) {
      r.linesSent += device.written;
      r.linesDelivered += c.lines;
      r.linesDropped += c.missed;
    }

    const c = await TestClient.connect(lab);
    await pty.write('after the storm\r\n');
    const answered = await c.waitFor('after the storm\r\n', 2000).then(
      () => true,
      () => false,
    );
    c.send('still here\n');
    const wrote = await pty.readUntil('still here\r\n', 2000).then(
      () => true,
      () => false,
    );
    c.close();
    r.checks.push({ ok: answered && wrote && d.child.exitCode === null, what: 'the daemon answers after the storm (a new client got a device line, and its line reached the device)' });
    r.notes.push(`device wrote ${device.written} lines during ${r.faults} reloads; broken files used: ${BROKEN.map((b) => b.what).join(', ')}`);
    return r;
  } finally {
    await device.stop();
    for (const c of clients) c.close();
    await d?.stop();
    pty.close();
  }
}

function config(o: ConfigOptions): string {
  return `serial:
  path: ${o.device}
lines:
  idleFlushMs: 100
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${o.lab}
    telnet: off
  - name: other
    host: 127.0.0.1
    port: ${o.other}
    maxClients: 16
    banner: "${o.banner}"
udp: []
log:
  level: ${o.level}
`;
}

/** True once, after message index `from`, a RELOADING=1 has been followed by a READY=1. */
function readyAfterReloading(ms: NotifyFields[], from: number): boolean {
  const at = ms.findIndex((m, i) => i >= from && m.RELOADING === '1');
  return at >= 0 && ms.some((m, i) => i > at && m.READY === '1');
}

/** Connects to `port` and returns its first line (the banner), without the CR LF. */
async function bannerOf(port: number): Promise<string> {
  const c = await TestClient.connect(port);
  try {
    await c.waitFor('\r\n', 2000);
    return c.text.slice(0, c.text.indexOf('\r\n'));
  } catch (err) {
    return `(no banner: ${(err as Error).message})`;
  } finally {
    c.close();
  }
}

