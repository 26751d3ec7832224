import t from 'tap';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { silentLog } from '../../src/core/log.js';
import { loadConfigText } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import type { Notifier } from '../../src/status/notify.js';

/** The status model's transcript mark (what a dashboard shows), from the daemon in-process. */

function notifier(statuses: string[]): Notifier {
  return {
    transport: 'none',
    notify() {},
    ready() {},
    reloading() {},
    stopping() {},
    status: (text: string) => void statuses.push(text),
    watchdog() {},
    close() {},
  } as unknown as Notifier;
}

async function daemonWith(dir: string, statuses: string[]): Promise<Daemon> {
  const loaded = loadConfigText(`serial:\n  path: sim:labbox\ntcp: []\nudp: []\ntranscript:\n  enabled: true\n  dir: ${dir}\n`, 'c.yaml', {});
  if (!loaded.ok) throw new Error('config');
  return new Daemon({ file: 'c.yaml', config: loaded.config, clock: systemClock, log: silentLog, notifier: notifier(statuses), env: {} });
}

t.test('on while it writes, off after stop', async (t) => {
  const d = await daemonWith(t.testdir(), []);
  t.equal(d.status.snapshot.transcript, undefined, 'nothing said before start');
  await d.start();
  t.equal(d.status.snapshot.transcript, 'on');
  t.match(d.apiStatus().transcript, { state: 'on', detail: '', today: /^\d{4}-\d{2}-\d{2}$/ }, "the dashboard's mark, with today's file");
  await d.stop();
  t.equal(d.status.snapshot.transcript, 'off');
});

t.test('stopped when the directory cannot be written; STATUS= says why', async (t) => {
  const base = t.testdir({ file: 'x' });
  const statuses: string[] = [];
  const d = await daemonWith(join(base, 'file', 't'), statuses);
  await d.start();
  t.equal(d.status.snapshot.transcript, 'stopped');
  t.match(statuses.join('\n'), /transcript stopped: ENOTDIR/);
  t.match(d.statusLine(), /transcript stopped: ENOTDIR/);
  t.match(d.apiStatus().transcript, { state: 'stopped', detail: /^ENOTDIR/, today: null }, 'the dashboard shows it stopped, and why; no download');
  await d.stop();
});
