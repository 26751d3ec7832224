import t from 'tap';
import type { DevicePortError } from '../../src/serial/device-port.js';
import { createSimulatedLabBox, type SimulatedLabBoxOptions } from '../../src/serial/sim-port.js';
import { FakeClock } from '../support/fake-clock.js';

const OPTS: SimulatedLabBoxOptions = { studentId: '6610545001', name: 'Somchai Jaidee' };

/** Handlers that record everything, in order, and let a test wait for output. */
class Host {
  chunks: Buffer[] = [];
  events: string[] = [];
  closes: (DevicePortError | null)[] = [];
  private waiters: { until: (all: Buffer) => boolean; resolve: () => void }[] = [];

  readonly handlers = {
    onData: (chunk: Buffer): void => {
      // The port may reuse the chunk's memory after onData returns: keep a copy.
      this.chunks.push(Buffer.from(chunk));
      this.events.push('data');
      const all = this.all();
      this.waiters = this.waiters.filter((w) => (w.until(all) ? (w.resolve(), false) : true));
    },
    onClose: (err: DevicePortError | null): void => {
      this.closes.push(err);
      this.events.push('close');
    },
  };

  all(): Buffer {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return this.all().toString('latin1');
  }

  received(until: string | ((all: Buffer) => boolean)): Promise<void> {
    const test = typeof until === 'string' ? (all: Buffer) => all.includes(until) : until;
    if (test(this.all())) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ until: test, resolve }));
  }
}

function write(port: { write(data: Buffer, done: (err: Error | null) => void): void }, text: string | Buffer) {
  return new Promise<Error | null>((resolve) => port.write(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'), resolve));
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('answers a command; open, write callbacks and output all come later, never inside the call', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  let opened = false;
  const opening = port.open().then(() => (opened = true));
  t.equal(opened, false);
  await opening;
  t.equal(port.isOpen, true);

  let called = false;
  const done = new Promise<Error | null>((resolve) => port.write(Buffer.from('id\r\n'), (err) => {
    called = true;
    resolve(err);
  }));
  t.equal(called, false, 'the callback does not run inside write()');
  t.same(host.events, [], 'no output inside write()');
  t.equal(await done, null);
  await host.received('\r\n');
  t.equal(host.text(), '6610545001\r\n');

  port.close();
  await turn();
  t.same(host.closes, [null]);
});

t.test('every command of the box through the port, with 0x00 and 0xFF echoed', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  const payload = Buffer.from([0x00, 0xff, 0x41]);
  t.equal(await write(port, Buffer.concat([Buffer.from('name\nhelp\r\necho '), payload, Buffer.from('\r\nbad\rprompt\r\n')])), null);
  await host.received('> ');
  const want = Buffer.concat([
    Buffer.from('Somchai Jaidee\r\ncommands: id, name, echo TEXT, stream N, prompt, help\r\n'),
    payload,
    Buffer.from('\r\nERR unknown command\r\n> '),
  ]);
  t.same([...host.all()], [...want]);
  port.close();
});

t.test('stream 10000 arrives complete, in order, in chunks of at most 4 KiB, without starving the loop', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  let expected = '';
  for (let i = 1; i <= 10000; i++) expected += `line ${i}\r\n`;

  // Other work queued on the loop must get a turn between any two chunks.
  let ticking = true;
  const tick = (): void => {
    host.events.push('other work');
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  await write(port, 'stream 10000\r\n');
  await host.received((all) => all.length >= expected.length);
  ticking = false;

  t.ok(host.text() === expected, 'every line, in order');
  t.ok(host.chunks.every((c) => c.length <= 4096), 'no chunk over 4 KiB');
  t.ok(host.chunks.length >= Math.ceil(expected.length / 4096), `${host.chunks.length} chunks`);
  const back2back = host.events.filter((e, i) => e === 'data' && host.events[i - 1] === 'data').length;
  t.equal(back2back, 0, 'never two chunks without other work in between');
  port.close();
});

t.test('chunkBytes sets the fragmentation', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox({ ...OPTS, chunkBytes: 5 }, host.handlers);
  await port.open();
  await write(port, 'name\r\n');
  await host.received('\r\n');
  t.same(host.chunks.map((c) => c.toString()), ['Somch', 'ai Ja', 'idee\r', '\n']);
  port.close();
});

