import t, { type Test } from 'tap';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ON, SLOW_BLINK, describePattern } from '../../src/status/led-patterns.js';
import { browserUnavailableReason, launchChromium } from '../support/browser.js';
import { TestClient, freePort, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { PtyPair, ptyUnavailableReason } from '../support/pty.js';

/**
 * The pages in a real browser: Debian's chromium driven by playwright-core (which never downloads a browser),
 * against the built daemon with `web:` listeners on 127.0.0.1, the device being the built-in lab box or a pty
 * the test plays. One browser for the whole file (tap runs files in parallel on a 2-core machine).
 *
 * Screenshots of both pages are written to SCREENSHOT_DIR when it is set (the README's are made with
 * `SCREENSHOT_DIR=docs/screenshots npx tap dist/test/browser/console.test.js`); otherwise to the test's own dir.
 */

// The browser globals the page-side callbacks below touch: the project compiles without the DOM lib, and these
// declarations stay local to this file.
interface PageElement {
  textContent: string | null;
  className: string;
  classList: Iterable<string>;
  dataset: Record<string, string | undefined>;
  getBoundingClientRect(): { right: number };
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  getAnimations(): { effect: { getComputedTiming(): { duration: number | string; iterations: number } } | null }[];
  setSelectionRange(start: number, end: number): void;
  dispatchEvent(event: ClipboardEvent): boolean;
}
declare const document: PageElement & { documentElement: { scrollWidth: number }; getElementById(id: string): PageElement };
declare const window: { innerWidth: number; serialGateway: { view: { counts: Record<string, number> } } };
declare class DataTransfer {
  setData(type: string, data: string): void;
}
declare class ClipboardEvent {
  constructor(type: string, init: { clipboardData: DataTransfer; bubbles: boolean; cancelable: boolean });
}

const ROOT = join(__dirname, '..', '..', '..');
const MONITOR_PASSWORD = 'lab-secret';
const STUDENT_ID = '6510500000';

const noBrowser = browserUnavailableReason();
const noPty = ptyUnavailableReason();
// Three daemons, a browser and a 20,000-line flood: ~45 s on this 2-core machine under moderate load, 136 s in a
// full run at load 15-20, past the suite's 120 s per file. The cases bound their own waits.
t.setTimeout(240_000);

let browser: Browser | undefined;
if (noBrowser === undefined) {
  t.before(async () => {
    browser = await launchChromium();
  });
  t.teardown(() => browser?.close());
}

// ------------------------------------------------------------------ rigs

interface WebListener {
  name: string;
  port: number;
  extra?: string;
}

function configYaml(device: string, web: WebListener[], tcpPort: number, opts: { lines?: string; tcp?: string } = {}): string {
  const list = (ls: WebListener[]) =>
    ls.map((l) => `  - name: ${l.name}\n    host: 127.0.0.1\n    port: ${l.port}\n${(l.extra ?? '').replace(/^/gm, '    ')}`).join('\n');
  return `serial:
  path: ${device}
  reconnectMinMs: 50
  reconnectMaxMs: 200
lines:
  idleFlushMs: 100
${(opts.lines ?? '').replace(/^/gm, '  ')}
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${tcpPort}
    telnet: off
${(opts.tcp ?? '').replace(/^/gm, '    ')}
udp: []
web:
${list(web)}
log:
  level: debug
`;
}

interface Rig {
  d: RunningDaemon;
  dir: string;
  yaml: string;
  tcpPort: number;
  /** http://127.0.0.1:PORT of each web listener, by name. */
  url: Record<string, string>;
}

async function startRig(
  t: Test,
  device: string,
  web: { name: string; extra?: string }[],
  opts: { lines?: string; tcp?: string; dir?: string } = {},
): Promise<Rig> {
  const dir = opts.dir ?? t.testdir();
  const tcpPort = await freePort();
  const listeners: WebListener[] = [];
  const url: Record<string, string> = {};
  for (const w of web) {
    const port = await freePort();
    listeners.push({ ...w, port });
    url[w.name] = `http://127.0.0.1:${port}`;
  }
  const yaml = configYaml(device, listeners, tcpPort, opts);
  const d = await startDaemon(dir, yaml);
  t.teardown(() => d.stop());
  return { d, dir, yaml, tcpPort, url };
}

async function tcpClient(t: Test, port: number): Promise<TestClient> {
  const c = await TestClient.connect(port);
  t.teardown(() => c.close());
  return c;
}

/** A fresh browser context (its own tabs, storage and credentials), closed when the test ends. */
async function newContext(t: Test, opts: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
  if (browser === undefined) throw new Error('no browser');
  const ctx = await browser.newContext(opts);
  t.teardown(() => ctx.close());
  return ctx;
}

/**
 * One browser tab, watched: console errors, uncaught page errors and every URL it asks for (HTTP and WebSocket)
 * since its last visit(). Tabs are reused across cases: a new page is a new renderer process, the slowest thing
 * here on a loaded machine.
 */
class Tab {
  errors: string[] = [];
  requests: string[] = [];

  private constructor(readonly page: Page) {
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(m.text());
    });
    page.on('pageerror', (e) => this.errors.push(e.message));
    page.on('request', (r) => this.requests.push(r.url()));
    page.on('websocket', (ws) => this.requests.push(ws.url()));
  }

  static async open(ctx: BrowserContext, url: string): Promise<Tab> {
    const tab = new Tab(await ctx.newPage());
    await tab.visit(url);
    return tab;
  }

  /** Loads `url` afresh (a new page load, a new socket) and waits until the page says it is online. */
  async visit(url: string): Promise<void> {
    this.errors = [];
    this.requests = [];
    const res = await this.page.goto(url);
    if (res?.status() !== 200) throw new Error(`GET ${url}: ${res?.status()}`);
    await waitLink(this.page, 'online');
  }
}

