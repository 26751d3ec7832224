import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAIN, TestClient, freePort, startDaemon } from '../support/daemon.js';
import { PtyPair, ptyUnavailableReason } from '../support/pty.js';
import { Tab } from '../support/ws-tab.js';

/**
 * The instructor's actions against the built daemon on the simulated box, with real clients of every kind: a
 * TCP `lines` client, a length-prefixed one, a UDP subscriber, a browser tab (ws) and the dashboard's monitor
 * socket; the CLI as a person runs it, over the control socket.
 */

/** Runs `serial-gateway ARGS --config FILE`; resolves with its exit code and output. */
function cli(args: string[], file: string, opts: { uid?: number; gid?: number } = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

class Udp {
  readonly got: string[] = [];
  readonly socket = createSocket('udp4');
  constructor() {
    this.socket.on('message', (m) => this.got.push(m.toString('latin1')));
  }
  bind(): Promise<void> {
    return new Promise((r) => this.socket.bind(0, '127.0.0.1', () => r()));
  }
  send(port: number, text: string): void {
    this.socket.send(text, port, '127.0.0.1');
  }
  async until(what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.got.includes(what)) {
      if (Date.now() > deadline) throw new Error(`UDP: timed out waiting for ${JSON.stringify(what)}; got ${JSON.stringify(this.got.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function classroom(t: Test, extra = '') {
  const dir = t.testdir();
  // The socket path stays short whatever directory the clone is in (a unix socket path has at most 107 bytes).
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const sock = join(sockDir, 'control.sock');
  const [lines, prefixed, udp, web] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const yaml = `serial:
  path: sim:labbox
  reset: { method: dtr, ms: 20 }
${extra}
control:
  socket: ${sock}
tcp:
  - { name: lab, host: 127.0.0.1, port: ${lines} }
  - { name: chat, host: 127.0.0.1, port: ${prefixed}, framing: length-prefixed }
udp:
  - { name: udp, host: 127.0.0.1, port: ${udp} }
web:
  - { name: web, host: 127.0.0.1, port: ${web}, mode: shared, monitorAllow: [127.0.0.1] }
`;
  const d = await startDaemon(dir, yaml);
  t.teardown(() => d.stop());
  return { d, dir, sock, sockDir, file: join(dir, 'config.yaml'), ports: { lines, prefixed, udp, web } };
}

/** A length-prefixed message as the chat listener frames it (3 digits). */
const framed = (text: string): string => `${String(Buffer.byteLength(text)).padStart(3, '0')}${text}`;

t.test('every action from the CLI, seen by every kind of client in its own framing', async (t) => {
  const { d, file, sock, ports } = await classroom(t);
  t.equal(lstatSync(sock).mode & 0o777, 0o660, 'the control socket is created 0660');
  const tcp = await TestClient.connect(ports.lines);
  t.teardown(() => tcp.close());
  const chat = await TestClient.connect(ports.prefixed);
  t.teardown(() => chat.close());
  const udp = new Udp();
  await udp.bind();
  t.teardown(() => udp.socket.close());
  udp.send(ports.udp, 'id');
  await udp.until('6510500000\r\n');
  const tab = await Tab.openAsPage(`ws://127.0.0.1:${ports.web}/ws`);
  t.teardown(() => tab.ws.terminate());
  const dash = await Tab.openAsPage(`ws://127.0.0.1:${ports.web}/ws/monitor`);
  t.teardown(() => dash.ws.terminate());
  await tab.until(() => tab.messages.length > 0);

  const list = await cli(['clients'], file);
  t.equal(list.code, 0, 'clients exits 0');
  for (const what of [/lab\s+tcp\s+127\.0\.0\.1:\d+\s+shared/, /chat\s+tcp/, /udp\s+udp\s+127\.0\.0\.1:\d+/, /web\s+web\s+127\.0\.0\.1:\d+\s+shared/, /web\s+web\s+127\.0\.0\.1:\d+\s+monitor/]) {
    t.match(list.out, what, `clients lists ${what}`);
  }

  // say: one notice line each, never inside a device line.
  const said = await cli(['say', 'the', 'box', 'restarts', 'in', 'one', 'minute'], file);
  t.equal(said.code, 0, said.err);
  t.match(said.out, /said "the box restarts in one minute" to 5 client\(s\)/);
  await tcp.waitFor('! instructor: the box restarts in one minute\r\n');
  await chat.waitFor(framed('! instructor: the box restarts in one minute'));
  await udp.until('! instructor: the box restarts in one minute\r\n');
  await tab.until(() => tab.notices.includes('instructor: the box restarts in one minute'));
  await dash.until(() => dash.notices.includes('instructor: the box restarts in one minute'));

  // reset: the sim box reboots and prints its banner; everyone is told.
  const reset = await cli(['reset'], file);
  t.equal(reset.code, 0, reset.err);
  t.match(reset.out, /box reset \(DTR pulse of 20 ms\); 5 client\(s\) told/);
  await tcp.waitFor('! box reset by the instructor\r\n');
  await tcp.waitFor('LABBOX ready');
  await chat.waitFor(framed('! box reset by the instructor'));
  await udp.until('! box reset by the instructor\r\n');
  await tab.until(() => tab.notices.includes('box reset by the instructor') && tab.text.includes('LABBOX ready'));
  await dash.until(() => dash.messages.some((m) => 'instructor' in m && m.instructor.resets === 1));

  // pause: told once; students' lines refused, not queued; the dashboard's line still reaches the device.
  const paused = await cli(['pause', '--for', '10m'], file);
  t.equal(paused.code, 0, paused.err);
  await tcp.waitFor('! read-only: the instructor has paused input for 10 min\r\n');
  await udp.until('! read-only: the instructor has paused input for 10 min\r\n');
  await tab.until(() => tab.notices.includes('read-only: the instructor has paused input for 10 min'));
  const before = tcp.text.split('6510500000').length;
  tcp.send('id\r\n');
  await tcp.waitFor('! line refused: input is paused by the instructor (not queued)\r\n');
  tab.ws.send('id');
  await tab.until(() => tab.notices.includes('line refused: input is paused by the instructor (not queued)'));
  udp.send(ports.udp, 'id');
  await udp.until('! line refused: input is paused by the instructor (not queued)\r\n');
  t.equal(tcp.text.split('6510500000').length, before, 'no student line reached the box while paused');
  dash.ws.send(JSON.stringify({ action: 'send', line: 'id', id: 7 }));
  await dash.until(() => dash.replies.some((r) => r.id === 7 && r.ok));
  await tcp.waitFor((b) => b.toString('latin1').split('6510500000').length > before);
  t.pass("the dashboard's own line reached the box during the pause, and its answer reached the class");
  t.equal(tcp.text.split('read-only: the instructor').length - 1, 1, 'told once');

  const resumed = await cli(['resume'], file);
  t.equal(resumed.code, 0, resumed.err);
  await tcp.waitFor('! input resumed: lines reach the device again\r\n');
  tcp.send('name\r\n');
  await tcp.waitFor('Lab Box');

  // kick with a reason and a ban: told why, closed, refused at reconnect; the others stay.
  const port = tcp.socket.localPort!;
  const kicked = await cli(['kick', `127.0.0.1:${port}`, '--reason', 'flooding the box', '--ban', '1m'], file);
  t.equal(kicked.code, 0, kicked.err);
  t.match(kicked.out, new RegExp(`removed 1 client\\(s\\) from 127\\.0\\.0\\.1:${port} \\(flooding the box\\); 127\\.0\\.0\\.1 barred for 1 min`));
  await tcp.waitFor('! removed by the instructor: flooding the box\r\n');
  await tcp.waitClosed();
  t.notOk(chat.closed, 'the other clients stay');
  const again = await TestClient.connect(ports.lines);
  await again.waitClosed();
  t.match(again.text, '! busy: 127.0.0.1 is barred for a while by the instructor', 'a barred address is refused at accept');
  t.match(d.output(), /instructor: removed 1 client\(s\) from 127\.0\.0\.1:\d+ \(flooding the box\); 127\.0\.0\.1 barred for 1 min \(asked by local user \S+ \(uid \d+\)\)/, 'journaled with who asked');
  t.match(d.output(), /instructor: box reset \(DTR pulse of 20 ms\); 5 client\(s\) told \(asked by local user/);
});

t.test('the dashboard: actions on its monitor socket, a tab removed from the client list', async (t) => {
  const { d, ports } = await classroom(t);
  const tcp = await TestClient.connect(ports.lines);
  t.teardown(() => tcp.close());
  const tab = await Tab.openAsPage(`ws://127.0.0.1:${ports.web}/ws`);
  t.teardown(() => tab.ws.terminate());
  const dash = await Tab.openAsPage(`ws://127.0.0.1:${ports.web}/ws/monitor`);
  t.teardown(() => dash.ws.terminate());
  await dash.until(() => dash.messages.some((m) => 'instructor' in m), 3000);
  t.equal(dash.hello?.actions, true, 'a guarded dashboard (monitorAllow set) is told its actions are on');
  t.equal(tab.hello?.actions, undefined, "a student's tab is told nothing about actions");
  let id = 0;
  const ask = async (req: object): Promise<{ ok: boolean; text: string }> => {
    const mine = ++id;
    dash.ws.send(JSON.stringify({ ...req, id: mine }));
    await dash.until(() => dash.replies.some((r) => r.id === mine));
    return dash.replies.find((r) => r.id === mine)!;
  };
  t.match(await ask({ action: 'say', text: 'hello class' }), { ok: true });
  await tcp.waitFor('! instructor: hello class\r\n');
  await tab.until(() => tab.notices.includes('instructor: hello class'));
  t.match(await ask({ action: 'pause' }), { ok: true, text: /input paused until resumed/ });
  await tcp.waitFor('! read-only: the instructor has paused input until further notice\r\n');
  await dash.until(() => dash.messages.some((m) => 'instructor' in m && m.instructor.paused?.by.startsWith('dashboard 127.0.0.1:')));
  t.match(await ask({ action: 'resume' }), { ok: true });
  await tcp.waitFor('! input resumed');
  t.match(await ask({ action: 'reset' }), { ok: true });
  await tcp.waitFor('LABBOX ready');
  t.match(await ask({ action: 'pause', for: 'soon' }), { ok: false, text: /not a duration/ }, 'a bad duration is refused');
  t.match(await ask({ action: 'fly' }), { ok: false, text: /unknown action "fly"/ });
  t.match(await ask({ action: 'say', text: 'two\nlines' }), { ok: false, text: /one line of text/ });
  // Remove the student tab by its id in the client list.
  const clients = dash.messages.flatMap((m) => ('clients' in m && Array.isArray(m.clients) ? [m.clients] : [])).pop()!;
  const student = clients.find((c) => c.via === 'web' && c.mode !== 'monitor')!;
  t.ok(student, 'the tab is in the client list');
  t.match(await ask({ action: 'kick', client: student.id, reason: 'wrong group' }), { ok: true, text: /removed 1 client/ });
  await tab.until(() => tab.closed !== null);
  t.ok(tab.notices.includes('removed by the instructor: wrong group'), 'the tab was told why');
  t.equal(tab.closed!.code, 1008, 'closed with 1008 (policy): the page does not reconnect by itself');
  t.notOk(tcp.closed, 'the TCP client stays');
  t.match(d.output(), /instructor: said "hello class" to \d+ client\(s\) \(asked by dashboard 127\.0\.0\.1:\d+ \(web web\)\)/);
  t.notMatch(d.output(), /not a duration/, 'a refused request is not journaled as done');
});

t.test('an unguarded dashboard (no monitorPassword, no monitorAllow) takes no action, and says what would', async (t) => {
  const dir = t.testdir();
  const [lines, web] = [await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ''\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${lines} }\nudp: []\nweb:\n  - { name: web, host: 127.0.0.1, port: ${web} }\n`,
  );
  t.teardown(() => d.stop());
  const tcp = await TestClient.connect(lines);
  t.teardown(() => tcp.close());
  const dash = await Tab.openAsPage(`ws://127.0.0.1:${web}/ws/monitor`);
  t.teardown(() => dash.ws.terminate());
  await dash.until(() => dash.hello !== undefined);
  t.equal(dash.hello!.actions, false, 'the hello tells the page its actions are off');
  for (const [id, req] of [{ action: 'say', text: 'everyone out' }, { action: 'reset' }, { action: 'pause' }].entries()) {
    dash.ws.send(JSON.stringify({ ...req, id }));
    await dash.until(() => dash.replies.some((r) => r.id === id));
    t.match(dash.replies.find((r) => r.id === id), { ok: false, text: /actions need monitorPassword or monitorAllow on web listener web/ }, `${req.action}: refused, saying why`);
  }
  await new Promise((r) => setTimeout(r, 200));
  t.notMatch(tcp.text, /^! /m, 'no student was told anything, no pause');
  t.notMatch(d.output(), /instructor: /, 'nothing done');
  t.match(await d.outputWith('/monitor shows every line'), /web: \/monitor shows every line and is open to every address allowed on the page; its actions and transcript download stay off until monitorPassword or monitorAllow is set/);
});

t.test('bad arguments change nothing; refusals say why; no daemon is exit 69', async (t) => {
  const { file, ports } = await classroom(t);
  const tcp = await TestClient.connect(ports.lines);
  t.teardown(() => tcp.close());
  await tcp.waitFor('');
  // Every usage error is covered in test/control/cli.test.ts; here one of each kind, end to end.
  const cases: [string[], number, RegExp][] = [
    [['pause', '--for', '10x'], 2, /not a duration: "10x"/],
    [['resume'], 1, /input is not paused/],
    [['kick', '10.9.9.9'], 1, /no client connected from 10\.9\.9\.9/],
  ];
  for (const [args, code, why] of cases) {
    const r = await cli(args, file);
    t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
    t.match(r.err, why, `${args.join(' ')}: says why`);
  }
  await new Promise((r) => setTimeout(r, 100));
  t.notMatch(tcp.text, /^! /m, 'no client was told anything');
  t.notOk(tcp.closed);
});

t.test('reset is refused while the device is away, and when none is configured', async (t) => {
  const dir = t.testdir();
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const port = await freePort();
  const d = await startDaemon(
    dir,
    `serial:\n  path: /dev/serial-gateway-test-absent\n  reset: { method: dtr }\ncontrol:\n  socket: ${join(sockDir, 'c.sock')}\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${port} }\nudp: []\n`,
  );
  t.teardown(() => d.stop());
  const r = await cli(['reset'], join(dir, 'config.yaml'));
  t.equal(r.code, 1);
  t.match(r.err, /reset refused: the device is away \(.*not present\)/);

  const dir2 = t.testdir();
  const d2 = await startDaemon(dir2, `serial:\n  path: sim:labbox\ncontrol:\n  socket: ${join(sockDir, 'd.sock')}\ntcp: []\nudp: []\n`);
  t.teardown(() => d2.stop());
  const r2 = await cli(['reset'], join(dir2, 'config.yaml'));
  t.equal(r2.code, 1);
  t.match(r2.err, /no reset is configured \(serial\.reset\.method is none\)/);

  const r3 = await cli(['clients'], join(dir2, 'nothing-here.yaml'));
  t.not(r3.code, 0, 'a config that does not exist is an error');
  await d2.stop();
  const r4 = await cli(['clients'], join(dir2, 'config.yaml'));
  t.equal(r4.code, 69, 'nothing answers: 69');
  t.match(r4.err, /no gateway is running/);
  t.notOk(existsSync(join(sockDir, 'd.sock')), 'the socket file is removed at stop');
});

t.test('a stale socket file from a crash is replaced at start', async (t) => {
  const dir = t.testdir();
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const sock = join(sockDir, 'control.sock');
  // A socket file nobody listens on: what a killed daemon leaves (SIGKILL: no chance to remove it).
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => holder.stdout.once('data', () => r()));
  holder.kill('SIGKILL');
  await new Promise<void>((r) => holder.once('exit', () => r()));
  t.ok(lstatSync(sock).isSocket(), 'a stale socket is there');
  const d = await startDaemon(dir, `serial:\n  path: sim:labbox\ncontrol:\n  socket: ${sock}\ntcp: []\nudp: []\n`);
  t.teardown(() => d.stop());
  t.match(d.output(), /removed a stale socket/);
  const r = await cli(['clients'], join(dir, 'config.yaml'));
  t.equal(r.code, 0, r.err);
  t.match(r.out, 'no clients connected');
});

const notRoot = process.getuid?.() !== 0 ? 'needs root to run the CLI as another user (uid nobody)' : undefined;

t.test('the control socket refuses another user', { skip: notRoot }, async (t) => {
  const { file, sock, sockDir } = await classroom(t);
  // nobody must reach the socket's directory and run node and the built CLI from this clone.
  chmodSync(sockDir, 0o711);
  const probe = await cli(['--version'], file, { uid: 65534, gid: 65534 });
  if (probe.code !== 0) {
    // A clone under a 0700 home: nobody cannot reach node_modules or dist. Nothing to check then.
    t.comment(`skipped: uid nobody cannot run the built CLI from this clone: ${probe.err.split('\n')[0]}`);
    t.pass('skipped: this clone is not readable by uid nobody');
    return;
  }
  const denied = await cli(['say', 'hi'], file, { uid: 65534, gid: 65534 });
  t.equal(denied.code, 77, 'the 0660 socket file keeps nobody out: exit 77');
  t.match(denied.err, /permission denied on .*control\.sock/);
  // Even with the file opened to everyone, the daemon checks who is asking (SO_PEERCRED).
  chmodSync(sock, 0o666);
  const refused = await cli(['say', 'hi'], file, { uid: 65534, gid: 65534 });
  t.equal(refused.code, 77, 'refused by peer credentials: exit 77');
  t.match(refused.err, /refused: local user nobody \(uid 65534\) may not control this gateway/);
});

t.test('with the transcript on, each action is in it with who asked, and each client\'s notice too', async (t) => {
  const dir = t.testdir();
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const port = await freePort();
  const file = join(dir, 'config.yaml');
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ${join(sockDir, 'c.sock')}\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${port} }\nudp: []\ntranscript:\n  enabled: true\n  dir: ${join(dir, 'transcript')}\n  flushMs: 10\n`,
  );
  t.teardown(() => d.stop());
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  const said = await cli(['say', 'quiz in five minutes'], file);
  t.equal(said.code, 0, said.err);
  await c.waitFor('! instructor: quiz in five minutes');
  await d.stop();
  const read = await cli(['transcript'], file);
  t.equal(read.code, 0, read.err);
  t.match(read.out, /instructor: said "quiz in five minutes" to 1 client\(s\) \(asked by local user \S+ \(uid \d+\)\)/);
  t.match(read.out, /tcp:lab 127\.0\.0\.1:\d+ ! instructor: quiz in five minutes/);
});

t.test('clear-queue with real clients: lines waiting for an unplugged box are dropped, each sender told how many', { skip: ptyUnavailableReason() ?? false }, async (t) => {
  const dir = t.testdir();
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  t.teardown(() => pty.close());
  const port = await freePort();
  const d = await startDaemon(
    dir,
    `serial:\n  path: ${pty.linkPath}\n  reconnectMinMs: 50\n  reconnectMaxMs: 200\ncontrol:\n  socket: ${join(sockDir, 'c.sock')}\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${port}, historyLines: 0 }\nudp: []\n`,
  );
  t.teardown(() => d.stop());
  await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  pty.unplug();
  const a = await TestClient.connect(port);
  const b = await TestClient.connect(port);
  t.teardown(() => (a.close(), b.close()));
  await a.waitFor('! device away');
  await b.waitFor('! device away');
  for (let i = 0; i < 3; i++) a.send(`from a ${i}\n`);
  b.send('from b 0\n');
  await new Promise((r) => setTimeout(r, 300));

  const r = await cli(['clear-queue'], join(dir, 'config.yaml'));
  t.equal(r.code, 0, r.err);
  t.match(r.out, /dropped 4 line\(s\) waiting for the device/);
  await a.waitFor('! 3 of your lines waiting for the device were dropped by the instructor');
  await b.waitFor('! one of your lines waiting for the device was dropped by the instructor');

  pty.replug();
  await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  a.send('after\n');
  const got = await pty.readUntil('after\r\n', 5000);
  t.equal(got.toString('latin1'), 'after\r\n', 'none of the dropped lines reached the box; the next one did');
});

t.test('an IPv6 TCP client is listed as [ADDRESS]:PORT; removed by its id from the dashboard with a ban, its address is barred', async (t) => {
  const dir = t.testdir();
  const sockDir = mkdtempSync(join(tmpdir(), 'sg16-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const [port, web] = [await freePort(), await freePort()];
  const file = join(dir, 'config.yaml');
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ${join(sockDir, 'c.sock')}\ntcp:\n  - { name: lab, host: '::1', port: ${port} }\nudp: []\n` +
      `web:\n  - { name: web, host: 127.0.0.1, port: ${web}, monitorAllow: [127.0.0.1] }\n`,
  );
  t.teardown(() => d.stop());
  const c = await TestClient.connect(port, '::1');
  t.teardown(() => c.close());
  const listed = await cli(['clients'], file);
  t.equal(listed.code, 0, listed.err);
  const row = listed.out.split('\n').find((l) => l.includes(`[::1]:${c.socket.localPort}`));
  t.ok(row, `listed bracketed, as kick takes it: ${listed.out}`);
  const id = Number(row!.trim().split(/\s+/)[0]);
  const dash = await Tab.open(`ws://127.0.0.1:${web}/ws/monitor`);
  t.teardown(() => dash.ws.terminate());
  dash.ws.send(JSON.stringify({ action: 'kick', client: id, ban: '1m', id: 1 }));
  await dash.until(() => dash.replies.some((r) => r.id === 1));
  t.match(dash.replies.find((r) => r.id === 1), { ok: true, text: /removed 1 client\(s\) from ::1 \(client \d+\); ::1 barred for 1 min/ });
  await c.waitClosed();
  const again = await TestClient.connect(port, '::1');
  t.teardown(() => again.close());
  await again.waitClosed();
  t.match(again.text, '! busy: ::1 is barred for a while by the instructor');
  const byAddress = await cli(['kick', '[::1]'], file);
  t.equal(byAddress.code, 1, 'nobody left from [::1]');
  t.match(byAddress.err, /no client connected from \[::1\]/);
});

