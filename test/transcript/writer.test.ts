import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRecord, payloadBytes } from '../../src/transcript/record.js';
import { TranscriptRecorder } from '../../src/transcript/recorder.js';
import { TranscriptDirReader } from '../../src/transcript/read.js';
import { DAY, makeWriter } from './support.js';

/** Real files in a test directory; time (flush timers, days) from a fake clock. */

const line = (n: number, pad = 0): string => `${JSON.stringify({ t: '2026-12-01T12:00:00.000Z', k: 'device', text: `line ${n}${'.'.repeat(pad)}` })}\n`;
const tick = () => new Promise((r) => setImmediate(r));

function filesOf(dir: string): string[] {
  return readdirSync(dir).sort();
}

async function allLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  await new TranscriptDirReader(dir).read((l) => out.push(l), true);
  return out;
}

t.test('records are written in batches: nothing before flushMs, all of them after; files 0640 in a 0750 directory', async (t) => {
  const dir = join(t.testdir(), 'state', 'transcript');
  // As under the unit's UMask=0077.
  const umask = process.umask(0o077);
  t.teardown(() => void process.umask(umask));
  const { writer, clock } = makeWriter(dir);
  await writer.start();
  t.equal(writer.failure, null);
  const file = writer.currentFile!;
  t.equal(file, join(dir, 'transcript-2026-12-01.jsonl'));
  for (let i = 1; i <= 3; i++) writer.append(line(i));
  for (let i = 0; i < 5; i++) await tick();
  t.equal(statSync(file).size, 0, 'nothing written before the flush timer');
  clock.advance(200);
  await writer.drain();
  t.same(readFileSync(file, 'utf8').trimEnd().split('\n'), [1, 2, 3].map((n) => line(n).trimEnd()), 'one batch, in order');
  t.equal(statSync(file).mode & 0o777, 0o640, 'file mode 0640 (whatever the umask)');
  t.equal(statSync(dir).mode & 0o777, 0o750, 'directory created 0750');
  t.equal(statSync(join(dir, '..')).mode & 0o777, 0o750, 'and its parent, made too');
  await writer.close();
  t.equal(clock.pending, 0, 'no timer left behind');
});

t.test('a new file each local day (the injected wall clock)', async (t) => {
  const dir = t.testdir();
  const { writer, clock, wall } = makeWriter(dir);
  await writer.start();
  writer.append(line(1));
  clock.advance(200);
  await writer.drain();
  wall.ms += DAY;
  writer.append(line(2));
  await writer.drain();
  wall.ms += 2 * DAY;
  writer.append(line(3));
  await writer.close();
  t.same(filesOf(dir), ['transcript-2026-12-01.jsonl', 'transcript-2026-12-02.jsonl', 'transcript-2026-12-04.jsonl']);
  t.same(await allLines(dir), [1, 2, 3].map((n) => line(n).trimEnd()), 'read back in time order across the days');
});

t.test('a file past maxFileBytes goes on in .1, .2, ...; no line is split between files', async (t) => {
  const dir = t.testdir();
  const { writer } = makeWriter(dir, { maxFileBytes: 4096 });
  await writer.start();
  for (let i = 1; i <= 100; i++) {
    writer.append(line(i, 40));
    if (i % 10 === 0) await writer.drain();
  }
  await writer.close();
  const files = filesOf(dir);
  t.same(files, ['transcript-2026-12-01.1.jsonl', 'transcript-2026-12-01.2.jsonl', 'transcript-2026-12-01.3.jsonl', 'transcript-2026-12-01.jsonl']);
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    t.ok(text.length <= 4096, `${f}: ${text.length} bytes`);
    t.ok(text.endsWith('\n'), `${f} ends with a whole line`);
  }
  t.same(await allLines(dir), Array.from({ length: 100 }, (_, i) => line(i + 1, 40).trimEnd()), 'every line once, in order');
});

