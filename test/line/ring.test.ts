import t from 'tap';
import { LineRing, RecordFlag, type Delimiter, type LineRingOptions } from '../../src/line/ring.js';
import { FakeClock } from '../support/fake-clock.js';

interface Rec {
  content: string;
  term: string;
  flags: number;
}

/** A ring whose records are captured (as latin1 text, so every byte value survives) the moment they are framed. */
function capture(opts: Partial<LineRingOptions> = {}) {
  const clock = new FakeClock();
  const recs: Rec[] = [];
  let notified = 0;
  const ring: LineRing = new LineRing({
    capacityBytes: 64 * 1024,
    maxLineBytes: 4096,
    clock,
    ...opts,
    onRecord: (seq) =>
      recs.push({
        content: ring.content(seq).toString('latin1'),
        term: ring.terminator(seq).toString('latin1'),
        flags: ring.flags(seq),
      }),
    onRecords: () => notified++,
  });
  const push = (...chunks: (string | Buffer)[]) => {
    for (const c of chunks) ring.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  };
  return { ring, recs, clock, push, notified: () => notified };
}

const lines = (recs: Rec[]) => recs.map((r) => [r.content, r.term]);

t.test('crlf: lines end at CR LF; the terminator is kept apart from the content', (t) => {
  const { recs, push } = capture();
  push('id\r\nname\r\n');
  t.same(lines(recs), [
    ['id', '\r\n'],
    ['name', '\r\n'],
  ]);
  t.end();
});

t.test('crlf: a CR LF split across two chunks is one line ending, not an extra empty line', (t) => {
  const { recs, push } = capture();
  push('6510500000\r', '\nnext\r', '\n');
  t.same(lines(recs), [
    ['6510500000', '\r\n'],
    ['next', '\r\n'],
  ]);
  t.end();
});

t.test('crlf: the saw-CR state survives a second CR (\\r\\r\\n), and a bare LF or CR is content', (t) => {
  const { recs, push } = capture();
  push('a\r', '\r', '\nb\nc\rd\r\n');
  t.same(lines(recs), [
    ['a\r', '\r\n'],
    ['b\nc\rd', '\r\n'],
  ]);
  t.end();
});

t.test('an empty line is still a line', (t) => {
  const { recs, push } = capture();
  push('\r\n\r\nx\r\n');
  t.same(lines(recs), [
    ['', '\r\n'],
    ['', '\r\n'],
    ['x', '\r\n'],
  ]);
  t.end();
});

t.test('lf, cr and any delimiters', (t) => {
  const lf = capture({ delimiter: 'lf' });
  lf.push('a\r\nb\n\n');
  t.same(lines(lf.recs), [
    ['a\r', '\n'],
    ['b', '\n'],
    ['', '\n'],
  ]);

  const cr = capture({ delimiter: 'cr' });
  cr.push('a\rb\n\r');
  t.same(lines(cr.recs), [
    ['a', '\r'],
    ['b\n', '\r'],
  ]);

  const any = capture({ delimiter: 'any' });
  any.push('a\r\nb\nc\rd\n\r\n');
  t.same(lines(any.recs), [
    ['a', '\r\n'],
    ['b', '\n'],
    ['c', '\r'],
    ['d', '\n'],
    ['', '\r\n'],
  ]);
  t.end();
});

t.test('any: a CR LF split across chunks counts once; the LF comes as a TERM_TAIL record, not a line', (t) => {
  const { ring, recs, push } = capture({ delimiter: 'any' });
  push('hello\r');
  t.same(lines(recs), [['hello', '\r']], 'the line is delivered at the CR, without waiting for the next byte');
  push('\nworld\r\n');
  t.same(lines(recs), [
    ['hello', '\r'],
    ['', '\n'],
    ['world', '\r\n'],
  ]);
  t.equal(recs[1]!.flags, RecordFlag.TERM_TAIL);
  t.equal(ring.stats.lines, 2, 'two lines, not three');
  push('\r', 'x\n');
  t.same(lines(recs).slice(3), [
    ['', '\r'],
    ['x', '\n'],
  ], 'a CR followed by something else is a line ending on its own');
  t.end();
});

