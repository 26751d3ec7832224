import t from 'tap';
import { sessionRig, tick } from '../support/session-rig.js';

/**
 * History on connect: a new client's cursor starts at the recent past, which goes out as ordinary batches between
 * `! history: ...` and `! live`. Sessions over the contract-enforcing FakeTransport, time from a FakeClock.
 */

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await tick();
};

/** This file's listener: a banner to come before the history, and history on. */
const rig = (t: { teardown(fn: () => void): void }, ringBytes?: number, maxLineBytes?: number) =>
  sessionRig(t, { ringBytes, maxLineBytes, policy: { banner: 'hi', historyLines: 20, historySeconds: 600 } });

t.test('shared: a late joiner gets the last historyLines lines between the two notices, then live lines', async (t) => {
  const { clock, open, device } = rig(t);
  for (let i = 1; i <= 30; i++) {
    device(`line ${i}\r\n`);
    clock.advance(1000);
  }
  const a = open({ historyLines: 5 });
  await settle();
  device('live 1\r\n');
  await settle();
  t.same(a.writer.events, [
    'greet:hi',
    'notice:history: 5 lines from the last 5 s',
    'data:line 26\r\nline 27\r\nline 28\r\nline 29\r\nline 30\r\n',
    'notice:live',
    'data:live 1\r\n',
  ]);
  t.same(a.writer.greeting?.history, { from: 25, to: 30, lines: 5, ageMs: 5000 }, 'the transport is told the records and the age');
  t.equal(a.writer.greeting?.seq, 25, 'the stream starts at the first history record');
  t.equal(a.session.stats.lost, 0, 'history is not counted as lost');
});

t.test('historySeconds: nothing older is sent; none at all means no notices', async (t) => {
  const { clock, open, device } = rig(t);
  device('old 1\r\nold 2\r\n');
  clock.advance(120_000);
  device('new 1\r\nnew 2\r\nnew 3\r\n');
  clock.advance(30_000);
  const a = open({ historySeconds: 60 });
  await settle();
  t.same(a.writer.events, ['greet:hi', 'notice:history: 3 lines from the last 30 s', 'data:new 1\r\nnew 2\r\nnew 3\r\n', 'notice:live']);
  clock.advance(60_000);
  const b = open({ historySeconds: 60 });
  await settle();
  t.same(b.writer.events, ['greet:hi'], 'everything older than historySeconds: no history, no notices');
  t.equal(b.writer.greeting?.history, null);
  const c = open({ historyLines: 0 });
  await settle();
  t.same(c.writer.events, ['greet:hi'], 'historyLines: 0 turns it off');
  const d = open({ historySeconds: 0 });
  await settle();
  t.match(d.writer.events[1], /^notice:history: 5 lines from the last 4 min$/, 'historySeconds: 0 is no age limit (rounded up to whole minutes)');
});

t.test('request: history holds only the lines that were nobody\'s reply', async (t) => {
  const { clock, open, device } = rig(t);
  device('boot banner\r\n');
  const a = open({ mode: 'request', historyLines: 0 }, { peer: '10.0.0.1:1' });
  a.transport.line('id');
  await settle();
  device('reply for A\r\n');
  clock.advance(200);
  device('device says hi\r\n');
  await settle();
  const b = open({ mode: 'request' }, { peer: '10.0.0.2:2' });
  await settle();
  t.same(b.writer.events, ['greet:hi', 'notice:history: 2 lines from the last 1 s', 'data:boot banner\r\ndevice says hi\r\n', 'notice:live'], "A's reply is not in B's history");
  const m = open({ mode: 'monitor' });
  await settle();
  t.same(
    m.writer.events,
    ['greet:hi', 'notice:history: 3 lines from the last 1 s', 'data:boot banner\r\nreply for A\r\ndevice says hi\r\n', 'notice:live'],
    'a monitor gets every device line, replies included',
  );
});

t.test('resumed clients get no history (they get what they missed instead)', async (t) => {
  const { open, device } = rig(t);
  device('a\r\nb\r\nc\r\n');
  const r = open({}, { startAt: 2 });
  await settle();
  t.same(r.writer.events, ['greet:hi', 'data:c\r\n']);
  t.equal(r.writer.greeting?.history, null);
});