t.test('retention: days past keepDays go, then the oldest until the rest fit in maxBytes', async (t) => {
  const dir = t.testdir();
  const put = (name: string, bytes: number) => writeFileSync(join(dir, name), `${'x'.repeat(bytes - 1)}\n`);
  put('transcript-2026-11-10.jsonl', 100); // 21 days before: past keepDays 14
  put('transcript-2026-11-17.jsonl', 100); // 14 days before: past (today and the 13 days before are kept)
  put('transcript-2026-11-18.jsonl', 3000); // 13 days before: kept by keepDays, but the oldest left
  put('transcript-2026-11-30.jsonl', 3000);
  put('transcript-2026-11-30.1.jsonl', 3000);
  put('notes.txt', 50_000); // not ours: left alone
  const { writer, log } = makeWriter(dir, { keepDays: 14, maxBytes: 10_000, maxFileBytes: 4000 });
  await writer.start();
  await writer.close();
  t.same(filesOf(dir), ['notes.txt', 'transcript-2026-11-30.1.jsonl', 'transcript-2026-11-30.jsonl', 'transcript-2026-12-01.jsonl']);
  t.equal(writer.stats.deleted, 3);
  t.match(log.lines.join('\n'), /deleted transcript-2026-11-10\.jsonl \(retention\)/);
});

t.test('retention runs at each new file, and never deletes the file being written', async (t) => {
  const dir = t.testdir();
  const { writer } = makeWriter(dir, { maxBytes: 8192, maxFileBytes: 4096 });
  await writer.start();
  for (let i = 1; i <= 300; i++) {
    writer.append(line(i, 40));
    if (i % 10 === 0) await writer.drain();
  }
  await writer.close();
  const total = filesOf(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  t.ok(total <= 8192, `all files together ${total} bytes <= maxBytes`);
  const lines = (await allLines(dir));
  t.equal(lines.at(-1), line(300, 40).trimEnd(), 'the newest lines are kept');
});

t.test('a file left with a torn last line (SIGKILL) is not appended to; the reader skips the torn line', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), `${line(1)}{"t":"2026-12-01T12:00:01.000Z","k":"dev`);
  const { writer } = makeWriter(dir);
  await writer.start();
  t.equal(writer.currentFile, join(dir, 'transcript-2026-12-01.1.jsonl'));
  writer.append(line(2));
  await writer.close();
  const reader = new TranscriptDirReader(dir);
  const lines: string[] = [];
  await reader.read((l) => lines.push(l), true);
  t.same(lines, [line(1).trimEnd(), line(2).trimEnd()]);
  t.equal(reader.skipped, 1, 'the torn line counted as skipped');
});

t.test('a file that ends with a whole line is appended to after a restart', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), line(1));
  const { writer } = makeWriter(dir);
  await writer.start();
  writer.append(line(2));
  await writer.close();
  t.same(filesOf(dir), ['transcript-2026-12-01.jsonl']);
  t.same(await allLines(dir), [line(1).trimEnd(), line(2).trimEnd()]);
});

t.test('memory is bounded: past bufferBytes records are dropped, counted, and the count is recorded', async (t) => {
  const dir = t.testdir();
  const { writer } = makeWriter(dir, { bufferBytes: 2000 });
  await writer.start();
  for (let i = 1; i <= 50; i++) writer.append(line(i, 40)); // ~100 bytes each: ~20 fit
  const dropped = writer.stats.dropped;
  t.ok(dropped >= 25 && dropped <= 35, `${dropped} dropped`);
  await writer.drain();
  writer.append(line(51));
  await writer.close();
  const records = (await allLines(dir)).map((l) => parseRecord(l)!);
  const note = records.at(-2)!;
  t.same(note.k === 'dropped' && note.count, dropped, 'a dropped record with the count, before the next line');
  t.equal(records.at(-1)!.k, 'device');
  t.equal(records.length, 50 - dropped + 2);
});

