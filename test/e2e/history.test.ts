import t from 'tap';
import { ncSkip } from '../support/real-clients.js';
import { spawn } from 'node:child_process';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';
import { Tab } from '../support/ws-tab.js';

/**
 * History on connect, end to end: the built daemon on the simulated lab box, late joiners on a shared, a request
 * and a monitor TCP listener, a browser socket (a ws client), a real `nc`, and a client that connects during a
 * flood.
 */

async function demo(t: { testdir(): string; teardown(fn: () => unknown): void }) {
  const ports = { lab: await freePort(), cls: await freePort(), mon: await freePort(), web: await freePort() };
  const d = await startDaemon(
    t.testdir(),
    `serial:
  path: sim:labbox
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${ports.lab}
  - name: cls
    host: 127.0.0.1
    port: ${ports.cls}
    mode: request
    replyQuietMs: 20
  - name: mon
    host: 127.0.0.1
    port: ${ports.mon}
    mode: monitor
udp: []
web:
  - name: web
    host: 127.0.0.1
    port: ${ports.web}
    mode: request
    replyQuietMs: 20
log:
  level: debug
`,
  );
  t.teardown(() => d.stop());
  return { d, ports };
}

/** Everything a client got between the two notices, and what it got before and after. */
function split(text: string): { before: string; notice: string; history: string[]; after: string } {
  const m = /^([\s\S]*?)! (history: [^\r\n]*)\r\n([\s\S]*?)! live\r\n([\s\S]*)$/.exec(text);
  if (!m) throw new Error(`no history between notices in ${JSON.stringify(text)}`);
  return { before: m[1]!, notice: m[2]!, history: m[3]!.split('\r\n').filter(Boolean), after: m[4]! };
}

t.test('late joiners on shared, request, monitor and web see the recent lines marked as history', async (t) => {
  const { ports } = await demo(t);
  const a = await TestClient.connect(ports.lab);
  t.teardown(() => a.close());
  t.equal(a.text, '', 'the first client of a fresh gateway gets no history and no notices');
  a.send('id\r\nname\r\n');
  await a.waitFor('Lab Box\r\n');
  const r = await TestClient.connect(ports.cls);
  t.teardown(() => r.close());
  await r.waitFor('! live\r\n');
  r.send('echo only for r\r\n');
  await r.waitFor('only for r\r\n');
  await a.waitFor('only for r\r\n');

  const late = await TestClient.connect(ports.lab);
  t.teardown(() => late.close());
  await late.waitFor('! live\r\n');
  const s = split(late.text);
  t.match(s.notice, /^history: 3 lines from the last \d+ s$/);
  t.same(s.history, ['6510500000', 'Lab Box', 'only for r'], 'shared: every device line');
  t.equal(s.after, '', 'then live: nothing more yet');
  // r's reply is over once the device has been quiet for replyQuietMs; only then is a new line nobody's reply.
  await new Promise((r) => setTimeout(r, 300));
  a.send('name\r\n');
  await late.waitFor(/* live, after the marker */ (b) => b.toString('latin1').endsWith('! live\r\nLab Box\r\n'));
  t.pass('a live line follows the live marker');

  const lateR = await TestClient.connect(ports.cls);
  t.teardown(() => lateR.close());
  await lateR.waitFor('! live\r\n');
  t.same(split(lateR.text).history, ['6510500000', 'Lab Box', 'Lab Box'], "request: another client's reply is not in the history");

  const mon = await TestClient.connect(ports.mon);
  t.teardown(() => mon.close());
  await mon.waitFor('! live\r\n');
  t.same(split(mon.text).history, ['6510500000', 'Lab Box', 'only for r', 'Lab Box'], 'monitor: every device line');

  const tab = await Tab.open(`ws://127.0.0.1:${ports.web}/ws`);
  t.teardown(() => tab.ws.terminate());
  await tab.until((x) => x.notices.includes('live'));
  const hello = tab.hello;
  t.ok(hello?.history, 'hello says where the history is');
  t.equal(hello?.history?.lines, 3);
  t.equal(hello?.seq, hello?.history?.from, 'the stream starts at the history');
  t.equal(tab.text, '6510500000\r\nLab Box\r\nLab Box\r\n', 'web (request mode): the untagged lines, as device bytes');
  t.match(tab.notices, [/^history: 3 lines from the last \d+ s$/, 'live']);
  const lastAt = tab.lastAt;
  t.ok(lastAt !== undefined && lastAt >= hello!.history!.to, '{at} reaches history.to: the page knows where live starts');
});

t.test('a client connecting during a flood gets bounded history, then live lines, every line once and in order', async (t) => {
  const { ports } = await demo(t);
  const a = await TestClient.connect(ports.lab);
  t.teardown(() => a.close());
  a.send('stream 200000\r\n');
  await a.waitFor('line 1000\r\n', 10_000);
  const late = await TestClient.connect(ports.lab);
  t.teardown(() => late.close());
  await late.waitFor('line 200000\r\n', 60_000);
  await a.waitFor('line 200000\r\n', 60_000);
  const tally = (text: string) => {
    const nums = text
      .split('\r\n')
      .filter((l) => l.startsWith('line '))
      .map((l) => Number(l.slice(5)));
    const missed = [...text.matchAll(/! missed (\d+) lines?/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    return { nums, missed, balanced: nums.length + missed === 200000 - nums[0]! + 1 };
  };
  // A client that fell behind is told how many it missed once it has caught up (within a couple of seconds).
  await late.waitFor((b) => tally(b.toString('latin1')).balanced, 5000).catch(() => {});
  const text = late.text;
  const s = split(text);
  t.match(s.notice, /^history: 20 lines from the last \d+ s$/, 'the newest 20 lines, as configured by default');
  t.equal(s.history.length, 20);
  const { nums, missed } = tally(text);
  t.ok(nums.every((n, i) => i === 0 || n > nums[i - 1]!), 'history then live: increasing, no line twice');
  t.equal(nums.length + missed, 200000 - nums[0]! + 1, `every line from the first history line on: delivered or told as missed (${missed})`);
});

t.test('the done-when check: a late real nc sees the box\'s recent lines marked as history', { skip: ncSkip }, async (t) => {
  const { ports } = await demo(t);
  const a = await TestClient.connect(ports.lab);
  t.teardown(() => a.close());
  a.send('help\r\nid\r\n');
  await a.waitFor('6510500000\r\n');
  const nc = spawn('nc', ['127.0.0.1', String(ports.lab)], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    nc.kill();
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nc got ${JSON.stringify(out)}`)), 5000);
    nc.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes('! live\r\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const s = split(out);
  t.match(s.notice, /^history: 2 lines from the last \d+ s$/);
  t.same(s.history, ['commands: id, name, echo TEXT, stream N, prompt, help', '6510500000']);
});
