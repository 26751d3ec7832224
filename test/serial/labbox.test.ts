import t from 'tap';
import * as path from 'node:path';
import { LABBOX_HELP, LabBox, type LabBoxOptions } from '../../src/serial/labbox.js';
import { runLabBoxOnPort } from '../../src/serial/labbox-port.js';
import { PtyPair, ptyUnavailableReason, serialportWaiting } from '../support/pty.js';

const OPTS: LabBoxOptions = { studentId: '6610545001', name: 'Somchai Jaidee' };

/** Feeds input to a fresh box, whole or one byte per call, and pulls all output through a small buffer. */
function talk(input: Buffer | string, split: 'whole' | 'bytes', opts: Partial<LabBoxOptions> = {}): Buffer {
  const box = new LabBox({ ...OPTS, ...opts });
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  if (split === 'whole') box.receive(bytes);
  else for (let i = 0; i < bytes.length; i++) box.receive(bytes.subarray(i, i + 1));
  return drain(box, 7);
}

/** Pulls everything through a buffer of pullBytes; throws if the box breaks the readOutput contract. */
function drain(box: LabBox, pullBytes: number): Buffer {
  const out: Buffer[] = [];
  const target = Buffer.alloc(pullBytes + 1, 0xee);
  const window = target.subarray(0, pullBytes);
  for (;;) {
    const n = box.readOutput(window);
    if (target[pullBytes] !== 0xee) throw new Error('readOutput wrote past the end of its target');
    if (n === 0) break;
    out.push(Buffer.from(target.subarray(0, n)));
  }
  if (box.hasOutput) throw new Error('readOutput returned 0 while hasOutput is true');
  return Buffer.concat(out);
}

type Asserts = Pick<typeof t, 'same'>;

function both(t: Asserts, input: Buffer | string, expected: Buffer | string, opts?: Partial<LabBoxOptions>): void {
  const want = typeof expected === 'string' ? Buffer.from(expected, 'latin1') : expected;
  for (const split of ['whole', 'bytes'] as const) {
    const got = talk(input, split, opts);
    t.same([...got], [...want], `${split}: ${JSON.stringify(got.toString('latin1')).slice(0, 60)}`);
  }
}

t.test('every command, with CRLF, LF and CR endings, whole and byte by byte', async (t) => {
  for (const end of ['\r\n', '\n', '\r']) {
    const label = JSON.stringify(end);
    t.test(`ending ${label}`, async (t) => {
      both(t, `id${end}`, '6610545001\r\n');
      both(t, `name${end}`, 'Somchai Jaidee\r\n');
      both(t, `help${end}`, `${LABBOX_HELP}\r\n`);
      both(t, `echo hello world${end}`, 'hello world\r\n');
      both(t, `stream 3${end}`, 'line 1\r\nline 2\r\nline 3\r\n');
      both(t, `prompt${end}`, '> ');
      both(t, `nope${end}`, 'ERR unknown command\r\n');
      both(t, `id${end}name${end}id${end}`, '6610545001\r\nSomchai Jaidee\r\n6610545001\r\n');
    });
  }
});

t.test('the help line lists every command', async (t) => {
  t.equal(LABBOX_HELP, 'commands: id, name, echo TEXT, stream N, prompt, help');
});

/** How many lines a box frames from these chunks. */
function linesIn(...chunks: string[]): number {
  const box = new LabBox(OPTS);
  for (const c of chunks) box.receive(Buffer.from(c, 'latin1'));
  return box.linesReceived;
}