function waitLink(page: Page, state: string, timeout = 10_000): Promise<unknown> {
  return page.waitForSelector(`#link[data-state="${state}"]`, { timeout });
}

/** The log as the user sees it: kind and text of each line, control-character boxes as their names. */
function logLines(page: Page): Promise<{ kind: string; text: string; who: string }[]> {
  return page.$$eval('#log .ln', (els) =>
    els.map((e) => ({
      kind: [...e.classList].filter((c) => c !== 'ln' && c !== 'partial').join(' '),
      text: e.querySelector('.tx')?.textContent ?? '',
      who: e.querySelector('.who')?.textContent ?? '',
    })),
  );
}

async function texts(page: Page, kind = 'dev'): Promise<string[]> {
  return (await logLines(page)).filter((l) => l.kind === kind).map((l) => l.text);
}

/** Waits until a line of `kind` whose text is exactly `text` (or matches it) is on screen. */
function waitLine(page: Page, text: string | RegExp, kind = 'dev', timeout = 10_000): Promise<unknown> {
  const src = typeof text === 'string' ? { exact: text } : { re: text.source };
  return page.waitForFunction(
    ([src, kind]) => {
      const re = src.re === undefined ? null : new RegExp(src.re);
      return [...document.querySelectorAll(`#log .ln.${kind} .tx`)].some((e) =>
        re === null ? e.textContent === src.exact : re.test(e.textContent ?? ''),
      );
    },
    [src, kind] as const,
    { timeout },
  );
}

/** Device lines the page has received since it loaded (its own counter: the view's bound does not reset it). */
function devCount(page: Page): Promise<number> {
  return page.evaluate(() => window.serialGateway.view.counts.dev ?? 0);
}

async function typeLine(page: Page, line: string): Promise<void> {
  await page.fill('#line', line);
  await page.press('#line', 'Enter');
}

/** GET on loopback, for what the browser is not needed for (status, headers). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function basic(password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`teacher:${password}`).toString('base64')}` };
}

function screenshotPath(name: string, fallbackDir: string): string {
  const env = process.env.SCREENSHOT_DIR;
  const dir = env === undefined || env === '' ? fallbackDir : isAbsolute(env) ? env : join(ROOT, env);
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/**
 * A TCP relay between the browser and a web listener, so a test can cut the browser's connection from the
 * network side (Chromium's setOffline does not close an open WebSocket). The browser's Origin and Host both
 * name the relay, so the gateway's Origin check still passes.
 */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = connect(this.targetPort, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      inbound.pipe(outbound).on('close', () => inbound.destroy());
      outbound.pipe(inbound).on('close', () => outbound.destroy());
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    this.server = server;
  }

  /** Stops accepting and cuts every connection (the network went away). */
  async drop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ the built-in lab box

