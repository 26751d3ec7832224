import t from 'tap';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatRecord, make, parseRecord, type ClientRef } from '../../src/transcript/record.js';
import { parseWhen, runTranscriptCommand } from '../../src/transcript/read.js';
import { localNoon } from './support.js';

/** `serial-gateway transcript` run in-process on a directory of real files. */

const alice: ClientRef = { via: 'tcp', listener: 'class', address: '10.0.0.7', port: 51234 };
const bob: ClientRef = { via: 'tcp', listener: 'lab', address: '10.0.0.8', port: 40000 };
const carol: ClientRef = { via: 'udp', listener: 'udp', address: '10.0.0.9', port: 5000 };
const day1 = localNoon(2026, 12, 1);
const day2 = localNoon(2026, 12, 2);
const iso = (ms: number) => new Date(ms).toISOString();
const hm = (ms: number) => {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
};

function classDir(t: { testdir(): string }): string {
  const dir = t.testdir();
  const at = (ms: number) => iso(ms);
  const one = [
    make.lifecycle(at(day1), 'start', 'device sim:labbox'),
    make.connect(at(day1 + 1000), alice),
    make.connect(at(day1 + 2000), bob),
    make.client(at(day1 + 3000), alice, Buffer.from('id')),
    make.device(at(day1 + 3010), Buffer.from('6510500000')),
    make.client(at(day1 + 4000), bob, Buffer.from('echo \x1b[2J')),
    make.device(at(day1 + 4010), Buffer.from('\x1b[2J')),
    make.refused(at(day1 + 5000), carol, 'not in the allow list'),
    make.disconnect(at(day1 + 6000), alice, { in: 1, out: 2, lost: 0 }),
  ];
  const two = [make.client(at(day2), carol, Buffer.from('name')), make.device(at(day2 + 10), Buffer.from('Lab Box'))];
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), one.map(formatRecord).join(''));
  // The second day ends with a torn line, as a SIGKILL can leave it.
  writeFileSync(join(dir, 'transcript-2026-12-02.jsonl'), `${two.map(formatRecord).join('')}{"t":"${at(day2 + 20)}","k":"dev`);
  return dir;
}

async function run(argv: string[], now = day2 + 3600_000) {
  let out = '';
  let err = '';
  const code = await runTranscriptCommand(argv, {}, { out: (s) => (out += s), err: (s) => (err += s), now: () => now });
  return { code, out, err, lines: out.split('\n').filter((l) => l !== '') };
}

t.test('the whole transcript as a chat, day by day, control bytes escaped; the torn last line skipped and said so', async (t) => {
  const dir = classDir(t);
  const r = await run(['--dir', dir]);
  t.equal(r.code, 0);
  t.same(r.lines, [
    '--- 2026-12-01 ---',
    `${hm(day1)} gateway started: device sim:labbox`,
    `${hm(day1 + 1000)} tcp:class 10.0.0.7:51234 connected`,
    `${hm(day1 + 2000)} tcp:lab 10.0.0.8:40000 connected`,
    `${hm(day1 + 3000)} tcp:class 10.0.0.7:51234 > id`,
    `${hm(day1 + 3010)} device < 6510500000`,
    `${hm(day1 + 4000)} tcp:lab 10.0.0.8:40000 > echo \\x1b[2J`,
    `${hm(day1 + 4010)} device < \\x1b[2J`,
    `${hm(day1 + 5000)} udp:udp 10.0.0.9:5000 refused: not in the allow list`,
    `${hm(day1 + 6000)} tcp:class 10.0.0.7:51234 disconnected (1 in, 2 out)`,
    '--- 2026-12-02 ---',
    `${hm(day2)} udp:udp 10.0.0.9:5000 > name`,
    `${hm(day2 + 10)} device < Lab Box`,
  ]);
  t.notMatch(r.out, /\x1b/, 'no escape byte reaches the terminal');
  t.match(r.err, /1 unreadable line skipped/);
});

t.test('--client: that client, with the device lines that answered it', async (t) => {
  const dir = classDir(t);
  const r = await run(['--dir', dir, '--client', '10.0.0.7']);
  t.same(r.lines.slice(1), [
    `${hm(day1)} gateway started: device sim:labbox`,
    `${hm(day1 + 1000)} tcp:class 10.0.0.7:51234 connected`,
    `${hm(day1 + 3000)} tcp:class 10.0.0.7:51234 > id`,
    `${hm(day1 + 3010)} device < 6510500000`,
    `${hm(day1 + 6000)} tcp:class 10.0.0.7:51234 disconnected (1 in, 2 out)`,
  ]);
  const byPort = await run(['--dir', dir, '--client', '10.0.0.8:40000']);
  t.match(byPort.out, /> echo/);
  t.notMatch(byPort.out, /10\.0\.0\.7/);
  const other = await run(['--dir', dir, '--client', '10.0.0.8:1']);
  t.notMatch(other.out, /10\.0\.0\.8/, 'another connection from that address is not it');
});