t.test('CR LF counts once, even split across chunks; CR CR LF is a line and an empty line', async (t) => {
  const box = new LabBox(OPTS);
  box.receive(Buffer.from('id\r'));
  box.receive(Buffer.from('\nname\r'));
  box.receive(Buffer.from('\n'));
  box.receive(Buffer.from('\r\n'));
  t.equal(drain(box, 4096).toString(), '6610545001\r\nSomchai Jaidee\r\n');
  t.equal(box.linesReceived, 3, 'id, name and one empty line');
  t.equal(linesIn('a\r\n'), 1);
  t.equal(linesIn('a\r', '\n'), 1);
  t.equal(linesIn('a\n'), 1);
  t.equal(linesIn('a\r'), 1);
  t.equal(linesIn('a\r\r\n'), 2);
  t.equal(linesIn('a\n\r'), 2, 'LF CR is two terminators');
  t.equal(linesIn('a\n\n'), 2);
  t.equal(linesIn('\r\n\r\n'), 2);
  t.equal(linesIn('a\r', 'b'), 1, 'a byte after CR starts the next line');
  t.equal(linesIn('x'.repeat(5000) + '\r', '\n'), 1, 'a too-long line ended by a split CR LF');
  both(t, 'id\r\r\nname\r\n', '6610545001\r\nSomchai Jaidee\r\n');
  both(t, 'id\n\rname\n', '6610545001\r\nSomchai Jaidee\r\n', {});
});

t.test('empty lines produce nothing', async (t) => {
  both(t, '\r\n\n\r\r\r\n\n', '');
  const box = new LabBox(OPTS);
  box.receive(Buffer.from('\r\n'));
  t.equal(box.hasOutput, false);
});

t.test('prompt answers "> " with no line ending, and the next answer follows it directly', async (t) => {
  both(t, 'prompt\r\nid\r\n', '> 6610545001\r\n');
});

t.test('nothing but the terminator is trimmed: spaces and case make other commands', async (t) => {
  const err = 'ERR unknown command\r\n';
  for (const line of ['id ', ' id', 'ID', 'Name', 'idx', 'help me', 'stream', 'echox', '\t']) {
    both(t, `${line}\r\n`, err);
  }
  both(t, 'echo  two  spaces \r\n', ' two  spaces \r\n');
  both(t, 'echo\r\n', '\r\n', {});
  both(t, 'echo \r\n', '\r\n');
});

t.test('echo returns its bytes unchanged, 0x00 and 0xFF included', async (t) => {
  const payload = Buffer.from([0x00, 0xff, 0x41, 0x7f, 0x80, 0x1b, 0x00]);
  const input = Buffer.concat([Buffer.from('echo '), payload, Buffer.from('\r\n')]);
  both(t, input, Buffer.concat([payload, Buffer.from('\r\n')]));
  const every = Buffer.alloc(256 - 2);
  let i = 0;
  for (let b = 0; b < 256; b++) if (b !== 0x0d && b !== 0x0a) every[i++] = b;
  both(t, Buffer.concat([Buffer.from('echo '), every, Buffer.from('\n')]), Buffer.concat([every, Buffer.from('\r\n')]));
});

t.test('stream N: numbered lines, 0 is nothing, bad or too big N is an error', async (t) => {
  both(t, 'stream 0\r\n', '');
  both(t, 'stream 1\r\n', 'line 1\r\n');
  both(t, 'stream 002\r\n', 'line 1\r\nline 2\r\n');
  const usage = 'ERR stream N needs 0 <= N <= 1000000\r\n';
  for (const arg of ['', 'x', '-1', '1.5', '1000001', '9999999999', ' 3', '3 ']) both(t, `stream ${arg}\r\n`, usage);
  both(t, 'stream 5\r\n', 'ERR stream N needs 0 <= N <= 4\r\n', { maxStreamLines: 4 });
});

t.test('a big stream is generated as it is pulled, in bounded pieces, complete and in order', async (t) => {
  const box = new LabBox(OPTS);
  box.receive(Buffer.from('stream 100000\r\nid\r\n'));
  t.equal(box.pendingReplies, 2, 'the stream is one queued reply, not 100000 lines of memory');
  const target = Buffer.alloc(4096);
  const pieces: Buffer[] = [];
  for (let n = box.readOutput(target); n > 0; n = box.readOutput(target)) pieces.push(Buffer.from(target.subarray(0, n)));
  let expected = '';
  for (let i = 1; i <= 100000; i++) expected += `line ${i}\r\n`;
  expected += '6610545001\r\n';
  const got = Buffer.concat(pieces).toString('latin1');
  t.equal(got.length, expected.length);
  t.ok(got === expected, 'every line, in order, then the next answer');
  t.ok(pieces.slice(0, -1).every((p) => p.length === 4096), 'full pieces until the end (lines split across pulls)');
});

