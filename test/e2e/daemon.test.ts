import t from 'tap';
import { createSocket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PtyPair, ptyUnavailableReason } from '../support/pty.js';
import { MAIN, TestClient, freePort, startDaemon } from '../support/daemon.js';

/**
 * The daemon as systemd runs it: NOTIFY_SOCKET and WATCHDOG_USEC set, READY/STATUS/WATCHDOG/RELOADING/STOPPING
 * observed on a real notify socket, SIGHUP with changed and broken files, SIGTERM.
 */

const noPty = ptyUnavailableReason();

function config(o: { device: string; lab: number; other: number; otherBanner?: string; otherMode?: string; baud?: number; broken?: boolean }): string {
  return `serial:
  path: ${o.device}
  baudRate: ${o.baud ?? 115200}
  reconnectMinMs: 50
  reconnectMaxMs: 200
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${o.lab}
  - name: other
    host: 127.0.0.1
    port: ${o.other}
    banner: "${o.otherBanner ?? 'first'}"
    mode: ${o.otherMode ?? 'shared'}
udp: []
log:
  level: debug
${o.broken ? 'tcp_typo: [\n' : ''}`;
}

t.test('READY only after the ports are bound; STATUS and WATCHDOG pings; SIGTERM exits 0 quickly', async (t) => {
  const dir = t.testdir();
  const lab = await freePort();
  const other = await freePort();
  const d = await startDaemon(dir, config({ device: 'sim:labbox', lab, other }), { WATCHDOG_USEC: '400000' });
  t.teardown(() => d.stop('SIGKILL'));
  // READY=1 has been seen: the port must accept right now, without retry.
  const c = await TestClient.connect(lab);
  c.send('id\n');
  await c.waitFor('6510500000');
  const status = await d.notify.waitFor((m) => /device open sim:labbox 115200 8N1/.test(m.STATUS ?? '') && /lab 1/.test(m.STATUS ?? ''), 5000);
  t.match(status.STATUS, /lines in \d+ out \d+/, `STATUS is a one-line summary: ${status.STATUS}`);
  await d.notify.waitFor((m) => m.WATCHDOG === '1', 2000);
  const pings = () => d.notify.messages.filter((m) => m.WATCHDOG === '1').length;
  const before = pings();
  await new Promise((r) => setTimeout(r, 700));
  t.ok(pings() - before >= 2, `watchdog pinged at half of WATCHDOG_USEC (${pings() - before} in 700 ms)`);

  const started = Date.now();
  d.child.kill('SIGTERM');
  await d.notify.waitFor((m) => m.STOPPING === '1', 2000);
  await c.waitFor('! the gateway is stopping');
  t.equal(await d.exited, 0, 'exit code 0');
  t.ok(Date.now() - started < 2000, `stopped in ${Date.now() - started} ms`);
  c.close();
});

