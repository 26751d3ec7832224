import t, { type Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, launchChromium } from '../support/browser.js';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';
import { Tab } from '../support/ws-tab.js';

/**
 * The dashboard's actions in a real browser (Debian's chromium driven by playwright-core, launched by
 * test/support/browser.ts), against the built daemon on the simulated box: the instructor clicks, and students on
 * TCP and in another tab see the notices.
 */

interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
declare const document: { getElementById(id: string): PageElement | null; querySelectorAll(selector: string): { length: number } };

const skip = browserUnavailableReason();

let browser: Browser | undefined;
if (skip === undefined) {
  t.before(async () => {
    browser = await launchChromium();
  });
  t.teardown(() => browser?.close());
}

const TEACHER = { username: 'teacher', password: 'lab-secret' };

/** /monitor in a browser context of its own (closed at the test's end), with the page errors it raises. */
async function dashboard(t: Test, port: number, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser!.newContext(opts);
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/monitor`);
  return { page, errors };
}

t.test('the instructor resets, pauses, talks, sends and removes a client from the dashboard', { skip }, async (t) => {
  const dir = t.testdir();
  const [tcpPort, webPort] = [await freePort(), await freePort()];
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\n  reset: { method: dtr, ms: 20 }\ncontrol:\n  socket: ''\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${tcpPort} }\nudp: []\nweb:\n  - { name: web, host: 127.0.0.1, port: ${webPort}, mode: shared, monitorPassword: lab-secret }\n`,
  );
  t.teardown(() => d.stop());
  const student = await TestClient.connect(tcpPort);
  t.teardown(() => student.close());
  // A student's browser tab (a ws client: the console page itself is tested in console.test.ts).
  const tab = await Tab.openAsPage(`ws://127.0.0.1:${webPort}/ws`);
  t.teardown(() => tab.ws.terminate());

  const { page, errors } = await dashboard(t, webPort, { httpCredentials: TEACHER });
  await page.waitForFunction(() => document.getElementById('link')?.textContent === 'online');
  const result = async (): Promise<string> => {
    await page.waitForFunction(() => {
      const r = document.getElementById('action-result');
      return r !== null && r.dataset.ok !== '' && r.dataset.ok !== undefined;
    });
    return (await page.textContent('#action-result')) ?? '';
  };
  const clearResult = () => page.evaluate(() => {
    const r = document.getElementById('action-result');
    if (r) r.dataset.ok = '';
  });

  await page.fill('#act-say', 'the box restarts in one minute');
  await page.click('#act-say-go');
  t.match(await result(), /said "the box restarts in one minute" to \d+ client/);
  await student.waitFor('! instructor: the box restarts in one minute\r\n');
  t.ok(tab.notices.includes('instructor: the box restarts in one minute'), "the student's tab got the notice");

  await clearResult();
  await page.click('#act-reset');
  t.match(await result(), /box reset \(DTR pulse of 20 ms\)/);
  await student.waitFor('! box reset by the instructor\r\n');
  await student.waitFor('LABBOX ready');

  await clearResult();
  await page.selectOption('#act-pause-for', '10m');
  await page.click('#act-pause');
  t.match(await result(), /input paused for 10 min/);
  await student.waitFor('! read-only: the instructor has paused input for 10 min\r\n');
  await page.waitForFunction(() => document.getElementById('action-state')?.dataset.paused === 'true');
  t.match(await page.textContent('#action-state'), /input paused until .* \(by dashboard 127\.0\.0\.1:\d+ \(web web\)\)/, 'the dashboard shows the pause');
  student.send('id\r\n');
  await student.waitFor('! line refused: input is paused by the instructor (not queued)\r\n');
  await clearResult();
  await page.fill('#act-send', 'name');
  await page.click('#act-send-go');
  t.equal(await result(), 'sent');
  await student.waitFor('Lab Box', 5000);
  t.pass("the instructor's own line reached the box during the pause");
  await clearResult();
  await page.click('#act-resume');
  t.match(await result(), /input resumed/);
  await student.waitFor('! input resumed');

  // Remove the student's tab from the client list, with a reason.
  await page.waitForFunction(() => document.querySelectorAll('#clients tbody button.kick').length >= 3);
  await page.fill('#act-reason', 'wrong group');
  await clearResult();
  const row = page.locator('#clients tbody tr', { hasText: 'shared' }).filter({ hasText: 'web' });
  await row.locator('button.kick').click();
  t.match(await result(), /removed 1 client\(s\) from 127\.0\.0\.1 \(client \d+\) \(wrong group\)/);
  await tab.until((x) => x.closed !== null).catch(() => {}); // still open after 5 s: the check below says so
  t.equal(tab.closed?.code, 1008, "the student's tab was closed with 1008 (it does not come back by itself)");
  t.ok(tab.notices.includes('removed by the instructor: wrong group'), 'and told why');
  t.notOk(student.closed, 'the TCP student stays');
  t.same(errors, [], 'no page errors');
  t.match(d.output(), /instructor: box reset .* \(asked by dashboard 127\.0\.0\.1:\d+ \(web web\)\)/, 'journaled with who asked');
});