t.test('the ring overwrote part of the history: only what it holds, whole lines, counted truthfully', async (t) => {
  // 64 KiB ring, maxLineBytes 1000 (the ring's minimum is 8 lines of it).
  const { bridge, open, device } = rig(t, 65536, 1000);
  for (let i = 0; i < 2000; i++) device(`line ${String(i).padStart(5, '0')} ${'x'.repeat(40)}\r\n`);
  const held = bridge.ring.endSeq - bridge.ring.oldestSeq;
  t.ok(held < 2000, `the ring holds ${held} of the 2000 lines`);
  const a = open({ historyLines: 5000 });
  await settle();
  const n = Math.min(held, Math.floor(262144 / 2 / 53));
  t.equal(a.writer.notices[0], `history: ${n} lines from the last 1 s`, 'says how many it really has');
  const lines = a.writer.text.split('\r\n').filter(Boolean);
  t.equal(lines.length, n, 'and sends exactly those');
  t.equal(lines[lines.length - 1], `line 01999 ${'x'.repeat(40)}`, 'ending with the newest');

  // A long line cut into fragments whose start has left the ring is not shown from its middle.
  const { bridge: b2, open: open2, device: device2 } = rig(t, 65536, 1000);
  device2(`${'L'.repeat(70_000)}\r\n`); // 70 fragments and the end of the line; the ring keeps the last ~65
  device2('after\r\n');
  t.ok(b2.ring.oldestSeq > 0, 'the start of the long line has been evicted');
  const c = open2();
  await settle();
  t.same(c.writer.events, ['greet:hi', 'notice:history: 1 line from the last 1 s', 'data:after\r\n', 'notice:live'], 'no tail of a line whose start is gone');
});

t.test('a client connecting during a flood gets bounded history, then live; every line delivered or counted', async (t) => {
  const { bridge, open, device } = rig(t, 1 << 20);
  const line = (i: number): string => `flood ${String(i).padStart(6, '0')} ${'y'.repeat(41)}\r\n`; // 56 bytes
  let i = 0;
  for (; i < 10_000; i++) device(line(i));
  const a = open({ historyLines: 10_000, clientBufferBytes: 16384 }, { hold: true });
  const h = a.writer.greeting?.history;
  t.ok(h, 'history was chosen');
  t.ok(h && h.lines <= Math.floor(8192 / 56), `history bounded by half of clientBufferBytes: ${h?.lines} lines`);
  t.equal(a.writer.inFlight, true, 'the first history batch is with the socket');
  // The flood goes on while the client has not taken its first batch.
  for (; i < 12_000; i++) device(line(i));
  t.equal(bridge.ring.consumerCount, 1, 'the client is still there: it only lags');
  a.writer.hold = false;
  a.writer.release();
  await settle();
  for (; i < 12_010; i++) device(line(i));
  await settle();
  const notices = a.writer.notices;
  t.equal(notices[0], `history: ${h?.lines} lines from the last 1 s`);
  t.ok(notices.includes('live'), 'live follows');
  const lost = a.session.stats.lost;
  t.ok(lost > 0, `the lines it was too slow for were skipped (${lost}), not held`);
  const got = a.writer.text.split('\r\n').filter(Boolean);
  const first = Number(got[0]!.slice(6, 12));
  t.equal(got.length + lost, 12_010 - first, 'every line since the first history line was delivered or counted as lost');
  const nums = got.map((l) => Number(l.slice(6, 12)));
  t.ok(nums.every((n, k) => k === 0 || n > nums[k - 1]!), 'in order, each once');
  t.equal(nums[nums.length - 1], 12_009, 'and it is live at the end');
});

t.test('a history line equal to closeOn does not close the newcomer', async (t) => {
  const { open, device } = rig(t);
  device('bye\r\nmore\r\n');
  const a = open({ closeOn: 'bye' });
  await settle();
  t.same(a.writer.events, ['greet:hi', 'notice:history: 2 lines from the last 1 s', 'data:bye\r\nmore\r\n', 'notice:live']);
  t.equal(a.writer.ended, null, 'still open');
  device('bye\r\nlost\r\n');
  await settle();
  t.equal(a.writer.ended, 'done', 'a live closeOn line still closes');
});

t.test('notices: false still sends history (unmarked): config defaults it to 0 there', async (t) => {
  const { open, device } = rig(t);
  device('x\r\n');
  const a = open({ notices: false });
  await settle();
  t.same(a.writer.events, ['greet:hi', 'data:x\r\n']);
});
