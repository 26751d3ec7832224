import { execFile } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { createVethNamespace, netnsUnavailableReason, vethNames } from '../../support/netns.js';
import { PtyPair } from '../../support/pty.js';
import { Random, seedFromEnv } from '../../support/random.js';
import { fdCount, sleep, waitUntil } from '../measure.js';

/**
 * Issue 7, case 10: access. Who may reach the device, checked on the device itself (a real pty): every line
 * that arrives there must be one an allowed, writing client sent, and nothing else.
 *
 * - `allow`: clients from outside the list are closed before any byte reaches the device, and before the
 *   gateway says anything. Sources: 127.0.0.2 against `allow: [127.0.0.1]` (an address of its own, like
 *   another machine), ::1 against an IPv4-only list, and, when this machine lets the test create a network
 *   namespace (root and iproute2), a real other host: a client inside a namespace behind a veth pair, against a
 *   list without it (and, as a control, against a list with it). Each refused client writes the moment it is
 *   connected, and keeps writing until it is closed.
 * - `maxClientsPerAddress`: one address cannot take every slot: past its share it is told `! busy` and closed
 *   (without its bytes reaching the device), while other addresses still get in, up to maxClients. Each round
 *   ends with every client gone and the daemon's fd count back at its baseline (refused clients that had
 *   written something used to keep an fd each, and a SIGTERM waiting for them, for good); the soak runs 100.
 * - afterwards SIGTERM still ends the daemon promptly, with exit 0.
 * - `monitor`: a read-only listener, in each framing (lines, raw, length-prefixed), is sent lines, random
 *   bytes, telnet commands and length prefixes: nothing reaches the device, while it still sees what others
 *   send.
 */

const PARAMS: Record<Scale, { attempts: number; crowdRounds: number; garbageBytes: number }> = {
  fast: { attempts: 4, crowdRounds: 1, garbageBytes: 4096 },
  soak: { attempts: 200, crowdRounds: 100, garbageBytes: 1_000_000 },
};

const PER_ADDRESS = 3;
const MAX_CLIENTS = 8;

/** Telnet commands a monitor client might send: negotiation, subnegotiation, interrupts, escaped 0xFF. */
const TELNET = Buffer.from([
  0xff, 0xfd, 0x01, 0xff, 0xfb, 0x1f, 0xff, 0xfa, 0x1f, 0x00, 0x50, 0x00, 0x18, 0xff, 0xf0, 0xff, 0xf6, 0xff, 0xf4,
  0xff, 0xf3, 0xff, 0xf2, 0xff, 0xf9, 0xff, 0xef, 0xff, 0xff, 0x0d, 0x00, 0x0a,
]);

