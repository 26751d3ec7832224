import t from 'tap';
import { Bridge } from '../../src/bridge.js';
import { silentLog } from '../../src/core/log.js';
import { Instructor, type Classroom, type ClientRow, type InstructorState } from '../../src/control/instructor.js';
import { FakeClock } from '../support/fake-clock.js';

/** A classroom that records what the instructor did to it. */
function room(clients: ClientRow[] = []) {
  const told: string[] = [];
  const removed: { ids: number[]; reason: string }[] = [];
  const states: InstructorState[] = [];
  let pause: unknown = null;
  let resetResult: () => Promise<string> = async () => 'DTR pulse of 100 ms';
  const r: Classroom = {
    broadcast: (text) => (told.push(text), clients.length),
    remove: (pick, reason) => {
      const ids = clients.filter(pick).map((c) => c.id);
      removed.push({ ids, reason });
      return ids.length;
    },
    clients: () => clients,
    reset: () => resetResult(),
    clearQueue: () => 4,
    setPause: (p) => (pause = p),
    changed: (s) => states.push(s),
  };
  return { r, told, removed, states, pause: () => pause, setReset: (f: () => Promise<string>) => (resetResult = f) };
}

const CLIENTS: ClientRow[] = [
  { id: 1, listener: 'lab', via: 'tcp', peer: '10.0.0.7:5000', mode: 'shared' },
  { id: 2, listener: 'lab', via: 'tcp', peer: '10.0.0.7:5001', mode: 'shared' },
  { id: 3, listener: 'web', via: 'web', peer: '[fd00::9]:4000', mode: 'request' },
];

t.test('a pause for a while lifts itself exactly then, and the class is told both times', async (t) => {
  const clock = new FakeClock();
  let wall = 1_000_000;
  const rm = room(CLIENTS);
  const ins = new Instructor(rm.r, clock, silentLog, () => wall);
  const r = await ins.handle({ action: 'pause', for: '10m' }, 'local user ann (uid 1000)');
  t.match(r, { ok: true, text: 'input paused for 10 min; 3 client(s) told' });
  t.same(rm.pause(), { until: 1_000_000 + 600_000, by: 'local user ann (uid 1000)' });
  t.same(rm.told, ['read-only: the instructor has paused input for 10 min']);
  clock.advance(599_999);
  t.not(rm.pause(), null, 'still paused a millisecond before');
  clock.advance(1);
  wall += 600_000;
  t.equal(rm.pause(), null, 'lifted at 10 min');
  t.same(rm.told.slice(1), ['input resumed: lines reach the device again']);
  t.match(await ins.handle({ action: 'resume' }, 'x'), { ok: false, text: 'input is not paused' }, 'nothing to resume');
  t.equal(rm.told.length, 2, 'and nobody told');
});

t.test('a second pause replaces the first (and its timer); resume ends it at once', async (t) => {
  const clock = new FakeClock();
  const rm = room(CLIENTS);
  const ins = new Instructor(rm.r, clock, silentLog, () => 0);
  await ins.handle({ action: 'pause', for: '1m' }, 'a');
  await ins.handle({ action: 'pause' }, 'b');
  clock.advance(120_000);
  t.same(rm.pause(), { until: null, by: 'b' }, 'the first timer no longer lifts it');
  t.match(await ins.handle({ action: 'resume' }, 'c'), { ok: true });
  t.equal(rm.pause(), null);
  t.equal(rm.states.at(-1)!.paused, null, 'the dashboard hears of it');
});

t.test('kick: by address, by address:port, by client id; a ban bars the address until it runs out', async (t) => {
  const clock = new FakeClock();
  let wall = 0;
  const rm = room(CLIENTS);
  const ins = new Instructor(rm.r, clock, silentLog, () => wall);
  t.match(await ins.handle({ action: 'kick', target: '10.0.0.7:5001' }, 'w'), { ok: true, text: 'removed 1 client(s) from 10.0.0.7:5001' });
  t.same(rm.removed.at(-1), { ids: [2], reason: '' });
  t.match(await ins.handle({ action: 'kick', target: '::ffff:10.0.0.7', reason: 'flood' }, 'w'), { ok: true, text: /removed 2 client\(s\)/ });
  t.same(rm.removed.at(-1), { ids: [1, 2], reason: 'flood' });
  t.match(await ins.handle({ action: 'kick', client: 3, ban: '5m' }, 'w'), { ok: true, text: 'removed 1 client(s) from fd00::9 (client 3); fd00::9 barred for 5 min' });
  t.ok(ins.barred('fd00::9'));
  t.notOk(ins.barred('10.0.0.7'), 'only the banned address');
  t.same(ins.state.bans, [{ address: 'fd00::9', until: 300_000 }]);
  wall = 300_000;
  t.notOk(ins.barred('fd00::9'), 'the ban runs out');
  t.match(await ins.handle({ action: 'kick', client: 99 }, 'w'), { ok: false, text: /no client with id 99/ });
  t.match(await ins.handle({ action: 'kick', target: '10.1.1.1' }, 'w'), { ok: false, text: 'no client connected from 10.1.1.1' });
  t.match(await ins.handle({ action: 'kick', target: '10.1.1.1', ban: '1m' }, 'w'), { ok: true, text: /10\.1\.1\.1 barred for 1 min/ }, 'a ban alone is allowed');
  t.match(await ins.handle({ action: 'kick', target: '10.0.0.7', reason: 'a\u0000b' }, 'w'), { ok: false, text: /one line/ });
  t.equal(rm.removed.length, 5, 'a kick refused for its reason did not reach the classroom');
});