t.test('a stream pulled one byte at a time', async (t) => {
  both(t, 'stream 12\r\n', Array.from({ length: 12 }, (_, i) => `line ${i + 1}\r\n`).join(''));
  const box = new LabBox(OPTS);
  box.receive(Buffer.from('stream 12\r\n'));
  t.equal(drain(box, 1).toString(), Array.from({ length: 12 }, (_, i) => `line ${i + 1}\r\n`).join(''));
});

t.test('a line longer than maxLineBytes is answered ERR line too long, once, and the next line works', async (t) => {
  const max = 4096;
  const fits = 'echo ' + 'x'.repeat(max - 5);
  both(t, `${fits}\r\n`, `${'x'.repeat(max - 5)}\r\n`);
  both(t, `${fits}y\r\nid\r\n`, 'ERR line too long\r\n6610545001\r\n');
  both(t, `${'z'.repeat(100_000)}\nid\n`, 'ERR line too long\r\n6610545001\r\n');
  both(t, 'echo 12345\r\n', 'ERR line too long\r\n', { maxLineBytes: 8 });
  both(t, 'echo 123\r\n', '123\r\n', { maxLineBytes: 8 });

  const box = new LabBox({ ...OPTS, maxLineBytes: 8 });
  box.receive(Buffer.from('0123456789'));
  box.receive(Buffer.from('\r'));
  box.receive(Buffer.from('\n'));
  box.receive(Buffer.from('id\r\n'));
  t.equal(drain(box, 64).toString(), 'ERR line too long\r\n6610545001\r\n', 'CR LF after a long line split');
});

t.test('at most maxPendingReplies answers wait; more commands are dropped and counted', async (t) => {
  const box = new LabBox({ ...OPTS, maxPendingReplies: 3 });
  box.receive(Buffer.from('id\r\nname\r\nstream 2\r\nid\r\nid\r\n'));
  t.equal(box.pendingReplies, 3);
  t.equal(box.droppedCommands, 2);
  t.equal(drain(box, 5).toString(), '6610545001\r\nSomchai Jaidee\r\nline 1\r\nline 2\r\n');
  box.receive(Buffer.from('id\r\n'));
  t.equal(drain(box, 64).toString(), '6610545001\r\n', 'room again once pulled');
});

t.test('announce queues a line of the box\'s own after waiting answers', async (t) => {
  const box = new LabBox(OPTS);
  box.receive(Buffer.from('id\n'));
  box.announce('LABBOX ready');
  t.equal(drain(box, 64).toString(), '6610545001\r\nLABBOX ready\r\n');
});

t.test('the name and ID go out as UTF-8', async (t) => {
  both(t, 'name\r\n', Buffer.from('สมชาย ใจดี\r\n', 'utf8'), { name: 'สมชาย ใจดี' });
});

t.test('bad options throw a TypeError naming the option', async (t) => {
  t.throws(() => new LabBox({ name: 'x' } as LabBoxOptions), { name: 'TypeError', message: /studentId/ });
  t.throws(() => new LabBox({ studentId: '1', name: 'a\nb' }), { name: 'TypeError', message: /name/ });
  t.throws(() => new LabBox({ ...OPTS, studentId: '' }), { name: 'TypeError', message: /studentId/ });
  t.throws(() => new LabBox({ ...OPTS, maxLineBytes: 0 }), { name: 'TypeError', message: /maxLineBytes/ });
  t.throws(() => new LabBox({ ...OPTS, maxStreamLines: 1.5 }), { name: 'TypeError', message: /maxStreamLines/ });
  t.throws(() => new LabBox({ ...OPTS, maxPendingReplies: -1 }), { name: 'TypeError', message: /maxPendingReplies/ });
});

