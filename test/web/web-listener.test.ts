import t from 'tap';
import WebSocket from 'ws';
import { Bridge } from '../../src/bridge.js';
import { silentLog } from '../../src/core/log.js';
import type { WebListenerConfig } from '../../src/config/types.js';
import { CloseCode, PING_INTERVAL_MS, SUBPROTOCOL } from '../../src/web/protocol.js';
import { WebListener, type Asset, type WebListenerContext } from '../../src/web/web-listener.js';
import { request } from 'node:http';
import { FakeClock } from '../support/fake-clock.js';
import { fakeLink } from '../support/fake-transport.js';

/** The listener composed with a bridge on loopback (no daemon), so time and the device are the test's. */
async function rig(t: { teardown(fn: () => void | Promise<void>): void }, over: Partial<WebListenerConfig> = {}, assets = new Map<string, Asset>()) {
  const clock = new FakeClock();
  const bridge = new Bridge({
    clock,
    log: silentLog,
    ringBytes: 1 << 20,
    maxLineBytes: 256,
    delimiter: 'crlf',
    idleFlushMs: 0,
    outputDelimiter: 'crlf',
    writeQueueBytes: 4096,
  });
  const config: WebListenerConfig = {
    name: 'web',
    host: '127.0.0.1',
    port: 0,
    mode: 'shared',
    maxClients: 8,
    maxClientsPerAddress: 0,
    allow: [],
    title: 't',
    banner: '',
    clientBufferBytes: 262144,
    notices: true,
    idleTimeoutMs: 0,
    historyLines: 0,
    historySeconds: 600,
    replyMaxLines: 0,
    replyQuietMs: 100,
    requestTimeoutMs: 2000,
    hostNames: [],
    monitor: true,
    monitorAllow: [],
    monitorPassword: '',
    ...over,
  };
  const ctx: WebListenerContext = {
    bridge,
    clock,
    log: silentLog,
    assets,
    maxLineBytes: () => 256,
    device: () => ({ device: 'sim', settings: '115200 8N1' }),
    boot: 'b',
    status: () => ({}),
    metrics: () => '',
    refused: () => {},
    changed: () => {},
  };
  const listener = new WebListener(config, ctx);
  await listener.listen();
  t.teardown(async () => {
    const closed = listener.close();
    clock.advance(200); // the listener gives tabs 200 ms (on its clock) to take their last bytes
    await closed;
    bridge.dispose();
  });
  return { clock, bridge, listener, config, ctx, url: `ws://127.0.0.1:${listener.port}` };
}

function open(url: string, opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, SUBPROTOCOL, opts);
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const settle = (ms = 100): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a device queue that is full pauses the socket: a 500-line paste waits, nothing is refused, all arrive in order', async (t) => {
  const { bridge, listener, url } = await rig(t);
  const ws = await open(`${url}/ws`);
  t.teardown(() => ws.close());
  const notices: string[] = [];
  ws.on('message', (d: Buffer, binary: boolean) => {
    if (!binary) {
      const m = JSON.parse(d.toString()) as { notice?: string };
      if (m.notice) notices.push(m.notice);
    }
  });
  // No device link yet: nothing leaves the queue.
  for (let i = 0; i < 500; i++) ws.send(`line ${String(i).padStart(3, '0')} ${'p'.repeat(60)}`);
  await settle(500);
  t.ok(bridge.queue.queuedBytes <= 4096, `the queue holds at most its size (${bridge.queue.queuedBytes} bytes)`);
  const session = [...listener.clients][0]!.session;
  t.ok(session.stats.linesIn < 500, `the tab was paused part way (${session.stats.linesIn} lines taken so far)`);
  const link = fakeLink(bridge);
  bridge.deviceState('OPEN', 'test');
  for (let i = 0; i < 100 && link.written.length < 500; i++) await settle(20);
  t.equal(link.written.length, 500, 'every line reached the device');
  t.ok(link.written.every((l, i) => l.startsWith(`line ${String(i).padStart(3, '0')} `) && l.endsWith('\r\n')), 'whole and in order');
  t.same(notices.filter((n) => /refused/.test(n)), [], 'nobody was told a line was refused');
});

t.test('a tab that stops answering pings is dropped after one interval; one that answers stays', async (t) => {
  const { clock, listener, url } = await rig(t);
  const deaf = await open(`${url}/ws`, { autoPong: false });
  const alive = await open(`${url}/ws`);
  t.teardown(() => (deaf.close(), alive.close()));
  const closed = new Promise<number>((r) => deaf.once('close', (code) => r(code)));
  await settle();
  t.equal(listener.clients.size, 2);
  clock.advance(PING_INTERVAL_MS);
  await settle();
  clock.advance(PING_INTERVAL_MS);
  t.equal(await closed, 1006, 'the deaf tab was terminated (no close frame)');
  await settle();
  t.equal(listener.clients.size, 1, 'the answering tab is still there');
});

t.test('an address outside allow gets 403 on the upgrade; maxClientsPerAddress answers 1013', async (t) => {
  const closedOut = await rig(t, { allow: ['10.9.9.0/24'] });
  await t.rejects(open(`${closedOut.url}/ws`), /403/);
  const perAddress = await rig(t, { maxClientsPerAddress: 1 });
  const first = await open(`${perAddress.url}/ws`);
  const second = await open(`${perAddress.url}/ws`);
  t.teardown(() => (first.close(), second.close()));
  const code = await new Promise<number>((r) => second.once('close', (c) => r(c)));
  t.equal(code, CloseCode.BUSY);
});