t.test('a directory that cannot be made: one warning, the transcript stops, appends are ignored', async (t) => {
  const base = t.testdir({ file: 'not a directory' });
  const { writer, log, failures } = makeWriter(join(base, 'file', 'transcript'));
  await writer.start();
  t.match(writer.failure, /^ENOTDIR/);
  writer.append(line(1));
  writer.append(line(2));
  await writer.close();
  t.equal(log.warnings.length, 1, 'one warning');
  t.match(log.warnings[0], /transcript stopped \(ENOTDIR.*the gateway goes on without it.*reload/);
  t.equal(failures(), 1, 'failed() called once');
});

t.test('a read-only directory: one warning at the first file, the transcript stops', { skip: process.getuid?.() === 0 ? 'root writes to any directory whatever its mode' : false }, async (t) => {
  const dir = t.testdir();
  chmodSync(dir, 0o555);
  // tap may have removed its test directory already (an empty 0555 directory goes with its parent).
  t.teardown(() => {
    if (existsSync(dir)) chmodSync(dir, 0o755);
  });
  const { writer, log } = makeWriter(dir);
  await writer.start();
  t.match(writer.failure, /^EACCES/);
  t.equal(log.warnings.length, 1);
  await writer.close();
});

t.test('a directory that goes away under a running transcript: the next write fails, once', async (t) => {
  const base = t.testdir();
  const dir = join(base, 't');
  mkdirSync(dir);
  const { writer, log, clock } = makeWriter(dir, { maxFileBytes: 4096 });
  await writer.start();
  writer.append(line(1));
  clock.advance(200);
  await writer.drain();
  // Replace the directory by a file: the next rotation cannot open anything there.
  rmSync(dir, { recursive: true });
  writeFileSync(dir, '');
  for (let i = 0; i < 100; i++) writer.append(line(i, 60));
  await writer.drain();
  t.not(writer.failure, null, `stopped: ${writer.failure}`);
  for (let i = 0; i < 10; i++) writer.append(line(i));
  await writer.close();
  t.equal(log.warnings.length, 1, 'still one warning');
});

t.test('device lines through the recorder and the real writer read back byte for byte (quotes, backslashes, UTF-8, binary)', async (t) => {
  const dir = t.testdir();
  const { writer, wall } = makeWriter(dir);
  const rec = new TranscriptRecorder(writer, () => wall.ms);
  await writer.start();
  const sent = ['plain', 'say "hi" \\ back\\slash', '"', '\\', '', 'สวัสดี', 'a\tb', Buffer.from([0xff, 0x00, 0x22]).toString('latin1')];
  const bytes = sent.map((s, i) => (i === sent.length - 1 ? Buffer.from(s, 'latin1') : Buffer.from(s)));
  for (const b of bytes) rec.deviceLine(b, 0);
  await writer.close();
  const back = (await allLines(dir)).map((l) => payloadBytes(parseRecord(l) as { text?: string; b64?: string }));
  t.same(back, bytes);
});

t.test("appendJsonLine (the device lines' fast path) writes the very bytes JSON.stringify gives, and refuses what it cannot", async (t) => {
  const dir = t.testdir();
  const { writer, clock } = makeWriter(dir);
  await writer.start();
  const head = Buffer.from('{"t":"2026-12-01T12:00:00.000Z","k":"device","text":"', 'latin1');
  const texts = ['plain line 1', 'say "hi"', 'back\\slash', '"\\"', '', '~ !', 'x'.repeat(40_000)];
  for (const text of texts) t.equal(writer.appendJsonLine(head, Buffer.from(text, 'latin1')), true, `taken: ${JSON.stringify(text.slice(0, 20))}`);
  for (const text of ['tab\there', 'é', '\x7f', '\x1b[2J', 'cr\r']) {
    t.equal(writer.appendJsonLine(head, Buffer.from(text, 'utf8')), false, `left to the general path: ${JSON.stringify(text)}`);
  }
  clock.advance(200);
  await writer.close();
  t.same(
    readFileSync(join(dir, 'transcript-2026-12-01.jsonl'), 'utf8').split('\n').slice(0, -1),
    texts.map((text) => JSON.stringify({ t: '2026-12-01T12:00:00.000Z', k: 'device', text })),
    'every line as JSON.stringify writes it, nothing of the refused ones',
  );
});