export const reliabilityCase: ReliabilityCase = { name: '10 access', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const rnd = new Random(seedFromEnv());
  r.notes.push(`seed ${rnd.seed}`);
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  let deviceBytes = Buffer.alloc(0);
  pty.on('data', (chunk) => (deviceBytes = Buffer.concat([deviceBytes, chunk])));
  const ipv6 = await canListen('::1');
  const ns = setUpNamespace();
  const ports = { fenced4: await freePort(), fenced6: await freePort(), crowd: await freePort(), monLines: await freePort(), monRaw: await freePort(), monLp: await freePort(), nsDeny: await freePort(), nsAllow: await freePort() };
  const clients: Client[] = [];
  const expected: string[] = [];
  let d: RunningDaemon | undefined;
  try {
    d = await startDaemon(dir, config(pty.linkPath, ports, ipv6, ns.ok ? ns : null));
    await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
    const open = async (port: number, opts: ConnectOptions = {}): Promise<Client> => {
      const c = await Client.connect(port, opts);
      clients.push(c);
      return c;
    };

    // Monitors first, so they see every line that reaches the device.
    const monLines = await open(ports.monLines);
    const monRaw = await open(ports.monRaw);
    const monLp = await open(ports.monLp);
    // A length-prefixed listener closes a client on a malformed prefix: the junk goes through a second one.
    const monLpJunk = await open(ports.monLp);

    // ----- allow: refused before any byte, from three kinds of outsider
    let refused = 0;
    let refusedSilently = 0;
    const refusedWith: string[] = [];
    const outsider = async (port: number, opts: ConnectOptions, tag: string): Promise<void> => {
      const c = await open(port, { ...opts, keepWriting: `REFUSED ${tag}\n` });
      await c.waitClosed(2000);
      refused++;
      if (c.closed && c.received.length === 0) refusedSilently++;
      else refusedWith.push(`${tag}: ${c.closed ? '' : 'still open, '}got ${JSON.stringify(c.text.slice(0, 60))}`);
      r.faults++;
    };
    for (let i = 0; i < p.attempts; i++) {
      await outsider(ports.fenced4, { localAddress: '127.0.0.2' }, `127.0.0.2 #${i}`);
      if (ipv6) await outsider(ports.fenced6, { host: '::1' }, `::1 #${i}`);
    }
    const nsResult = ns.ok ? await fromNamespace(ns, ports.nsDeny, ports.nsAllow, Math.min(p.attempts, 20)) : null;
    if (nsResult) {
      refused += nsResult.attempts;
      refusedSilently += nsResult.refusedSilently;
      r.faults += nsResult.attempts;
      refusedWith.push(...nsResult.problems);
      expected.push(...nsResult.allowedLines);
    }
    // The control: an insider on the same fenced listener is let in and its line reaches the device.
    const insider = await open(ports.fenced4, { localAddress: '127.0.0.1' });
    insider.send('ALLOWED insider\n');
    expected.push('ALLOWED insider');
    r.checks.push({
      ok: refused > 0 && refusedSilently === refused,
      what:
        refusedWith[0] ??
        `${refused} connections from outside \`allow\` (127.0.0.2${ipv6 ? ', ::1' : ''}${ns.ok ? `, ${ns.client} in a network namespace` : ''}) were closed without a byte from the gateway`,
    });

    // ----- maxClientsPerAddress: one laptop cannot take every slot (and the refused leave nothing behind)
    const pid = d.child.pid!;
    await sleep(50);
    const fdsBefore = fdCount(pid);
    const crowdProblems: string[] = [];
    let busyTold = 0;
    for (let round = 1; round <= p.crowdRounds; round++) {
      const crowd: { c: Client; from: string }[] = [];
      const join_ = async (from: string): Promise<Client> => {
        const c = await open(ports.crowd, { localAddress: from, keepWriting: `CROWD ${round} from ${from} #${crowd.length}\n`, untilGreeted: true });
        crowd.push({ c, from });
        return c;
      };
      for (let i = 0; i < PER_ADDRESS + 2; i++) await join_('127.0.0.1');
      for (let i = 0; i < 3; i++) await join_('127.0.0.2');
      for (let i = 0; i < 2; i++) await join_('127.0.0.3');
      const full = await join_('127.0.0.4');
      await Promise.all(crowd.map(({ c }) => c.waitFor((t) => t.includes('welcome') || t.includes('! busy'), 2000).catch(() => undefined)));
      await sleep(50);
      const welcomed = (from: string) => crowd.filter((x) => x.from === from && x.c.text.startsWith('welcome') && !x.c.closed).length;
      const per1 = welcomed('127.0.0.1');
      const busy1 = crowd.filter((x) => x.from === '127.0.0.1' && x.c.text.startsWith('! busy: ') && x.c.text.includes('(maxClientsPerAddress)') && x.c.closed).length;
      const others = welcomed('127.0.0.2') + welcomed('127.0.0.3');
      const fullBusy = full.text.startsWith('! busy: ') && full.text.includes('(maxClients)') && full.closed;
      busyTold += busy1 + (fullBusy ? 1 : 0);
      r.faults += busy1 + (fullBusy ? 1 : 0);
      // A slot freed by 127.0.0.1 is 127.0.0.1's again.
      crowd.find((x) => x.from === '127.0.0.1' && !x.c.closed)!.c.close();
      await sleep(50);
      const again = await join_('127.0.0.1');
      await again.waitFor((t) => t.includes('welcome') || t.includes('! busy'), 2000).catch(() => undefined);
      const rejoined = again.text.startsWith('welcome') && !again.closed;
      for (const { c } of crowd) if (c.text.startsWith('welcome')) expected.push(...c.sentLines());
      if (!(per1 === PER_ADDRESS && busy1 === 2 && others === 5 && fullBusy && rejoined)) {
        crowdProblems.push(
          `round ${round}: ${per1} of 5 from 127.0.0.1 got in (want ${PER_ADDRESS}), ${busy1} told busy (maxClientsPerAddress) (want 2); ` +
            `${others} of 5 from 127.0.0.2/.3 got in; 9th refused by maxClients: ${fullBusy}; freed slot re-taken by 127.0.0.1: ${rejoined}`,
        );
      }
      for (const { c } of crowd) c.close();
      // Every connection of the round, accepted or refused, is gone from the daemon again.
      if (!(await waitUntil(() => fdCount(pid) <= fdsBefore, 3000))) {
        crowdProblems.push(`round ${round}: the daemon kept ${fdCount(pid) - fdsBefore} more fds after every client of the round closed`);
        break;
      }
    }
    r.fdsLeaked = fdCount(pid) - fdsBefore;
    r.checks.push({
      ok: crowdProblems.length === 0,
      what:
        crowdProblems[0] ??
        `maxClientsPerAddress ${PER_ADDRESS}, ${p.crowdRounds} round(s): 3 of 5 from 127.0.0.1 got in and 2 were told \`! busy ... (maxClientsPerAddress)\`; ` +
          `5 of 5 from 127.0.0.2/.3 still got in; the 9th was refused by maxClients ${MAX_CLIENTS}; a slot freed by 127.0.0.1 went to 127.0.0.1 again; ` +
          `after each round the daemon's fds were back to ${fdsBefore}`,
    });

    // ----- monitor: nothing a monitor client sends reaches the device
    const garbage = rnd.bytes(p.garbageBytes);
    let monitorBytes = 0;
    const junk = [Buffer.from('MONITOR id\r\nMONITOR name\n'), TELNET, garbage, Buffer.from('010MONITOR xx'), Buffer.from('MONITOR last\n')];
    const prefixed = [Buffer.from('010MONITOR xx'), Buffer.from('007MONITOR'), Buffer.from('000')];
    for (const [m, chunks] of [[monLines, junk], [monRaw, junk], [monLp, prefixed], [monLpJunk, junk]] as const) {
      for (const chunk of chunks) {
        m.send(chunk);
        monitorBytes += chunk.length;
      }
      r.faults++;
    }
    await sleep(200);
    insider.send('MARKER\n');
    expected.push('MARKER');
    const marker = await waitUntil(() => deviceBytes.includes('MARKER\r\n'), 3000);
    // Anything still on its way from a refused or read-only client gets as long again to show up.
    await sleep(300);

    const arrived = deviceBytes.toString('latin1').split('\r\n');
    const tail = arrived.pop();
    const want = [...expected].sort();
    const got = [...arrived].sort();
    const extra = got.filter((l) => !want.includes(l));
    const missing = want.filter((l) => !got.includes(l));
    r.checks.push({
      ok: marker && extra.length === 0 && tail === '',
      what:
        extra.length > 0 || tail !== ''
          ? `bytes from a refused or read-only client reached the device: ${JSON.stringify([...extra, tail].join(' | ').slice(0, 200))}`
          : `the device received only the ${arrived.length} lines allowed clients sent; nothing from ${refused} refused connections, ${busyTold} busy ones, or ${monitorBytes} bytes sent to 4 monitor clients (lines, raw, length-prefixed)`,
    });
    r.checks.push({ ok: missing.length === 0, what: missing.length === 0 ? 'every line an allowed client sent reached the device (the control)' : `lines of allowed clients missing on the device: ${JSON.stringify(missing.slice(0, 5))}` });
    const seesOthers = monLines.text.includes('] MARKER\r\n') && monRaw.received.includes('] MARKER\r\n') && monLp.text.includes('MARKER');
    r.checks.push({ ok: seesOthers, what: `every monitor still sees what writers send (the MARKER line): ${seesOthers}` });
    r.checks.push({ ok: d.child.exitCode === null && [monLines, monRaw, monLp].every((m) => !m.closed), what: 'the daemon and the monitors that sent well-formed input are still up' });
    // Refused connections must not hold up a stop either (a busy client's unread bytes once kept SIGTERM waiting).
    for (const c of clients) c.close();
    const stopAt = performance.now();
    const code = await Promise.race([d.stop(), sleep(5000).then(() => 'no exit within 5 s')]);
    const stopMs = performance.now() - stopAt;
    r.checks.push({ ok: code === 0, what: `SIGTERM afterwards: exit ${code} in ${stopMs.toFixed(0)} ms` });
    if (!ns.ok) r.notes.push(`no network namespace: ${ns.why}`);
    else if (nsResult) r.notes.push(`network namespace ${ns.name}: ${nsResult.attempts} refused from ${ns.client}; control: ${nsResult.allowedLines.length} line(s) from it reached the device through a listener that allows it`);
    if (!ipv6) r.notes.push('no IPv6 on loopback: the ::1 outsider was skipped');
    return r;
  } finally {
    for (const c of clients) c.close();
    await d?.stop('SIGKILL');
    pty.close();
    ns.cleanUp();
  }
}

