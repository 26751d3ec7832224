import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PtyPair, ptyUnavailableReason } from '../support/pty.js';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';
import { readableCopy } from '../support/readable-copy.js';

/**
 * The daemon never needs root: as an unprivileged user whose only extra group is dialout (what the unit gives
 * it), it opens the serial device and serves; without that group it reports the fault a person must fix
 * (permission denied, FAILED, the serial LED's fast blink) and keeps serving its clients.
 * The checkout may be in a folder `nobody` cannot enter (a 0700 home), so the daemon runs from a readable
 * copy, with its config and device link in a readable folder and an environment of its own.
 */
function dialoutGid(): number | undefined {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('dialout:'));
  return line ? Number(line.split(':')[2]) : undefined;
}

function hasSetpriv(): boolean {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const gid = dialoutGid();
const skip =
  ptyUnavailableReason() ??
  (process.getuid?.() !== 0 ? 'needs root to drop to an unprivileged user (CI runs as root)' : undefined) ??
  (!hasSetpriv() ? 'needs setpriv (util-linux)' : undefined) ??
  (gid === undefined ? 'this machine has no dialout group' : undefined);

const NOBODY = 65534;

const openNotify = (address: string): void => {
  chmodSync(dirname(address), 0o755);
  chmodSync(address, 0o666);
};

t.test('as an unprivileged user in group dialout the daemon opens the device; without it, a clear FAILED state', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'serial-gateway-privileges-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = readableCopy();
  t.teardown(() => copy.remove());
  const run = { main: copy.main, isolateEnv: true, beforeSpawn: openNotify };
  const pty = PtyPair.open(join(dir, 'ttyUSB'));
  t.teardown(() => pty.close());
  // What udev does for a USB serial dongle: root:dialout, 0660.
  chownSync(pty.slavePath, 0, gid!);
  chmodSync(pty.slavePath, 0o660);
  const port = await freePort();
  const yaml = `serial:\n  path: ${pty.linkPath}\n  reconnectMinMs: 50\n  reconnectMaxMs: 200\ntcp:\n  - name: lab\n    host: 127.0.0.1\n    port: ${port}\nudp: []\n`;
  const asUser = (groups: string) => ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, groups, '--inh-caps=-all', '--no-new-privs'];

  const d = await startDaemon(dir, yaml, {}, { ...run, wrap: asUser(`--groups=${gid}`) });
  const st = await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  t.match(st.STATUS, /device open /, 'uid nobody + group dialout opened the serial device');
  t.equal(Number(readFileSync(`/proc/${d.child.pid}/status`, 'utf8').match(/Uid:\s+(\d+)/)![1]), NOBODY, 'and really runs as nobody');
  const c = await TestClient.connect(port);
  await d.notify.waitFor((m) => /lab 1/.test(m.STATUS ?? ''), 5000);
  await pty.write('hello\r\n');
  await c.waitFor('hello\r\n');
  c.close();
  t.equal(await d.stop(), 0);

  const e = await startDaemon(dir, yaml, {}, { ...run, wrap: asUser('--clear-groups') });
  t.teardown(() => e.stop('SIGKILL'));
  const failed = await e.notify.waitFor((m) => /device failed/.test(m.STATUS ?? ''), 5000);
  t.match(failed.STATUS, /permission denied \(add the service user to the dialout group\)/, 'without dialout: the fix is named');
  const c2 = await TestClient.connect(port);
  t.teardown(() => c2.close());
  await c2.waitFor('! device away');
  t.match(c2.text, /permission denied/, 'clients are told why the box does not answer');
});