t.test('the console and the dashboard on the simulated lab box', { skip: noBrowser }, async (t) => {
  const rig = await startRig(t, 'sim:labbox', [
    { name: 'web', extra: `mode: shared\nmonitor: true\nmonitorPassword: ${MONITOR_PASSWORD}` },
    { name: 'class', extra: 'mode: request\nmonitor: false\nreplyQuietMs: 50\nrequestTimeoutMs: 2000' },
  ]);
  const origin = rig.url.web!;
  const students = await newContext(t);
  const w = await Tab.open(students, `${origin}/`);
  const teacher = await newContext(t, { httpCredentials: { username: 'teacher', password: MONITOR_PASSWORD } });
  /** The dashboard tab the password case opens, kept for the screenshot. */
  let dashboard: Tab | undefined;

  await t.test('the page loads everything from the gateway, without a console error, and id answers', async (t) => {
    await typeLine(w.page, 'id');
    await waitLine(w.page, STUDENT_ID);
    t.same((await texts(w.page, 'me')).slice(-1), ['id'], 'the own line is echoed, styled apart');
    t.ok(w.requests.length >= 4, `the page made its requests (${w.requests.length})`);
    const foreign = w.requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith(origin.replace(/^http/, 'ws') + '/'));
    t.same(foreign, [], 'no request left for another origin');
    t.same(w.errors, [], 'no console error');
    t.equal(await w.page.textContent('#device'), 'open', 'the device state is shown');
    t.match(await w.page.textContent('#settings'), /sim:labbox/, 'and its settings');
  });

  await t.test('on a phone-sized screen the input and Send fit without sideways scrolling', async (t) => {
    await w.page.setViewportSize({ width: 375, height: 667 });
    t.teardown(() => w.page.setViewportSize({ width: 1280, height: 720 }));
    const fit = await w.page.evaluate(() => {
      const right = (id: string) => document.getElementById(id).getBoundingClientRect().right;
      return { page: document.documentElement.scrollWidth, width: window.innerWidth, input: right('line'), send: right('sendbtn') };
    });
    t.ok(fit.page <= fit.width, `no horizontal scroll (${fit.page} <= ${fit.width})`);
    t.ok(fit.input <= fit.width && fit.send <= fit.width, 'input and Send are on screen');
    await w.page.click('#line');
    await w.page.keyboard.type('name');
    await w.page.click('#sendbtn');
    await waitLine(w.page, 'Lab Box');
    t.pass('typed and sent with the Send button');
  });

  await t.test('history: Up and Down walk this tab\'s lines; a line too long stays in the box', async (t) => {
    for (const line of ['echo h1', 'echo h2', 'echo h3']) await typeLine(w.page, line);
    await w.page.press('#line', 'ArrowUp');
    t.equal(await w.page.inputValue('#line'), 'echo h3', 'Up: the last line');
    await w.page.press('#line', 'ArrowUp');
    await w.page.press('#line', 'ArrowUp');
    t.equal(await w.page.inputValue('#line'), 'echo h1', 'Up, Up: two before');
    await w.page.press('#line', 'ArrowDown');
    t.equal(await w.page.inputValue('#line'), 'echo h2', 'Down: one later');

    // A line the device would refuse stays in the box, with the reason, instead of being lost.
    const long = `echo ${'y'.repeat(5000)}`;
    await typeLine(w.page, long);
    await waitLine(w.page, /^line too long \(5005 bytes, the limit is \d+\): not sent$/, 'sys');
    t.equal(await w.page.inputValue('#line'), long, 'a line over maxLineBytes stays in the input');
    await w.page.fill('#line', '');
  });

  await t.test('request mode: two tabs each get only their own reply', async (t) => {
    const a = w;
    await a.visit(`${rig.url.class}/`);
    const b = await Tab.open(students, `${rig.url.class}/`);
    t.teardown(() => b.page.close());
    await Promise.all([typeLine(a.page, 'echo alpha'), typeLine(b.page, 'echo beta')]);
    await Promise.all([waitLine(a.page, 'alpha'), waitLine(b.page, 'beta')]);
    await Promise.all([typeLine(a.page, 'id'), typeLine(b.page, 'id')]);
    await Promise.all([waitLine(a.page, STUDENT_ID), waitLine(b.page, STUDENT_ID)]);
    // A later reply of its own: anything misrouted to this tab would have arrived before it, in ring order.
    await Promise.all([typeLine(a.page, 'echo alpha-2'), typeLine(b.page, 'echo beta-2')]);
    await Promise.all([waitLine(a.page, 'alpha-2'), waitLine(b.page, 'beta-2')]);
    t.same(await texts(a.page), ['alpha', STUDENT_ID, 'alpha-2'], 'tab A: its own replies only, once each');
    t.same(await texts(b.page), ['beta', STUDENT_ID, 'beta-2'], 'tab B: its own replies only, once each');
  });

  await t.test('hostile device output is shown as text', async (t) => {
    await w.visit(`${origin}/`);
    const title = await w.page.title();
    const c = await tcpClient(t, rig.tcpPort);
    c.send('echo <img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>\n');
    c.send('echo \x1b[2J\x1b[31mred\x1b[0m and a NUL:\x00.\n');
    c.send(Buffer.concat([Buffer.from('echo bad utf-8: '), Buffer.from([0x66, 0x6f, 0xff, 0xfe, 0xc3, 0x28]), Buffer.from(' end\n')]));
    c.send('echo \u202eevil-reversed\n');
    await waitLine(w.page, /^bad utf-8/);
    await waitLine(w.page, /evil-reversed$/);
    const lines = await texts(w.page);
    t.equal(lines[0], '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>', 'markup shown as written');
    t.equal(await w.page.locator('#log img, #log script, #log b').count(), 0, 'no element made from device text');
    t.equal(await w.page.title(), title, 'nothing ran');
    t.equal(lines[1], 'ESC[2JESC[31mredESC[0m and a NUL:NUL.', 'ESC and NUL are shown by name, not acted on');
    t.equal(await w.page.locator('#log .ln .cc').first().textContent(), 'ESC', 'in a box of their own (span.cc)');
    t.equal(lines[2], 'bad utf-8: fo\ufffd\ufffd\ufffd( end', 'invalid UTF-8 as U+FFFD');
    t.equal(lines[3], 'U+202Eevil-reversed', 'a bidi override is shown, not obeyed');
    t.same(w.errors, [], 'no console error');
  });

  await t.test('a paste of 5 lines becomes 5 lines, in order', async (t) => {
    await w.visit(`${origin}/`);
    await w.page.fill('#line', 'ec');
    await w.page.evaluate(() => {
      const input = document.getElementById('line');
      input.setSelectionRange(2, 2);
      const data = new DataTransfer();
      data.setData('text/plain', 'ho p1\r\necho p2\necho p3\recho p4\necho p5\n');
      input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    await waitLine(w.page, 'p5');
    t.same(await texts(w.page, 'me'), ['echo p1', 'echo p2', 'echo p3', 'echo p4', 'echo p5'], 'echoed in order (text before the cursor kept)');
    t.same(await texts(w.page), ['p1', 'p2', 'p3', 'p4', 'p5'], 'answered in order');
    t.equal(await w.page.inputValue('#line'), '', 'the input is empty again');
  });

  await t.test('a 20,000-line flood: the page keeps up, stays responsive and bounded', async (t) => {
    await w.visit(`${origin}/`);
    const before = await devCount(w.page);
    const c = await tcpClient(t, rig.tcpPort);
    c.send('stream 20000\n');
    // The page answers while the lines pour in, and a line typed meanwhile goes out and is answered.
    await waitLine(w.page, /^line \d+$/);
    t.equal(await w.page.evaluate(() => 1 + 1), 2, 'the page runs script during the flood');
    await typeLine(w.page, 'echo still-here');
    await waitLine(w.page, 'line 20000', 'dev', 60_000);
    await waitLine(w.page, 'still-here', 'dev', 30_000);
    const shown = await w.page.locator('#log .ln').count();
    t.ok(shown <= 5001, `the DOM holds at most 5,000 lines (${shown})`);
    const got = await devCount(w.page);
    const notes = await texts(w.page, 'note');
    const missed = notes.map((n) => /^missed (\d+) line/.exec(n)).reduce((sum, m) => sum + (m ? Number(m[1]) : 0), 0);
    t.equal(got - before + missed, 20_001, `every line arrived or was counted as missed (${got - before} shown, ${missed} missed)`);
    t.same(w.errors, [], 'no console error');
  });

  await t.test('the dashboard asks for its password; the console does not', async (t) => {
    t.equal((await get(`${origin}/`)).status, 200, 'the console is open to all');
    const anon = await get(`${origin}/monitor`);
    t.equal(anon.status, 401, 'no password: 401');
    t.match(String(anon.headers['www-authenticate']), /^Basic /, 'and the browser is asked for one');
    t.equal((await get(`${origin}/monitor`, basic('wrong'))).status, 401, 'a wrong password: 401');

    // Headless, the browser has nobody to ask for the password: the navigation ends with the 401.
    await t.rejects(w.page.goto(`${origin}/monitor`), /ERR_INVALID_AUTH_CREDENTIALS/, 'the browser without credentials does not get the page');

    const m = await Tab.open(teacher, `${origin}/monitor`);
    dashboard = m;
    t.pass('with the password the dashboard opens and its socket is upgraded (the browser resends the credentials)');
    t.same(m.errors, [], 'no console error');
  });

  await t.test('screenshots of both pages', async (t) => {
    const m = dashboard ?? (await Tab.open(teacher, `${origin}/monitor`));
    await m.page.setViewportSize({ width: 1280, height: 720 });
    const s = w;
    await s.page.setViewportSize({ width: 900, height: 560 });
    await s.visit(`${origin}/`);
    const c = await tcpClient(t, rig.tcpPort);
    await s.page.check('#timestamps');
    for (const [line, answer] of [['help', /^commands:/], ['id', STUDENT_ID], ['name', 'Lab Box']] as const) {
      await typeLine(s.page, line);
      await waitLine(s.page, answer);
    }
    c.send('echo hello from a TCP classmate\n');
    await waitLine(s.page, 'hello from a TCP classmate');
    await typeLine(s.page, 'stream 3');
    await waitLine(s.page, 'line 3');
    await waitLine(m.page, 'line 3');
    await m.page.waitForSelector('#clients tbody tr[data-via="tcp"]');
    await s.page.screenshot({ path: screenshotPath('console.png', t.testdir()) });
    await m.page.screenshot({ path: screenshotPath('monitor.png', t.testdir()) });
    t.pass('written');
  });
});

// ------------------------------------------------------------------ a device on a pty

t.test('a device on a real pty', { skip: noBrowser ?? noPty }, async (t) => {
  const dir = t.testdir();
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  t.teardown(() => pty.close());
  const rig = await startRig(t, pty.linkPath, [{ name: 'web', extra: 'mode: shared\nmonitor: true' }], { dir });
  await rig.d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
  const origin = rig.url.web!;
  const ctx = await newContext(t, { viewport: { width: 1280, height: 720 } });
  const w = await Tab.open(ctx, `${origin}/`);

  await t.test('typing id: the device gets exactly id CR LF, the page shows its answer', async (t) => {
    await typeLine(w.page, 'id');
    t.equal((await pty.readUntil('\r\n', 5000)).toString('latin1'), 'id\r\n', 'exactly id CR LF');
    await pty.write(`${STUDENT_ID}\r\n`);
    await waitLine(w.page, STUDENT_ID);
    t.pass('the answer is on the page');
  });

  await t.test('a paste of 5 lines reaches the device as 5 lines, in order', async (t) => {
    await w.page.focus('#line');
    await w.page.evaluate(() => {
      const data = new DataTransfer();
      data.setData('text/plain', 'one\ntwo\nthree\nfour\nfive');
      document.getElementById('line').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    const got = await pty.readUntil('five\r\n', 5000);
    t.equal(got.toString('latin1'), 'one\r\ntwo\r\nthree\r\nfour\r\nfive\r\n', 'five lines, in order, each with CR LF');
  });

  await t.test('the dashboard: tcp and web clients, device away and back, the LEDs as the GPIO shows them', async (t) => {
    const m = await Tab.open(ctx, `${origin}/monitor`);
    const s = w;
    const c = await tcpClient(t, rig.tcpPort);

    // Every client is listed with how it came in.
    await m.page.waitForSelector('#clients tbody tr[data-via="tcp"]');
    await m.page.waitForSelector('#clients tbody tr[data-via="web"]');
    const rows = await m.page.$$eval('#clients tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    t.ok(rows.some((r) => r[0] === 'lab' && r[1] === 'tcp' && /^127\.0\.0\.1:\d+$/.test(r[2] ?? '')), 'the TCP client, its listener and address');
    t.ok(rows.some((r) => r[0] === 'web' && r[1] === 'web' && r[3] === 'shared'), 'the browser tab, in shared mode');

    // Every client line, with its sender.
    c.send('from-tcp\n');
    await typeLine(s.page, 'from-web');
    await pty.readUntil('from-web\r\n', 5000);
    await waitLine(m.page, 'from-tcp', 'client');
    await waitLine(m.page, 'from-web', 'client');
    const sent = (await logLines(m.page)).filter((l) => l.kind === 'client');
    t.match(sent.find((l) => l.text === 'from-tcp')?.who, /^tcp:lab 127\.0\.0\.1:\d+$/, 'a TCP line names tcp, its listener and address');
    t.match(sent.find((l) => l.text === 'from-web')?.who, /^web:web 127\.0\.0\.1:\d+$/, 'a browser line names web, its listener and address');
    await pty.write('device says hi\r\n');
    await waitLine(m.page, 'device says hi');

    const ledsShown = () =>
      m.page.$$eval('.led', (els) =>
        Object.fromEntries(
          els.map((e) => {
            const a = e.getAnimations()[0];
            const timing = a?.effect?.getComputedTiming();
            return [e.dataset.led, { pattern: e.dataset.pattern, cls: e.className, period: timing?.duration ?? null, iterations: timing?.iterations ?? null }];
          }),
        ),
      );
    const serialIs = (p: string) => m.page.waitForSelector(`.led[data-led="serial"][data-pattern="${p}"]`, { timeout: 10_000 });

    await serialIs(describePattern(ON));
    let leds = await ledsShown();
    t.equal(leds.serial?.cls, 'led pat-on', 'device open: the serial LED is steadily on');
    t.equal(leds.ready?.pattern, describePattern(ON), 'running: ready on');
    t.equal(leds.clients?.pattern, describePattern(ON), 'clients connected: clients on');

    // Unplug: every page hears it, the serial LED blinks as the GPIO does while the device is away.
    pty.unplug();
    await s.page.waitForSelector('#device[data-state="away"]', { timeout: 10_000 });
    await m.page.waitForSelector('#device[data-state="away"]', { timeout: 10_000 });
    await waitLine(s.page, /^device away/, 'note');
    await serialIs(describePattern(SLOW_BLINK));
    leds = await ledsShown();
    t.equal(leds.serial?.cls, 'led pat-blink lit', 'away: a blinking pattern');
    t.equal(leds.serial?.period, SLOW_BLINK.kind === 'blink' ? SLOW_BLINK.onMs + SLOW_BLINK.offMs : NaN, 'played at the pattern machine\'s period (2 s)');
    t.equal(leds.serial?.iterations, Infinity, 'for as long as the device is away');
    const status = JSON.parse((await get(`${origin}/api/status`)).body) as { leds: Record<string, Parameters<typeof describePattern>[0]> };
    for (const [name, pattern] of Object.entries(status.leds)) {
      t.equal(leds[name]?.pattern, describePattern(pattern), `${name}: the dashboard shows the server's pattern (${describePattern(pattern)})`);
    }

    pty.replug();
    await s.page.waitForSelector('#device[data-state="open"]', { timeout: 10_000 });
    await waitLine(s.page, /^device back/, 'note');
    await serialIs(describePattern(ON));
    t.pass('back: device open, the serial LED on again');
    t.same([...s.errors, ...m.errors], [], 'no console error');
  });
});

// ------------------------------------------------------------------ losing the link

t.test('a dropped link and a restarted gateway: the page reconnects, nothing twice, scrollback kept', { skip: noBrowser }, async (t) => {
  // A small ring (262144 bytes, the least for clientBufferBytes 65536) so that a long gap outruns it.
  const small = 'clientBufferBytes: 65536';
  const rig = await startRig(t, 'sim:labbox', [{ name: 'web', extra: `mode: shared\n${small}` }], { lines: 'ringBytes: 262144', tcp: small });
  const relay = new Relay(Number(new URL(rig.url.web!).port));
  await relay.listen();
  t.teardown(() => relay.drop());
  const ctx = await newContext(t);
  const w = await Tab.open(ctx, `http://127.0.0.1:${relay.port}/`);
  let c = await tcpClient(t, rig.tcpPort);

  c.send('echo before-the-drop\n');
  await waitLine(w.page, 'before-the-drop');

  // The network goes away; lines keep coming from the device meanwhile.
  await relay.drop();
  await waitLink(w.page, 'reconnecting');
  for (let i = 1; i <= 5; i++) c.send(`echo gap-${i}\n`);
  await c.waitFor('gap-5\r\n');
  await relay.listen();
  await waitLink(w.page, 'online');
  await waitLine(w.page, 'gap-5');
  await waitLine(w.page, 'reconnected, no lines missed', 'sys');
  let lines = await texts(w.page);
  t.same(lines, ['before-the-drop', 'gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5'], 'the lines of the gap exactly once, after the scrollback');

  // A longer gap than the ring holds (100 lines of 3 KB through a 256 KiB ring): the page says how many it
  // missed, shows the rest once, and still keeps its scrollback.
  const shownBefore = await devCount(w.page);
  await relay.drop();
  await waitLink(w.page, 'reconnecting');
  const big = 'x'.repeat(3000);
  for (let i = 1; i <= 100; i++) c.send(`echo big-${i} ${big}\n`);
  await c.waitFor(`big-100 ${big}\r\n`, 20_000);
  await relay.listen();
  await waitLine(w.page, /^reconnected, \d+ lines missed$/, 'sys');
  // What the ring still held comes next, unless it is more than this tab's backlog bound (clientBufferBytes):
  // then the tab skips to the newest line and is told so, exactly as a TCP client would be.
  c.send('echo after-the-gap\n');
  await waitLine(w.page, 'after-the-gap');
  lines = await texts(w.page);
  t.same(lines.slice(0, 6), ['before-the-drop', 'gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5'], 'scrollback kept');
  const count = (re: RegExp, of: string[]) => of.map((l) => re.exec(l)).reduce((sum, m) => sum + (m ? Number(m[1]) : 0), 0);
  const missedByRing = count(/^reconnected, (\d+) lines missed$/, await texts(w.page, 'sys'));
  const missedBySkip = count(/^missed (\d+) lines? \(this client was too slow\)$/, await texts(w.page, 'note'));
  const shown = (await devCount(w.page)) - shownBefore - 1;
  t.ok(missedByRing > 0, `the ring moved on: ${missedByRing} lines missed`);
  t.equal(shown + missedByRing + missedBySkip, 100, `each of the 100 lines of the gap shown (${shown}) or counted as missed (${missedByRing} + ${missedBySkip})`);
  const bigShown = lines.filter((l) => l.startsWith('big-')).map((l) => l.slice(0, l.indexOf(' ')));
  t.same(bigShown, Array.from({ length: shown }, (_, i) => `big-${100 - shown + 1 + i}`), 'those shown are the newest, in order, once each');

  // The gateway restarts: the page comes back on its own and keeps what it had.
  await rig.d.stop();
  await waitLink(w.page, 'reconnecting');
  const d2 = await startDaemon(rig.dir, rig.yaml);
  t.teardown(() => d2.stop());
  await waitLink(w.page, 'online', 20_000);
  await waitLine(w.page, /^reconnected: the gateway restarted/, 'sys');
  c.close();
  c = await tcpClient(t, rig.tcpPort);
  c.send('echo after-the-restart\n');
  await waitLine(w.page, 'after-the-restart');
  lines = await texts(w.page);
  t.same(lines.slice(0, 6), ['before-the-drop', 'gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5'], 'scrollback kept across the restart');
  t.equal(lines.filter((l) => l === 'gap-3').length, 1, 'nothing shown twice');
  t.equal(lines[lines.length - 1], 'after-the-restart', 'new lines after it');
});
