import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { Bridge } from '../../src/bridge.js';
import { createLog } from '../../src/core/log.js';
import { UdpListener } from '../../src/net/udp-listener.js';
import { FakeClock } from '../support/fake-clock.js';

/**
 * The listener's port reopen (its sends stalled for a whole ring), with a real socket whose send buffer the test
 * fills: sends past `capacity` wait, holding their views, as libuv queues them when the kernel answers EAGAIN;
 * closing the socket completes the waiting ones with ECANCELED, after the close (what libuv does: checked against
 * a real stalled link, a veth with a tbf qdisc in a network namespace, where 1906 of 2000 sends came back so).
 * The test releases them at will: they are then sent for real, from the bytes their views hold at that moment.
 */
type SendCallback = (err: Error | null) => void;

function fillSendBuffer(socket: DgramSocket, capacity: number): { release(): void } {
  const send = socket.send.bind(socket) as (msg: Buffer, port: number, address: string, cb?: SendCallback) => void;
  const waiting: [Buffer, number, string, SendCallback | undefined][] = [];
  let room = capacity;
  (socket as unknown as { send: typeof send }).send = (msg, port, address, cb) => {
    if (room > 0) {
      room--;
      send(msg, port, address, cb);
    } else {
      waiting.push([msg, port, address, cb]);
    }
  };
  const close = socket.close.bind(socket);
  (socket as unknown as { close: typeof close }).close = (cb) => {
    for (const [, , , sent] of waiting.splice(0)) {
      setImmediate(() => sent?.(Object.assign(new Error('send ECANCELED'), { code: 'ECANCELED' })));
    }
    return close(cb);
  };
  return {
    release() {
      for (const [msg, port, address, cb] of waiting.splice(0)) send(msg, port, address, cb);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: () => boolean, label: string): Promise<void> {
  for (let i = 0; !what(); i++) {
    if (i === 200) throw new Error(`timed out waiting for ${label}`);
    await sleep(10);
  }
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const lines = (prefix: string, from: number, to: number): Buffer =>
  Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => `${prefix} ${from + i}\r\n`).join(''));

t.test('after a reopen, the sends the old socket cancelled do not unpin what the new one still holds', async (t) => {
  const clock = new FakeClock();
  let errors = '';
  const log = createLog({ level: 'error', journald: true, err: { write: (l) => void (errors += l) } });
  const bridge = new Bridge({ clock, log, ringBytes: 4096, maxLineBytes: 64, delimiter: 'crlf', idleFlushMs: 0, outputDelimiter: 'crlf', writeQueueBytes: 4096 });
  const port = await freeUdpPort();
  const listener = new UdpListener(
    { name: 'udp', host: '127.0.0.1', port, mode: 'shared', leaseSeconds: 1, maxPeers: 8, allow: [], trusted: ['loopback'], replyMaxLines: 0, replyQuietMs: 100, requestTimeoutMs: 2000 },
    { bridge, clock, log, maxLineBytes: () => 64, localNetworks: () => [], cookieSecret: randomBytes(32), changed: () => {} },
  );
  await listener.listen();
  const sub = createSocket('udp4');
  await new Promise<void>((resolve) => sub.bind(0, '127.0.0.1', () => resolve()));
  const got: string[] = [];
  sub.on('message', (m) => got.push(m.toString('latin1')));
  t.teardown(async () => {
    sub.close();
    await listener.close();
    bridge.dispose();
  });
  const socketOf = (): DgramSocket | null => (listener as unknown as { socket: DgramSocket | null }).socket;
  const subscribe = async (): Promise<void> => {
    for (let i = 0; listener.peerCount === 0; i++) {
      if (i === 200) throw new Error('the listener never took the subscription');
      sub.send(Buffer.alloc(0), port, '127.0.0.1');
      await sleep(10);
    }
  };

  // 1. The first socket's buffer is full: a batch of three waits; a ring later the port reopens, cancelling them.
  await subscribe();
  const first = socketOf()!;
  fillSendBuffer(first, 0);
  bridge.deviceData(lines('a', 1, 3));
  bridge.deviceData(lines('x', 1000, 1600)); // more than the ring: the pinned batch would be overwritten
  t.match(errors, /UDP sends stalled for a whole ring; reopening the port/);
  await until(() => socketOf() !== null && socketOf() !== first, 'the new socket');
  await sleep(50); // the three ECANCELED callbacks of the first socket have run

  // 2. The new socket takes three datagrams, then its buffer is full: b 4..6 wait, pinned in the ring.
  await subscribe();
  const second = socketOf()!;
  await until(() => {
    try {
      return second.address().port === port;
    } catch {
      return false;
    }
  }, 'the new socket bound');
  const buffer = fillSendBuffer(second, 3);
  bridge.deviceData(lines('b', 1, 6));
  await until(() => got.includes('b 3\r\n'), 'b 1..3');
  await sleep(50);

  // 3. The subscriber's lease ends (so nothing new is sent) and the device says a ring's worth more: b 4..6 are
  // still waiting, so their records must not be overwritten (the port reopens instead, cancelling them).
  clock.advance(2000);
  t.equal(listener.peerCount, 0, 'the lease ended');
  bridge.deviceData(lines('y', 1000, 1600));
  buffer.release();
  await sleep(200);
  const foreign = got.filter((m) => !/^[ab] \d\r\n$/.test(m));
  t.same(foreign, [], 'every datagram is a line the subscriber was sent, never bytes the ring had reused');
  t.same(got.filter((m) => m.startsWith('b')), ['b 1\r\n', 'b 2\r\n', 'b 3\r\n'], 'b 1..3 went out; b 4..6 were cancelled with their socket');
  const reopens = errors.match(/UDP sends stalled for a whole ring/g)?.length ?? 0;
  t.equal(reopens, 2, 'the port reopened again rather than let the ring overwrite b 4..6');
  if (reopens === 2) await until(() => socketOf() !== null && socketOf() !== second, 'the listener open again');
});
