/**
 * Workload R (issue 17): how many bytes the gateway sends to a UDP source for each byte it received from it,
 * IP and UDP headers counted both ways. The device writes 60-byte lines at B's rate on a pty; sources on
 * loopback send one datagram each (empty, or one line) and never answer, as a forged source would not; each
 * then counts what reaches it for `seconds`. Run twice: with `trusted: []` (how the gateway treats any address
 * outside its trusted networks) and with loopback trusted (what every source got before issue 17, and what a
 * lab-LAN source still gets).
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startDaemon } from '../../test/support/daemon.js';
import { PtyPair } from '../../test/support/pty.js';

const IPV4_OVERHEAD = 28;

export interface ReflectionRow {
  scenario: string;
  trusted: string;
  sources: number;
  inBytes: number;
  outBytes: number;
  /** Worst single source, out / in. */
  worst: number;
}

interface Source {
  socket: DgramSocket;
  sent: number;
  got: number;
}

async function openSources(n: number): Promise<Source[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const socket = createSocket('udp4');
      // Each its own address as well as port: 127.2.x.y.
      await new Promise<void>((resolve) => socket.bind(0, `127.2.${Math.floor(i / 250)}.${1 + (i % 250)}`, () => resolve()));
      const s: Source = { socket, sent: 0, got: 0 };
      socket.on('message', (m) => (s.got += m.length + IPV4_OVERHEAD));
      return s;
    }),
  );
}

/** Lines at `rate`/s into the pty for `ms`. */
async function deviceTalks(pty: PtyPair, rate: number, ms: number): Promise<void> {
  const line = (n: number): string => `${String(n).padStart(10, '0')} ${'x'.repeat(47)}\r\n`; // 60 bytes
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < ms) {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate);
    let chunk = '';
    while (n < due) chunk += line(n++);
    if (chunk) await pty.write(chunk);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function reflection(scratch: string, o: { rate: number; seconds: number; manySources: number }): Promise<ReflectionRow[]> {
  const rows: ReflectionRow[] = [];
  for (const mode of ['shared', 'request'] as const) {
    for (const trusted of ['[]', '[loopback]']) {
      const dir = join(scratch, `reflection-${mode}-${trusted === '[]' ? 'none' : 'loopback'}`);
      mkdirSync(dir, { recursive: true });
      const pty = PtyPair.open(join(dir, 'tty'));
      const drain = setInterval(() => pty.takeBuffered(), 20);
      const udpPort = await freePort();
      const d = await startDaemon(
        dir,
        `serial:\n  path: ${pty.linkPath}\ntcp: []\nudp:\n  - name: udp\n    host: 127.0.0.1\n    port: ${udpPort}\n    mode: ${mode}\n    leaseSeconds: 60\n    maxPeers: 100000\n    trusted: ${trusted}\nlog:\n  level: error\n`,
      );
      try {
        await d.notify.waitFor((m) => /device open /.test(m.STATUS ?? ''), 5000);
        for (const [scenario, count, body] of [
          ['one empty datagram', 1, ''],
          ['one line (id)', 1, 'id'],
          [`${o.manySources} sources, one empty datagram each`, o.manySources, ''],
        ] as const) {
          const sources = await openSources(count);
          for (const s of sources) {
            s.sent += body.length + IPV4_OVERHEAD;
            s.socket.send(body, udpPort, '127.0.0.1');
          }
          await deviceTalks(pty, o.rate, o.seconds * 1000);
          await new Promise((r) => setTimeout(r, 200));
          rows.push({
            scenario: `${mode}: ${scenario}`,
            trusted,
            sources: count,
            inBytes: sources.reduce((n, s) => n + s.sent, 0),
            outBytes: sources.reduce((n, s) => n + s.got, 0),
            worst: Math.max(...sources.map((s) => s.got / s.sent)),
          });
          for (const s of sources) s.socket.close();
        }
      } finally {
        clearInterval(drain);
        await d.stop();
        pty.close();
      }
    }
  }
  return rows;
}

export function reflectionTable(rows: ReflectionRow[], o: { rate: number; seconds: number }): string {
  const head = `R UDP amplification (device ${o.rate} 60-byte lines/s for ${o.seconds} s; bytes on the wire, headers counted)`;
  const cols = ['scenario', 'trusted', 'bytes in', 'bytes out', 'all', 'worst source'];
  const body = rows.map((r) => [r.scenario, r.trusted, String(r.inBytes), String(r.outBytes), `${(r.outBytes / r.inBytes).toFixed(2)}x`, `${r.worst.toFixed(2)}x`]);
  const widths = cols.map((c, i) => Math.max(c.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [head, fmt(cols), ...body.map(fmt)].join('\n');
}