t.test("the dashboard's own line is journaled, and in the transcript under the dashboard's address", async (t) => {
  const dir = t.testdir();
  const [port, web] = [await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ''\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${port} }\nudp: []\n` +
      `web:\n  - { name: web, host: 127.0.0.1, port: ${web}, monitorAllow: [127.0.0.1] }\n` +
      `transcript:\n  enabled: true\n  dir: ${join(dir, 'transcript')}\n  flushMs: 10\n`,
  );
  t.teardown(() => d.stop());
  const student = await TestClient.connect(port);
  t.teardown(() => student.close());
  student.send('id\n');
  await student.waitFor('6510500000');
  const dash = await Tab.open(`ws://127.0.0.1:${web}/ws/monitor`);
  t.teardown(() => dash.ws.terminate());
  dash.ws.send(JSON.stringify({ action: 'send', line: 'name', id: 1 }));
  await dash.until(() => dash.replies.some((r) => r.id === 1));
  t.match(dash.replies.find((r) => r.id === 1), { ok: true, text: 'sent' });
  await student.waitFor('Lab Box');
  const dashPort = (dash.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
  const studentPort = student.socket.localPort;
  t.equal(await d.stop(), 0);
  t.match(d.output(), new RegExp(`instructor: sent "name" to the device \\(asked by dashboard 127\\.0\\.0\\.1:${dashPort} \\(web web\\)\\)`), 'journaled with who asked');
  const file = join(dir, 'config.yaml');
  const all = await cli(['transcript'], file);
  t.match(all.out, new RegExp(`web:web 127\\.0\\.0\\.1:${dashPort} > name\\n\\d\\d:\\d\\d:\\d\\d device < Lab Box`), "the dashboard's line and the answer");
  const mine = await cli(['transcript', '--client', `127.0.0.1:${studentPort}`], file);
  t.match(mine.out, /> id\n\d\d:\d\d:\d\d device < 6510500000/);
  t.notMatch(mine.out, /Lab Box/, "the answer to the dashboard's line is not credited to the student");
});
