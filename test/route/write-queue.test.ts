import t from 'tap';
import { WriteQueue, type QueuedLine, type WriteSource } from '../../src/route/write-queue.js';

function source(id: number) {
  const events: string[] = [];
  const s: WriteSource & { events: string[] } = { id, events, pause: () => events.push('pause'), resume: () => events.push('resume') };
  return s;
}

const item = (src: WriteSource, text: string): QueuedLine => ({
  source: src,
  bytes: Buffer.from(`${text}\r\n`),
  line: Buffer.from(text),
  from: { via: 'tcp', listener: 'test', peer: `client${src.id}` },
});

t.test('sources take turns line by line: a flooder cannot push a classmate behind its backlog', (t) => {
  const q = new WriteQueue(1 << 20, 1 << 20);
  const flooder = source(1);
  const student = source(2);
  for (let i = 0; i < 100; i++) q.enqueue(item(flooder, `flood ${i}`));
  q.enqueue(item(student, 'id'));
  const order = [q.take(), q.take(), q.take()].map((i) => i!.line.toString());
  t.same(order, ['flood 0', 'id', 'flood 1'], "the student's line goes second, not 101st");
  t.end();
});

t.test('the global bound refuses a line that does not fit; nothing is queued half', (t) => {
  const q = new WriteQueue(20, 1000);
  const a = source(1);
  t.equal(q.enqueue(item(a, '0123456789')), 'queued'); // 12 bytes
  t.equal(q.enqueue(item(a, '0123456789')), 'full');
  t.equal(q.queuedBytes, 12);
  t.equal(q.stats.refused, 1);
  t.end();
});

t.test('a source past its share is paused, and resumed once it has drained', (t) => {
  const q = new WriteQueue(1000, 30);
  const a = source(1);
  for (let i = 0; i < 3; i++) q.enqueue(item(a, '012345678')); // 11 bytes each
  t.same(a.events, ['pause'], 'paused once at 33 >= 30 bytes');
  q.take();
  t.same(a.events, ['pause'], 'still holding 22 bytes');
  q.take();
  t.same(a.events, ['pause', 'resume'], 'resumed below half its share');
  t.end();
});

t.test('a source that leaves takes its queued lines with it, counted', (t) => {
  const q = new WriteQueue(1000, 1000);
  const a = source(1);
  const b = source(2);
  const failed: string[] = [];
  q.enqueue({ ...item(a, 'one'), done: (err) => failed.push(err!.message) });
  q.enqueue(item(b, 'two'));
  q.enqueue(item(a, 'three'));
  t.equal(q.removeSource(a), 2);
  t.same(failed, ['client gone']);
  t.equal(q.take()!.line.toString(), 'two');
  t.equal(q.take(), undefined);
  t.equal(q.queuedBytes, 0);
  t.end();
});
