import t from 'tap';
import { RequestArbiter, type Request } from '../../src/route/request-arbiter.js';
import { FakeClock } from '../support/fake-clock.js';

const timing = { replyMaxLines: 0, replyQuietMs: 100, requestTimeoutMs: 2000 };

function request(owner: number, log: string[], opts: Partial<typeof timing> = {}, writeNow = true) {
  let written: ((ok: boolean) => void) | null = null;
  const r: Request = {
    owner,
    line: Buffer.from(`req${owner}`),
    timing: { ...timing, ...opts },
    send: (w) => {
      log.push(`send ${owner}`);
      written = w;
      if (writeNow) w(true);
    },
    finished: (res) => log.push(`done ${owner} lines=${res.lines}${res.timedOut ? ' timeout' : ''}${res.sent ? '' : ' unsent'}`),
  };
  return { r, write: (ok = true) => written?.(ok) };
}

t.test('one request in flight; its reply lines carry its owner; quiet ends the reply; the next goes', (t) => {
  const clock = new FakeClock();
  const a = new RequestArbiter(clock);
  const log: string[] = [];
  a.submit(request(7, log).r);
  a.submit(request(8, log).r);
  t.same(log, ['send 7'], 'the second waits its turn');
  t.equal(a.onDeviceLine(), 7);
  clock.advance(99);
  t.equal(a.onDeviceLine(), 7, 'a line within the quiet time still belongs to the reply');
  clock.advance(100);
  t.same(log, ['send 7', 'done 7 lines=2', 'send 8']);
  t.equal(a.onDeviceLine(), 8);
  t.end();
});

t.test('replyMaxLines ends the reply at once; lines outside any reply go to everyone', (t) => {
  const clock = new FakeClock();
  const a = new RequestArbiter(clock);
  const log: string[] = [];
  t.equal(a.onDeviceLine(), 0, 'no request: everyone');
  a.submit(request(3, log, { replyMaxLines: 1 }).r);
  t.equal(a.onDeviceLine(), 3);
  t.equal(a.onDeviceLine(), 0, 'after the one reply line, a spontaneous line is for everyone');
  t.same(log, ['send 3', 'done 3 lines=1']);
  t.end();
});

t.test('no reply within requestTimeoutMs: the sender is told and the next request goes', (t) => {
  const clock = new FakeClock();
  const a = new RequestArbiter(clock);
  const log: string[] = [];
  a.submit(request(1, log).r);
  a.submit(request(2, log).r);
  clock.advance(1999);
  t.same(log, ['send 1']);
  clock.advance(1);
  t.same(log, ['send 1', 'done 1 lines=0 timeout', 'send 2']);
  t.end();
});

t.test('the timeout starts when the device accepted the line, not when it was queued', (t) => {
  const clock = new FakeClock();
  const a = new RequestArbiter(clock);
  const log: string[] = [];
  const r = request(1, log, {}, false);
  a.submit(r.r);
  clock.advance(10_000); // the device is away
  t.same(log, ['send 1']);
  t.equal(a.onDeviceLine(), 0, 'lines before the request reached the device are not its reply');
  r.write(true);
  clock.advance(1999);
  t.same(log, ['send 1']);
  clock.advance(1);
  t.same(log, ['send 1', 'done 1 lines=0 timeout']);
  t.end();
});

t.test('a line that never reaches the device frees the arbiter at once; a leaving owner is withdrawn', (t) => {
  const clock = new FakeClock();
  const a = new RequestArbiter(clock);
  const log: string[] = [];
  const r1 = request(1, log, {}, false);
  a.submit(r1.r);
  a.submit(request(2, log, {}, false).r);
  a.submit(request(3, log).r);
  a.cancelOwner(2);
  r1.write(false);
  t.same(log, ['send 1', 'done 1 lines=0 unsent', 'send 3']);
  t.equal(a.stats.canceled, 1);
  t.end();
});
