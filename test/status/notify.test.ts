import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  createNotifier,
  formatNotifyMessage,
  monotonicUsec,
  sockaddrUn,
  watchdogIntervalMs,
} from '../../src/status/notify.js';
import { createNotifyListener, libcMonotonicUsec } from '../support/notify-listener.js';

const notifyModule = resolve(__dirname, '../../src/status/notify.js');
const hasSystemdNotify = ['/usr/bin/systemd-notify', '/bin/systemd-notify'].some((p) => existsSync(p));

/**
 * Runs the notifier in a child Node process, as the daemon would be under systemd, and returns what it
 * printed: its pid, its transport and the warnings its log received. `blockKoffi` makes require('koffi')
 * fail in the child, as on a Pi where koffi did not install.
 */
function runChild(
  env: NodeJS.ProcessEnv,
  steps: string,
  blockKoffi = false,
): Promise<{ pid: number; transport: string; logs: string[]; code: number | null }> {
  const script = `
    ${blockKoffi ? `const Module = require('module'); const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === 'koffi') throw new Error('Cannot find module koffi (blocked by test)');
        return load.call(this, request, ...rest);
      };` : ''}
    const { createNotifier } = require(${JSON.stringify(notifyModule)});
    const logs = [];
    const n = createNotifier(process.env, (m) => logs.push(m));
    const transport = n.transport;
    (async () => {
      ${steps}
      n.close();
      // systemd-notify children run asynchronously: let them finish before reporting.
      await new Promise((r) => setTimeout(r, ${blockKoffi ? 1500 : 0}));
      process.stdout.write(JSON.stringify({ pid: process.pid, transport, logs }));
    })();
  `;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolvePromise({ ...(JSON.parse(out) as { pid: number; transport: string; logs: string[] }), code });
      } catch {
        reject(new Error(`child printed ${JSON.stringify(out)} and exited ${String(code)}`));
      }
    });
  });
}

function envWith(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) if (!(key in extra)) delete env[key];
  return env;
}

t.test('a child sends READY, STATUS, WATCHDOG, RELOADING and STOPPING from its own PID', async (t) => {
  const listener = createNotifyListener();
  t.teardown(() => listener.close());
  const before = libcMonotonicUsec();
  const child = await runChild(
    envWith({ NOTIFY_SOCKET: listener.address }),
    `n.status('serial: waiting for /dev/labbox');
     n.ready();
     n.watchdog();
     n.reloading();
     n.notify({ STATUS: 'line one\\nline two', READY: '1' });
     n.stopping();`,
  );
  const stopping = await listener.waitFor((m) => m.STOPPING === '1', 5000);
  const after = libcMonotonicUsec();
  t.equal(child.code, 0);
  t.equal(child.transport, 'socket');
  t.same(child.logs, []);
  t.ok(stopping);
  const reloading = listener.messages[3];
  t.same(
    listener.messages.map((m) => ({ ...m, MONOTONIC_USEC: m.MONOTONIC_USEC === undefined ? undefined : 'n' })),
    [
      { STATUS: 'serial: waiting for /dev/labbox', MONOTONIC_USEC: undefined },
      { READY: '1', MONOTONIC_USEC: undefined },
      { WATCHDOG: '1', MONOTONIC_USEC: undefined },
      { RELOADING: '1', MONOTONIC_USEC: 'n' },
      { STATUS: 'line one line two', READY: '1', MONOTONIC_USEC: undefined },
      { STOPPING: '1', MONOTONIC_USEC: undefined },
    ],
  );
  // The same clock as libc's CLOCK_MONOTONIC: between two readings taken around the child's run.
  const usec = BigInt(reloading?.MONOTONIC_USEC ?? '0');
  t.ok(usec >= before && usec <= after, `MONOTONIC_USEC ${usec} within [${before}, ${after}]`);
  // NotifyAccess=main accepts only datagrams whose credentials name the main PID.
  t.same(
    listener.senders,
    listener.messages.map(() => child.pid),
    'every datagram carries the child main PID',
  );
});

t.test('abstract socket names (@...) are reached as sd_notify does', async (t) => {
  const listener = createNotifyListener({ abstract: true });
  t.teardown(() => listener.close());
  t.match(listener.address, /^@/);
  const child = await runChild(envWith({ NOTIFY_SOCKET: listener.address }), `n.ready(); n.status('up');`);
  await listener.waitFor((m) => m.STATUS === 'up', 5000);
  t.equal(child.transport, 'socket');
  t.same(listener.messages, [{ READY: '1' }, { STATUS: 'up' }]);
});

t.test('without NOTIFY_SOCKET nothing is sent and nothing fails', async (t) => {
  const listener = createNotifyListener();
  t.teardown(() => listener.close());
  const child = await runChild(
    envWith({ SGW_TEST_LISTENER: listener.address }),
    `n.status('x'); n.ready(); n.watchdog(); n.reloading(); n.stopping();`,
  );
  t.equal(child.code, 0);
  t.equal(child.transport, 'none');
  t.same(child.logs, []);
  await new Promise((r) => setTimeout(r, 100));
  t.same(listener.messages, []);

  const inProcess = createNotifier({}, () => t.fail('nothing to log'));
  t.equal(inProcess.transport, 'none');
  inProcess.ready();
  inProcess.close();
});

