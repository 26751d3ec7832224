import t from 'tap';
import { request } from 'node:http';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';
import { CloseCode, SUBPROTOCOL } from '../../src/web/protocol.js';
import { Tab } from '../support/ws-tab.js';

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const studentId = '6510500000';

t.test('web listener: pages, status, the console and the dashboard over WebSocket', async (t) => {
  const dir = t.testdir();
  const [tcpPort, webPort, lockedPort, udpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    `serial:
  path: sim:labbox
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${tcpPort}
udp:
  - name: udp
    host: 127.0.0.1
    port: ${udpPort}
web:
  - name: web
    host: 127.0.0.1
    port: ${webPort}
    mode: request
    maxClients: 4
  - name: locked
    host: 127.0.0.1
    port: ${lockedPort}
    monitorPassword: s3cret
log:
  level: debug
`,
  );
  t.teardown(() => d.stop());
  t.match(await d.outputWith(`web web http://127.0.0.1:${webPort}/`), `web web http://127.0.0.1:${webPort}/`, 'the ready line gives the URL');
  const url = `ws://127.0.0.1:${webPort}`;

  t.test('HTTP: the console page with its security headers; unknown paths 404; status and metrics', async (t) => {
    const page = await get(webPort, '/');
    t.equal(page.status, 200);
    t.match(page.headers['content-security-policy'], /default-src 'self'/);
    t.equal(page.headers['x-content-type-options'], 'nosniff');
    t.match(page.body, /<html/i, 'console.html is served');
    t.equal((await get(webPort, '/nope')).status, 404);
    t.equal((await get(webPort, '/assets/../package.json')).status, 404, 'no way out of web/');
    const status = JSON.parse((await get(webPort, '/api/status')).body) as { device: { state: string }; listeners: { name: string; kind: string }[]; leds: Record<string, { kind: string }> };
    t.equal(status.device.state, 'open');
    t.same(status.listeners.map((l) => `${l.kind} ${l.name}`), ['tcp lab', 'udp udp', 'web web', 'web locked']);
    t.equal(status.leds.serial?.kind, 'on', 'LED patterns from the pattern machine');
    const metrics = (await get(webPort, '/metrics')).body;
    t.match(metrics, /^serialgw_device_state\{state="open"\} 1$/m);
    t.match(metrics, /^# TYPE serialgw_client_lines_total counter$/m);
  });

  t.test('hello first; a line gets the device reply as a binary frame, then {at}', async (t) => {
    const tab = await Tab.open(`${url}/ws`);
    t.teardown(() => tab.ws.close());
    t.equal(tab.ws.protocol, SUBPROTOCOL);
    await tab.until((x) => x.hello !== undefined);
    t.match(tab.hello, { v: 1, listener: 'web', mode: 'request', device: { state: 'open', path: 'sim:labbox' }, resumed: false });
    tab.ws.send('id');
    await tab.until((x) => x.text.includes(studentId));
    t.equal(tab.text, `${studentId}\r\n`, 'exactly the reply');
    await tab.until((x) => x.lastAt !== undefined);
    t.ok(tab.lastAt! > tab.hello!.seq, '{at} moved on');
  });

  t.test('request mode: two tabs each get only their own reply', async (t) => {
    const a = await Tab.open(`${url}/ws`);
    const b = await Tab.open(`${url}/ws`);
    t.teardown(() => (a.ws.close(), b.ws.close()));
    a.ws.send('id');
    b.ws.send('name');
    await a.until((x) => x.text.includes(studentId));
    await b.until((x) => x.text.length > 0 && x.text.endsWith('\r\n'));
    await new Promise((r) => setTimeout(r, 300));
    t.equal(a.text, `${studentId}\r\n`);
    t.notMatch(b.text, studentId, "B never saw A's reply");
  });

  t.test('bad lines are refused with the TCP wording; binary frames close with 1003', async (t) => {
    const tab = await Tab.open(`${url}/ws`);
    tab.ws.send('a\r\nb');
    tab.ws.send('x'.repeat(4100));
    await tab.until((x) => x.notices.length >= 2);
    t.same(tab.notices, ['line refused: it holds a CR or LF (send one line per message)', 'line too long (4100 bytes, the limit is 4096): discarded']);
    tab.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await tab.until((x) => x.closed !== null);
    t.equal(tab.closed?.code, CloseCode.UNSUPPORTED);
    const huge = await Tab.open(`${url}/ws`);
    huge.ws.send('y'.repeat(4096 + 65));
    await huge.until((x) => x.closed !== null);
    t.equal(huge.closed?.code, CloseCode.TOO_BIG, 'a frame past maxLineBytes + 64 closes the socket');
  });

  t.test('the monitor sees client lines tagged with their sender: web, tcp and udp', async (t) => {
    const mon = await Tab.open(`${url}/ws/monitor`);
    const tab = await Tab.open(`${url}/ws`);
    const c = await TestClient.connect(tcpPort);
    t.teardown(() => (mon.ws.close(), tab.ws.close(), c.close()));
    await mon.until((x) => x.hello !== undefined);
    t.equal(mon.hello?.mode, 'monitor');
    tab.ws.send('id');
    await tab.until((x) => x.text.includes(studentId));
    c.send('name\n');
    const sent = () => mon.messages.flatMap((m) => ('sent' in m ? [m.sent] : []));
    await mon.until(() => sent().length >= 2);
    t.match(sent()[0], { via: 'web', listener: 'web', line: 'id' });
    t.match(sent()[1], { via: 'tcp', listener: 'lab', line: 'name' });
    const u = createSocket('udp4');
    t.teardown(() => u.close());
    u.send('id\n', udpPort, '127.0.0.1'); // loopback is trusted by default: no cookie round first
    await mon.until(() => sent().length >= 3);
    t.match(sent()[2], { via: 'udp', listener: 'udp', line: 'id' });
    t.match(sent()[2]!.peer, /^127\.0\.0\.1:\d+$/);
    await mon.until((x) => x.messages.some((m) => 'clients' in m && Array.isArray(m.clients) && m.clients.some((k) => k.via === 'tcp')));
    mon.ws.send('reboot');
    // (The monitor may have begun with history: its `history: ...` and `live` notices are not the point here.)
    const own = (x: Tab): string[] => x.notices.filter((n) => n !== 'live' && !n.startsWith('history: '));
    await mon.until((x) => own(x).length > 0);
    t.same(own(mon), ['this listener is read-only: nothing you type reaches the device']);
  });

  t.test('resume: lines sent while a tab was away arrive exactly once', async (t) => {
    const mon = await Tab.open(`${url}/ws/monitor`); // a monitor sees every device line
    await mon.until((x) => x.hello !== undefined && (x.hello.history === null || x.notices.includes('live')));
    // Where a page would resume: after the history it was shown on connect, if any.
    const at = mon.lastAt ?? mon.hello!.seq;
    const boot = mon.hello!.boot;
    mon.ws.close();
    const c = await TestClient.connect(tcpPort);
    t.teardown(() => c.close());
    c.send('id\n');
    await c.waitFor(studentId);
    const back = await Tab.open(`${url}/ws/monitor?since=${at}&boot=${boot}`);
    t.teardown(() => back.ws.close());
    await back.until((x) => x.text.includes(studentId));
    t.match(back.hello, { resumed: true, lost: 0, seq: at });
    t.equal(back.text.split(studentId).length - 1, 1, 'once');
  });

  t.test('Origin must match Host; maxClients answers 1013', async (t) => {
    await t.rejects(Tab.open(`${url}/ws`, { Origin: 'http://evil.example' }), /HTTP 403/);
    const ok = await Tab.open(`${url}/ws`, { Origin: `http://127.0.0.1:${webPort}` });
    const tabs = [ok];
    t.teardown(() => tabs.forEach((x) => x.ws.close()));
    for (let i = 0; i < 3; i++) tabs.push(await Tab.open(`${url}/ws`));
    const fifth = await Tab.open(`${url}/ws`);
    await fifth.until((x) => x.closed !== null);
    t.equal(fifth.closed?.code, CloseCode.BUSY);
    t.match(fifth.closed?.reason, /busy: 4 clients are connected already/);
  });

  t.test('monitorPassword guards /monitor, /api/status and /ws/monitor', async (t) => {
    t.equal((await get(lockedPort, '/monitor')).status, 401);
    t.equal((await get(lockedPort, '/api/status')).status, 401);
    const auth = { Authorization: `Basic ${Buffer.from('x:s3cret').toString('base64')}` };
    t.equal((await get(lockedPort, '/monitor', auth)).status, 200);
    await t.rejects(Tab.open(`ws://127.0.0.1:${lockedPort}/ws/monitor`), /HTTP 401/);
    const mon = await Tab.open(`ws://127.0.0.1:${lockedPort}/ws/monitor`, auth);
    await mon.until((x) => x.hello !== undefined);
    mon.ws.close();
    t.equal((await get(lockedPort, '/')).status, 200, 'the console itself needs no password');
  });
});

t.test('reload: an unchanged web listener keeps its tabs, a new title reaches new tabs only, a new mode closes them with 1012, a removed listener with 4404', async (t) => {
  const dir = t.testdir();
  const [a, b, c, e] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const web = (second: boolean): string =>
    `serial:\n  path: sim:labbox\ntcp: []\nudp: []\nweb:\n` +
    `  - name: keep\n    host: 127.0.0.1\n    port: ${a}\n` +
    `  - name: edit\n    host: 127.0.0.1\n    port: ${b}\n    mode: ${second ? 'request' : 'shared'}\n` +
    `  - name: retitle\n    host: 127.0.0.1\n    port: ${e}\n    title: ${second ? 'two' : 'one'}\n` +
    (second ? '' : `  - name: gone\n    host: 127.0.0.1\n    port: ${c}\n`);
  const d = await startDaemon(dir, web(false));
  t.teardown(() => d.stop());
  const keep = await Tab.open(`ws://127.0.0.1:${a}/ws`);
  const edit = await Tab.open(`ws://127.0.0.1:${b}/ws`);
  const retitle = await Tab.open(`ws://127.0.0.1:${e}/ws`);
  const gone = await Tab.open(`ws://127.0.0.1:${c}/ws`);
  t.teardown(() => [keep, edit, retitle, gone].forEach((x) => x.ws.close()));
  await keep.until((x) => x.hello !== undefined);
  await retitle.until((x) => x.hello !== undefined);
  writeFileSync(join(dir, 'config.yaml'), web(true));
  d.child.kill('SIGHUP');
  await edit.until((x) => x.closed !== null);
  await gone.until((x) => x.closed !== null);
  t.equal(edit.closed?.code, CloseCode.RECONFIGURED, 'a new mode: 1012, come back now');
  t.equal(gone.closed?.code, CloseCode.REMOVED, 'removed: 4404, do not come back');
  t.ok(edit.notices.includes('this listener was reconfigured: please reconnect'), 'and told why');
  keep.ws.send('id');
  await keep.until((x) => x.text.includes(studentId));
  t.equal(keep.closed, null, 'the unchanged listener kept its tab and its traffic');
  // 1012 arrives as soon as the close handshake is done, which can be before the port is bound again: a page
  // comes back within a second, and retries; so does this.
  let back: Tab | undefined;
  for (let i = 0; back === undefined; i++) {
    back = await Tab.open(`ws://127.0.0.1:${b}/ws`).catch((err: Error) => {
      if (i >= 20) throw err;
      return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
    });
  }
  await back.until((x) => x.hello !== undefined);
  t.equal(back.hello?.mode, 'request', 'the changed listener serves its new config');
  const fresh = await Tab.open(`ws://127.0.0.1:${e}/ws`);
  await fresh.until((x) => x.hello !== undefined);
  t.equal(fresh.hello?.title, 'two', 'a new tab gets the new title');
  retitle.ws.send('name');
  await retitle.until((x) => x.text.includes('Lab Box'));
  t.equal(retitle.closed, null, 'the tab already open kept its connection');
  back.ws.close();
  fresh.ws.close();
});

t.test('reload: a new lines.maxLineBytes sets the frame limit of tabs opened from then on, though the web listener itself is unchanged', async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const cfg = (maxLineBytes: number): string =>
    `serial:\n  path: sim:labbox\nlines:\n  maxLineBytes: ${maxLineBytes}\ntcp: []\nudp: []\nweb:\n  - name: web\n    host: 127.0.0.1\n    port: ${port}\n`;
  // Started in the middle, so that growing and shrinking both move the limit away from the one it started with.
  const d = await startDaemon(dir, cfg(1024));
  t.teardown(() => d.stop());
  const reload = async (maxLineBytes: number): Promise<void> => {
    writeFileSync(join(dir, 'config.yaml'), cfg(maxLineBytes));
    const ready = d.notify.messages.filter((m) => m.READY === '1').length;
    d.child.kill('SIGHUP');
    await d.notify.waitFor(() => d.notify.messages.filter((m) => m.READY === '1').length > ready, 5000);
  };
  const opened = async (): Promise<Tab> => {
    const tab = await Tab.open(`ws://127.0.0.1:${port}/ws`);
    t.teardown(() => tab.ws.close());
    await tab.until((x) => x.hello !== undefined);
    return tab;
  };
  /** An `echo` line of `bytes` bytes; the box answers with its text. */
  const line = (tag: string, bytes: number): string => `echo ${tag}${'x'.repeat(bytes - 5 - tag.length)}`;
  const echoOf = (l: string): string => `${l.slice(5)}\r\n`;

  const before = await opened();
  before.ws.send(line('A', 2000));
  await before.until((x) => x.closed !== null);
  t.equal(before.closed?.code, CloseCode.TOO_BIG, 'at 1024, a 2,000-byte frame closes the socket with 1009 (the control)');
  const kept = await opened();

  await reload(4096);
  const grown = await opened();
  t.equal(grown.hello?.maxLineBytes, 4096, 'grown to 4096: a new tab is told so');
  const b = line('B', 2000);
  grown.ws.send(b);
  await grown.until((x) => x.text.includes(echoOf(b)) || x.closed !== null);
  t.equal(grown.closed, null, 'and may send a 2,000-byte line');
  t.ok(grown.text.includes(echoOf(b)), 'which reaches the device (the box echoed it)');
  // A tab open before the reload keeps the limits it was opened with, as it keeps the rest of its policy.
  kept.ws.send(line('C', 2000));
  await kept.until((x) => x.closed !== null);
  t.equal(kept.closed?.code, CloseCode.TOO_BIG, 'a tab opened before the reload keeps its limit: 1009');

  await reload(256);
  const shrunk = await opened();
  t.equal(shrunk.hello?.maxLineBytes, 256, 'shrunk to 256: a new tab is told so');
  const e = line('E', 1000);
  shrunk.ws.send(e);
  await shrunk.until((x) => x.closed !== null || x.notices.some((n) => n.startsWith('line too long')));
  t.equal(shrunk.closed?.code, CloseCode.TOO_BIG, 'and its 1,000-byte frame (past 256 + 64) closes the socket with 1009');
  grown.ws.send('echo after E');
  await grown.until((x) => x.text.includes('after E\r\n'));
  t.notOk(grown.text.includes(echoOf(e).slice(0, 40)), 'nothing of it reached the device (a tab still open saw no echo)');
});