t.test('reset: refused with the reason; told only when done; one at a time', async (t) => {
  const rm = room(CLIENTS);
  const ins = new Instructor(rm.r, new FakeClock(), silentLog);
  rm.setReset(async () => {
    throw new Error('the device is away (unplugged)');
  });
  t.match(await ins.handle({ action: 'reset' }, 'w'), { ok: false, text: 'reset refused: the device is away (unplugged)' });
  t.same(rm.told, [], 'nobody told of a reset that did not happen');
  let finish: (v: string) => void = () => {};
  rm.setReset(() => new Promise<string>((r) => (finish = r)));
  const first = ins.handle({ action: 'reset' }, 'w');
  t.match(await ins.handle({ action: 'reset' }, 'w'), { ok: false, text: 'a reset is already under way' });
  finish('RTS pulse of 50 ms');
  t.match(await first, { ok: true, text: 'box reset (RTS pulse of 50 ms); 3 client(s) told' });
  t.same(rm.told, ['box reset by the instructor']);
  t.equal(ins.state.resets, 1);
});

t.test('send works from the dashboard only', async (t) => {
  const ins = new Instructor(room().r, new FakeClock(), silentLog);
  t.match(await ins.handle({ action: 'send', line: 'id' }, 'local user'), { ok: false, text: /dashboard only/ });
  const lines: string[] = [];
  t.match(await ins.handle({ action: 'send', line: 'id' }, 'dash', (l) => (lines.push(l), 'queued')), { ok: true, text: 'sent' });
  t.same(lines, ['id']);
});

t.test('clear-queue on a real bridge: the write queue and request turns, each sender told how many of its own', async (t) => {
  const clock = new FakeClock();
  const bridge = new Bridge({ clock, log: silentLog, ringBytes: 65536, maxLineBytes: 256, delimiter: 'crlf', idleFlushMs: 0, outputDelimiter: 'crlf', writeQueueBytes: 65536 });
  t.teardown(() => bridge.dispose());
  // No device link: every line waits.
  const told = new Map<number, string[]>();
  const source = (id: number) => ({ id, pause() {}, resume() {}, tell: (text: string) => told.set(id, [...(told.get(id) ?? []), text]) });
  const a = source(1);
  const b = source(2);
  const from = { via: 'tcp' as const, listener: 'lab', peer: 'x' };
  for (const l of ['a1', 'a2', 'a3']) t.equal(bridge.submit(Buffer.from(l), { source: a, from }), 'queued');
  const timing = { replyMaxLines: 0, replyQuietMs: 100, requestTimeoutMs: 1000 };
  const finished: boolean[] = [];
  for (const l of ['b1', 'b2']) {
    t.equal(bridge.submit(Buffer.from(l), { source: b, from, request: { owner: 7, timing, finished: (r) => finished.push(r.sent) } }), 'queued');
  }
  const cleared = bridge.clearQueue();
  t.equal(cleared, 5, 'three queued lines and two requests (one handed to the queue, one waiting its turn)');
  t.same(told.get(1), ['3 of your lines waiting for the device were dropped by the instructor']);
  t.same(told.get(2), ['2 of your lines waiting for the device were dropped by the instructor']);
  t.same(finished, [false, false], 'both requests finish as not sent');
  t.equal(bridge.clearQueue(), 0, 'nothing left');
  bridge.inputPause = { until: null, by: 'x' };
  t.equal(bridge.submit(Buffer.from('s'), { source: a, from }), 'paused', 'a student line is refused while paused');
  t.equal(bridge.submit(Buffer.from('i'), { source: a, from, instructor: true }), 'queued', "the instructor's passes");
});