t.test('SIGHUP: an unchanged listener keeps its clients; a new banner reaches new clients only; a new mode rebinds; a broken file changes nothing', async (t) => {
  const dir = t.testdir();
  const lab = await freePort();
  const other = await freePort();
  const d = await startDaemon(dir, config({ device: 'sim:labbox', lab, other }));
  t.teardown(() => d.stop('SIGKILL'));
  const keep = await TestClient.connect(lab);
  const moved = await TestClient.connect(other);
  t.teardown(() => (keep.close(), moved.close()));
  await moved.waitFor('first');

  // (a) a new banner: ser2net's rule, the connected client keeps its session, a new one gets the new banner
  writeFileSync(join(dir, 'config.yaml'), config({ device: 'sim:labbox', lab, other, otherBanner: 'second' }));
  let readyCount = d.notify.messages.filter((m) => m.READY === '1').length;
  d.child.kill('SIGHUP');
  const reloading = await d.notify.waitFor((m) => m.RELOADING === '1', 5000);
  t.match(reloading.MONOTONIC_USEC, /^\d+$/, 'RELOADING=1 carries MONOTONIC_USEC');
  await d.notify.waitFor(() => d.notify.messages.filter((m) => m.READY === '1').length > readyCount, 5000);
  const later = await TestClient.connect(other);
  t.teardown(() => later.close());
  await later.waitFor('second');
  moved.send('name\n');
  await moved.waitFor('Lab Box');
  t.notOk(moved.closed, 'a banner change did not close the connected client');
  t.match(d.output(), /listener other: banner changed: applies to clients that connect from now on/);

  // (b) a new mode: what connected clients were promised changed, so they are closed and the port rebound
  writeFileSync(join(dir, 'config.yaml'), config({ device: 'sim:labbox', lab, other, otherBanner: 'second', otherMode: 'request' }));
  readyCount = d.notify.messages.filter((m) => m.READY === '1').length;
  d.child.kill('SIGHUP');
  await d.notify.waitFor(() => d.notify.messages.filter((m) => m.READY === '1').length > readyCount, 5000);
  await moved.waitClosed();
  await later.waitClosed();
  t.pass('the changed listener closed its clients');
  const again = await TestClient.connect(other);
  t.teardown(() => again.close());
  await again.waitFor('second');
  keep.send('name\n');
  await keep.waitFor('Lab Box');
  t.notOk(keep.closed, 'the unchanged listener kept its client and its traffic');

  // (c) a broken file: logged, old config keeps running, STATUS says so
  writeFileSync(join(dir, 'config.yaml'), config({ device: 'sim:labbox', lab, other, broken: true }));
  d.child.kill('SIGHUP');
  const st = await d.notify.waitFor((m) => /last reload rejected/.test(m.STATUS ?? ''), 5000);
  t.match(st.STATUS, /config\.yaml/, 'the error in STATUS names the file');
  keep.send('id\n');
  await keep.waitFor('6510500000');
  t.notOk(keep.closed, 'still serving on the old config');
  t.match(d.output(), /reload rejected/);
});

t.test('SIGHUP with a changed baud rate reopens the port; clients stay', { skip: noPty }, async (t) => {
  const dir = t.testdir();
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  t.teardown(() => pty.close());
  const lab = await freePort();
  const other = await freePort();
  const d = await startDaemon(dir, config({ device: pty.linkPath, lab, other }));
  t.teardown(() => d.stop('SIGKILL'));
  await d.notify.waitFor((m) => /device open .* 115200 8N1/.test(m.STATUS ?? ''), 5000);
  const c = await TestClient.connect(lab);
  t.teardown(() => c.close());
  writeFileSync(join(dir, 'config.yaml'), config({ device: pty.linkPath, lab, other, baud: 9600 }));
  d.child.kill('SIGHUP');
  await d.notify.waitFor((m) => /device open .* 9600 8N1/.test(m.STATUS ?? ''), 5000);
  await pty.write('after reload\r\n');
  await c.waitFor('after reload\r\n');
  t.notOk(c.closed, 'the client stayed through the reopen');
});

t.test('SIGTERM writes out queued device lines first', { skip: noPty }, async (t) => {
  const dir = t.testdir();
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  t.teardown(() => pty.close());
  const lab = await freePort();
  const other = await freePort();
  const d = await startDaemon(dir, config({ device: pty.linkPath, lab, other }));
  t.teardown(() => d.stop('SIGKILL'));
  await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  const c = await TestClient.connect(lab);
  t.teardown(() => c.close());
  pty.pauseReading(); // the device is busy: lines pile up in the gateway's queue
  const lines = Array.from({ length: 200 }, (_, i) => `queued line ${i} ${'x'.repeat(60)}`);
  c.send(lines.map((l) => `${l}\n`).join(''));
  await new Promise((r) => setTimeout(r, 200));
  d.child.kill('SIGTERM');
  setTimeout(() => pty.resumeReading(), 300);
  t.equal(await d.exited, 0);
  // The bytes are in the pty by now (the daemon waited for its writes); the test's reader may still be on its way.
  const got = (await pty.readUntil(`${lines[lines.length - 1]}\r\n`, 5000)).toString('latin1');
  t.equal(got, lines.map((l) => `${l}\r\n`).join(''), 'every queued line reached the device, whole and in order');
});

