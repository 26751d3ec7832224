import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { freePort, startDaemon } from '../support/daemon.js';
import { CloseCode, SUBPROTOCOL } from '../../src/web/protocol.js';

/**
 * A tab the gateway closes (here: idleTimeoutMs) that never answers the close frame and keeps sending text
 * frames. `ws` waits up to 30 s for the answer and emits every frame meanwhile: the gateway must drop them,
 * not hold them. The client speaks WebSocket over a raw socket, since the `ws` client would answer the close.
 */

/** Resident memory of a process, in bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Opens /ws by hand; resolves once the server's close frame arrived, with its code. */
function openUntilClosed(port: number): Promise<{ socket: Socket; code: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('error', reject);
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(buf.toString('latin1')));
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      // Server frames are unmasked and small here (hello, notices): 7-bit or 16-bit lengths.
      while (buf.length >= 2) {
        const opcode = buf[0]! & 0x0f;
        let len = buf[1]! & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        }
        if (buf.length < at + len) return;
        const payload = buf.subarray(at, at + len);
        buf = buf.subarray(at + len);
        if (opcode === 0x8) {
          socket.removeAllListeners('data');
          resolve({ socket, code: payload.readUInt16BE(0) });
          return;
        }
      }
    });
  });
}

/** A masked text frame (mask key 0: the payload goes as is) of `size` bytes, 126 <= size < 65536. */
function textFrame(size: number): Buffer {
  const f = Buffer.alloc(8 + size, 0x78);
  f[0] = 0x81;
  f[1] = 0x80 | 126;
  f.writeUInt16BE(size, 2);
  f.writeUInt32BE(0, 4);
  return f;
}

t.test('a tab closed by the gateway that ignores the close frame and floods: the frames are dropped, not held', async (t) => {
  const dir = t.testdir();
  const webPort = await freePort();
  const d = await startDaemon(
    dir,
    `serial:
  path: sim:labbox
tcp: []
web:
  - name: web
    host: 127.0.0.1
    port: ${webPort}
    idleTimeoutMs: 300
log:
  level: info
`,
  );
  t.teardown(() => d.stop());
  const pid = d.child.pid!;

  const { socket, code } = await openUntilClosed(webPort);
  t.teardown(() => socket.destroy());
  t.equal(code, CloseCode.DONE, 'the gateway closed the silent tab');
  const before = rss(pid);

  // 128 MiB of lines (each under maxLineBytes), as fast as the gateway takes them, well inside ws's 30 s. Held,
  // they would all stay; dropped, the garbage levels off at some 20 MiB (buffers awaiting the collector).
  const chunk = Buffer.concat(Array.from({ length: 16 }, () => textFrame(4000)));
  const total = 128 * 1024 * 1024;
  let peak = before;
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    if (sent % (4 * 1024 * 1024) < chunk.length) peak = Math.max(peak, rss(pid));
  }
  await new Promise<void>((r) => socket.write(Buffer.alloc(0), () => r()));
  // What the kernel still buffered reaches the gateway within a moment.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, rss(pid));
  }
  t.equal(socket.destroyed, false, 'still within the closing handshake (the test measured what it meant to)');
  const grown = (peak - before) / (1024 * 1024);
  t.ok(grown < 48, `the gateway's memory grew ${grown.toFixed(1)} MiB while the tab sent 128 MiB after its close`);
});
