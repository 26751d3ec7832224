import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { PtyPair } from '../../support/pty.js';
import { sleep, waitUntil } from '../measure.js';
import { labConfig } from '../lab-config.js';
import { NumberedLineDevice, NumberedLineTally } from '../numbered-device.js';

// koffi's types are declared as ESM; require() gets its CommonJS build with the same API (as in test/support).
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'require' } });

/**
 * Issue 7, case 9: crash and restart. The daemon is killed with SIGKILL under load (the device talking on a pty,
 * clients connected) and started again on the same config, as systemd's Restart= would. Checked from outside:
 * - it serves again within 2 s: from the spawn to the first device line at a reconnecting client;
 * - the serial port is not left locked: serialport takes an exclusive flock on the tty, which the kernel drops
 *   with the process. The test proves both halves: while a daemon runs, its own flock(LOCK_EX|LOCK_NB) on the
 *   same path fails (so the probe can see a lock); right after the kill it succeeds; and the new daemon reaches
 *   `device open PATH` on STATUS= (not `device opening:`, which the same words would match);
 * - within each connection, the device lines a client got are in order, and any gap was announced
 *   (`! missed N lines`). Lines the device wrote while no daemon ran, or that a killed daemon held, are gone
 *   with it by definition; the accounting covers each connection from its first device line to its last.
 */

/**
 * STATUS= is published at most once a second, so waiting for `device open` costs up to a second a round: the
 * fast scale waits for it after the last restart only; every round proves the open by a device line reaching
 * a client.
 */
const PARAMS: Record<Scale, { rounds: number; loadMs: number; statusEveryRound: boolean }> = {
  fast: { rounds: 2, loadMs: 150, statusEveryRound: false },
  soak: { rounds: 20, loadMs: 1500, statusEveryRound: true },
};

const CLIENTS = 3;
const SERVE_BOUND_MS = 2000;
const LOCK_EX = 2;
const LOCK_NB = 4;

export const reliabilityCase: ReliabilityCase = { name: '09 crash/restart', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  const port = await freePort();
  const yaml = labConfig(pty.linkPath, port);
  const device = new NumberedLineDevice(pty, { paceMs: 2, ignoreWriteErrors: true });
  let d: RunningDaemon | undefined;
  let clients: NumberedLineTally[] = [];
  const all: NumberedLineTally[] = [];
  try {
    d = await startDaemon(dir, yaml);
    device.start();
    clients = await Promise.all(Array.from({ length: CLIENTS }, () => NumberedLineTally.connect(port, { afterRestart: true })));
    all.push(...clients);
    // A device line at a client: the port is open (and so locked) now.
    await waitUntil(() => clients.some((c) => c.lines > 0), 5000);

    const lockedWhileRunning = tryLock(pty.linkPath);
    r.checks.push({
      ok: lockedWhileRunning !== '',
      what: `while the daemon runs, the tty is locked: a second flock(LOCK_EX|LOCK_NB) fails (${lockedWhileRunning || 'it succeeded: the probe below proves nothing'})`,
    });

    const serveMs: number[] = [];
    const problems: string[] = [];
    let unlocked = 0;
    let openOnStatus = 0;
    let statusWaited = 0;
    for (let round = 1; round <= p.rounds; round++) {
      // Under load: every client is receiving device lines when the kill lands.
      const loaded = await waitUntil(() => clients.every((c) => c.lines > 0), 3000);
      if (!loaded) problems.push(`round ${round}: not every client was receiving device lines before the kill`);
      await sleep(p.loadMs);
      d.child.kill('SIGKILL');
      await d.exited;
      d.notify.close();
      r.faults++;
      const lock = tryLock(pty.linkPath);
      if (lock === '') unlocked++;
      else problems.push(`round ${round}: after SIGKILL the tty is still locked (${lock})`);

      // As systemd would: start it again on the same file; clients reconnect as fast as they can.
      const spawnedAt = performance.now();
      const reconnecting = Promise.all(Array.from({ length: CLIENTS }, () => NumberedLineTally.connectRetrying(port, 5000, { afterRestart: true })));
      d = await startDaemon(dir, yaml);
      clients = await reconnecting;
      all.push(...clients);
      const served = await waitUntil(() => clients.some((c) => c.lines > 0), 5000);
      const firstLineAt = Math.min(...clients.map((c) => c.firstLineAt));
      if (!served) problems.push(`round ${round}: no device line reached a client within 5 s of the restart`);
      else serveMs.push(firstLineAt - spawnedAt);
      if (!p.statusEveryRound && round < p.rounds) continue;
      statusWaited++;
      const open = await d.notify
        .waitFor((m) => /device open /.test(m.STATUS ?? ''), 3000)
        .then(() => true)
        .catch(() => false);
      if (open) openOnStatus++;
      else problems.push(`round ${round}: the new daemon did not reach \`device open\` on STATUS= within 3 s: ${d.output().slice(-300)}`);
    }
    await device.stop();
    await sleep(200);

    const worst = Math.max(0, ...serveMs);
    r.checks.push({
      ok: serveMs.length === p.rounds && worst < SERVE_BOUND_MS,
      what: `after each of ${p.rounds} SIGKILLs the restarted daemon served a device line within ${SERVE_BOUND_MS} ms of its spawn (median ${median(serveMs).toFixed(0)} ms, worst ${worst.toFixed(0)} ms)`,
    });
    r.checks.push({
      ok: unlocked === p.rounds && openOnStatus === statusWaited,
      what: `the tty was never left locked: free after ${unlocked} of ${p.rounds} kills; every restarted daemon read the device, and ${openOnStatus} of ${statusWaited} waited for showed \`device open\` on STATUS=`,
    });
    r.checks.push({ ok: problems.length === 0, what: problems[0] ?? 'no round had a problem' });
    const disorder = all.flatMap((c) => c.disorder);
    r.checks.push({
      ok: disorder.length === 0,
      what: disorder[0] ?? `within each of ${all.length} connections the device lines arrived in order, none twice`,
    });
    for (const c of all) {
      r.linesSent += c.window;
      r.linesDelivered += c.lines;
      r.linesDropped += c.missed;
    }
    const leading = all.reduce((n, c) => n + c.leading, 0);
    r.notes.push(
      `device wrote ${device.written} lines; accounting covers each connection from its first device line to its last` +
        (leading > 0 ? `; ${leading} piece(s) of a line cut by a kill arrived first on a new connection` : ''),
    );
    r.notes.push(`spawn -> first device line at a client, ms: ${serveMs.map((x) => x.toFixed(0)).join(' ')}`);
    return r;
  } finally {
    await device.stop();
    for (const c of all) c.close();
    await d?.stop('SIGKILL');
    pty.close();
  }
}


let flockFn: ((fd: number, op: number) => number) | undefined;

/** '' when this process could take an exclusive flock on `path` (released at once); else why not. */
function tryLock(path: string): string {
  flockFn ??= koffi.load('libc.so.6').func('int flock(int, int)') as (fd: number, op: number) => number;
  const fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    if (flockFn(fd, LOCK_EX | LOCK_NB) === 0) return '';
    const errno = koffi.errno();
    return Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
  } finally {
    closeSync(fd); // closing the only fd of this open file description drops our lock
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
