/**
 * The pty pair against the REAL serialport package, and a record of what serialport 13 (bindings-cpp 13.0.0,
 * Linux) does when the device goes away, because the serial adapter is written against it.
 *
 * Observed on unplug (master closed), asserted below:
 * - Idle port (its read parked waiting for "readable"): no 'error'; exactly one 'close' whose argument is a
 *   DisconnectedError (`err.disconnected === true`, message "bad file descriptor", no `code`). The SerialPort
 *   object is not destroyed; a reopen needs the device back.
 * - A write pending (device not reading, write waiting for "writable"): the write callback gets an Error
 *   "bad file descriptor" (no `disconnected` flag), then 'error' (same error), then 'close' with NO argument
 *   (Node's stream autoDestroy), then 'close' again with the DisconnectedError. The object ends destroyed, so
 *   an adapter must treat the first of error/close as the end, ignore the rest, and make a new SerialPort for
 *   each open.
 * - Opening while unplugged (the link dangles): the open callback gets
 *   `Error: No such file or directory, cannot open PATH` with no `code`: map the message yourself.
 * - lock: true (the default) is flock(LOCK_EX|LOCK_NB) on the open fd: a second open of the same path fails
 *   with "Error Resource temporarily unavailable Cannot lock port" (no `code`); it ends with the fd.
 *
 * Not asserted (it spins a CPU): if the hang-up lands while serialport is between reads rather than parked on
 * its poller (e.g. unplug in the same tick as 'open'), read(2) returns 0 and bindings-cpp's unixRead retries
 * forever (serialport/bindings-cpp#162): ~75% of a core, no close event until a write fails with EIO. The
 * tests below wait for the read to park before unplugging so they see the normal path.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SerialPort } from 'serialport';
import { PtyPair, ptyUnavailableReason, serialportWaiting } from '../support/pty.js';

const skip = ptyUnavailableReason();

function openPort(linkPath: string, lock = true): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: linkPath, baudRate: 115200, lock }, (err) => {
      if (err) reject(err);
      else resolve(port);
    });
  });
}

function closePort(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}

function portReceive(port: SerialPort, count: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(Buffer.from(chunk)); // serialport chunks are views of a reused pool
      got += chunk.length;
      if (got >= count) {
        done();
        resolve(Buffer.concat(chunks));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`serialport received ${got} of ${count} bytes in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      port.off('data', onData);
    };
    port.on('data', onData);
  });
}

function portWrite(port: SerialPort, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    port.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** 0..255 twice over, then a 64 KiB block whose bytes do not repeat with any short period. */
function testPattern(): Buffer {
  const block = Buffer.alloc(64 * 1024);
  let x = 0x12345678;
  for (let i = 0; i < block.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    block[i] = x >>> 24;
  }
  const every = Buffer.alloc(512);
  for (let i = 0; i < every.length; i++) every[i] = i & 0xff;
  return Buffer.concat([Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x00, 0x11, 0x13, 0x03]), every, block]);
}

t.test('the link points at the slave and bytes go both ways unchanged', { skip }, async (t) => {
  const link = path.join(t.testdir(), 'ttyLAB');
  const pair = PtyPair.open(link);
  t.teardown(() => pair.close());
  t.equal(fs.readlinkSync(link), pair.slavePath);
  t.match(pair.slavePath, /^\/dev\/pts\/\d+$/);

  const port = await openPort(link);
  t.teardown(() => closePort(port));
  const data = testPattern();

  const [atPort] = await Promise.all([portReceive(port, data.length, 5000), pair.write(data)]);
  t.equal(atPort.length, data.length, 'device -> port: byte count');
  t.ok(atPort.equals(data), 'device -> port: every byte, in order (0x00, 0xFF, CR, LF, XON/XOFF, ^C included)');

  const [, atDevice] = await Promise.all([portWrite(port, data), pair.readBytes(data.length, 5000)]);
  t.ok(atDevice.equals(data), 'port -> device: every byte, in order');
  t.equal(pair.bufferedBytes, 0, 'nothing extra (no echo)');
});

