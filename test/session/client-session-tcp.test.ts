import t from 'tap';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Bridge } from '../../src/bridge.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLog } from '../../src/core/log.js';
import { loadConfigText } from '../../src/config/load.js';
import { ClientSession } from '../../src/session/client-session.js';
import { tcpTransport } from '../../src/net/tcp-listener.js';

/** A real loopback connection: the gateway's end and the client's end. */
async function socketPair(t: { teardown(fn: () => void): void }): Promise<{ server: Socket; client: Socket }> {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const port = (srv.address() as { port: number }).port;
  const client = connect({ port, host: '127.0.0.1' });
  const server = await accepted;
  t.teardown(() => (client.destroy(), server.destroy(), srv.close()));
  return { server, client };
}

t.test('a client that stops reading holds at most one 64 KiB batch of the ring, however large clientBufferBytes', async (t) => {
  const result = loadConfigText('lines:\n  ringBytes: 33554432\ntcp:\n  - name: lab\n    port: 1\n    clientBufferBytes: 2097152\n', 'c.yaml', {});
  if (!result.ok) throw new Error('config did not load');
  const { config } = result;
  const bridge = new Bridge({
    clock: systemClock,
    log: silentLog,
    ringBytes: config.lines.ringBytes,
    maxLineBytes: config.lines.maxLineBytes,
    delimiter: config.lines.delimiter,
    idleFlushMs: 0,
    outputDelimiter: 'crlf',
    writeQueueBytes: 65536,
  });
  t.teardown(() => bridge.dispose());
  const { server, client } = await socketPair(t);
  client.pause(); // never reads: the kernel's buffers fill, then the gateway's socket holds what it was given
  const session = new ClientSession(tcpTransport(server, config.tcp[0]!, config.lines.maxLineBytes), {
    bridge,
    policy: config.tcp[0]!,
    clock: systemClock,
    log: silentLog,
    maxLineBytes: config.lines.maxLineBytes,
    device: () => ({ device: 'test', settings: '115200 8N1' }),
    clientCount: () => 1,
    closed: () => {},
  });
  session.start();
  const line = Buffer.from(`${'x'.repeat(58)}\r\n`);
  const block = Buffer.concat(Array.from({ length: 1000 }, () => line));
  let most = 0;
  for (let i = 0; i < 40; i++) {
    // 600 KB between turns of the event loop, so a batch could be that large; 24 MB in all, far past what
    // loopback socket buffers absorb (several MB).
    for (let j = 0; j < 10; j++) bridge.deviceData(block);
    most = Math.max(most, server.writableLength);
    await new Promise((r) => setImmediate(r));
  }
  t.ok(server.writableLength > 0, 'the socket really backed up (something is held by the gateway)');
  // A batch ends on a line boundary (so may run one line past 64 KiB), and a `! missed` notice may sit behind it.
  const bound = 64 * 1024 + config.lines.maxLineBytes + 128;
  t.ok(most <= bound, `held by the gateway for that client: at most ${most} bytes (bound ${bound}), not clientBufferBytes (2 MiB)`);
  t.ok(session.stats.lost > 0, `the lines it could not take were skipped and counted (${session.stats.lost})`);
  session.destroy('test over');
});
