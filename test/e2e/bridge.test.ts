import t from 'tap';
import { ncSkip } from '../support/real-clients.js';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { rssOf } from '../reliability/measure.js';
import { PtyPair, ptyUnavailableReason } from '../support/pty.js';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';

/**
 * The bridge end to end: the built daemon as a child process, the device on a real pseudo-terminal (opened by the
 * real serialport binding) or the built-in simulator, real TCP/UDP sockets on 127.0.0.1.
 */

const noPty = ptyUnavailableReason();

interface Listener {
  name: string;
  port: number;
  extra?: string;
}

function yaml(device: string, tcp: Listener[], opts: { udp?: Listener[]; lines?: string; serial?: string } = {}): string {
  const list = (ls: Listener[]) =>
    ls.map((l) => `  - name: ${l.name}\n    host: 127.0.0.1\n    port: ${l.port}\n${(l.extra ?? '').replace(/^/gm, '    ')}`).join('\n');
  return `serial:
  path: ${device}
  reconnectMinMs: 50
  reconnectMaxMs: 200
${(opts.serial ?? '').replace(/^/gm, '  ')}
lines:
${/idleFlushMs/.test(opts.lines ?? '') ? '' : '  idleFlushMs: 100\n'}${(opts.lines ?? '').replace(/^/gm, '  ')}
tcp:
${list(tcp)}
udp:${opts.udp ? `\n${list(opts.udp)}` : ' []'}
log:
  level: debug
`;
}

/** TCP connect completes before the daemon's accept runs: wait until the daemon counts `n` clients on `name`. */
async function clientsCounted(d: Awaited<ReturnType<typeof startDaemon>>, name: string, n: number): Promise<void> {
  await d.notify.waitFor((m) => new RegExp(`\\b${name} ${n}\\b`).test(m.STATUS ?? ''), 5000);
}

/**
 * The usual rig: a fresh pty playing the device, the daemon on it with one TCP listener `name` (plus `extra`
 * keys), the device open; both are ended when the test ends.
 */
async function daemonOnPty(
  t: { testdir(): string; teardown(fn: () => unknown): void },
  name: string,
  extra?: string,
  opts: { lines?: string; serial?: string } = {},
): Promise<{ pty: PtyPair; port: number; d: Awaited<ReturnType<typeof startDaemon>> }> {
  const dir = t.testdir();
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  t.teardown(() => pty.close());
  const port = await freePort();
  const d = await startDaemon(dir, yaml(pty.linkPath, [{ name, port, ...(extra ? { extra } : {}) }], opts));
  t.teardown(() => d.stop());
  await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  return { pty, port, d };
}

/** Reads device-side lines from the pty as the lab box would. */
async function deviceLine(pty: PtyPair, timeoutMs = 5000): Promise<string> {
  const got = await pty.readUntil('\r\n', timeoutMs);
  return got.toString('latin1');
}

t.test('the demo: the simulated lab box answers id and name over TCP and UDP', async (t) => {
  const dir = t.testdir();
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const d = await startDaemon(dir, yaml('sim:labbox', [{ name: 'lab', port: tcpPort }], { udp: [{ name: 'udp', port: udpPort }] }));
  t.teardown(() => d.stop());

  const c = await TestClient.connect(tcpPort);
  t.teardown(() => c.close());
  c.send('id\n'); // nc sends a bare LF
  await c.waitFor('6510500000\r\n');
  c.send('name\r\n'); // telnet sends CR LF
  await c.waitFor('Lab Box\r\n');
  t.pass('TCP client got both answers');

  const udp = createSocket('udp4');
  t.teardown(() => udp.close());
  const answer = new Promise<Buffer>((resolve) => udp.once('message', (m) => resolve(m)));
  udp.send('id', udpPort, '127.0.0.1');
  t.equal((await answer).toString(), '6510500000\r\n', 'a UDP datagram without a terminator is one line; the reply is one datagram');
});

