import t from 'tap';
import { LineRing, type RingCursor } from '../../src/line/ring.js';
import { FakeClock } from '../support/fake-clock.js';
import { Random, seedFromEnv } from '../support/random.js';

/**
 * The hard part of the ring: views handed to sockets are pinned. Several consumers hold views while many times
 * the ring's capacity flows through it. Every held view must keep its bytes until released; a consumer whose
 * pinned records the ring needs is told (before any byte is overwritten) and released; lagging consumers learn
 * how many records they lost; and per consumer, records read + records lost = records framed while attached.
 */

interface Held {
  view: Buffer;
  copy: Buffer;
}

interface Consumer {
  name: string;
  cursor: RingCursor;
  attachedAt: number;
  held: Held[];
  evictedWhilePinned: number;
  lostReported: number;
}

const seed = seedFromEnv();
t.comment(`seed ${seed} (replay with SEED=${seed})`);

t.test('held views never change; pinned eviction releases first; the counts add up', (t) => {
  const rnd = new Random(seed);
  const ring = new LineRing({ capacityBytes: 4096, maxLineBytes: 64, clock: new FakeClock(), idleFlushMs: 0 });
  const consumers: Consumer[] = [];
  let corrupted = 0;

  const checkHeld = (c: Consumer) => {
    for (const h of c.held) if (!h.view.equals(h.copy)) corrupted++;
  };
  const add = (name: string): Consumer => {
    const c: Consumer = {
      name,
      cursor: undefined as unknown as RingCursor,
      attachedAt: ring.endSeq,
      held: [],
      evictedWhilePinned: 0,
      lostReported: 0,
    };
    c.cursor = ring.attach(() => {
      // Called before the ring overwrites anything: the held bytes must still be intact right now.
      checkHeld(c);
      c.evictedWhilePinned++;
      c.held = [];
      ring.release(c.cursor);
    });
    consumers.push(c);
    return c;
  };
  const read = (c: Consumer, maxRecords: number, pin: boolean) => {
    const from = ring.next(c.cursor);
    c.lostReported += c.cursor.takeLost();
    if (from < 0) return;
    const to = Math.min(ring.endSeq, from + maxRecords);
    if (pin) {
      ring.pin(c.cursor, from);
      for (let s = from; s < to; s++) c.held.push({ view: ring.view(s), copy: Buffer.from(ring.view(s)) });
    }
    ring.advance(c.cursor, to);
  };
  const releaseAll = (c: Consumer) => {
    checkHeld(c);
    c.held = [];
    ring.release(c.cursor);
  };

  const fast = add('fast');
  const holder = add('holder');
  const slow = add('slow');
  const late = { c: undefined as Consumer | undefined };

  let pushedBytes = 0;
  let n = 0;
  while (pushedBytes < 40 * ring.capacityBytes) {
    const text = Array.from({ length: rnd.int(1, 20) }, () => `${n++}:${'x'.repeat(rnd.int(0, 70))}\r\n`).join('');
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; ) {
      const k = rnd.int(1, 512);
      ring.push(bytes.subarray(i, i + k));
      i += k;
    }
    pushedBytes += bytes.length;
    for (const c of consumers) checkHeld(c);

    // fast: a socket that keeps up; writes complete before the next chunk.
    read(fast, Infinity, true);
    releaseAll(fast);
    // holder: a socket whose writes sometimes take a long time to complete.
    if (holder.held.length === 0) read(holder, rnd.int(1, 30), true);
    else if (rnd.next() < 0.05) releaseAll(holder);
    // slow: reads a little, rarely, pins nothing.
    if (rnd.next() < 0.1) read(slow, rnd.int(1, 5), false);
    if (!late.c && pushedBytes > 10 * ring.capacityBytes) late.c = add('late');
    if (late.c && rnd.next() < 0.5) {
      read(late.c, rnd.int(1, 50), true);
      releaseAll(late.c);
    }
  }

  t.equal(corrupted, 0, 'no held view ever changed while pinned');
  t.ok(holder.evictedWhilePinned > 0, `the holder was released ${holder.evictedWhilePinned} times by the ring before it was overwritten`);
  t.equal(fast.cursor.totalLost, 0, 'a consumer that keeps up loses nothing');
  t.ok(slow.cursor.totalLost > 0, `the slow consumer lagged and was told: ${slow.lostReported} records`);

  // Drain everyone, then check the books per consumer.
  for (const c of consumers) {
    read(c, Infinity, false);
    releaseAll(c);
    const framed = ring.endSeq - c.attachedAt;
    t.equal(c.cursor.totalRead + c.cursor.totalLost, framed, `${c.name}: read ${c.cursor.totalRead} + lost ${c.cursor.totalLost} = framed ${framed}`);
    t.equal(c.lostReported, c.cursor.totalLost, `${c.name}: every lost record was reported`);
  }
  t.end();
});

t.test('a consumer that does not release when told makes the ring throw instead of corrupting', (t) => {
  const ring = new LineRing({ capacityBytes: 1024, maxLineBytes: 32, clock: new FakeClock(), idleFlushMs: 0 });
  const stubborn = ring.attach(() => {
    /* ignores the request */
  });
  ring.push(Buffer.from('pinned line\r\n'));
  ring.pin(stubborn, ring.next(stubborn));
  ring.advance(stubborn, ring.endSeq);
  t.throws(() => {
    for (let i = 0; i < 200; i++) ring.push(Buffer.from(`filler ${i}\r\n`));
  }, /invariant/);
  t.end();
});

t.test('backlogBytes measures a consumer backlog across laps', (t) => {
  const ring = new LineRing({ capacityBytes: 1024, maxLineBytes: 32, clock: new FakeClock(), idleFlushMs: 0 });
  const c = ring.attach(() => {});
  for (let i = 0; i < 10; i++) ring.push(Buffer.from('0123456789\r\n'));
  t.equal(ring.backlogBytes(ring.next(c)), 120);
  for (let i = 0; i < 200; i++) ring.push(Buffer.from('0123456789\r\n'));
  t.equal(ring.next(c), -1, 'lapped: the cursor jumped to the newest data');
  t.equal(c.takeLost(), 210);
  t.equal(ring.backlogBytes(c.seq), 0);
  t.end();
});
