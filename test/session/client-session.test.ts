import t from 'tap';
import { sessionRig, tick } from '../support/session-rig.js';

t.test('device lines reach the client as exact bytes, one batch in flight; {at} is the ring position after it', async (t) => {
  const { bridge, open } = sessionRig(t);
  const a = open({ banner: '{listener} {device} {settings}, {clients} connected' });
  t.equal(a.writer.greeting?.banner, 'test sim 115200 8N1, 1 connected', 'banner expanded and given to the transport');
  a.writer.hold = true;
  bridge.deviceData(Buffer.from('one\r\ntwo\r\n'));
  t.equal(a.writer.text, 'one\r\ntwo\r\n', 'both lines in one batch');
  bridge.deviceData(Buffer.from('three\r\n'));
  t.equal(a.writer.device.length, 1, 'no second batch while the first is held (the fake throws if one is tried)');
  a.writer.release();
  await tick();
  t.equal(a.writer.text, 'one\r\ntwo\r\nthree\r\n', 'the next batch follows once the first is done');
  t.same(a.writer.ats, [2, 3], 'each batch says where the stream has reached');
  t.equal(a.session.stats.linesOut, 3);
});

t.test('a client that stops taking output skips to the newest, is counted, and told once when it catches up', async (t) => {
  const { bridge, clock, open } = sessionRig(t);
  const a = open({ clientBufferBytes: 1024 });
  a.writer.hold = true;
  const line = (i: number): string => `line ${String(i).padStart(4, '0')} ${'x'.repeat(40)}\r\n`;
  bridge.deviceData(Buffer.from(line(0)));
  for (let i = 1; i <= 100; i++) bridge.deviceData(Buffer.from(line(i)));
  t.ok(a.session.stats.lost > 0, `lines were skipped (${a.session.stats.lost})`);
  t.equal(bridge.counters.lost, a.session.stats.lost, "the bridge's dropped count (STATUS, error LED) has them too");
  t.same(a.writer.notices, [], 'not told while still behind');
  a.writer.hold = false;
  a.writer.release();
  await tick();
  clock.advance(2000);
  await tick();
  const missed = a.writer.notices.filter((n) => n.startsWith('missed '));
  t.same(missed, [`missed ${a.session.stats.lost} lines (this client was too slow)`], 'one notice with the total');
  const got = a.writer.text.split('\r\n').filter(Boolean);
  const seen = got.length + a.session.stats.lost;
  t.equal(seen, 101, 'every line was either delivered or counted as missed');
});

t.test('request mode: each client gets only its own replies; untagged output goes to all', async (t) => {
  const { bridge, link, clock, open } = sessionRig(t);
  const a = open({ mode: 'request' }, { peer: '10.0.0.1:1000' });
  const b = open({ mode: 'request' }, { peer: '10.0.0.2:2000' });
  bridge.deviceData(Buffer.from('boot banner\r\n'));
  a.transport.line('id');
  await tick();
  t.same(link.written, ['id\r\n'], 'the device got the line with its delimiter');
  bridge.deviceData(Buffer.from('LABBOX-1 student A\r\n'));
  clock.advance(100); // the reply ends after replyQuietMs of quiet
  b.transport.line('id');
  await tick();
  bridge.deviceData(Buffer.from('LABBOX-1 student B\r\n'));
  clock.advance(100);
  await tick();
  t.equal(a.writer.text, 'boot banner\r\nLABBOX-1 student A\r\n', 'A: the banner and its own reply');
  t.equal(b.writer.text, 'boot banner\r\nLABBOX-1 student B\r\n', 'B: the banner and its own reply');
});

t.test('closeOn: the session ends right after delivering the matching device line', async (t) => {
  const { bridge, open } = sessionRig(t);
  const a = open({ closeOn: 'bye' });
  bridge.deviceData(Buffer.from('hello\r\nbye\r\nafter\r\n'));
  await tick();
  t.equal(a.writer.text, 'hello\r\nbye\r\n', 'nothing after the closeOn line');
  t.equal(a.writer.ended, 'done', 'output ended');
});

t.test('input share: when the device queue pauses a client, its transport is paused; resumed when it drains', async (t) => {
  const { bridge, open } = sessionRig(t);
  const a = open();
  // No link writes complete: detach by making the link unwritable
  (bridge as unknown as { link: { writable: boolean } }).link.writable = false;
  for (let i = 0; i < 200 && !a.transport.reader.paused; i++) a.transport.line(`line ${i} ${'y'.repeat(200)}`);
  t.ok(a.transport.reader.paused, 'the reader was paused once the client held its share of the queue');
  t.equal(a.session.stats.refused, 0, 'nothing refused: pausing comes first');
  (bridge as unknown as { link: { writable: boolean } }).link.writable = true;
  bridge.deviceState('OPEN', 'back');
  for (let i = 0; i < 50; i++) await tick();
  t.notOk(a.transport.reader.paused, 'resumed once the device took the lines');
});