t.test('a device on a real pty: fan-out to every client, client lines reach the device whole with CR LF', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'lab', 'telnet: off');

  const a = await TestClient.connect(port);
  const b = await TestClient.connect(port);
  t.teardown(() => (a.close(), b.close()));
  await clientsCounted(d, 'lab', 2);

  await pty.write('hello\r\n');
  await a.waitFor('hello\r\n');
  await b.waitFor('hello\r\n');
  t.pass('both clients got the device line');

  a.send('ping\n');
  t.equal(await deviceLine(pty), 'ping\r\n', 'LF from nc becomes the configured CR LF');

  // Bytes are bytes: NUL, 0xFF and invalid UTF-8 pass both ways unchanged (telnet off).
  const binary = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x41]);
  await pty.write(Buffer.concat([binary, Buffer.from('\r\n')]));
  await a.waitFor((buf) => buf.includes(Buffer.concat([binary, Buffer.from('\r\n')])));
  a.send(Buffer.concat([binary, Buffer.from('\n')]));
  const fromClient = await pty.readUntil('\r\n', 5000);
  t.same(fromClient, Buffer.concat([binary, Buffer.from('\r\n')]), '0x00 and 0xFF reach the device unchanged');

  // Two clients sending long lines at once: each arrives whole, never interleaved.
  const long1 = 'A'.repeat(3000);
  const long2 = 'B'.repeat(3000);
  a.send(`${long1}\n`);
  b.send(`${long2}\n`);
  const first = await deviceLine(pty);
  const second = await deviceLine(pty);
  t.same([first, second].sort(), [`${long1}\r\n`, `${long2}\r\n`], 'two 3000-byte lines, each whole');

  // A 64 KiB line with no terminator reaches clients in bounded pieces (maxLineBytes 4096), nothing lost.
  a.received.fill(0);
  const before = a.received.length;
  await pty.write(Buffer.alloc(65536, 0x7a));
  await a.waitFor((buf) => buf.length - before >= 65536, 10_000);
  t.equal(a.received.subarray(before).filter((x) => x === 0x7a).length, 65536, 'all 65536 bytes arrived');
});

t.test('request mode: thirty clients typing at once each get exactly their own answer', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'class', 'mode: request\nreplyQuietMs: 50\nrequestTimeoutMs: 2000\nmaxClients: 64');

  // The device answers "id N" with "student N", a little later, as a real box would.
  let answered = 0;
  let stopDevice = false;
  const device = (async () => {
    while (!stopDevice && answered < 30) {
      const line = await deviceLine(pty, 10_000).catch(() => '');
      const m = /^id (\d+)\r\n$/.exec(line);
      if (!m) continue;
      await new Promise((r) => setTimeout(r, 5));
      await pty.write(`student ${m[1]}\r\n`);
      answered++;
    }
  })();
  t.teardown(() => {
    stopDevice = true;
  });

  const clients = await Promise.all(Array.from({ length: 30 }, () => TestClient.connect(port)));
  t.teardown(() => clients.forEach((c) => c.close()));
  await clientsCounted(d, 'class', 30);
  clients.forEach((c, i) => c.send(`id ${i}\n`));
  await Promise.all(clients.map((c, i) => c.waitFor(`student ${i}\r\n`, 15_000)));
  await device;
  // Let any stray reply arrive before checking nobody got another's answer.
  await new Promise((r) => setTimeout(r, 100));
  const wrong = clients.filter((c, i) => c.text !== `student ${i}\r\n`);
  t.equal(wrong.length, 0, 'every client saw its own answer and nothing else');
});

t.test('unplug and replug: clients stay connected, are told, and traffic resumes', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'lab');
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  await clientsCounted(d, 'lab', 1);

  await pty.write('before\r\n');
  await c.waitFor('before\r\n');
  pty.unplug();
  await c.waitFor('! device away');
  c.send('queued while away\n');
  pty.replug();
  await c.waitFor('! device back');
  t.equal(await deviceLine(pty), 'queued while away\r\n', 'the line typed while the device was away is written when it returns');
  await pty.write('after\r\n');
  await c.waitFor('after\r\n');
  t.notOk(c.closed, 'the client was never disconnected');
  t.match(d.output(), /device waiting/, 'the state change was logged');
  t.equal(d.output().match(/device waiting/g)?.length, 1, 'once, not once per retry');
});