function status(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('an address only in monitorAllow gets the dashboard and its files, not the console', async (t) => {
  const asset = (text: string, type: string): Asset => ({ body: Buffer.from(text), type, etag: '"x"' });
  const assets = new Map([
    ['console.html', asset('<html>console', 'text/html')],
    ['monitor.html', asset('<html>monitor', 'text/html')],
    ['monitor.js', asset('// js', 'text/javascript')],
  ]);
  const { listener } = await rig(t, { allow: ['10.9.9.0/24'], monitorAllow: ['127.0.0.1'] }, assets);
  t.equal(await status(listener.port, '/'), 403, 'the console: not in allow');
  t.equal(await status(listener.port, '/monitor'), 200, 'the dashboard: in monitorAllow');
  t.equal(await status(listener.port, '/assets/monitor.js'), 200, "the dashboard's script loads");
  t.equal(await status(listener.port, '/assets/console.html'), 404, 'pages are not assets');
});

/** Opens a tab and resolves with its hello; the handler is attached before the socket opens, because the hello can
 * arrive in the same read as the upgrade's answer and be emitted before `open` has resolved anything. */
function helloOf(url: string): Promise<{ ws: WebSocket; hello: { seq: number; lost: number; resumed: boolean; boot: string } }> {
  const ws = new WebSocket(url, SUBPROTOCOL);
  ws.on('error', () => {});
  return new Promise((resolve) =>
    ws.once('message', (d: Buffer) => resolve({ ws, hello: (JSON.parse(d.toString()) as { hello: { seq: number; lost: number; resumed: boolean; boot: string } }).hello })),
  );
}

t.test('resume after the ring moved on: hello says how many records were lost, and the stream starts at the oldest held', async (t) => {
  const { bridge, url } = await rig(t);
  const first = await helloOf(`${url}/ws`);
  first.ws.close();
  await settle();
  // Twice the ring (1 MiB) while the tab is away.
  const line = Buffer.from(`${'r'.repeat(254)}\r\n`);
  for (let i = 0; i < 8192; i++) bridge.deviceData(line);
  const back = await helloOf(`${url}/ws?since=${first.hello.seq}&boot=${first.hello.boot}`);
  t.teardown(() => back.ws.close());
  t.equal(back.hello.resumed, true);
  t.equal(back.hello.seq, bridge.ring.oldestSeq, 'starts at the oldest record still held');
  t.equal(back.hello.lost, bridge.ring.oldestSeq - first.hello.seq, `lost = the records evicted while away (${back.hello.lost})`);
  t.ok(back.hello.lost > 0);
});

t.test('a listener that cannot bind (the port is taken) leaves no ping timer behind', async (t) => {
  const { clock, listener, config, ctx } = await rig(t);
  const armed = clock.pending;
  // As a reload that moves a web listener onto a busy port: the daemon logs the error and drops the object.
  const busy = new WebListener({ ...config, port: listener.port }, ctx);
  await t.rejects(busy.listen(), { code: 'EADDRINUSE' });
  t.equal(clock.pending, armed, 'no timer of the failed listener is pending');
});

/** The status of a WebSocket upgrade: 101, or the HTTP status it was refused with. */
function upgradeStatus(url: string, opts: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, SUBPROTOCOL, opts);
    ws.on('error', () => {});
    ws.once('open', () => (ws.terminate(), resolve(101)));
    ws.once('unexpected-response', (_req, res) => (ws.terminate(), resolve(res.statusCode ?? 0)));
  });
}

t.test('a page request and its WebSocket upgrade get the same answer, for every kind of caller', async (t) => {
  const password = `Basic ${Buffer.from('x:pw').toString('base64')}`;
  const setups: [string, Partial<WebListenerConfig>][] = [
    ['open', {}],
    ['allow elsewhere', { allow: ['10.9.9.0/24'] }],
    ['monitorAllow elsewhere', { monitorAllow: ['10.9.9.0/24'] }],
    ['monitorAllow here only', { allow: ['10.9.9.0/24'], monitorAllow: ['127.0.0.1'] }],
    ['password', { monitorPassword: 'pw' }],
    ['monitor off', { monitor: false }],
  ];
  for (const [label, over] of setups) {
    const { listener } = await rig(t, over, new Map([['console.html', { body: Buffer.from('c'), type: 'text/html', etag: '"c"' }], ['monitor.html', { body: Buffer.from('m'), type: 'text/html', etag: '"m"' }]]));
    const ws = `ws://127.0.0.1:${listener.port}`;
    for (const auth of [{}, { authorization: password }] as Record<string, string>[]) {
      const with_ = auth.authorization ? ' with the password' : '';
      const page = await status(listener.port, '/', auth);
      t.equal(await upgradeStatus(`${ws}/ws`, { headers: auth }), page === 200 ? 101 : page, `${label}${with_}: / ${page}, /ws the same`);
      const dash = await status(listener.port, '/monitor', auth);
      t.equal(await upgradeStatus(`${ws}/ws/monitor`, { headers: auth }), dash === 200 ? 101 : dash, `${label}${with_}: /monitor ${dash}, /ws/monitor the same`);
    }
  }
});