t.test('a device write bigger than the pty waits (EAGAIN) without blocking the event loop', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyLAB'));
  t.teardown(() => pair.close());
  const port = await openPort(pair.linkPath);
  t.teardown(() => closePort(port));
  port.pause(); // the host stops reading: the pty fills up

  const data = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
  let written = false;
  const writing = pair.write(data).then(() => (written = true));
  let turns = 0;
  while (turns < 20) {
    await new Promise((resolve) => setImmediate(resolve));
    turns++;
  }
  t.equal(written, false, 'the write is still waiting, and the loop kept turning meanwhile');

  const chunks: Buffer[] = [];
  let got = 0;
  const all = new Promise<void>((resolve) => port.on('data', (c: Buffer) => {
    chunks.push(Buffer.from(c));
    got += c.length;
    if (got >= data.length) resolve();
  }));
  port.resume();
  await Promise.all([writing, all]);
  t.ok(Buffer.concat(chunks).equals(data), '1 MiB arrived unchanged, in order');
});

t.test('bytes received before an unplug can still be read', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyLAB'));
  t.teardown(() => pair.close());
  const port = await openPort(pair.linkPath);
  port.on('data', () => undefined);
  const closed = new Promise((resolve) => port.once('close', resolve));
  await portWrite(port, Buffer.from('last\n'));
  while (pair.bufferedBytes < 5) await new Promise((resolve) => setImmediate(resolve));
  await serialportWaiting(port, 'readable');

  pair.unplug();
  t.equal((await pair.readUntil('\n', 1000)).toString(), 'last\n');
  await t.rejects(pair.readUntil('\n', 1000), /unplugged/);
  await closed;
});

t.test('readUntil takes up to the match and keeps the rest', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyLAB'));
  t.teardown(() => pair.close());
  const port = await openPort(pair.linkPath);
  t.teardown(() => closePort(port));
  await portWrite(port, Buffer.from('id\r\nname\r\nrest'));
  t.equal((await pair.readUntil('\r\n', 2000)).toString(), 'id\r\n');
  t.equal((await pair.readUntil('\r\n', 2000)).toString(), 'name\r\n');
  t.equal((await pair.readUntil((b) => b.length >= 4, 2000)).toString(), 'rest');
  await t.rejects(pair.readUntil('never', 50), /timed out after 50 ms waiting for "never"; have 0 bytes/);
  await portWrite(port, Buffer.from('abc'));
  while (pair.bufferedBytes < 3) await new Promise((resolve) => setImmediate(resolve));
  t.equal(pair.takeBuffered().toString(), 'abc');
  t.equal(pair.bufferedBytes, 0);
});

t.test('unplug of an idle port: one close with a DisconnectedError; replug at the same path works', { skip }, async (t) => {
  const link = path.join(t.testdir(), 'ttyLAB');
  const pair = PtyPair.open(link);
  t.teardown(() => pair.close());
  const port = await openPort(link);
  t.teardown(() => closePort(port));

  const events: { event: string; err: unknown }[] = [];
  port.on('error', (err) => events.push({ event: 'error', err }));
  const closed = new Promise<unknown>((resolve) => {
    port.on('close', (err: unknown) => {
      events.push({ event: 'close', err });
      resolve(err);
    });
  });
  port.on('data', () => undefined);
  const firstSlave = pair.slavePath;
  await serialportWaiting(port, 'readable');

  pair.unplug();
  t.equal(pair.plugged, false);
  const err = (await closed) as { disconnected?: unknown; message?: unknown; code?: unknown; constructor: { name: string } };
  await new Promise((resolve) => setImmediate(resolve));
  t.same(events.map((e) => e.event), ['close'], 'no error event, one close');
  t.equal(err.constructor.name, 'DisconnectedError');
  t.equal(err.disconnected, true);
  t.equal(err.message, 'bad file descriptor');
  t.equal(err.code, undefined);
  t.equal(port.isOpen, false);
  t.equal(port.destroyed, false, 'an idle unplug leaves the object reusable');
  t.equal(fs.readlinkSync(link), firstSlave, 'the link stays ...');
  t.notOk(fs.existsSync(link), '... and dangles');

  const whileUnplugged = await openPort(link).then(
    () => new Error('opened an unplugged device'),
    (e: Error & { code?: string }) => e,
  );
  t.match(whileUnplugged.message, /No such file or directory, cannot open .*ttyLAB/);
  t.equal((whileUnplugged as { code?: string }).code, undefined, 'no code: the adapter must read the message');
  await t.rejects(pair.write('x'), /unplugged/);

  pair.replug();
  t.equal(pair.plugged, true);
  t.not(pair.slavePath, firstSlave, 'a fresh /dev/pts/N (the old number stayed reserved)');
  t.equal(fs.readlinkSync(link), pair.slavePath);

  const again = await openPort(link);
  t.teardown(() => closePort(again));
  const [atPort] = await Promise.all([portReceive(again, 4, 2000), pair.write(Buffer.from([0, 0xff, 13, 10]))]);
  t.same([...atPort], [0, 0xff, 13, 10]);
  await portWrite(again, Buffer.from('id\r\n'));
  t.equal((await pair.readUntil('\r\n', 2000)).toString(), 'id\r\n');
});

