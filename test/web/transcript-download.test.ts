import t from 'tap';
import { request } from 'node:http';
import { join } from 'node:path';
import { localDay, parseRecord } from '../../src/transcript/record.js';
import { TestClient, freePort, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { until } from '../support/until.js';

/**
 * The dashboard's download of today's transcript (issue 15), against the built daemon: a class chats over TCP,
 * the instructor downloads the day as text and as JSON Lines with the monitor's password; a student (no
 * password, or from outside monitorAllow) gets nothing; an unguarded dashboard and a transcript that is off say why.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, opts: { password?: string; method?: string; localAddress?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.password !== undefined) headers.authorization = `Basic ${Buffer.from(`teacher:${opts.password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, localAddress: opts.localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function config(tcp: number, web: number, dir: string, webExtra: string, enabled = true): string {
  return `serial:
  path: sim:labbox
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${tcp}
web:
  - name: web
    host: 127.0.0.1
    port: ${web}
${webExtra}
transcript:
  enabled: ${enabled}
  dir: ${dir}
  flushMs: 20
log:
  level: warning
`;
}

async function status(d: { web: number; password?: string }): Promise<{ state: string; detail: string; today: string | null }> {
  const a = await get(d.web, '/api/status', { password: d.password });
  return (JSON.parse(a.body) as { transcript: { state: string; detail: string; today: string | null } }).transcript;
}

t.test('the instructor downloads today as a chat and as JSON Lines; students cannot', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const tcp = await freePort();
  const web = await freePort();
  const d: RunningDaemon = await startDaemon(
    base,
    config(tcp, web, dir, '    monitorPassword: s3cret\n    monitorAllow: [127.0.0.1]\n    allow: [127.0.0.0/8]'),
  );
  t.teardown(() => d.stop('SIGKILL'));
  const today = localDay(Date.now());

  const s = await status({ web, password: 's3cret' });
  t.same(s, { state: 'on', detail: '', today }, "the status names today's file once it exists");

  const alice = await TestClient.connect(tcp);
  alice.send('id\n');
  await alice.waitFor('6510500000');
  alice.send('echo \x1b[2Jhi\n');
  await alice.waitFor('hi');
  const port = alice.socket.localPort;
  await until(
    async () => (await get(web, `/transcript/${today}.jsonl`, { password: 's3cret' })).body.includes('hi'),
    5000,
    'the lines reach the file',
    50, // each look fetches the whole file
  );

  const txt = await get(web, `/transcript/${today}.txt`, { password: 's3cret' });
  t.equal(txt.status, 200);
  t.equal(txt.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(txt.headers['content-disposition'], `attachment; filename="transcript-${today}.txt"`);
  t.match(txt.headers['content-security-policy'], /default-src 'self'/);
  const chat = txt.body.replace(/^\d\d:\d\d:\d\d /gm, '');
  t.ok(chat.startsWith(`--- ${today} ---\n`), 'the day is named first');
  t.ok(chat.includes(`tcp:lab 127.0.0.1:${port} > id\ndevice < 6510500000\n`), 'the conversation, as the transcript command prints it');
  t.ok(chat.includes(`> echo \\x1b[2Jhi\n`), 'control bytes are shown as \\xNN, never sent raw');
  t.notOk(txt.body.includes('\x1b'), 'no escape byte in the download');

  const jsonl = await get(web, `/transcript/${today}.jsonl`, { password: 's3cret' });
  t.equal(jsonl.status, 200);
  t.equal(jsonl.headers['content-disposition'], `attachment; filename="transcript-${today}.jsonl"`);
  const lines = jsonl.body.split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  t.ok(lines.length >= 5 && lines.every((l) => parseRecord(l) !== null), `${lines.length} lines, every one a whole record`);
  t.ok(
    lines.some((l) => {
      const r = parseRecord(l);
      return r?.k === 'client' && r.port === port && r.text === 'id';
    }),
    "alice's id is a record with her address",
  );

  const metrics = await get(web, '/metrics', { password: 's3cret' });
  t.match(metrics.body, /^serialgw_transcript_state\{state="on"\} 1$/m, '/metrics says the transcript is on');
  t.match(metrics.body, /^serialgw_transcript_state\{state="stopped"\} 0$/m);

  const head = await get(web, `/transcript/${today}.txt`, { password: 's3cret', method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '', 'HEAD: headers only');

  // Who may not.
  const noPassword = await get(web, `/transcript/${today}.txt`);
  t.equal(noPassword.status, 401, 'no password: 401');
  t.notOk(noPassword.body.includes('6510500000'));
  const wrong = await get(web, `/transcript/${today}.txt`, { password: 'guess' });
  t.equal(wrong.status, 401, 'a wrong password: 401');
  const student = await get(web, `/transcript/${today}.txt`, { password: 's3cret', localAddress: '127.0.0.2' });
  t.equal(student.status, 403, 'an address in allow but not in monitorAllow: 403');
  t.match(student.body, /monitorAllow/);

  // What is not there.
  const other = await get(web, '/transcript/2001-01-01.txt', { password: 's3cret' });
  t.equal(other.status, 404);
  t.match(other.body, /no transcript for 2001-01-01/);
  for (const bad of ['/transcript/../config.yaml', '/transcript/today.txt', `/transcript/${today}.csv`, '/transcript/']) {
    const a = await get(web, bad, { password: 's3cret' });
    t.equal(a.status, 404, `${bad}: 404`);
  }
  alice.close();
});

t.test('an unguarded dashboard does not hand out the transcript; a transcript that is off says so', async (t) => {
  const base = t.testdir();
  const dir = join(base, 'transcript');
  const tcp = await freePort();
  const web = await freePort();
  let d = await startDaemon(base, config(tcp, web, dir, ''));
  t.teardown(() => d.stop('SIGKILL'));
  const today = localDay(Date.now());
  t.equal((await status({ web })).today, today);
  const open = await get(web, `/transcript/${today}.txt`);
  t.equal(open.status, 403, 'no monitorPassword and no monitorAllow: 403');
  t.match(open.body, /the transcript download needs monitorPassword or monitorAllow on web listener web/);
  await d.stop();

  d = await startDaemon(base, config(tcp, web, dir, '    monitorAllow: [127.0.0.1]', false));
  t.same(await status({ web }), { state: 'off', detail: '', today: null }, 'off: no link');
  const off = await get(web, `/transcript/${today}.txt`);
  t.equal(off.status, 404);
  t.match(off.body, /the transcript is off/);
});