t.test('maxLineBytes: a longer line comes in FRAGMENT records of that size; no buffer grows', (t) => {
  const { recs, push, ring } = capture({ capacityBytes: 1024, maxLineBytes: 16 });
  push('0123456789abcdef0123456789abcdefXYZ\r\n');
  t.same(
    recs.map((r) => [r.content, r.term, r.flags]),
    [
      ['0123456789abcdef', '', RecordFlag.FRAGMENT],
      ['0123456789abcdef', '', RecordFlag.FRAGMENT | RecordFlag.CONTINUATION],
      ['XYZ', '\r\n', RecordFlag.CONTINUATION],
    ],
  );
  // 100x the limit with no terminator at all, byte by byte: the partial never exceeds the limit (+ a pending CR).
  for (let i = 0; i < 1600; i++) {
    push('z');
    if (ring.partialBytes > 16) t.fail(`partial grew to ${ring.partialBytes}`);
  }
  t.equal(recs.length, 3 + 99, '1600 bytes: 99 fragments of 16 so far, the last 16 wait for more');
  t.equal(ring.partialBytes, 16);
  t.ok(recs.slice(3).every((r) => r.content.length === 16));
  t.end();
});

t.test('maxLineBytes: a line of exactly the limit is one record, even with its CR LF split', (t) => {
  const { recs, push } = capture({ capacityBytes: 1024, maxLineBytes: 4 });
  push('abcd\r', '\n', 'efgh', '\r', '\n');
  t.same(lines(recs), [
    ['abcd', '\r\n'],
    ['efgh', '\r\n'],
  ]);
  t.ok(recs.every((r) => r.flags === 0));
  t.end();
});

t.test('idleFlushMs: a prompt without newline is delivered after quiet; the rest of the line continues it', (t) => {
  const { recs, push, clock, ring } = capture({ idleFlushMs: 200 });
  push('> ');
  clock.advance(199);
  t.same(recs, [], 'not before the quiet time');
  clock.advance(1);
  t.same(recs, [{ content: '> ', term: '', flags: RecordFlag.PARTIAL }]);
  push('id\r\n');
  t.same(recs[1], { content: 'id', term: '\r\n', flags: RecordFlag.CONTINUATION });
  t.equal(ring.stats.lines, 1, 'the prompt and its continuation are one line');

  // Data that keeps flowing postpones the flush; a trailing CR under crlf waits for its LF.
  push('ab');
  clock.advance(150);
  push('c\r');
  clock.advance(150);
  t.equal(recs.length, 2, 'quiet is measured from the last byte');
  clock.advance(50);
  t.same(recs[2], { content: 'abc', term: '', flags: RecordFlag.PARTIAL });
  push('\n');
  t.same(recs[3], { content: '', term: '\r\n', flags: RecordFlag.CONTINUATION }, 'CR kept back, then LF ends the line');
  t.equal(clock.pending, 0, 'no timer left armed once the partial is gone');
  t.end();
});

t.test('idleFlushMs 0 never flushes', (t) => {
  const { recs, push, clock } = capture({ idleFlushMs: 0 });
  push('> ');
  clock.advance(60_000);
  t.same(recs, []);
  t.equal(clock.pending, 0);
  t.end();
});

t.test('bytes are bytes: 0x00, 0xFF and invalid UTF-8 pass through unchanged', (t) => {
  const { ring, push } = capture();
  const payload = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0xfe, 0x00, 0x80, 0x0d, 0x0a]);
  const got: Buffer[] = [];
  const cursor = ring.attach(() => t.fail('no pin here'));
  push(payload);
  for (let s = ring.next(cursor); s >= 0; s = ring.next(cursor)) {
    got.push(Buffer.from(ring.view(s)));
    ring.advance(cursor, s + 1);
  }
  t.same(Buffer.concat(got), payload);
  t.end();
});

t.test('none: raw chunks are forwarded as they come, through the ring, cut at maxLineBytes', (t) => {
  const { recs, push } = capture({ delimiter: 'none', capacityBytes: 256, maxLineBytes: 8 });
  push('abc\r\n', 'defghijklmnop');
  t.same(
    recs.map((r) => [r.content, r.flags]),
    [
      ['abc\r\n', RecordFlag.RAW],
      ['defghijk', RecordFlag.RAW],
      ['lmnop', RecordFlag.RAW],
    ],
  );
  t.end();
});