t.test('unplug with a write pending: write error, error, close(), close(DisconnectedError)', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyLAB'));
  t.teardown(() => pair.close());
  const port = await openPort(pair.linkPath);
  t.teardown(() => closePort(port));
  port.on('data', () => undefined);

  const events: { event: string; message?: string; disconnected?: boolean; name?: string }[] = [];
  const record = (event: string) => (err?: (Error & { disconnected?: boolean }) | null) =>
    events.push(err ? { event, message: err.message, disconnected: err.disconnected, name: err.constructor.name } : { event });
  port.on('error', record('error'));
  let closes = 0;
  const twoCloses = new Promise<void>((resolve) => {
    port.on('close', (err?: Error | null) => {
      record('close')(err);
      if (++closes === 2) resolve();
    });
  });

  pair.pauseReading(); // the device stops reading, so the pty fills and serialport's write waits
  const big = Buffer.alloc(1024 * 1024, 0x41);
  const writeDone = new Promise<void>((resolve) => port.write(big, (err) => {
    record('write callback')(err);
    resolve();
  }));
  await serialportWaiting(port, 'writable');

  pair.unplug();
  await Promise.all([writeDone, twoCloses]);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(events, [
    { event: 'write callback', message: 'bad file descriptor', disconnected: undefined, name: 'Error' },
    { event: 'error', message: 'bad file descriptor', disconnected: undefined, name: 'Error' },
    { event: 'close' },
    { event: 'close', message: 'bad file descriptor', disconnected: true, name: 'DisconnectedError' },
  ]);
  t.equal(port.destroyed, true, 'the SerialPort object cannot be reopened: make a new one');
});

t.test('lock: true is an flock: a second open of the same path is refused until the first closes', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyLAB'));
  t.teardown(() => pair.close());
  const first = await openPort(pair.linkPath);
  const second = await openPort(pair.linkPath).then(
    () => new Error('second open succeeded'),
    (e: Error) => e,
  );
  t.equal(second.message, 'Error Resource temporarily unavailable Cannot lock port');
  const unlocked = await openPort(pair.linkPath, false);
  t.ok(unlocked.isOpen, 'lock: false ignores the lock');
  await closePort(unlocked);
  await closePort(first);
  const third = await openPort(pair.linkPath);
  t.ok(third.isOpen, 'the lock went with the first fd');
  await closePort(third);
});

t.test('close removes the link, rejects pending reads, and is idempotent', { skip }, async (t) => {
  const link = path.join(t.testdir(), 'ttyLAB');
  const pair = PtyPair.open(link);
  const pending = pair.readUntil('x', 5000);
  pair.close();
  await t.rejects(pending, /closed/);
  t.notOk(fs.existsSync(link));
  t.throws(() => fs.readlinkSync(link));
  pair.close();
  t.throws(() => pair.replug(), /already closed/);
});

t.test('open replaces an existing file at the link path', { skip }, async (t) => {
  const dir = t.testdir({ ttyLAB: 'stale' });
  const pair = PtyPair.open(path.join(dir, 'ttyLAB'));
  t.teardown(() => pair.close());
  t.equal(fs.readlinkSync(pair.linkPath), pair.slavePath);
  t.same(fs.readdirSync(dir), ['ttyLAB'], 'no temp names left behind');
});