// --- runLabBoxOnPort on a real serial port: the slave end of a pty pair, the test on the master ----------------

const skip = ptyUnavailableReason();

t.test('runLabBoxOnPort answers id, name and binary echo over a real serial port', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyBOX'));
  t.teardown(() => pair.close());
  const lab = await runLabBoxOnPort(pair.linkPath, OPTS);
  t.teardown(() => lab.close());

  await pair.write('id\r\n');
  t.equal((await pair.readUntil('\r\n', 2000)).toString(), '6610545001\r\n');
  for (const ch of 'name\n') await pair.write(ch); // as typed, one byte at a time, bare LF like nc
  t.equal((await pair.readUntil('\r\n', 2000)).toString(), 'Somchai Jaidee\r\n');
  const payload = Buffer.from([0x00, 0xff, 0x11, 0x13, 0x7f]);
  await pair.write(Buffer.concat([Buffer.from('echo '), payload, Buffer.from('\r\nprompt\r\n')]));
  t.same([...(await pair.readUntil('> ', 2000))], [...payload, 0x0d, 0x0a, 0x3e, 0x20]);
  t.equal(pair.bufferedBytes, 0);
});

t.test('runLabBoxOnPort waits for drain: a device not reading holds a stream at the high-water mark', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyBOX'));
  t.teardown(() => pair.close());
  const lab = await runLabBoxOnPort(pair.linkPath, OPTS);
  t.teardown(() => lab.close());

  pair.pauseReading();
  await pair.write('stream 100000\r\n'); // about 1.3 MB of answer
  let most = 0;
  const until = Date.now() + 300; // an observation window: the bound must hold the whole time
  while (Date.now() < until) {
    most = Math.max(most, lab.queuedBytes);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  t.ok(most > 0, `the port had output queued (${most} bytes)`);
  t.ok(most <= 64 * 1024 + 16 * 1024, `queued output stayed within one high-water mark plus a chunk: ${most}`);
  t.equal(lab.box.hasOutput, true, 'the rest of the stream is still ungenerated in the box');

  pair.resumeReading();
  const got = await pair.readUntil('line 100000\r\n', 20000);
  let expected = '';
  for (let i = 1; i <= 100000; i++) expected += `line ${i}\r\n`;
  t.equal(got.length, expected.length);
  t.ok(got.toString('latin1') === expected, 'every line arrived, in order');
});

t.test('runLabBoxOnPort: closed settles with null after close(), with the disconnect after an unplug', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyBOX'));
  t.teardown(() => pair.close());

  const first = await runLabBoxOnPort(pair.linkPath, OPTS);
  await first.close();
  t.equal(await first.closed, null);

  const errors: Error[] = [];
  const second = await runLabBoxOnPort(pair.linkPath, { ...OPTS, onError: (e) => errors.push(e) });
  t.teardown(() => second.close());
  await serialportWaiting(second.port, 'readable');
  pair.unplug();
  const err = (await second.closed) as (Error & { disconnected?: boolean }) | null;
  t.equal(err?.disconnected, true);
  t.same(errors, [], 'an idle unplug is not an error event');
  await second.close(); // harmless after the port went away

  await t.rejects(runLabBoxOnPort(pair.linkPath, OPTS), /No such file or directory/);
  await t.rejects(runLabBoxOnPort('', OPTS), TypeError);
});

t.test('runLabBoxOnPort: an unplug in the middle of a stream settles closed with disconnected', { skip }, async (t) => {
  const pair = PtyPair.open(path.join(t.testdir(), 'ttyBOX'));
  t.teardown(() => pair.close());
  const errors: Error[] = [];
  const lab = await runLabBoxOnPort(pair.linkPath, { ...OPTS, onError: (e) => errors.push(e) });
  t.teardown(() => lab.close());
  pair.pauseReading();
  await pair.write('stream 100000\r\n');
  await serialportWaiting(lab.port, 'writable');
  pair.unplug();
  const err = await lab.closed;
  t.equal(err?.disconnected, true);
  t.equal(errors.length, 1, 'the failed write was reported once');
});