t.test('a stalled client never slows the others; its backlog is bounded and counted', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'lab', 'clientBufferBytes: 65536', { lines: 'ringBytes: 1048576' });

  const stalled = await TestClient.connect(port);
  stalled.socket.pause(); // never reads
  const reader = await TestClient.connect(port);
  t.teardown(() => (stalled.close(), reader.close()));
  await clientsCounted(d, 'lab', 2);

  const rssBefore = rssOf(d.child.pid!);
  const lines = 150_000; // ~9 MB: well past what loopback socket buffers absorb
  const chunk: string[] = [];
  for (let i = 0; i < lines; i++) {
    chunk.push(`line ${String(i).padStart(8, '0')} ${'x'.repeat(40)}\r\n`);
    if (chunk.length === 1000) {
      await pty.write(chunk.join(''));
      chunk.length = 0;
    }
  }
  await reader.waitFor(`line ${String(lines - 1).padStart(8, '0')}`, 60_000);
  const got = reader.text.split('\r\n').filter((l) => l.startsWith('line '));
  t.equal(got.length, lines, 'the reading client got every line');
  t.ok(got.every((l, i) => l.startsWith(`line ${String(i).padStart(8, '0')} `)), 'in order');
  const rssAfter = rssOf(d.child.pid!);
  t.ok(rssAfter - rssBefore < 40 * 1024 * 1024, `daemon RSS grew ${((rssAfter - rssBefore) / 1e6).toFixed(1)} MB for 9 MB of traffic`);
  const st = await d.notify.waitFor((m) => /dropped [1-9]/.test(m.STATUS ?? ''), 5000);
  t.pass(`the stalled client's losses are counted: ${st.STATUS}`);
});

t.test('access: allow list, maxClients and a read-only monitor', async (t) => {
  const dir = t.testdir();
  const [open, fenced, mon] = [await freePort(), await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    yaml('sim:labbox', [
      { name: 'small', port: open, extra: 'maxClients: 2' },
      { name: 'fenced', port: fenced, extra: "allow: ['10.0.0.0/8', '192.168.0.0/16']" },
      { name: 'watch', port: mon, extra: 'mode: monitor' },
    ]),
  );
  t.teardown(() => d.stop());

  const denied = await TestClient.connect(fenced);
  await denied.waitClosed();
  t.equal(denied.received.length, 0, 'an address outside allow is closed before any byte');

  const one = await TestClient.connect(open);
  const two = await TestClient.connect(open);
  const three = await TestClient.connect(open);
  t.teardown(() => (one.close(), two.close(), three.close()));
  await three.waitFor('! busy');
  await three.waitClosed();
  t.match(three.text, /maxClients/, 'the third client is told why');

  const watcher = await TestClient.connect(mon);
  t.teardown(() => watcher.close());
  await clientsCounted(d, 'watch', 1);
  watcher.send('id\n');
  await watcher.waitFor('read-only');
  one.send('name\n');
  await watcher.waitFor('] name\r\n');
  await watcher.waitFor('Lab Box\r\n');
  t.match(watcher.text, /\[127\.0\.0\.1:\d+\] name/, 'the monitor sees who sent what, and the answer');
  t.notMatch(watcher.text, /6510500000/, "the monitor's own line never reached the device");
});

t.test('telnet: negotiation is refused politely and stripped; CR NUL ends a line', async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const d = await startDaemon(dir, yaml('sim:labbox', [{ name: 'lab', port, extra: 'telnet: auto' }]));
  t.teardown(() => d.stop());
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  // IAC DO ECHO, IAC WILL NAWS, then "id" CR NUL.
  c.send(Buffer.from([0xff, 0xfd, 0x01, 0xff, 0xfb, 0x1f, 0x69, 0x64, 0x0d, 0x00]));
  await c.waitFor('6510500000\r\n');
  t.ok(c.received.includes(Buffer.from([0xff, 0xfc, 0x01])), 'DO ECHO answered WONT ECHO');
  t.ok(c.received.includes(Buffer.from([0xff, 0xfe, 0x1f])), 'WILL NAWS answered DONT NAWS');
});

