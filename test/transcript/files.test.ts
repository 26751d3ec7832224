import t from 'tap';
import { dayBefore, fileName, parseFileName, retentionPlan } from '../../src/transcript/files.js';

t.test('file names: one per day, then .1, .2 ...; other names are not ours', (t) => {
  t.equal(fileName('2026-12-01', 0), 'transcript-2026-12-01.jsonl');
  t.equal(fileName('2026-12-01', 12), 'transcript-2026-12-01.12.jsonl');
  t.same(parseFileName('transcript-2026-12-01.jsonl'), { day: '2026-12-01', index: 0 });
  t.same(parseFileName('transcript-2026-12-01.12.jsonl'), { day: '2026-12-01', index: 12 });
  for (const other of ['transcript-2026-12-01.jsonl.gz', 'notes.txt', 'transcript-today.jsonl', '.transcript-2026-12-01.jsonl']) {
    t.equal(parseFileName(other), null, other);
  }
  t.end();
});

t.test('dayBefore counts calendar days across months, years and DST changes', (t) => {
  t.equal(dayBefore('2026-12-01', 0), '2026-12-01');
  t.equal(dayBefore('2026-12-01', 1), '2026-11-30');
  t.equal(dayBefore('2026-01-01', 1), '2025-12-31');
  t.equal(dayBefore('2026-03-30', 2), '2026-03-28');
  t.equal(dayBefore('2028-03-01', 1), '2028-02-29');
  t.end();
});

t.test('retentionPlan: past keepDays first, then oldest first down to maxBytes - maxFileBytes; never the current file', (t) => {
  const f = (day: string, index: number, size: number) => ({ name: fileName(day, index), day, index, size });
  const files = [f('2026-11-01', 0, 10), f('2026-11-20', 0, 400), f('2026-11-20', 1, 400), f('2026-11-30', 0, 400), f('2026-12-01', 0, 400)];
  const plan = (maxBytes: number, oldestDay = '2026-11-02') =>
    retentionPlan(files, { current: fileName('2026-12-01', 0), oldestDay, maxBytes, maxFileBytes: 400 });
  t.same(plan(10_000), ['transcript-2026-11-01.jsonl']);
  t.same(plan(1500), ['transcript-2026-11-01.jsonl', 'transcript-2026-11-20.jsonl']);
  t.same(plan(400), ['transcript-2026-11-01.jsonl', 'transcript-2026-11-20.jsonl', 'transcript-2026-11-20.1.jsonl', 'transcript-2026-11-30.jsonl']);
  t.same(plan(10_000, '2026-12-01'), ['transcript-2026-11-01.jsonl', 'transcript-2026-11-20.jsonl', 'transcript-2026-11-20.1.jsonl', 'transcript-2026-11-30.jsonl']);
  t.end();
});
