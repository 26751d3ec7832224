import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { downloadName, parseDownloadName, streamDay } from '../../src/transcript/download.js';

/** The download of one day (the dashboard's link): names, the day's files in order, and a receiver that stalls or leaves. */

const rec = (n: number, day = '2026-12-01'): string => `${JSON.stringify({ t: `${day}T10:00:00.000Z`, k: 'device', text: `line ${n}` })}\n`;

t.test('names: only YYYY-MM-DD.txt and .jsonl', (t) => {
  t.same(parseDownloadName('2026-12-01.txt'), { day: '2026-12-01', format: 'chat' });
  t.same(parseDownloadName('2026-12-01.jsonl'), { day: '2026-12-01', format: 'json' });
  for (const bad of ['', 'today.txt', '2026-12-01', '2026-12-01.csv', '../2026-12-01.txt', '2026-12-01.txt/x', '2026-1-01.txt']) {
    t.equal(parseDownloadName(bad), null, JSON.stringify(bad));
  }
  t.equal(downloadName('2026-12-01', 'chat'), '2026-12-01.txt');
  t.equal(downloadName('2026-12-01', 'json'), '2026-12-01.jsonl');
  t.end();
});

t.test("the day's files in order, other days and torn lines left out", async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'transcript-2026-11-30.jsonl'), rec(0, '2026-11-30'));
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), rec(1) + rec(2));
  writeFileSync(join(dir, 'transcript-2026-12-01.1.jsonl'), rec(3) + rec(4).slice(0, 20));
  writeFileSync(join(dir, 'notes.txt'), 'not a transcript\n');
  let out = '';
  const r = await streamDay(dir, '2026-12-01', 'json', { write: (s) => ((out += s), true), drained: () => Promise.resolve() });
  t.equal(out, rec(1) + rec(2) + rec(3));
  t.same(r, { records: 3, skipped: 1 });
  out = '';
  await streamDay(dir, '2026-12-01', 'chat', { write: (s) => ((out += s), true), drained: () => Promise.resolve() });
  t.same(out.replace(/\d\d:\d\d:\d\d /g, '').split('\n'), ['--- 2026-12-01 ---', 'device < line 1', 'device < line 2', 'device < line 3', '']);
});

t.test('a receiver that stops reading holds the reading back; one that leaves stops it', async (t) => {
  const dir = join(t.testdir(), 'big');
  mkdirSync(dir);
  const day: string[] = [];
  for (let i = 0; i < 50_000; i++) day.push(rec(i));
  writeFileSync(join(dir, 'transcript-2026-12-01.jsonl'), day.join(''));
  let written = 0;
  let leave!: (e: Error) => void;
  const left = new Promise<void>((_, reject) => (leave = reject));
  const streaming = streamDay(dir, '2026-12-01', 'json', {
    write: (s) => ((written += s.length), false),
    drained: () => left,
  });
  await new Promise((r) => setTimeout(r, 100));
  t.ok(written > 0 && written <= 70_000, `one chunk read while the receiver does not drain (${written} bytes of ${day.join('').length})`);
  leave(new Error('the receiver went away'));
  await t.rejects(streaming, /went away/);
  t.ok(written <= 70_000, 'nothing more after it left');
});