t.test('a real nc: `echo id | nc` prints the answer and returns (closeAfterReply)', { skip: ncSkip }, async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const d = await startDaemon(dir, yaml('sim:labbox', [{ name: 'checkin', port, extra: 'mode: request\ncloseAfterReply: true\nreplyQuietMs: 50' }]));
  t.teardown(() => d.stop());
  const out = await new Promise<string>((resolve, reject) => {
    const nc = spawn('sh', ['-c', `echo id | nc 127.0.0.1 ${port}`]);
    let text = '';
    nc.stdout.on('data', (b: Buffer) => (text += b.toString()));
    const timer = setTimeout(() => (nc.kill(), reject(new Error(`nc did not return; printed ${JSON.stringify(text)}`))), 10_000);
    nc.on('exit', () => (clearTimeout(timer), resolve(text)));
  });
  t.equal(out, '6510500000\r\n');
});

t.test('a shared listener: `echo id | nc -N` gets the answer before the gateway closes', { skip: ncSkip }, async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const d = await startDaemon(dir, yaml('sim:labbox', [{ name: 'lab', port }]));
  t.teardown(() => d.stop());
  // -N: shut the socket down for writing at stdin's EOF, as a script's client would; nc then prints what comes
  // back until the gateway closes.
  const run = (input: string): Promise<{ text: string; ms: number }> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const nc = spawn('sh', ['-c', `printf '${input}' | nc -N 127.0.0.1 ${port}`]);
      let text = '';
      nc.stdout.on('data', (b: Buffer) => (text += b.toString()));
      const timer = setTimeout(() => (nc.kill(), reject(new Error(`nc did not return; printed ${JSON.stringify(text)}`))), 10_000);
      nc.on('exit', () => (clearTimeout(timer), resolve({ text, ms: performance.now() - t0 })));
    });
  const asked = await run('id\\n');
  t.equal(asked.text, '6510500000\r\n', 'the reply arrived before the connection closed');
  t.ok(asked.ms < 1500, `and nc returned in ${asked.ms.toFixed(0)} ms (the gateway does not wait out requestTimeoutMs)`);
  const silent = await run('');
  // It is shown the recent lines as history first (the answer above), marked, then closed.
  t.match(silent.text, /^! history: 1 line from the last \d+ s\r\n6510500000\r\n! live\r\n$/, 'a client that sent nothing is closed at its EOF');
  t.ok(silent.ms < 1000, `at once (${silent.ms.toFixed(0)} ms)`);
});

t.test('the chat lab: length-prefixed messages both ways, closeOn BYEBYE from either side', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'chat', 'framing: length-prefixed\ntelnet: off\ncloseOn: BYEBYE');
  const a = await TestClient.connect(port);
  const b = await TestClient.connect(port);
  t.teardown(() => (a.close(), b.close()));
  await clientsCounted(d, 'chat', 2);

  a.send('005hel');
  a.send('lo');
  t.equal(await deviceLine(pty), 'hello\r\n', 'a message split across packets is one line to the device');
  await pty.write('hi there\r\n');
  await a.waitFor('008hi there');
  t.equal(a.text, '008hi there', 'each device line goes back length-prefixed, without its terminator');

  a.send('006BYEBYE');
  t.equal(await deviceLine(pty), 'BYEBYE\r\n', 'BYEBYE is forwarded');
  await a.waitClosed();
  t.pass('and then the sender is closed');

  await pty.write('BYEBYE\r\n');
  await b.waitFor('006BYEBYE');
  await b.waitClosed();
  t.pass('BYEBYE from the device reaches a client, which is then closed');

  const bad = await TestClient.connect(port);
  t.teardown(() => bad.close());
  bad.send('x05hello');
  await bad.waitClosed();
  t.match(bad.text, /malformed message/, 'a malformed prefix gets a notice and the connection closed');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(pty.takeBuffered().length, 0, 'nothing was forwarded from it');
});