export interface Namespace {
  ok: boolean;
  why: string;
  name: string;
  host: string;
  client: string;
  cleanUp(): void;
}

function config(link: string, ports: Record<string, number>, ipv6: boolean, ns: Namespace | null): string {
  const l = (name: string, host: string, port: number, extra: string) =>
    `  - name: ${name}\n    host: "${host}"\n    port: ${port}\n${extra.replace(/^/gm, '    ')}\n`;
  return `serial:
  path: ${link}
tcp:
${l('fenced4', '127.0.0.1', ports.fenced4!, 'allow: [127.0.0.1]')}${ipv6 ? l('fenced6', '::1', ports.fenced6!, "allow: ['127.0.0.0/8']") : ''}${l('crowd', '127.0.0.1', ports.crowd!, `maxClients: ${MAX_CLIENTS}\nmaxClientsPerAddress: ${PER_ADDRESS}\nbanner: "welcome {clients}"`)}${l('monlines', '127.0.0.1', ports.monLines!, 'mode: monitor')}${l('monraw', '127.0.0.1', ports.monRaw!, 'mode: monitor\nframing: raw')}${l('monlp', '127.0.0.1', ports.monLp!, 'mode: monitor\nframing: length-prefixed')}${
    ns ? `${l('nsdeny', ns.host, ports.nsDeny!, "allow: [127.0.0.1, '::1']")}${l('nsallow', ns.host, ports.nsAllow!, `allow: [${ns.client}]`)}` : ''
  }udp: []
log:
  level: warning
`;
}