t.test('one write at a time: a second write before the callback throws', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  const first = write(port, 'id\r\n');
  t.throws(() => port.write(Buffer.from('name\r\n'), () => undefined), /one write at a time/);
  t.equal(await first, null);
  t.equal(await write(port, 'name\r\n'), null, 'fine once the callback ran');
  await host.received('Jaidee\r\n');
  t.equal(host.text(), '6610545001\r\nSomchai Jaidee\r\n', 'the refused write changed nothing');
  port.close();
});

t.test('close cancels the pending write, then onClose(null) exactly once; no output after close()', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  const order: string[] = [];
  const done = new Promise<DevicePortError | null>((resolve) => port.write(Buffer.from('id\r\n'), (err) => {
    order.push('write callback');
    resolve(err);
  }));
  port.close();
  port.close();
  t.equal(port.isOpen, false);
  const err = await done;
  t.equal(err?.canceled, true);
  await turn();
  order.push(...host.events);
  t.same(order, ['write callback', 'close'], 'canceled first, then onClose, and no answer to the canceled write');
  t.same(host.closes, [null]);
  await turn();
  t.same(host.closes, [null], 'still once');
});

t.test('close in the middle of a stream stops the output at once', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  await write(port, 'stream 100000\r\n');
  await host.received((all) => all.length > 0);
  port.close();
  const seen = host.chunks.length;
  for (let i = 0; i < 5; i++) await turn();
  t.equal(host.chunks.length, seen, 'no chunk after close()');
  t.same(host.events.slice(-1), ['close']);
  t.same(host.closes, [null]);
});

t.test('reopen after close: a fresh box, and onClose once per open', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  const firstBox = port.box;
  await write(port, 'prompt\r\n');
  port.close();
  await turn();
  await port.open();
  t.not(port.box, firstBox);
  t.equal(await write(port, 'id\r\n'), null);
  await host.received('6610545001\r\n');
  port.close();
  await turn();
  t.same(host.closes, [null, null]);
});

t.test('open while open is refused; close while opening rejects the open and fires no onClose', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  const opening = port.open();
  await t.rejects(port.open(), { code: 'EBUSY' });
  port.close();
  await t.rejects(opening, { message: /closed while opening/ });
  t.equal(((await opening.catch((e: unknown) => e)) as DevicePortError).canceled, true);
  t.equal(port.isOpen, false);
  await turn();
  t.same(host.closes, []);
  await port.open();
  await t.rejects(port.open(), { code: 'EBUSY' });
  port.close();
});

t.test('write on a closed port fails through its callback, later', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  let err: Error | null | undefined;
  port.write(Buffer.from('id\r\n'), (e) => (err = e));
  t.equal(err, undefined);
  await turn();
  t.match(err, { message: /not open/ });
});

t.test('unplug: onClose(err) with disconnected, the pending write fails; ENOENT until replug', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  const done = write(port, 'id\r\n');
  port.unplug();
  const werr = (await done) as DevicePortError;
  t.equal(werr.disconnected, true);
  t.equal(werr.canceled, undefined);
  await turn();
  t.equal(host.closes.length, 1);
  t.equal(host.closes[0]?.disconnected, true);
  await t.rejects(port.open(), { code: 'ENOENT' });
  port.replug();
  await port.open();
  await write(port, 'id\r\n');
  await host.received('6610545001\r\n');
  port.close();
  await turn();
  t.equal(host.closes.length, 2);
  t.equal(host.closes[1], null);
});

t.test('unplug while opening rejects the open with ENOENT', async (t) => {
  const port = createSimulatedLabBox(OPTS, new Host().handlers);
  const opening = port.open();
  port.unplug();
  await t.rejects(opening, { code: 'ENOENT' });
});