t.test('the chat lab: a pasted flood waits at its share of the device queue; a classmate is not refused', { skip: noPty }, async (t) => {
  // Default writeQueueBytes (64 KiB): a flooder's share is 16 KiB, and one read of its socket can be 64 KiB.
  const { pty, port, d } = await daemonOnPty(t, 'chat', 'framing: length-prefixed\ntelnet: off');
  const flooder = await TestClient.connect(port);
  const classmate = await TestClient.connect(port);
  t.teardown(() => (flooder.close(), classmate.close()));
  await clientsCounted(d, 'chat', 2);

  pty.pauseReading(); // a busy device: the pty fills, then the gateway's device queue
  const count = 400;
  const body = (i: number): string => `m${String(i).padStart(5, '0')} ${'z'.repeat(992)}`; // 999 bytes
  flooder.send(Array.from({ length: count }, (_, i) => `999${body(i)}`).join('')); // 400 KB in one write
  await new Promise((r) => setTimeout(r, 500));
  classmate.send('005hello');
  await new Promise((r) => setTimeout(r, 300));
  pty.resumeReading();

  const expected = count * 1001 + 'hello\r\n'.length;
  const got = (await pty.readUntil((b) => b.length >= expected, 20_000)).toString('latin1');
  const lines = got.split('\r\n').filter(Boolean);
  t.ok(lines.includes('hello'), 'the classmate\'s message reached the device');
  const flood = lines.filter((l) => l.startsWith('m'));
  t.equal(flood.length, count, 'every one of the flooder\'s messages reached the device: it was held back, not refused');
  t.ok(flood.every((l, i) => l === body(i)), 'whole and in order');
  t.notMatch(flooder.text + classmate.text, /refused/, 'nobody was told a line was refused');
});

