/**
 * The deployment under a real systemd: test/support/real-systemd.sh boots this machine's systemd as PID 1 in
 * private namespaces on a throw-away overlay of the root, with a clone (this build, its production
 * dependencies, deploy/, systemd/, config/) at /opt/app and a loopback of its own. Inside,
 * real-systemd-scenario.sh installs with deploy/install.sh and checks what an instructor would; each of its
 * "ok"/"not ok" lines becomes an assertion here. Nothing of the host is changed.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, readableCopy } from '../support/readable-copy.js';

const HARNESS = join(REPO, 'test', 'support', 'real-systemd.sh');
const SCENARIO = join(REPO, 'test', 'deploy', 'real-systemd-scenario.sh');
const CGROUP2_MAGIC = 0x63677270;

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => existsSync(join(dir, cmd)));
}

function hasCgroup2(): boolean {
  for (const dir of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      if (statfsSync(dir).type === CGROUP2_MAGIC) return true;
    } catch {
      // not mounted here
    }
  }
  return false;
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root to boot systemd in namespaces (CI runs as root)';
  if (!existsSync('/lib/systemd/systemd')) return 'systemd is not installed (/lib/systemd/systemd)';
  const missing = ['unshare', 'nsenter', 'script', 'systemctl'].filter((c) => !onPath(c));
  if (missing.length > 0) return `needs ${missing.join(', ')} (util-linux, systemd)`;
  if (!hasCgroup2()) return 'no cgroup2 mount (/sys/fs/cgroup or /sys/fs/cgroup/unified)';
  return undefined;
}

const skip = skipReason() ?? false;
// Booting systemd and the whole scenario take ~30 s; the suite's default 120 s per file is too tight under load.
t.setTimeout(200_000);

t.test('install, reload, watchdog, stop, bad config, upgrade, uninstall under a real systemd', { skip, timeout: 170_000 }, async (t) => {
  // A clone as deploy/install.sh expects it after `npm ci && npm run build`, readable by the service user.
  const app = readableCopy();
  t.teardown(() => app.remove());
  for (const part of ['deploy', 'systemd', 'config', 'package-lock.json']) cpSync(join(REPO, part), join(app.dir, part), { recursive: true });
  cpSync(SCENARIO, join(app.dir, 'scenario.sh'));
  // The pty that plays the dongle in the hardening trials.
  cpSync(join(REPO, 'dist', 'test', 'support'), join(app.dir, 'dist', 'test', 'support'), { recursive: true });
  cpSync(join(REPO, 'dist', 'test', 'deploy', 'play-device.js'), join(app.dir, 'dist', 'test', 'deploy', 'play-device.js'));

  const started = Date.now();
  const { code, out } = await new Promise<{ code: number | string; out: string }>((resolve) => {
    // Through `env -i`: tap adds a NODE_OPTIONS naming a module in this checkout to every child it sees
    // spawned, which the node inside (the checkout may be under /tmp, a fresh tmpfs there) cannot load.
    const path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
    execFile(
      'env',
      ['-i', `PATH=${path}`, 'PRIVATE_NET=1', 'RUN_TIMEOUT=140', 'bash', HARNESS, '-', app.dir, '--', 'bash /opt/app/scenario.sh'],
      { maxBuffer: 16 << 20, timeout: 165_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : (error.code ?? error.signal ?? 1), out: `${stdout}${stderr}` }),
    );
  });
  t.comment(`harness and scenario took ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // "container died", "systemd never appeared": the machine cannot do this after all (e.g. no overlayfs).
  if (/container died during setup|systemd never appeared|no cgroup2 mount found/.test(out) && !/^ok - /m.test(out)) {
    t.pass('systemd could not boot here', { skip: `could not boot systemd here: ${out.split('\n').slice(-5).join(' | ')}` });
    return;
  }
  const checks = out.split('\n').filter((l) => /^(not )?ok - /.test(l));
  t.ok(checks.length >= 30, `the scenario ran its checks (${checks.length})`, { output: out.slice(-4000) });
  for (const line of checks) t.ok(line.startsWith('ok - '), line.replace(/^(not )?ok - /, ''));
  t.match(out, /^scenario complete$/m, 'the scenario ran to the end', { output: out.slice(-4000) });
  t.equal(code, 0, 'the harness exits 0 (systemd booted, powered off, nothing left behind)', { output: out.slice(-2000) });
  if (checks.some((l) => l.startsWith('not ok'))) t.comment(out);
});