t.test('--listener (name or via:name), --since/--until, --json', async (t) => {
  const dir = classDir(t);
  const lab = await run(['--dir', dir, '--listener', 'tcp:lab']);
  t.same(
    lab.lines.filter((l) => !l.startsWith('---')).map((l) => l.slice(9)),
    ['gateway started: device sim:labbox', 'tcp:lab 10.0.0.8:40000 connected', 'tcp:lab 10.0.0.8:40000 > echo \\x1b[2J', 'device < \\x1b[2J'],
  );
  const udp = await run(['--dir', dir, '--listener', 'udp']);
  t.same(udp.lines.filter((l) => !l.startsWith('---')).map((l) => l.slice(9)), ['gateway started: device sim:labbox', 'udp:udp 10.0.0.9:5000 refused: not in the allow list', 'udp:udp 10.0.0.9:5000 > name', 'device < Lab Box']);

  const window = await run(['--dir', dir, '--since', `${new Date(day1 + 3000).toISOString()}`, '--until', `${new Date(day1 + 4500).toISOString()}`]);
  t.same(window.lines.slice(1).map((l) => l.slice(9)), ['tcp:class 10.0.0.7:51234 > id', 'device < 6510500000', 'tcp:lab 10.0.0.8:40000 > echo \\x1b[2J', 'device < \\x1b[2J']);
  const today = await run(['--dir', dir, '--since', '2026-12-02']);
  t.same(today.lines.map((l) => l.slice(9)), ['12-02 ---', 'udp:udp 10.0.0.9:5000 > name', 'device < Lab Box']);

  const json = await run(['--dir', dir, '--json', '--client', '10.0.0.9']);
  const records = json.lines.map((l) => parseRecord(l));
  t.ok(records.every((r) => r !== null), 'every line is a record');
  t.same(records.map((r) => r!.k), ['start', 'refused', 'client', 'device']);
  t.match(json.lines[2], /"text":"name"/);
});

t.test('--follow prints records as they are written, then stops on request', async (t) => {
  const dir = classDir(t);
  let out = '';
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const running = runTranscriptCommand(['--dir', dir, '--follow', '--since', '2026-12-02'], {}, { out: (s) => (out += s), err: () => {}, now: () => day2, stopped });
  await new Promise((r) => setTimeout(r, 100));
  t.match(out, /device < Lab Box/);
  // Finish the torn line the way a restarted writer would not; then a new record in a new file.
  appendFileSync(join(dir, 'transcript-2026-12-02.jsonl'), 'ice","text":"half"}\n');
  writeFileSync(join(dir, 'transcript-2026-12-02.1.jsonl'), formatRecord(make.client(iso(day2 + 60_000), alice, Buffer.from('late'))));
  const deadline = Date.now() + 3000;
  while (!/> late/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /device < half/, 'a line completed later is read once whole');
  t.match(out, /tcp:class 10\.0\.0\.7:51234 > late/, 'a new file is picked up');
  stop();
  t.equal(await running, 0);
});

t.test('bad arguments and missing directories say what to do', async (t) => {
  const dir = t.testdir();
  const r1 = await run(['--dir', dir, '--since', 'yesterday-ish']);
  t.equal(r1.code, 2);
  t.match(r1.err, /--since "yesterday-ish": expected 2026-12-01/);
  const r2 = await run(['--bogus']);
  t.equal(r2.code, 2);
  const r3 = await run(['--dir', join(dir, 'nope')]);
  t.equal(r3.code, 1);
  t.match(r3.err, /nope: no transcript yet/);
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, `transcript:\n  dir: ${join(dir, 'absent')}\n`);
  const r4 = await run(['--config', cfg]);
  t.equal(r4.code, 1);
  t.match(r4.err, /absent: no transcript yet \(transcript\.enabled is false in .*c\.yaml\)/, 'the directory comes from the config');
});

t.test('parseWhen: dates, times today, durations ago, ISO', (t) => {
  const now = localNoon(2026, 12, 1);
  t.equal(parseWhen('2026-11-30', now), new Date(2026, 10, 30).getTime());
  t.equal(parseWhen('2026-11-30 10:15', now), new Date(2026, 10, 30, 10, 15).getTime());
  t.equal(parseWhen('09:30', now), new Date(2026, 11, 1, 9, 30).getTime());
  t.equal(parseWhen('90m', now), now - 90 * 60_000);
  t.equal(parseWhen('2h', now), now - 2 * 3600_000);
  t.equal(parseWhen('3d', now), now - 3 * 86_400_000);
  t.equal(parseWhen('2026-12-01T10:00:00Z', now), Date.UTC(2026, 11, 1, 10));
  t.equal(parseWhen('soon', now), null);
  t.end();
});

t.test('--json prints DEL and C1 controls as \\u escapes: the same records, nothing a terminal acts on', async (t) => {
  const dir = t.testdir();
  // CSI 2 J as a C1 control (U+009B), valid UTF-8: stored as text, raw, by JSON.stringify.
  const sneaky = Buffer.from([0x65, 0x63, 0x68, 0x6f, 0x20, 0xc2, 0x9b, 0x32, 0x4a, 0x7f]);
  const stored = formatRecord(make.client(iso(day1), alice, sneaky));
  t.ok(stored.includes('\u009b'), 'the stored line holds the raw C1 byte (as JSON allows)');
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), stored);
  const r = await run(['--dir', dir, '--json'], day1 + 1000);
  t.equal(r.code, 0);
  t.notOk(/[\u007f-\u009f]/.test(r.out), 'no DEL or C1 in what is printed');
  t.ok(r.out.includes('\\u009b2J\\u007f'), 'written as \\u escapes');
  t.same(parseRecord(r.lines[0]!), parseRecord(stored.trimEnd()), 'the same record to a JSON parser');
});
