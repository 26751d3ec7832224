import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';
import { createVethNamespace, netnsUnavailableReason } from '../support/netns.js';

/**
 * UDP sends that stall: a subscriber behind a link so slow that the socket's send buffer fills and libuv queues
 * the sends, each still holding its view of the ring. A whole ring later the listener reopens its port (closing
 * the socket cancels those sends). The built daemon on the simulated box; the subscriber is a program in a
 * network namespace of the test's own, behind a veth whose host side has an 8 kbit/s qdisc.
 */

const skip = ((): string | false => {
  const why = netnsUnavailableReason();
  if (why !== undefined) return why;
  try {
    execFileSync('tc', ['-V'], { stdio: 'pipe' });
  } catch (err) {
    return `cannot shape a link here (tc from iproute2): ${(err as Error).message.split('\n')[0]}`;
  }
  return false;
})();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('UDP sends stalled by a slow link: the port reopens and then serves again', { skip }, async (t) => {
  const octet = 16 + (process.pid % 200);
  // A namespace of this test's own (leftovers of a killed earlier run are removed first).
  const net = createVethNamespace({ tag: 'sgs', hostAddr: `10.252.${octet}.1`, nsAddr: `10.252.${octet}.2` });
  t.teardown(() => net.remove());
  const { ns, hostIf, hostAddr, nsAddr } = net;
  const tc = (...args: string[]): void => void execFileSync('tc', args, { stdio: 'pipe' });

  const ports = { tcp: await freePort(), udp: await freePort() };
  const d = await startDaemon(
    t.testdir(),
    `serial:
  path: sim:labbox
lines:
  ringBytes: 65536
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${ports.tcp}
    clientBufferBytes: 16384
udp:
  - name: udp
    host: ${hostAddr}
    port: ${ports.udp}
    leaseSeconds: 60
    trusted: [${hostAddr.replace(/\.1$/, '.0')}/30]
log:
  level: info
`,
  );
  t.teardown(() => d.stop());
  const tcp = await TestClient.connect(ports.tcp);
  t.teardown(() => tcp.close());

  // The subscriber: an empty datagram every 50 ms (so it subscribes again at once after a reopen forgot it),
  // and every datagram it gets printed as a JSON string on its own line, until its stdin closes.
  const code = `
    const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m) => process.stdout.write(JSON.stringify(m.toString('latin1')) + '\\n'));
    const ping = () => s.send(Buffer.alloc(0), ${ports.udp}, '${hostAddr}');
    ping();
    const every = setInterval(ping, 50);
    process.stdin.resume();
    process.stdin.on('end', () => { clearInterval(every); s.close(); });`;
  const sub = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => void (sub.exitCode === null && sub.kill()));
  let out = '';
  sub.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const got = (): string[] => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as string);

  // Subscribed while the link is fast: it hears the answer to `id`.
  for (let i = 0; !got().includes('6510500000\r\n'); i++) {
    if (i === 50) throw new Error(`the subscriber heard nothing; daemon said:\n${d.output()}`);
    tcp.send('id\n');
    await sleep(100);
  }

  // The link to it slows to 8 kbit/s: a few hundred datagrams fill the socket's send buffer, then sends queue.
  tc('qdisc', 'add', 'dev', hostIf, 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '10000000');
  tcp.send('stream 20000\n');
  await tcp.waitFor('line 20000\r\n', 30_000);
  t.match(d.output(), /udp: UDP sends stalled for a whole ring; reopening the port/, 'the stall was seen and the port reopened');

  // The link is fast again: the reopened port serves the subscriber (back by its pings), and every datagram it
  // ever got is one whole line. (What a reopen must not do to the new socket's sends, test/net/udp-listener.test.ts
  // shows with sends held at will; here the stall and the reopen are the kernel's own.)
  tc('qdisc', 'del', 'dev', hostIf, 'root');
  const before = got().length;
  for (let i = 0; !got().slice(before).includes('6510500000\r\n'); i++) {
    if (i === 50) throw new Error(`nothing after the reopen; daemon said:\n${d.output()}`);
    tcp.send('id\n');
    await sleep(100);
  }
  t.pass('after the reopen the port serves again');
  sub.stdin.end();
  await new Promise((resolve) => sub.once('exit', resolve));
  const all = got();
  const bad = all.filter((m) => !/^(line \d+|6510500000)\r\n$/.test(m) && !m.startsWith('! '));
  t.same(bad.slice(0, 5), [], `every datagram was one whole line (${bad.length} of ${all.length} were not)`);
});