t.test('flow control: a write of many commands is held until the answers drain, none are dropped', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(OPTS, host.handlers);
  await port.open();
  let doneAfterChunks = -1;
  const done = new Promise<Error | null>((resolve) => port.write(Buffer.from('id\r\n'.repeat(500)), (err) => {
    doneAfterChunks = host.chunks.length;
    resolve(err);
  }));
  t.equal(await done, null);
  t.ok(doneAfterChunks > 0, `the callback waited for output (${doneAfterChunks} chunks)`);
  const want = '6610545001\r\n'.repeat(500);
  await host.received((all) => all.length >= want.length);
  t.ok(host.text() === want);
  t.equal(port.box?.droppedCommands, 0);
  port.close();
});

t.test('bytesPerSecond paces output on the injected clock', async (t) => {
  const clock = new FakeClock();
  const host = new Host();
  const port = createSimulatedLabBox({ ...OPTS, bytesPerSecond: 1000, chunkBytes: 100 }, host.handlers, clock);
  await port.open();
  await write(port, 'stream 30\r\n'); // 9 * 8 + 21 * 9 = 261 bytes
  await host.received((all) => all.length > 0);
  t.equal(host.all().length, 100, 'the first chunk goes at once');
  for (let i = 0; i < 3; i++) await turn();
  t.equal(host.all().length, 100, 'then nothing until the clock moves');
  clock.advance(99);
  t.equal(host.all().length, 100);
  clock.advance(1);
  t.equal(host.all().length, 200, '100 bytes at 1000 B/s: 100 ms later');
  clock.advance(100);
  t.equal(host.all().length, 261);
  t.equal(host.text(), Array.from({ length: 30 }, (_, i) => `line ${i + 1}\r\n`).join(''));
  port.close();
  await turn();
  t.equal(clock.pending, 0, 'no timer left');
});

t.test('banner: one line with the line settings on open', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox(
    { ...OPTS, banner: true, settings: { baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' } },
    host.handlers,
  );
  await port.open();
  await host.received('\r\n');
  t.equal(host.text(), 'LABBOX ready 115200 8N1 flow=none\r\n');
  port.close();
});

t.test('bad options throw a TypeError naming the option', async (t) => {
  const h = new Host().handlers;
  t.throws(() => createSimulatedLabBox({ ...OPTS, studentId: '' }, h), { name: 'TypeError', message: /studentId/ });
  t.throws(() => createSimulatedLabBox({ ...OPTS, chunkBytes: 0 }, h), { name: 'TypeError', message: /chunkBytes/ });
  t.throws(() => createSimulatedLabBox({ ...OPTS, chunkBytes: 2.5 }, h), { name: 'TypeError', message: /chunkBytes/ });
  t.throws(() => createSimulatedLabBox({ ...OPTS, bytesPerSecond: -1 }, h), { name: 'TypeError', message: /bytesPerSecond/ });
});

t.test('reset lines: the box reboots on a DTR or RTS edge back to asserted, or at the end of a break, and says so', async (t) => {
  const host = new Host();
  const port = createSimulatedLabBox({ ...OPTS, settings: { baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' } }, host.handlers);
  await t.rejects(port.set!({ dtr: false }), { code: 'ENOTOPEN' }, 'refused while closed');
  await port.open();
  await port.set!({ dtr: false });
  t.equal(port.reboots, 0, 'lowering DTR does nothing yet');
  await port.set!({ dtr: true });
  t.equal(port.reboots, 1, 'DTR asserted again: the capacitor passes the edge to RESET');
  await host.received('LABBOX ready 9600 8N1 flow=none\r\n');
  await port.set!({ dtr: true });
  t.equal(port.reboots, 1, 'no edge, no reboot');
  await port.set!({ rts: false });
  await port.set!({ rts: true });
  t.equal(port.reboots, 2, 'RTS the same way');
  await port.set!({ brk: true });
  t.equal(port.reboots, 2, 'held in a break');
  await port.set!({ brk: false });
  t.equal(port.reboots, 3, 'and rebooted when it ends');
  t.equal(await write(port, 'id\r\n'), null);
  await host.received('6610545001\r\n');
  t.pass('it answers after rebooting');
  port.close();
  await turn();
});