t.test('a device that keeps talking while it is slow to take our lines: the lines still go through', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'lab');
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  await clientsCounted(d, 'lab', 1);

  // bindings-cpp's poller watches one set of events at a time, and each arming replaces it: the gateway's reader
  // (armed for 'readable' after every read) and serialport's writer (armed for 'writable' on EAGAIN) take turns.
  // This checks that neither starves the other when both wait at once.
  // The device streams a reading every 2 ms the whole time...
  let talking = true;
  let readings = 0;
  const talk = (async () => {
    while (talking) {
      await pty.write(`reading ${readings++}\r\n`);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  // ...and stops taking input for a while, so the gateway's writes to it block (EAGAIN) mid-paste.
  pty.pauseReading();
  const count = 2000;
  c.send(Array.from({ length: count }, (_, i) => `cmd ${String(i).padStart(5, '0')} ${'q'.repeat(40)}\n`).join(''));
  await new Promise((r) => setTimeout(r, 500));
  pty.resumeReading();
  const last = `cmd ${String(count - 1).padStart(5, '0')} `;
  const got = await pty.readUntil((b) => b.includes(last), 10_000).then(
    (b) => b.toString('latin1'),
    (err: Error) => err.message,
  );
  talking = false;
  await talk;
  const cmds = got.split('\r\n').filter((l) => l.startsWith('cmd '));
  t.equal(cmds.length, count, `every line reached the device while it kept talking (${readings} readings sent meanwhile)`);
  t.ok(c.text.includes('reading '), 'and its readings kept reaching the client');
});

t.test('UDP request mode: each peer gets its own reply; an oversized datagram is refused', async (t) => {
  const dir = t.testdir();
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const d = await startDaemon(
    dir,
    yaml('sim:labbox', [{ name: 'lab', port: tcpPort }], {
      udp: [{ name: 'udp', port: udpPort, extra: 'mode: request\nreplyQuietMs: 50' }],
      lines: 'maxLineBytes: 64',
    }),
  );
  t.teardown(() => d.stop());
  const peers = [createSocket('udp4'), createSocket('udp4'), createSocket('udp4')];
  t.teardown(() => peers.forEach((p) => p.close()));
  const replies = peers.map((p) => new Promise<string>((resolve) => p.once('message', (m) => resolve(m.toString()))));
  peers.forEach((p, i) => p.send(`echo peer ${i}\n`, udpPort, '127.0.0.1'));
  t.same(await Promise.all(replies), ['peer 0\r\n', 'peer 1\r\n', 'peer 2\r\n'], 'each peer got exactly its own answer');

  const big = new Promise<string>((resolve) => peers[0]!.once('message', (m) => resolve(m.toString())));
  peers[0]!.send(Buffer.alloc(100, 0x61), udpPort, '127.0.0.1');
  t.match(await big, /^! datagram refused: 100 bytes, the limit is 64/);
});

t.test('a slow client that catches up is told once how many lines it missed', { skip: noPty }, async (t) => {
  // The ring is large enough not to lap during the test (so the paused client is never closed as stalled),
  // and the data far exceeds what loopback socket buffers absorb (a few MB), so the client really falls behind.
  // idleFlushMs 0: on a loaded machine the writer below can stall mid-line for longer than an idle flush, which
  // delivers the line in two pieces; a `! missed` notice between them starts on its own line and so splits it,
  // and this test counts whole lines (seen: received + missed = sent - 1, at load 12 and more).
  const { pty, port, d } = await daemonOnPty(t, 'lab', 'clientBufferBytes: 4096', { lines: 'ringBytes: 33554432\nidleFlushMs: 0' });
  const slow = await TestClient.connect(port);
  t.teardown(() => slow.close());
  await clientsCounted(d, 'lab', 1);
  slow.socket.pause();
  const total = 200_000;
  const block: string[] = [];
  for (let i = 0; i < total; i++) {
    block.push(`n${i} ${'y'.repeat(50)}\r\n`);
    if (block.length === 2000) {
      await pty.write(block.join(''));
      block.length = 0;
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  slow.socket.resume();
  await slow.waitFor('! missed', 10_000);
  await pty.write('after\r\n');
  await slow.waitFor('after\r\n', 10_000);
  t.pass('once caught up, the client gets new lines again');
  // The last notice may still be on its 2 s rate limit: wait until the books balance (or time runs out).
  const balance = () => {
    const missed = (slow.text.match(/! missed (\d+) lines/g) ?? []).reduce((n, s) => n + Number(/\d+/.exec(s)![0]), 0);
    return slow.text.split('\r\n').filter((l) => /^n\d+ y+$/.test(l)).length + missed;
  };
  await slow.waitFor(() => balance() >= total, 5000).catch(() => {});
  const notices = slow.text.match(/! missed (\d+) lines/g) ?? [];
  t.ok(notices.length >= 1 && notices.length <= 4, `told when it caught up, at most every 2 s, not once per skip: ${notices.join(', ')}`);
  const missed = notices.reduce((n, s) => n + Number(/\d+/.exec(s)![0]), 0);
  const got = slow.text.split('\r\n').filter((l) => /^n\d+ y+$/.test(l)).length;
  t.equal(got + missed, total, `received ${got} + told missed ${missed} = sent ${total}: nothing unaccounted`);
});

t.test('request mode: a client that sends its line and then EOF (nc -N, a script) still gets its reply', async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const d = await startDaemon(dir, yaml('sim:labbox', [{ name: 'class', port, extra: 'mode: request\nreplyQuietMs: 50' }]));
  t.teardown(() => d.stop());
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  c.socket.end('id\n');
  await c.waitClosed();
  t.equal(c.text, '6510500000\r\n', 'the reply came, then the gateway closed');
});

t.test('the device queue is bounded: while the device is away, a line that does not fit is refused and its sender told', { skip: noPty }, async (t) => {
  const { pty, port, d } = await daemonOnPty(t, 'lab', undefined, { serial: 'writeQueueBytes: 1024', lines: 'maxLineBytes: 100' });
  pty.unplug();
  // Each client may hold about 470 bytes of the 1024-byte queue before it is paused (backpressure, nothing
  // lost); the third client's lines no longer fit at all and are refused.
  const [a, b, c] = [await TestClient.connect(port), await TestClient.connect(port), await TestClient.connect(port)];
  t.teardown(() => (a.close(), b.close(), c.close()));
  await a.waitFor('! device away');
  const line = 'q'.repeat(90);
  for (let i = 0; i < 5; i++) a.send(`${line} a${i}\n`);
  await clientsCounted(d, 'lab', 3);
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 5; i++) b.send(`${line} b${i}\n`);
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 6; i++) c.send(`${line} c${i}\n`);
  await c.waitFor('! line refused: the device queue is full (the device is away)');
  pty.replug();
  const received: string[] = [];
  for (;;) {
    const got = await deviceLine(pty, 1500).catch(() => null);
    if (got === null) break;
    received.push(got.trim().split(' ')[1]!);
  }
  const refused = (a.text + b.text + c.text).match(/! line refused/g)?.length ?? 0;
  t.ok(received.length > 0 && received.length < 16, `${received.length} queued lines written when the device came back`);
  t.equal(received.length + refused, 16, `every line was either written (${received.length}) or refused with a notice (${refused})`);
  t.same(received.slice(0, 4), ['a0', 'b0', 'a1', 'b1'], 'the clients took turns');
});
