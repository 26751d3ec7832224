import t from 'tap';
import { LineRing } from '../../src/line/ring.js';
import { FakeClock } from '../support/fake-clock.js';

/** Where a newcomer's history starts: counted in whole lines, bounded by age, bytes and (request mode) tags. */

function ring(opts: { delimiter?: 'crlf' | 'any'; maxLineBytes?: number } = {}) {
  const clock = new FakeClock();
  const r = new LineRing({ capacityBytes: 64 * 1024, maxLineBytes: opts.maxLineBytes ?? 4096, delimiter: opts.delimiter ?? 'crlf', idleFlushMs: 0, clock });
  const push = (s: string): void => r.push(Buffer.from(s, 'latin1'));
  return { clock, r, push };
}

t.test('each record keeps the clock time it was framed', (t) => {
  const { clock, r, push } = ring();
  push('a\r\n');
  clock.advance(1500);
  push('b\r\nc');
  r.flushPartial();
  t.same([r.framedAt(0), r.framedAt(1), r.framedAt(2)], [0, 1500, 1500]);
  t.end();
});

t.test('the newest N lines; a line in pieces counts once and starts at its first piece', (t) => {
  const { r, push } = ring({ maxLineBytes: 16 });
  push('one\r\n');
  push(`${'L'.repeat(40)}\r\n`); // two 16-byte pieces and the rest with its end: records 1-3
  push('three\r\n');
  t.same(r.historyStart(2, -Infinity, Infinity, false), { seq: 1, lines: 2 }, 'the long line and the last one');
  t.same(r.historyStart(100, -Infinity, Infinity, false), { seq: 0, lines: 3 }, 'no more than the ring holds');
  t.same(r.historyStart(0, -Infinity, Infinity, false), { seq: r.endSeq, lines: 0 }, '0 lines: starts at the end');
  t.end();
});

t.test('bounded by age and by bytes; never from the middle of a line', (t) => {
  const { clock, r, push } = ring({ maxLineBytes: 16 });
  push('old\r\n');
  clock.advance(10_000);
  push(`${'L'.repeat(40)}\r\n`);
  push('new\r\n');
  t.same(r.historyStart(10, 5_000, Infinity, false), { seq: 1, lines: 2 }, 'the line framed before notBefore is left out');
  // 'new\r\n' is 5 bytes, the long line 42: a 20-byte bound reaches into the long line, which is then left out whole.
  t.same(r.historyStart(10, -Infinity, 20, false), { seq: 4, lines: 1 });
  t.end();
});

t.test('untaggedOnly: a record some request claimed is neither counted nor a start', (t) => {
  const { r, push } = ring();
  push('banner\r\nreply\r\nhello\r\n');
  r.setTag(1, 7);
  t.same(r.historyStart(2, -Infinity, Infinity, true), { seq: 0, lines: 2 });
  t.same(r.historyStart(2, -Infinity, Infinity, false), { seq: 1, lines: 2 }, 'a monitor or shared client counts it');
  t.end();
});

t.test('delimiter any: the LF of a split CR LF is not a line', (t) => {
  const { r, push } = ring({ delimiter: 'any' });
  push('a\r');
  push('\nb\r\n');
  t.same(r.historyStart(5, -Infinity, Infinity, false), { seq: 0, lines: 2 });
  t.end();
});
