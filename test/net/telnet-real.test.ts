/**
 * The real `telnet` binary (inetutils 2.4 on Debian 12) against a small server built from TelnetDecoder and
 * InputFramer. Skipped with a message when telnet (or, for the terminal cases, script(1)) is missing.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { TelnetDecoder, escapeIac, IP, type TelnetMode } from '../../src/net/telnet.js';
import { InputFramer } from '../../src/net/input-framer.js';

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const TELNET = onPath('telnet');
const SCRIPT = onPath('script');
const noTelnet = TELNET ? false : 'telnet is not on PATH (Debian: apt-get install telnet)';
const noPty = noTelnet || (SCRIPT ? false : 'script(1) is not on PATH (Debian: bsdutils) to give telnet a terminal');

/** Something to wait on without sleeping: resolves when `ready()` holds, re-checked on every change. */
class Watch {
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];
  changed(): void {
    this.waiters = this.waiters.filter((w) => (w.ready() ? (w.resolve(), false) : true));
  }
  until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }
}

/** One-client server: greets with `ready`, decodes telnet, frames lines, records what it got. */
async function startServer(t: Test, mode: TelnetMode) {
  const watch = new Watch();
  const got = { lines: [] as string[], commands: [] as number[], replies: [] as string[] };
  let client: Socket | undefined;
  let decoder: TelnetDecoder | undefined;
  const server = createServer((socket) => {
    client = socket;
    decoder = new TelnetDecoder({ mode });
    const framer = new InputFramer({ maxLineBytes: 256 });
    socket.on('error', () => {});
    socket.write('ready\r\n');
    socket.on('data', (chunk: Buffer) => {
      decoder!.decode(
        chunk,
        (view) =>
          framer.push(
            view,
            (line) => got.lines.push(line.toString('latin1')),
            () => got.lines.push('(overflow)'),
          ),
        (reply) => {
          got.replies.push(reply.toString('hex'));
          socket.write(reply);
        },
        (code) => got.commands.push(code),
      );
      watch.changed();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    client?.destroy();
    server.close();
  });
  return {
    port: (server.address() as AddressInfo).port,
    got,
    until: (ready: () => boolean) => watch.until(ready),
    send(text: string): void {
      const bytes = Buffer.from(text, 'latin1');
      client!.write(decoder!.active ? escapeIac(bytes) : bytes);
    },
    end(): void {
      client!.end();
    },
  };
}

/** Runs a client process, keeps its output, and kills it at teardown if it is still there. */
function run(t: Test, command: string, args: string[]) {
  const watch = new Watch();
  const child: ChildProcess = spawn(command, args, { stdio: 'pipe', env: { ...process.env, TERM: 'dumb' } });
  let output = Buffer.alloc(0);
  let exited: { code: number | null; signal: string | null } | undefined;
  child.stdout!.on('data', (c: Buffer) => {
    output = Buffer.concat([output, c]);
    watch.changed();
  });
  child.stderr!.on('data', () => {});
  child.stdin!.on('error', () => {});
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    watch.changed();
  });
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  return {
    output: () => output,
    type: (text: string) => child.stdin!.write(Buffer.from(text, 'latin1')),
    until: (ready: () => boolean) => watch.until(ready),
    exited: () => exited,
  };
}

const shows = (client: { output: () => Buffer }, text: string) => () =>
  client.output().includes(Buffer.from(text, 'latin1'));

t.test('piped telnet: the server gets the line id, the client sees the answer and exits', { skip: noTelnet, timeout: 15000 }, async (t) => {
  const server = await startServer(t, 'auto');
  const telnet = run(t, TELNET!, ['127.0.0.1', String(server.port)]);
  await telnet.until(shows(telnet, 'ready'));
  telnet.type('id\n');
  await server.until(() => server.got.lines.length > 0);
  t.same(server.got.lines, ['id']);
  t.same(server.got.replies, [], 'telnet on an explicit port negotiates nothing');
  server.send('uid=0(root) gid=0(root)\r\n');
  await telnet.until(shows(telnet, 'uid=0(root) gid=0(root)'));
  server.end();
  await telnet.until(() => telnet.exited() !== undefined);
  t.same(telnet.exited(), { code: 0, signal: null }, 'telnet left on its own when the server closed');
});

t.test('piped telnet in mode on: 0xFF crosses both ways intact', { skip: noTelnet, timeout: 15000 }, async (t) => {
  const server = await startServer(t, 'on');
  const telnet = run(t, TELNET!, ['127.0.0.1', String(server.port)]);
  await telnet.until(shows(telnet, 'ready'));
  telnet.type('a\xffb\n');
  await server.until(() => server.got.lines.length > 0);
  t.same(server.got.lines, ['a\xffb'], 'telnet sent IAC IAC, the decoder made it one 0xFF');
  server.send('x\xffy\r\n');
  await telnet.until(shows(telnet, 'x\xffy'));
  t.pass('escapeIac output shows as one 0xFF');
  server.end();
  await telnet.until(() => telnet.exited() !== undefined);
});

t.test('telnet on a terminal: Ctrl-C is IAC IP, and output keeps flowing after it', { skip: noPty, timeout: 15000 }, async (t) => {
  const server = await startServer(t, 'auto');
  // script(1) gives telnet a pty, so it behaves as under a user's terminal (Ctrl-C becomes IAC IP)
  const telnet = run(t, SCRIPT!, ['-qfec', `${TELNET} 127.0.0.1 ${server.port}`, '/dev/null']);
  await telnet.until(shows(telnet, 'ready'));
  for (const round of [1, 2]) {
    telnet.type('ab\x03');
    await server.until(() => server.got.commands.length === round);
    t.same(server.got.commands.slice(-1), [IP], `round ${round}: Ctrl-C arrived as IAC IP`);
    telnet.type('id\r');
    await server.until(() => server.got.lines.length === round);
    t.same(server.got.lines.slice(-1), ['id'], `round ${round}: the line is id, without the ab Ctrl-C dropped`);
    // telnet hides everything after a Ctrl-C until its DO TIMING-MARK is answered: this is the hang check
    server.send(`answer ${round}\r\n`);
    await telnet.until(shows(telnet, `answer ${round}`));
    t.pass(`round ${round}: the client sees output after Ctrl-C`);
  }
  t.same(server.got.replies, ['fffc06', 'fffc06'], 'WONT TIMING-MARK, once per Ctrl-C');
  server.end();
  await telnet.until(() => telnet.exited() !== undefined);
  t.pass('telnet exited when the server closed');
});