interface ConnectOptions {
  host?: string;
  localAddress?: string;
  /** Written at once on connect, and again every 10 ms while the connection lasts (at most 1 s). */
  keepWriting?: string;
  /** Stop writing once the gateway has said anything (an accepted client's banner). */
  untilGreeted?: boolean;
}

class Client {
  received = Buffer.alloc(0);
  closed = false;
  private readonly sent: string[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, opts: ConnectOptions): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, () => {
        const c = new Client(s);
        if (opts.keepWriting !== undefined) c.keepWriting(opts.keepWriting, opts.untilGreeted === true);
        resolve(c);
      });
      s.once('error', reject);
    });
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  /** The lines this client wrote, as the device should see them (without the terminator). */
  sentLines(): string[] {
    return this.sent.map((s) => s.replace(/\n$/, ''));
  }

  send(data: string | Buffer): void {
    if (typeof data === 'string') this.sent.push(data);
    this.socket.write(data);
  }

  waitFor(match: (text: string) => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!match(this.text) && !this.closed) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      if (!check()) this.waiters.push(() => void check());
    });
  }

  waitClosed(timeoutMs: number): Promise<void> {
    return this.waitFor(() => false, timeoutMs).catch(() => undefined);
  }

  close(): void {
    this.socket.destroy();
  }

  private keepWriting(line: string, untilGreeted: boolean): void {
    let n = 0;
    const tick = (): void => {
      if (this.closed || n++ >= 100 || (untilGreeted && this.received.length > 0)) return;
      this.send(line);
      setTimeout(tick, 10);
    };
    tick();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

/** Names of this case's namespace and veth pair carry the pid: see test/support/netns.ts. */
export const NETNS_TAG = 'sgwrel';

/**
 * A network namespace with one veth pair: the daemon listens on the host end, a client runs inside. Needs root
 * and iproute2; without them the case says so and relies on the loopback outsiders. Leftovers of earlier runs
 * killed before their teardown are removed first (only those whose process is gone).
 */
export function setUpNamespace(): Namespace {
  const id = process.pid % 100000;
  // A /30 of its own per process, so parallel runs do not collide.
  const c = id % 250;
  const dBase = (Math.floor(id / 250) % 63) * 4;
  const host = `10.231.${c}.${dBase + 1}`;
  const client = `10.231.${c}.${dBase + 2}`;
  const name = vethNames(NETNS_TAG).ns;
  const unavailable = netnsUnavailableReason();
  if (unavailable !== undefined) return { ok: false, why: unavailable, name, host, client, cleanUp: () => {} };
  try {
    const ns = createVethNamespace({ tag: NETNS_TAG, hostAddr: host, nsAddr: client });
    return { ok: true, why: '', name, host, client, cleanUp: ns.remove };
  } catch (err) {
    return { ok: false, why: (err as Error).message, name, host, client, cleanUp: () => {} };
  }
}

/** Runs in the namespace: connects, writes, reports what came back and whether it was closed. */
const NS_CLIENT = `
const net = require('net');
const [host, deny, allow, attempts] = process.argv.slice(1);
const one = (port, line) => new Promise((resolve) => {
  let got = 0, n = 0;
  const s = net.connect({ host, port: Number(port) }, () => {
    const tick = () => { if (s.destroyed || n++ >= 50) return; s.write(line); setTimeout(tick, 10); };
    tick();
  });
  s.on('data', (d) => (got += d.length));
  s.on('error', () => {});
  s.on('close', () => resolve({ got, closed: true }));
  setTimeout(() => { s.destroy(); resolve({ got, closed: false }); }, 1500).unref();
});
(async () => {
  const refused = [];
  for (let i = 0; i < Number(attempts); i++) refused.push(await one(deny, 'REFUSED namespace #' + i + '\\n'));
  const s = net.connect({ host, port: Number(allow) }, () => s.end('ALLOWED namespace\\n'));
  s.on('error', () => {});
  s.on('close', () => process.stdout.write(JSON.stringify({ refused }), () => process.exit(0)));
})();
`;

async function fromNamespace(
  ns: Namespace,
  deny: number,
  allow: number,
  attempts: number,
): Promise<{ attempts: number; refusedSilently: number; problems: string[]; allowedLines: string[] }> {
  const out = await new Promise<string>((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, '-e', NS_CLIENT, ns.host, String(deny), String(allow), String(attempts)], { timeout: 30_000 }, (err, stdout) =>
      resolve(err ? `error: ${err.message}` : stdout),
    );
  });
  let parsed: { refused: { got: number; closed: boolean }[] };
  try {
    parsed = JSON.parse(out) as typeof parsed;
  } catch {
    return { attempts, refusedSilently: 0, problems: [`the namespace client failed: ${out.slice(0, 200)}`], allowedLines: [] };
  }
  const silent = parsed.refused.filter((x) => x.closed && x.got === 0).length;
  const problems = parsed.refused.filter((x) => !(x.closed && x.got === 0)).map((x, i) => `namespace #${i}: ${x.closed ? '' : 'still open, '}got ${x.got} bytes`);
  return { attempts: parsed.refused.length, refusedSilently: silent, problems, allowedLines: ['ALLOWED namespace'] };
}

async function canListen(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(0, host, () => srv.close(() => resolve(true)));
  });
}