t.test('a missing socket is reported once, never thrown', async (t) => {
  const listener = createNotifyListener();
  t.teardown(() => listener.close());
  const logs: string[] = [];
  const n = createNotifier({ NOTIFY_SOCKET: join(dirname(listener.address), 'gone.sock') }, (m) => logs.push(m));
  t.teardown(() => n.close());
  t.equal(n.transport, 'socket');
  n.ready();
  n.watchdog();
  n.watchdog();
  t.equal(logs.length, 1);
  t.match(logs[0], /could not notify systemd at .*gone\.sock: ENOENT/);

  const n2 = createNotifier({ NOTIFY_SOCKET: listener.address }, (m) => logs.push(m));
  n2.status('reached');
  n2.close();
  n2.status('after close');
  await listener.waitFor((m) => m.STATUS === 'reached', 2000);
  await new Promise((r) => setTimeout(r, 50));
  t.same(listener.messages, [{ STATUS: 'reached' }], 'nothing after close()');
  t.equal(logs.length, 1);
});

t.test('bad NOTIFY_SOCKET values and bad keys are reported, not thrown', async (t) => {
  const logs: string[] = [];
  const relative = createNotifier({ NOTIFY_SOCKET: 'run/notify' }, (m) => logs.push(m));
  t.equal(relative.transport, 'none');
  relative.ready();
  t.match(logs, [/absolute path or an @abstract name/]);

  const listener = createNotifyListener();
  t.teardown(() => listener.close());
  const n = createNotifier({ NOTIFY_SOCKET: listener.address }, (m) => logs.push(m));
  t.teardown(() => n.close());
  n.notify({ 'bad key': 'x', STATUS: 'ok' });
  n.notify({ 'bad key': 'x' });
  await listener.waitFor((m) => m.STATUS === 'ok', 2000);
  t.equal(logs.filter((m) => m.includes('"bad key"')).length, 1);
  t.same(formatNotifyMessage({ A: '1', b: '2', STATUS: 'x\r\ny' }), { text: 'A=1\nSTATUS=x y', rejected: ['b'] });
});

t.test('sockaddr_un is built like sd_notify builds it', async (t) => {
  const path = sockaddrUn('/run/systemd/notify');
  t.equal(path.length, 2 + '/run/systemd/notify'.length + 1, 'path length counts the trailing NUL');
  t.equal(path.addr.subarray(2, path.length).toString('latin1'), '/run/systemd/notify\0');
  const abstract = sockaddrUn('@sd');
  t.equal(abstract.length, 2 + 3, 'abstract length has no trailing NUL');
  t.same([...abstract.addr.subarray(2, 5)], [0, 0x73, 0x64]);
  t.equal(abstract.addr.readUInt16LE(0), 1, 'AF_UNIX (little-endian host)');
  t.throws(() => sockaddrUn('/' + 'x'.repeat(107)), TypeError);
  t.doesNotThrow(() => sockaddrUn('/' + 'x'.repeat(106)));
});

t.test('process.hrtime is CLOCK_MONOTONIC', async (t) => {
  const a = libcMonotonicUsec();
  const b = monotonicUsec();
  const c = libcMonotonicUsec();
  t.ok(a <= b && b <= c, `${a} <= ${b} <= ${c}`);
});

t.test('watchdogIntervalMs is half of WATCHDOG_USEC, for our PID only', async (t) => {
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000' }, 42), 10000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 42), 10000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '43' }, 42), null);
  t.equal(watchdogIntervalMs({}, 42), null);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42), null);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20s' }, 42), null);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1500' }, 42), 1, 'never a zero interval');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '3000000', WATCHDOG_PID: String(process.pid) }), 1500);
});

t.test(
  'without koffi it falls back to systemd-notify, whose datagrams come from another PID',
  { skip: hasSystemdNotify ? false : 'systemd-notify is not installed here' },
  async (t) => {
    const listener = createNotifyListener();
    t.teardown(() => listener.close());
    const child = await runChild(
      envWith({ NOTIFY_SOCKET: listener.address }),
      `n.status('fallback'); n.ready();`,
      true,
    );
    await listener.waitFor((m) => m.READY === '1', 5000);
    t.equal(child.transport, 'systemd-notify');
    t.equal(child.logs.length, 1);
    t.match(child.logs[0], /koffi is unavailable .*NotifyAccess=all/);
    const payloads = listener.messages.filter((m) => m.BARRIER === undefined);
    t.same(payloads, [{ STATUS: 'fallback' }, { READY: '1' }], 'in order');
    const sender = listener.senders[listener.messages.indexOf(payloads[1] as Record<string, string>)];
    // systemd-notify puts its parent's PID (ours) in SCM_CREDENTIALS, but only root may send another
    // PID's credentials; as the service's own user the kernel refuses and it falls back to its own PID,
    // which NotifyAccess=main ignores: hence NotifyAccess=all for this path.
    if (process.getuid?.() === 0) t.equal(sender, child.pid, 'root: credentials name the parent');
    else t.not(sender, child.pid, 'not root: credentials name the systemd-notify child');
  },
);
