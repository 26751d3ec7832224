import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(__dirname, '../../..');
const unitSource = join(repo, 'systemd', 'serial-gateway.service');
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
const skip = analyze === undefined ? 'systemd-analyze is not installed (Debian package systemd)' : false;

function run(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise) => {
    const env = { ...process.env, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' };
    execFile(analyze as string, args, { env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, output: `${stdout}${stderr}` });
    });
  });
}

/**
 * The unit as install.sh writes it, in a folder of its own. verify checks that ExecStart's binary exists,
 * so /usr/bin/node becomes the node running this test (install.sh substitutes the Pi's node the same way).
 */
function writeUnit(dir: string, extra = ''): string {
  const text = readFileSync(unitSource, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
  const path = join(dir, 'serial-gateway.service');
  writeFileSync(path, text.replace('[Service]\n', `[Service]\n${extra}`));
  return path;
}

const ours = (output: string): string[] => output.split('\n').filter((line) => line.includes('serial-gateway'));

t.test('systemd-analyze verify has nothing to say about the unit', { skip }, async (t) => {
  const unit = writeUnit(t.testdir());
  const { code, output } = await run(['verify', unit]);
  t.equal(code, 0, output);
  t.same(ours(output), [], 'no warnings that name the unit');

  // The same check notices a mistake, so the clean result above means something.
  const broken = writeUnit(t.testdir(), 'NotifyAcess=main\n');
  const bad = await run(['verify', broken]);
  t.match(ours(bad.output).join('\n'), /NotifyAcess/);
});

t.test('systemd-analyze security rates the unit 2.0 or lower', { skip }, async (t) => {
  const unit = writeUnit(t.testdir());
  const { output } = await run(['security', '--offline=true', '--no-pager', unit]);
  const match = /Overall exposure level for serial-gateway\.service: ([0-9]+(?:\.[0-9]+)?)/.exec(output);
  t.ok(match, 'the output has an overall exposure line', { output: output.slice(-500) });
  const exposure = Number(match?.[1]);
  t.ok(exposure <= 2.0, `exposure ${exposure} <= 2.0`);
  t.comment(`exposure level: ${exposure}`);
  // The settings this score rests on, which a later edit must not drop quietly.
  for (const setting of ['NotifyAccess=', 'NoNewPrivileges=', 'ProtectSystem=', 'SystemCallFilter=', 'DeviceAllow=']) {
    t.match(output, new RegExp(`✓ ${setting}|✗ ${setting}`), setting);
  }
  t.match(output, /✓ NotifyAccess=/, 'children cannot alter service state');
  t.match(output, /✓ NoNewPrivileges=/);
  t.match(output, /✓ ProtectSystem=\s+Service has strict read-only access/);
});
