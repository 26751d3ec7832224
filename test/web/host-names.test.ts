import t from 'tap';
import WebSocket from 'ws';
import { request } from 'node:http';
import { hostname } from 'node:os';
import { freePort, startDaemon } from '../support/daemon.js';
import { SUBPROTOCOL } from '../../src/web/protocol.js';

/**
 * DNS rebinding: a page from another site whose name has been made to resolve to the Pi is, to the browser, the
 * same origin as the gateway. The built daemon answers only to IP addresses, localhost, this machine's names and
 * the configured hostNames; any other Host gets 403 saying why, on the pages and on the WebSocket upgrade.
 */

function get(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function upgrade(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, SUBPROTOCOL, { headers: { Host: host, Origin: `http://${host}` } });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}

t.test('the pages answer to addresses, localhost, this machine and hostNames; not to a rebound name', async (t) => {
  const dir = t.testdir();
  const [tcp, web] = [await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ''\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${tcp} }\nudp: []\n` +
      `web:\n  - { name: web, host: 127.0.0.1, port: ${web}, hostNames: [lab-pi.school.example] }\n`,
  );
  t.teardown(() => d.stop());
  for (const host of [`127.0.0.1:${web}`, `localhost:${web}`, `[::1]:${web}`, `lab-pi.school.example:${web}`, `LAB-PI.School.Example.:${web}`, `${hostname()}:${web}`, `${hostname()}.local:${web}`, '127.0.0.1']) {
    t.equal((await get(web, host)).status, 200, `Host: ${host}`);
  }
  for (const host of [`evil.example:${web}`, `lab-pi.school.example.evil.example:${web}`, `127.0.0.1.nip.io:${web}`]) {
    const r = await get(web, host);
    t.equal(r.status, 403, `Host: ${host}: 403`);
    t.match(r.body, /does not answer to the name ".*" \(a guard against DNS rebinding\).*add the name to hostNames of web listener web/);
    t.equal((await get(web, host, '/api/status')).status, 403, `Host: ${host}: /api/status refused too`);
    t.equal(await upgrade(web, host), 403, `Host: ${host}: the WebSocket upgrade refused`);
  }
  t.equal(await upgrade(web, `lab-pi.school.example:${web}`), 101, 'a configured name opens the socket');
  t.match(await d.outputWith('refused an upgrade:'), /refused an upgrade: forbidden: this gateway does not answer to the name "evil\.example"/, 'logged');
});
