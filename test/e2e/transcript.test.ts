import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRecord } from '../../src/transcript/record.js';
import { MAIN, TestClient, freePort, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { until } from '../support/until.js';

/**
 * The transcript with the built daemon: a class chats with the simulator over TCP and UDP, the instructor reads
 * it back with `serial-gateway transcript`; a full disk (RLIMIT_FSIZE), a read-only directory and a SIGKILL in
 * the middle of a flood leave the gateway serving and every file readable.
 */

interface Ports {
  lab: number;
  cls: number;
  mon: number;
  udp: number;
}

async function ports(): Promise<Ports> {
  return { lab: await freePort(), cls: await freePort(), mon: await freePort(), udp: await freePort() };
}

function config(p: Ports, dir: string, extra = ''): string {
  return `serial:
  path: sim:labbox
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${p.lab}
  - name: class
    host: 127.0.0.1
    port: ${p.cls}
    mode: request
    maxClients: 1
  - name: mon
    host: 127.0.0.1
    port: ${p.mon}
    mode: monitor
udp:
  - name: udp
    host: 127.0.0.1
    port: ${p.udp}
log:
  level: info
transcript:
  enabled: true
  dir: ${dir}
  flushMs: 50
${extra}`;
}

function readTranscript(configFile: string, args: string[] = []): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, 'transcript', '--config', configFile, ...args], { encoding: 'utf8', timeout: 20_000, maxBuffer: 256 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Every line of every transcript file; `torn` counts lines that do not parse (allowed only last in a file). */
function fileLines(dir: string): { records: number; tornInside: number; tornLast: number; files: string[] } {
  let records = 0;
  let tornInside = 0;
  let tornLast = 0;
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    const lines = text.split('\n');
    const last = lines.pop()!;
    if (last !== '') tornLast++;
    for (const l of lines) (parseRecord(l) ? records++ : tornInside++);
  }
  return { records, tornInside, tornLast, files };
}

async function reload(d: RunningDaemon): Promise<void> {
  const ready = d.notify.messages.filter((m) => m.READY === '1').length;
  d.child.kill('SIGHUP');
  await d.notify.waitFor(() => d.notify.messages.filter((m) => m.READY === '1').length > ready, 5000);
}

