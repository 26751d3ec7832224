import t from 'tap';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(__dirname, '../../..');
const installSh = join(repo, 'deploy', 'install.sh');
const uninstallSh = join(repo, 'deploy', 'uninstall.sh');
const skip = existsSync('/bin/bash') || existsSync('/usr/bin/bash') ? false : 'bash is not installed';

function sh(script: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolvePromise) => {
    execFile('bash', [script, ...args], (error, out, err) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, out, err });
    });
  });
}

/**
 * A clone as install.sh sees it after `npm run build`, without building: the real unit and udev rule, the
 * real package files, the built program (install.sh reads the config with it) whose main.js is a stand-in
 * we know the bytes of, and a default config of our own.
 */
function fakeClone(dir: string, mainJs = 'console.log("v1");\n'): string {
  const clone = join(dir, 'clone');
  cpSync(join(repo, 'dist', 'src'), join(clone, 'dist', 'src'), { recursive: true });
  symlinkSync(join(repo, 'node_modules'), join(clone, 'node_modules'));
  mkdirSync(join(clone, 'config'), { recursive: true });
  cpSync(join(repo, 'systemd'), join(clone, 'systemd'), { recursive: true });
  cpSync(join(repo, 'deploy'), join(clone, 'deploy'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(clone, 'package.json'));
  cpSync(join(repo, 'package-lock.json'), join(clone, 'package-lock.json'));
  writeFileSync(join(clone, 'dist', 'src', 'main.js'), mainJs);
  writeFileSync(join(clone, 'config', 'default.yaml'), 'serial:\n  path: /dev/labbox\n');
  mkdirSync(join(clone, 'web'), { recursive: true });
  writeFileSync(join(clone, 'web', 'console.html'), '<!doctype html>v1\n');
  return clone;
}

/** A node under a path of our own, so the test can see that install.sh wrote exactly that path. */
function nodeLink(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  const link = join(dir, 'bin', 'node');
  symlinkSync(process.execPath, link);
  return link;
}

const read = (path: string): string => readFileSync(path, 'utf8');

t.test('install into a scratch root, upgrade keeping the config, uninstall, purge', { skip }, async (t) => {
  const dir = t.testdir();
  const clone = fakeClone(dir);
  const node = nodeLink(dir);
  const root = join(dir, 'root');
  mkdirSync(root);
  const args = ['--root', root, '--from', clone, '--node', node, '--no-npm', '--no-start'];

  const first = await sh(installSh, args);
  t.equal(first.code, 0, first.err);
  const unit = read(join(root, 'etc/systemd/system/serial-gateway.service'));
  const unitSource = read(join(repo, 'systemd/serial-gateway.service'));
  t.equal(unit, unitSource.replace('ExecStart=/usr/bin/node ', `ExecStart=${node} `), 'unit with the node path');
  const execStart = `ExecStart=${node} --max-semi-space-size=1 /opt/serial-gateway/dist/src/main.js --config /etc/serial-gateway/config.yaml`;
  t.ok(unit.split('\n').includes(execStart), execStart);
  t.equal(read(join(root, 'etc/serial-gateway/config.yaml')), 'serial:\n  path: /dev/labbox\n');
  t.equal(
    read(join(root, 'etc/udev/rules.d/99-serial-gateway.rules')),
    read(join(repo, 'deploy/99-serial-gateway.rules')),
  );
  // Announced from the config: the default listener lab on 2323, which speaks telnet too.
  const avahi = read(join(root, 'etc/avahi/services/serial-gateway.service'));
  t.match(avahi, /<type>_serial-gateway\._tcp<\/type>\s*<port>2323<\/port>/);
  t.match(avahi, /<type>_telnet\._tcp<\/type>\s*<port>2323<\/port>/);
  t.match(first.out, /Avahi: .* \(_serial-gateway\._tcp 2323, _telnet\._tcp 2323\)/);
  const opt = join(root, 'opt/serial-gateway');
  t.equal(read(join(opt, 'dist/src/main.js')), 'console.log("v1");\n');
  t.equal(read(join(opt, 'config/default.yaml')), 'serial:\n  path: /dev/labbox\n');
  t.equal(read(join(opt, 'web/console.html')), '<!doctype html>v1\n', 'the web pages are installed beside the program');
  t.equal(read(join(opt, 'package.json')), read(join(repo, 'package.json')));
  t.ok(existsSync(join(opt, 'package-lock.json')));
  const command = read(join(root, 'usr/local/bin/serial-gateway'));
  t.match(command, new RegExp(`^exec ${node} /opt/serial-gateway/dist/src/main\\.js "\\$@"$`, 'm'), 'the command runs the same node');
  // The live-system steps are reported, not run.
  t.match(first.out, /would run: useradd --system .*--groups dialout,gpio serial-gateway/);
  t.match(first.out, /would run: systemctl daemon-reload/);
  t.match(first.out, /would run: systemctl enable serial-gateway\n/);
  t.notMatch(first.out, /would run: systemctl (start|restart|enable --now)/, '--no-start');
  t.match(first.out, /Config: created/);

  // An instructor's edit, a new release, and a file the old release had but the new one does not.
  const config = join(root, 'etc/serial-gateway/config.yaml');
  writeFileSync(config, 'serial:\n  path: /dev/ttyACM0 # edited\n');
  writeFileSync(join(clone, 'dist/src/main.js'), 'console.log("v2");\n');
  writeFileSync(join(opt, 'dist/src/removed-upstream.js'), '');
  const second = await sh(installSh, args);
  t.equal(second.code, 0, second.err);
  t.equal(read(config), 'serial:\n  path: /dev/ttyACM0 # edited\n', 'the edit survives an upgrade');
  t.match(second.out, /Config: kept your .*config\.yaml/);
  t.equal(read(join(opt, 'dist/src/main.js')), 'console.log("v2");\n', 'the program is upgraded');
  t.notOk(existsSync(join(opt, 'dist/src/removed-upstream.js')), 'no stale files');

  const removed = await sh(uninstallSh, ['--root', root]);
  t.equal(removed.code, 0, removed.err);
  for (const gone of [
    'opt/serial-gateway',
    'etc/systemd/system/serial-gateway.service',
    'etc/udev/rules.d/99-serial-gateway.rules',
    'etc/avahi/services/serial-gateway.service',
    'usr/local/bin/serial-gateway',
  ]) {
    t.notOk(existsSync(join(root, gone)), `${gone} removed`);
  }
  t.equal(read(config), 'serial:\n  path: /dev/ttyACM0 # edited\n', 'uninstall keeps the config');
  t.match(removed.out, /would run: systemctl disable --now serial-gateway/);
  t.notMatch(removed.out, /userdel/);

  const purged = await sh(uninstallSh, ['--root', root, '--purge']);
  t.equal(purged.code, 0, purged.err);
  t.notOk(existsSync(join(root, 'etc/serial-gateway')), '--purge removes the config');
  t.match(purged.out, /would run: userdel serial-gateway/);
});

t.test('without --no-start the service is enabled and started', { skip }, async (t) => {
  const dir = t.testdir();
  const root = join(dir, 'root');
  mkdirSync(root);
  const run = await sh(installSh, ['--root', root, '--from', fakeClone(dir), '--node', process.execPath, '--no-npm']);
  t.equal(run.code, 0, run.err);
  t.match(run.out, /would run: systemctl daemon-reload\n {2}would run: systemctl enable serial-gateway\n {2}would run: systemctl start serial-gateway\n/);
  t.match(run.out, /nc \S+\.local 2323/);
  t.match(run.out, /journalctl -u serial-gateway -f/);
});

t.test('Avahi, the connect lines and --leds follow the installed config', { skip }, async (t) => {
  const dir = t.testdir();
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc/serial-gateway'), { recursive: true });
  mkdirSync(join(root, 'boot/firmware'), { recursive: true });
  const bootConfig = join(root, 'boot/firmware/config.txt');
  writeFileSync(bootConfig, '[pi4]\narm_boost=1\n');
  writeFileSync(
    join(root, 'etc/serial-gateway/config.yaml'),
    [
      'serial:\n  path: /dev/labbox',
      'tcp:\n  - name: lab\n    host: 0.0.0.0\n    port: 4000\n    telnet: off\n  - name: bench\n    host: 127.0.0.1\n    port: 4001',
      'udp:\n  - name: peers\n    host: 0.0.0.0\n    port: 4002',
      'leds:\n  enabled: true\n  ready:\n    pin: 17\n  error:\n    pin: 27\n    activeLow: true\n  serial:\n    pin: 22\n    backend: gpiochip',
      '',
    ].join('\n'),
  );
  const clone = fakeClone(dir);
  const args = ['--root', root, '--from', clone, '--node', process.execPath, '--no-npm', '--leds'];
  const first = await sh(installSh, args);
  t.equal(first.code, 0, first.err);
  const avahi = read(join(root, 'etc/avahi/services/serial-gateway.service'));
  t.match(avahi, /<type>_serial-gateway\._tcp<\/type>\s*<port>4000<\/port>/, 'the real port');
  t.notMatch(avahi, /_telnet|4001|4002|2323/, 'no telnet (off), no loopback listener, no UDP, no default port');
  t.match(first.out, /TCP listener lab \(shared, lines\):\n {2}nc raspberrypi\.local 4000\n/);
  t.match(first.out, /TCP listener bench \(shared, lines\) \(this machine only\):\n {2}nc 127\.0\.0\.1 4001\n {2}telnet 127\.0\.0\.1 4001\n/);
  t.match(first.out, /nc -u raspberrypi\.local 4002/);

  const block =
    '# serial-gateway status LEDs (written by deploy/install.sh --leds)\n[all]\n' +
    'dtoverlay=gpio-led,gpio=17,label=serialgw-ready,trigger=none\n' +
    'dtoverlay=gpio-led,gpio=27,label=serialgw-error,trigger=none,active_low=1\n' +
    '# end of serial-gateway status LEDs\n';
  t.equal(read(bootConfig), `[pi4]\narm_boost=1\n${block}`, 'the wired ledclass-capable LEDs, under [all]');
  t.equal(read(`${bootConfig}.serial-gateway.bak`), '[pi4]\narm_boost=1\n', 'a backup of the file as it was');
  t.match(first.out, /REBOOT NEEDED/);

  const again = await sh(installSh, args);
  t.equal(again.code, 0, again.err);
  t.equal(read(bootConfig), `[pi4]\narm_boost=1\n${block}`, 'a second run writes the lines once');
  t.match(again.out, /already has these lines/);
  t.notMatch(again.out, /REBOOT NEEDED/);

  // An older image: /boot/config.txt. No LED wired: the file is left alone.
  const old = join(dir, 'old');
  mkdirSync(join(old, 'boot'), { recursive: true });
  writeFileSync(join(old, 'boot/config.txt'), 'dtparam=audio=on\n');
  const oldRun = await sh(installSh, ['--root', old, '--from', clone, '--node', process.execPath, '--no-npm', '--leds']);
  t.equal(oldRun.code, 0, oldRun.err);
  t.equal(read(join(old, 'boot/config.txt')), 'dtparam=audio=on\n');
  t.match(oldRun.out, /no LED is enabled and wired in the config/);

  // Not a Pi at all: a warning, and the install still completes.
  const plain = join(dir, 'plain');
  mkdirSync(plain);
  const plainRun = await sh(installSh, ['--root', plain, '--from', clone, '--node', process.execPath, '--no-npm', '--leds']);
  t.equal(plainRun.code, 0, plainRun.err);
  t.match(plainRun.out, /WARNING: --leds: neither .*boot\/firmware\/config\.txt nor .*boot\/config\.txt exists/);
  t.ok(existsSync(join(plain, 'etc/systemd/system/serial-gateway.service')));
});

t.test('install refuses what would not run', { skip }, async (t) => {
  const dir = t.testdir();
  const clone = fakeClone(dir);
  const root = join(dir, 'root');
  mkdirSync(root);

  // A Node too old for serialport 13: the message says how to get a newer one.
  const oldNode = join(dir, 'node18');
  writeFileSync(oldNode, '#!/bin/sh\nif [ "$1" = -p ]; then echo 18; else echo v18.19.0; fi\n');
  chmodSync(oldNode, 0o755);
  const old = await sh(installSh, ['--root', root, '--from', clone, '--node', oldNode, '--no-npm']);
  t.equal(old.code, 1);
  t.match(old.err, /Node 18\.19\.0|v18\.19\.0/);
  t.match(old.err, /NodeSource/);

  // Nothing built and no npm allowed.
  const unbuilt = fakeClone(join(dir, 'unbuilt'));
  rmSync(join(unbuilt, 'dist'), { recursive: true });
  const missing = await sh(installSh, ['--root', root, '--from', unbuilt, '--node', process.execPath, '--no-npm']);
  t.equal(missing.code, 1);
  t.match(missing.err, /dist\/src\/main\.js is missing and --no-npm/);
  t.notOk(existsSync(join(root, 'opt')), 'nothing installed');

  const unknown = await sh(installSh, ['--bogus']);
  t.equal(unknown.code, 1);
  t.match(unknown.err, /unknown option: --bogus/);

  const help = await sh(installSh, ['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /--root DIR/);
});