t.test('--check-config: 0 for a good file, 1 with the key named for a bad one; the daemon exits 78 on it', async (t) => {
  const dir = t.testdir({
    'good.yaml': 'serial:\n  path: sim:labbox\n',
    'typo.yaml': 'serial:\n  baudrate: 9600\n',
    'cidr.yaml': 'tcp:\n  - name: lab\n    port: 2323\n    allow: [10.0.0.0/33]\n',
    'syntax.yaml': 'tcp:\n  - name: lab\n    port: [2323\n',
  });
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const good = run('--check-config', '--config', join(dir, 'good.yaml'));
  t.equal(good.status, 0, good.stderr);
  const typo = run('--check-config', '--config', join(dir, 'typo.yaml'));
  t.equal(typo.status, 1);
  t.match(typo.stderr, /typo\.yaml:2:3: serial\.baudrate: unknown key; did you mean "serial\.baudRate"\?/);
  const cidr = run('--check-config', '--config', join(dir, 'cidr.yaml'));
  t.match(cidr.stderr, /tcp\[0\]\.allow\[0\]/);
  const syntax = run('--check-config', '--config', join(dir, 'syntax.yaml'));
  t.match(syntax.stderr, /syntax\.yaml:\d+:\d+: invalid YAML/);
  t.notMatch(typo.stderr + cidr.stderr + syntax.stderr, /\n\s+at /, 'no stack traces');
  const daemon = run('--config', join(dir, 'typo.yaml'));
  t.equal(daemon.status, 78, 'EX_CONFIG, so systemd does not restart-loop on a typo');
  t.equal(run('--bogus').status, 2);
  t.match(run('--version').stdout, /^serial-gateway \d+\.\d+\.\d+/);
});

t.test('LEDs configured on a machine without GPIO: one warning, the gateway serves, LED states are logged', async (t) => {
  const dir = t.testdir({ sys: {}, dev: {} });
  const lab = await freePort();
  const other = await freePort();
  const yamlText = `${config({ device: 'sim:labbox', lab, other })}leds:
  enabled: true
  sysRoot: ${join(dir, 'sys')}
  devRoot: ${join(dir, 'dev')}
  ready: { pin: 17 }
  clients: { pin: 22 }
  activity: { pin: 23 }
`;
  const d = await startDaemon(dir, yamlText, { PATH: '/nonexistent' });
  t.teardown(() => d.stop('SIGKILL'));
  const c = await TestClient.connect(lab);
  c.send('id\n');
  await c.waitFor('6510500000');
  c.close();
  await d.notify.waitFor((m) => /lab 0/.test(m.STATUS ?? '') && /out 1/.test(m.STATUS ?? ''), 5000);
  await new Promise((r) => setTimeout(r, 100));
  const out = d.output();
  t.equal(out.split('\n').filter((l) => /^\S+ warning /.test(l)).length, 1, 'exactly one warning');
  t.match(out, /leds: no way to drive 3 LEDs, running without: ready \(BCM 17\)/);
  let at = 0;
  for (const step of ['led ready: on', 'lab: 127.0.0.1', 'led clients: on', 'led activity: flash', 'closing', 'led clients: off']) {
    const found = out.indexOf(step, at);
    t.ok(found >= 0, `then "${step}"`);
    at = Math.max(at, found);
  }
});

t.test('a UDP subscriber is told when the gateway stops, as TCP clients are', async (t) => {
  const dir = t.testdir();
  const [lab, udp] = [await freePort(), await freePort()];
  const d = await startDaemon(dir, `serial:\n  path: sim:labbox\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${lab} }\nudp:\n  - { name: udp, host: 127.0.0.1, port: ${udp} }\n`);
  t.teardown(() => d.stop('SIGKILL'));
  const sock = createSocket('udp4');
  t.teardown(() => sock.close());
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('latin1')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  sock.send('id', udp, '127.0.0.1');
  const deadline = Date.now() + 5000;
  while (!got.some((g) => g.includes('6510500000'))) {
    if (Date.now() > deadline) throw new Error(`no answer: ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(await d.stop(), 0);
  await new Promise((r) => setTimeout(r, 100));
  t.ok(got.includes('! the gateway is stopping\r\n'), `told: ${JSON.stringify(got.slice(-2))}`);
});