t.test('a class chats; the transcript reads back as the conversation, with every kind of event', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const p = await ports();
  const d = await startDaemon(base, config(p, dir));
  t.teardown(() => d.stop('SIGKILL'));
  const file = join(base, 'config.yaml');

  const alice = await TestClient.connect(p.lab);
  const bob = await TestClient.connect(p.cls);
  alice.send('id\n');
  await alice.waitFor('6510500000');
  bob.send('name\n');
  await bob.waitFor('Lab Box');
  alice.send('echo \x1b[2J\x1b]0;pwned\x07\n');
  await alice.waitFor('pwned');
  const late = await TestClient.connect(p.cls);
  await late.waitFor('! busy');
  const mon = await TestClient.connect(p.mon);
  mon.send('hello?\n');
  await mon.waitFor('read-only');
  const udp = createSocket('udp4');
  t.teardown(() => udp.close());
  const answered = new Promise<string>((resolve) => udp.once('message', (m) => resolve(m.toString())));
  udp.send('id', p.udp, '127.0.0.1');
  t.match(await answered, '6510500000');
  await reload(d);
  const ap = alice.socket.localPort;
  const bp = bob.socket.localPort;
  alice.close();
  bob.close();
  mon.close();
  await until(() => (fileLines(dir).records >= 16), 5000, 'the records are on disk');
  t.equal(await d.stop(), 0);

  const r = readTranscript(file);
  t.equal(r.code, 0, r.err);
  const show = r.out.replace(/^\d\d:\d\d:\d\d /gm, '');
  for (const want of [
    'gateway started: device sim:labbox',
    'device back: sim:labbox',
    `tcp:lab 127.0.0.1:${ap} connected`,
    `tcp:class 127.0.0.1:${bp} connected`,
    `tcp:lab 127.0.0.1:${ap} > id\ndevice < 6510500000`,
    `tcp:class 127.0.0.1:${bp} > name\ndevice < Lab Box`,
    `tcp:lab 127.0.0.1:${ap} > echo \\x1b[2J\\x1b]0;pwned\\x07\ndevice < \\x1b[2J\\x1b]0;pwned\\x07`,
    `refused: 1 clients are connected already (maxClients)`,
    `! this listener is read-only: nothing you type reaches the device`,
    `udp:udp 127.0.0.1:`,
    `> id\ndevice < 6510500000`,
    'gateway reloaded its config',
    `tcp:lab 127.0.0.1:${ap} disconnected (2 in,`,
    'gateway stopping: the gateway is stopping',
  ]) {
    t.ok(show.includes(want), `shows: ${JSON.stringify(want)}`);
  }
  t.notMatch(r.out, /\x1b/, 'no escape byte reaches the reader’s terminal');
  t.match(r.out, /^\d\d:\d\d:\d\d tcp:lab 127\.0\.0\.1:\d+ > id$/m, 'chat format: time, listener, client, line');

  const only = readTranscript(file, ['--client', `127.0.0.1:${bp}`]);
  t.match(only.out, /> name\n\d\d:\d\d:\d\d device < Lab Box/);
  t.notMatch(only.out, /> id/, 'only that client');
  const json = readTranscript(file, ['--json', '--listener', 'class']);
  const kinds = json.out.trim().split('\n').map((l) => parseRecord(l)?.k);
  t.ok(kinds.includes('connect') && kinds.includes('client') && kinds.includes('refused') && kinds.includes('device'), `json kinds: ${kinds.join(' ')}`);

  const modes = readdirSync(dir).map((f) => statSync(join(dir, f)).mode & 0o777);
  t.ok(modes.length > 0 && modes.every((m) => m === 0o640), 'files are 0640');
});

t.test('a reload turns the transcript off and on; nothing is recorded while it is off', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const p = await ports();
  const d = await startDaemon(base, config(p, dir));
  t.teardown(() => d.stop('SIGKILL'));
  const c = await TestClient.connect(p.lab);
  c.send('echo before\n');
  await c.waitFor('before');
  writeFileSync(join(base, 'config.yaml'), config(p, dir).replace('enabled: true', 'enabled: false'));
  await reload(d);
  c.send('echo while-off\n');
  await c.waitFor('while-off');
  writeFileSync(join(base, 'config.yaml'), config(p, dir));
  await reload(d);
  c.send('echo after\n');
  await c.waitFor('after');
  c.close();
  await d.stop();
  const r = readTranscript(join(base, 'config.yaml'));
  t.match(r.out, /device < before[\s\S]*gateway stopping: the transcript settings changed[\s\S]*gateway started[\s\S]*device < after/);
  t.notMatch(r.out, /while-off/);
});

const prlimit = spawnSync('prlimit', ['--version']).status === 0;

