import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MAIN, freePort, startDaemon } from '../support/daemon.js';

/**
 * `serial-gateway doctor` on this machine, against real processes: a running gateway's listener, another
 * program holding the device, another program on a listener's port. (Under a real systemd, with the unit's
 * state and journal, it runs in test/deploy/real-systemd-scenario.sh.)
 */
function doctor(config: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'doctor', '--config', config], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

// Where systemd runs, doctor also judges the serial-gateway unit, which this machine may not have.
const systemdHere = existsSync('/run/systemd/system');

t.test('doctor names who holds the device and the port, and the gateway that listens', async (t) => {
  const dir = t.testdir();
  // A stand-in device node: doctor checks presence, owner, mode and holders, not the line discipline.
  const device = join(dir, 'ttyFAKE');
  writeFileSync(device, '');
  chmodSync(device, 0o660);
  const [gatewayPort, takenPort] = [await freePort(), await freePort()];

  const gwDir = join(dir, 'gateway');
  mkdirSync(gwDir);
  const gw = await startDaemon(gwDir, `serial:\n  path: sim:labbox\ntcp:\n  - name: lab\n    host: 127.0.0.1\n    port: ${gatewayPort}\nudp: []\n`);
  t.teardown(() => gw.stop());
  const fd = openSync(device, 'r');
  const holder = spawn('sleep', ['30'], { stdio: [fd, 'ignore', 'ignore'] });
  closeSync(fd);
  t.teardown(() => holder.kill('SIGKILL'));
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(takenPort, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());

  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `serial:\n  path: ${device}\ntcp:\n  - name: lab\n    host: 127.0.0.1\n    port: ${gatewayPort}\n  - name: other\n    host: 127.0.0.1\n    port: ${takenPort}\nudp: []\n`,
  );
  const sick = await doctor(config);
  t.equal(sick.code, 1, 'exit 1', { out: sick.out });
  t.match(sick.out, new RegExp(`^OK {3}device: ${device} present, \\S+ 0660, .* may open it$`, 'm'));
  t.match(sick.out, new RegExp(`^FAIL device: ${device} is also open in sleep 30 \\(pid ${holder.pid}\\).* -> fix: stop sleep`, 'm'));
  t.match(sick.out, new RegExp(`^OK {3}tcp lab: listening on 127\\.0\\.0\\.1:${gatewayPort} \\(config: 127\\.0\\.0\\.1\\)$`, 'm'), 'the gateway listens');
  t.match(sick.out, new RegExp(`^FAIL tcp other: port ${takenPort} is taken by .*doctor\\.test\\.js.* on 127\\.0\\.0\\.1 -> fix: `, 'm'));
  t.match(sick.out, /^OK {3}node: Node v\d+/m);
  t.match(sick.out, /^doctor: \d+ problems?$/m);

  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  const better = await doctor(config);
  t.notMatch(better.out, /^FAIL (device|tcp)/m, 'nothing wrong with the device or the ports any more', { out: better.out });
  t.match(better.out, new RegExp(`^WARN tcp other: nothing on port ${takenPort}`, 'm'));
  if (!systemdHere) {
    t.equal(better.code, 0, 'exit 0: healthy', { out: better.out });
    t.match(better.out, /^doctor: healthy$/m);
  }

  writeFileSync(config, 'serial:\n  baudRate: fast\n');
  const invalid = await doctor(config);
  t.equal(invalid.code, 1);
  t.match(invalid.out, /^FAIL config: .* is invalid: .*baudRate.* -> fix: edit /m);
});