t.test('each chunk is copied once; lines are views of the ring, never copies', (t) => {
  const { ring } = capture();
  const cursor = ring.attach(() => {});
  const chunk = Buffer.from('first\r\nsecond\r\n');
  ring.push(chunk);
  chunk.fill(0x21); // the device adapter may reuse its chunk: the ring must not care
  const a = ring.view(ring.next(cursor)!);
  const b = ring.view(cursor.seq + 1);
  t.equal(a.toString(), 'first\r\n');
  t.equal(b.toString(), 'second\r\n');
  t.equal(a.buffer, b.buffer, 'both views share the ring memory');
  t.equal(a.buffer.byteLength, ring.capacityBytes, 'and that memory is the ring itself, not a pool slice');
  t.equal(ring.span(cursor.seq, cursor.seq + 2).toString(), 'first\r\nsecond\r\n', 'a run is one view');
  t.end();
});

t.test('wrapping: a line is never split; the partial move is one bounded copy per lap', (t) => {
  const { ring, recs, push } = capture({ capacityBytes: 256, maxLineBytes: 32 });
  let expected = 0;
  for (let i = 0; i < 1000; i++) {
    push(`line ${i} ${'x'.repeat(i % 23)}\r\n`.slice(0, 20), `line ${i} ${'x'.repeat(i % 23)}\r\n`.slice(20));
    expected++;
  }
  t.equal(recs.length, expected);
  t.ok(recs.every((r, i) => r.content === `line ${i} ${'x'.repeat(i % 23)}` && r.term === '\r\n'));
  t.ok(ring.stats.partialMoves > 10, `wrapped ${ring.stats.partialMoves} times`);
  t.ok(ring.stats.partialMoveBytes <= ring.stats.partialMoves * 33, 'each move is at most maxLineBytes + 1');
  t.end();
});

t.test('constructor refuses impossible sizes with the option named', (t) => {
  const clock = new FakeClock();
  t.throws(() => new LineRing({ capacityBytes: 100, maxLineBytes: 64, clock }), { name: 'TypeError', message: /capacityBytes/ });
  t.throws(() => new LineRing({ capacityBytes: 1024, maxLineBytes: 0, clock }), { name: 'TypeError', message: /maxLineBytes/ });
  t.throws(() => new LineRing({ capacityBytes: 1024, maxLineBytes: 8, maxRecords: 1, clock }), /maxRecords/);
  t.end();
});

t.test('reframe: a framing change applies to data not yet framed', (t) => {
  const { ring, recs, push } = capture();
  push('a\r\nb\nc');
  t.same(lines(recs), [['a', '\r\n']]);
  ring.reframe({ delimiter: 'lf' as Delimiter });
  t.same(lines(recs), [
    ['a', '\r\n'],
    ['b', '\n'],
  ]);
  push('\n');
  t.same(lines(recs)[2], ['c', '\n']);
  t.end();
});

t.test('the record table is bounded too: tiny lines evict the oldest when slots run out', (t) => {
  const { ring, push } = capture({ capacityBytes: 4096, maxLineBytes: 16, maxRecords: 8 });
  const cursor = ring.attach(() => {});
  for (let i = 0; i < 20; i++) push('\n\r\n'.slice(1));
  t.equal(ring.endSeq - ring.oldestSeq, 8);
  t.equal(ring.next(cursor), -1, 'a lagging cursor resumes from the newest data');
  t.equal(cursor.takeLost(), 20);
  t.end();
});

t.test('endLine: a line cut short by an unplug is delivered, and the next byte starts a new line', (t) => {
  const { ring, recs, push } = capture({ idleFlushMs: 0 });
  push('half a sent');
  ring.endLine();
  push('fresh\r\n');
  t.same(recs, [
    { content: 'half a sent', term: '', flags: RecordFlag.PARTIAL },
    { content: 'fresh', term: '\r\n', flags: 0 },
  ], 'no CONTINUATION: the device never finished that sentence');
  ring.endLine();
  t.equal(recs.length, 2, 'nothing pending: nothing delivered');
  t.end();
});