t.test('a full disk (RLIMIT_FSIZE): one warning, STATUS= says so, the gateway keeps serving, the file stays whole', { skip: prlimit ? false : 'prlimit (util-linux) is not installed' }, async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const p = await ports();
  const limit = 40_000;
  const d = await startDaemon(base, config(p, dir), {}, { wrap: ['prlimit', `--fsize=${limit}`] });
  t.teardown(() => d.stop('SIGKILL'));
  const c = await TestClient.connect(p.lab);
  c.send('stream 3000\n');
  await c.waitFor('line 3000\r\n', 10_000).catch((e: Error) => { throw new Error(`${e.message}\n${d.output()}`); });
  const st = await d.notify.waitFor((m) => /transcript stopped: EFBIG/.test(m.STATUS ?? ''), 5000);
  t.pass(`STATUS=${st.STATUS}`);
  c.send('id\n');
  await c.waitFor('6510500000');
  c.send('stream 1000\n');
  await c.waitFor('line 1000\r\n', 10_000);
  t.equal((d.output().match(/transcript stopped/g) ?? []).length, 1, 'one warning');
  t.match(d.output(), /transcript stopped \(EFBIG.*the gateway goes on without it/);
  const f = fileLines(dir);
  t.equal(f.tornInside + f.tornLast, 0, `every line is a whole record (${f.records} records in ${f.files.join(', ')})`);
  const size = statSync(join(dir, f.files[0]!)).size;
  t.ok(size <= limit && size > limit - 200, `the file was filled up to the limit: ${size} bytes`);
  t.equal(await d.stop(), 0, 'stops cleanly');
});

const root = process.getuid?.() === 0;
const unshare = root && spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status === 0;

t.test('a read-only directory: one warning, STATUS= mark, the gateway serves', { skip: root && !unshare ? 'root without unshare: no way to make a directory it cannot write' : false }, async (t) => {
  const base = t.testdir();
  const dir = join(base, 'ro');
  mkdirSync(dir);
  const p = await ports();
  let wrap: string[] = [];
  if (unshare) {
    // Root writes anywhere: a read-only filesystem it is, mounted in the daemon's own mount namespace.
    wrap = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o ro,size=64k tmpfs '${dir}' && exec "$@"`, 'sh'];
  } else {
    chmodSync(dir, 0o555);
    // tap may have removed its test directory already (an empty 0555 directory goes with its parent).
    t.teardown(() => {
      if (existsSync(dir)) chmodSync(dir, 0o755);
    });
  }
  const d = await startDaemon(base, config(p, dir), {}, { wrap });
  t.teardown(() => d.stop('SIGKILL'));
  const st = await d.notify.waitFor((m) => /transcript stopped: (EROFS|EACCES)/.test(m.STATUS ?? ''), 5000);
  t.pass(`STATUS=${st.STATUS}`);
  const c = await TestClient.connect(p.lab);
  c.send('id\n');
  await c.waitFor('6510500000');
  c.close();
  t.equal((d.output().match(/transcript stopped/g) ?? []).length, 1, 'one warning');
  t.equal(await d.stop(), 0);
});

t.test('SIGKILL in the middle of a flood: every file readable, the last record whole or absent; a restart goes on', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const p = await ports();
  const yaml = config(p, dir);
  const d = await startDaemon(base, yaml);
  t.teardown(() => d.stop('SIGKILL'));
  const c = await TestClient.connect(p.lab);
  c.socket.on('error', () => {});
  c.send('stream 1000000\n');
  const bytes = () => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  await until(() => bytes() > 2_000_000, 20_000, 'the flood reaches the transcript');
  t.equal(await d.stop('SIGKILL'), 'SIGKILL');
  c.close();
  const f = fileLines(dir);
  t.equal(f.tornInside, 0, `no broken line inside a file (${f.records} records)`);
  t.ok(f.tornLast <= 1, `at most one torn last line (${f.tornLast})`);

  const again = await startDaemon(base, yaml);
  t.teardown(() => again.stop('SIGKILL'));
  const c2 = await TestClient.connect(p.lab);
  c2.send('echo after the crash\n');
  await c2.waitFor('after the crash');
  c2.close();
  await again.stop();
  const r = readTranscript(join(base, 'config.yaml'));
  t.equal(r.code, 0);
  t.match(r.out, /device < line 1\n/);
  t.match(r.out.slice(-2000), /device < after the crash\n[\s\S]*gateway stopping/);
  if (f.tornLast > 0) t.match(r.err, /1 unreadable line skipped/);
  const g = fileLines(dir);
  t.equal(g.tornInside, f.tornLast, 'a torn line stays last in its file: the restart opened the next file');
});