t.test("the dashboard offers today's transcript as a download once it exists", { skip }, async (t) => {
  const dir = t.testdir();
  const [tcpPort, webPort] = [await freePort(), await freePort()];
  const yaml =
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ''\ntcp:\n  - { name: lab, host: 127.0.0.1, port: ${tcpPort} }\nudp: []\n` +
    `web:\n  - { name: web, host: 127.0.0.1, port: ${webPort}, monitorPassword: lab-secret }\n` +
    `transcript:\n  enabled: true\n  dir: ${dir}/transcript\n  flushMs: 20\n`;
  const d = await startDaemon(dir, yaml);
  t.teardown(() => d.stop());
  const student = await TestClient.connect(tcpPort);
  t.teardown(() => student.close());
  student.send('id\n');
  await student.waitFor('6510500000');

  const { page, errors } = await dashboard(t, webPort, { httpCredentials: TEACHER, acceptDownloads: true });
  await page.waitForFunction(() => document.getElementById('transcript')?.dataset.state === 'on');
  t.equal(await page.textContent('#transcript'), 'on: every line is kept on the Pi');
  await page.waitForSelector('#transcript-links:not([hidden])');
  const today = await page.evaluate(() => {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  });
  t.equal(await page.getAttribute('#transcript-txt', 'href'), `/transcript/${today}.txt`);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#transcript-txt')]);
  t.equal(download.suggestedFilename(), `transcript-${today}.txt`, 'saved under the day’s name');
  const path = await download.path();
  const text = require('node:fs').readFileSync(path, 'utf8') as string;
  t.match(text, new RegExp(`tcp:lab 127\\.0\\.0\\.1:${student.socket.localPort} > id\\n\\d\\d:\\d\\d:\\d\\d device < 6510500000\\n`), 'the conversation, as the transcript command prints it');
  const [json] = await Promise.all([page.waitForEvent('download'), page.click('#transcript-jsonl')]);
  t.equal(json.suggestedFilename(), `transcript-${today}.jsonl`);

  // The gateway restarts: the dashboard says so, as the console does (it cannot count what the old one never sent).
  await d.stop();
  const d2 = await startDaemon(dir, yaml);
  t.teardown(() => d2.stop());
  await page.waitForFunction(
    () => [...(document as unknown as { querySelectorAll(s: string): Iterable<PageElement> }).querySelectorAll('#log .ln.sys')].some((e) => (e.textContent ?? '').includes('reconnected: the gateway restarted')),
    undefined,
    { timeout: 20_000 },
  );
  t.pass('the dashboard says the gateway restarted');
  t.same(errors, [], 'no page errors');
});

t.test('an unguarded dashboard shows its actions switched off, and why, and offers no transcript', { skip }, async (t) => {
  const dir = t.testdir();
  const webPort = await freePort();
  const d = await startDaemon(
    dir,
    `serial:\n  path: sim:labbox\ncontrol:\n  socket: ''\ntcp: []\nudp: []\nweb:\n  - { name: web, host: 127.0.0.1, port: ${webPort} }\n` +
      `transcript:\n  enabled: true\n  dir: ${dir}/transcript\n`,
  );
  t.teardown(() => d.stop());
  const { page, errors } = await dashboard(t, webPort);
  await page.waitForFunction(() => document.getElementById('actions')?.dataset.enabled === 'false');
  t.ok(await page.isDisabled('#act-reset'), 'Reset box is disabled');
  t.ok(await page.isDisabled('#act-say-go'), 'Tell everyone is disabled');
  t.match(await page.textContent('#action-result'), /Actions are off on this dashboard.*Set monitorPassword/, 'the page says why and what to do');
  await page.waitForFunction(() => document.getElementById('transcript')?.dataset.state === 'on');
  t.match(await page.textContent('#transcript'), /no download here/, 'the transcript is on, and not offered');
  t.ok(await page.isHidden('#transcript-links'), 'no download links');
  t.same(errors, [], 'no page errors');
});