t.test('resume: a session started at a seq the ring holds gets exactly the lines from there; an evicted one says how many were lost', async (t) => {
  const { bridge, open } = sessionRig(t, { ringBytes: 8192 });
  for (let i = 0; i < 10; i++) bridge.deviceData(Buffer.from(`early ${i}\r\n`));
  const a = open({}, { startAt: 7 });
  await tick();
  t.equal(a.writer.text, 'early 7\r\nearly 8\r\nearly 9\r\n', 'from seq 7 on, once each');
  t.same(a.writer.greeting && { seq: a.writer.greeting.seq, lost: a.writer.greeting.lost, resumed: a.writer.greeting.resumed }, { seq: 7, lost: 0, resumed: true });
  a.transport.reader.handlers.closed();
  for (let i = 0; i < 400; i++) bridge.deviceData(Buffer.from(`later ${i} ${'z'.repeat(30)}\r\n`));
  const oldest = bridge.ring.oldestSeq;
  t.ok(oldest > 3, 'the ring has moved on past seq 3');
  const b = open({}, { startAt: 3 });
  t.same(b.writer.greeting && { seq: b.writer.greeting.seq, lost: b.writer.greeting.lost }, { seq: oldest, lost: oldest - 3 }, 'starts at the oldest held, lost counted');
  t.equal(b.session.stats.lost, oldest - 3, "the gap is in the client's lost count");
  t.equal(bridge.counters.lost, 0, "but not in the gateway's dropped count: nothing was dropped while it was connected");
});

t.test('a shared client that half-closes right after a line lingers for the answer', async (t) => {
  const { bridge, clock, open } = sessionRig(t);
  const a = open();
  a.transport.line('id');
  a.transport.reader.handlers.end();
  await tick();
  t.equal(a.writer.ended, null, 'still open: the device has not answered');
  clock.advance(100);
  bridge.deviceData(Buffer.from('LABBOX-1\r\n'));
  clock.advance(100);
  t.equal(a.writer.ended, null, 'the answer is still coming in');
  clock.advance(100);
  await tick();
  t.equal(a.writer.text, 'LABBOX-1\r\n');
  t.equal(a.writer.ended, 'done', 'closed once the device went quiet');
});

t.test('idle timeout: a notice, then the session closes; a line resets the timer', async (t) => {
  const { clock, open } = sessionRig(t);
  const a = open({ idleTimeoutMs: 10000 });
  clock.advance(9000);
  a.transport.line('still here');
  clock.advance(9000);
  t.equal(a.writer.ended, null, 'a line counted as activity');
  clock.advance(1000);
  t.same(a.writer.notices, ['idle for 10 s: closing']);
  t.equal(a.writer.ended, 'done');
});

t.test('monitors get every client line with its sender; a line typed on a monitor is refused once, politely', async (t) => {
  const { open, link } = sessionRig(t);
  const mon = open({ mode: 'monitor' }, { peer: '10.0.0.9:9000' });
  const a = open({}, { peer: '10.0.0.1:1000' });
  a.transport.line('id');
  await tick();
  t.same(mon.writer.events.filter((e) => e.startsWith('sent:')), ['sent:tcp test 10.0.0.1:1000 id']);
  mon.transport.line('reboot');
  mon.transport.line('reboot');
  await tick();
  t.same(link.written, ['id\r\n'], "the monitor's lines never reach the device");
  t.same(mon.writer.notices, ['this listener is read-only: nothing you type reaches the device'], 'told once');
});

t.test('device away and back are told once each; notices wait while the client is backed up', async (t) => {
  const { bridge, open } = sessionRig(t);
  const a = open({ clientBufferBytes: 1024 });
  bridge.deviceState('WAITING', 'unplugged');
  bridge.deviceState('WAITING', 'unplugged');
  a.writer.bufferedAmount = 5000;
  bridge.deviceState('OPEN', '/dev/ttyUSB0');
  t.same(a.writer.notices, ['device away: unplugged'], 'the back notice is held while the transport is over its bound');
  a.writer.bufferedAmount = 0;
  bridge.deviceData(Buffer.from('x\r\n'));
  await tick();
  t.same(a.writer.notices, ['device away: unplugged', 'device back: /dev/ttyUSB0'], 'given once the batch drained');
});

t.test('a session that goes away detaches: its lines left in the queue are dropped, its unread lines counted', async (t) => {
  const { bridge, open, sessions } = sessionRig(t);
  const a = open();
  a.writer.hold = true;
  bridge.deviceData(Buffer.from('a\r\n'));
  bridge.deviceData(Buffer.from('b\r\n'));
  a.transport.reader.handlers.closed();
  t.equal(sessions.length, 0, 'the listener was told');
  t.equal(bridge.ring.consumerCount, 0, 'the cursor is detached');
  t.equal(a.session.stats.lost, 1, 'the line it never got is counted');
});
