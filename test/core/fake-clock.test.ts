import t from 'tap';
import { FakeClock } from '../support/fake-clock.js';

t.test('timers fire in time order, intervals repeat, disposers cancel', (t) => {
  const clock = new FakeClock();
  const fired: string[] = [];
  clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
  const stop = clock.setInterval(() => fired.push(`i@${clock.now()}`), 15);
  const cancel = clock.setTimeout(() => fired.push('never'), 5);
  cancel();
  clock.advance(31);
  stop();
  clock.advance(100);
  t.same(fired, ['a@10', 'i@15', 'b@20', 'i@30']);
  t.equal(clock.now(), 131);
  t.equal(clock.pending, 0);
  t.end();
});
