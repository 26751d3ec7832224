import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { freePort, startDaemon, type RunningDaemon } from '../../support/daemon.js';
import { PtyPair } from '../../support/pty.js';
import { Random, seedFromEnv } from '../../support/random.js';
import { sleep, waitUntil } from '../measure.js';

/**
 * Issue 7, case 3: garbage from both sides, while a well-behaved client works.
 *
 * All at once, on a real pty and two listeners (`lab`: telnet off; `tel`: telnet on):
 * - client A (lab) sends R bytes of random data (CR, LF, NUL and 0xFF included, so random lines of random
 *   length, some over maxLineBytes);
 * - client B (tel) sends random telnet: commands, option requests, subnegotiations (some over the decoder's
 *   512-byte limit, some never ended), IAC IAC, CR NUL, text;
 * - client C (lab) sends lines of 100 x maxLineBytes, then a normal line;
 * - the device sends R bytes of random data;
 * - the good client G (lab) sends a numbered line with NUL and 0xFF in it every few ms, and reads.
 * Checked from outside: the daemon is alive and answers both ways afterwards; G received the device's bytes
 * exactly (same length and SHA-256: telnet off and no lag, so the framing must not change a byte); every line
 * of G reached the device intact and in order; every line A sent (framed by the rules of src/net/input-framer.ts,
 * recomputed here) reached the device unchanged and in order; C was told `! line too long` for each long
 * line and its next line arrived; and no line longer than maxLineBytes reached the device (the pty's input
 * split on CR LF).
 */

interface Params {
  randomBytes: number;
  telnetBytes: number;
  longLines: number;
  goodEveryMs: number;
}

const PARAMS: Record<Scale, Params> = {
  fast: { randomBytes: 1 << 20, telnetBytes: 128 << 10, longLines: 3, goodEveryMs: 10 },
  soak: { randomBytes: 10 << 20, telnetBytes: 2 << 20, longLines: 20, goodEveryMs: 20 },
};

const MAX_LINE = 1024;
const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const CRLF = Buffer.from('\r\n');

export const reliabilityCase: ReliabilityCase = { name: '03 garbage', needsPty: true, run };

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const p = PARAMS[scale];
  const rnd = new Random(seedFromEnv());
  r.notes.push(`seed ${rnd.seed}`);
  const pty = PtyPair.open(join(dir, 'ttyLAB'));
  const device = new DeviceSide(pty);
  const lab = await freePort();
  const tel = await freePort();
  let d: RunningDaemon | undefined;
  const clients: Peer[] = [];
  let goodTimer: NodeJS.Timeout | undefined;
  try {
    d = await startDaemon(dir, config(pty.linkPath, lab, tel));
    const g = await Peer.connect(lab);
    const a = await Peer.connect(lab);
    const b = await Peer.connect(tel);
    const c = await Peer.connect(lab);
    clients.push(g, a, b, c);
    // Each client's first line reaching the pty: the port is open and every client is attached.
    clients.forEach((x, i) => x.socket.write(`hello ${i}\n`));
    await waitUntil(() => device.lines.filter((l) => l.startsWith('hello ')).length === 4, 5000);

    // The good client: a line with NUL and 0xFF every few ms.
    let goodSent = 0;
    const goodLine = (n: number) => Buffer.concat([Buffer.from(`good ${n} `), Buffer.from([0x00, 0xff, 0xfe, 0x80]), Buffer.from(' end')]);
    goodTimer = setInterval(() => g.socket.write(Buffer.concat([goodLine(goodSent++), Buffer.from('\n')])), p.goodEveryMs);

    // A: random bytes; the lines the device must see from it, by the framer's rules.
    const garbageA = rnd.bytes(p.randomBytes);
    const expectA = frameLikeGateway(garbageA, MAX_LINE);
    device.expectA = expectA;
    const sentA = writeAll(a.socket, garbageA);
    // B: random telnet.
    const sentB = writeAll(b.socket, telnetGarbage(rnd, p.telnetBytes));
    // C: lines of 100 x maxLineBytes, each followed by a normal line.
    const long = Buffer.alloc(100 * MAX_LINE, 0x5a);
    const cParts: Buffer[] = [];
    for (let i = 0; i < p.longLines; i++) cParts.push(long, Buffer.from(`\nafter long ${i}\n`));
    const sentC = writeAll(c.socket, Buffer.concat(cParts));
    // The device: random bytes, in pieces, as a broken box would babble.
    const fromDevice = rnd.bytes(p.randomBytes);
    const deviceHash = createHash('sha256').update(fromDevice).digest('hex');
    const gotAll = () => g.bytes >= fromDevice.length;
    const deviceDone = (async () => {
      for (let i = 0; i < fromDevice.length; i += 65536) await pty.write(fromDevice.subarray(i, i + 65536));
    })();

    await Promise.all([sentA, sentB, sentC, deviceDone]);
    r.faults = 4;
    const allIn = await waitUntil(gotAll, 20_000);
    clearInterval(goodTimer);
    goodTimer = undefined;
    const lastGood = `good ${goodSent - 1} `;
    // A's lines come as fast as the pty takes them; the others' are interleaved fairly.
    await waitUntil(
      () =>
        device.matchedA === expectA.length &&
        device.lines.some((l) => l.startsWith(lastGood)) &&
        device.lines.some((l) => l === `after long ${p.longLines - 1}`),
      30_000,
    );

    // Alive: a line each way.
    g.socket.write('still there?\n');
    const up = await waitUntil(() => device.lines.includes('still there?'), 3000);
    const mark = g.bytes;
    await pty.write('yes\r\n');
    const down = await waitUntil(() => g.bytes >= mark + 5, 3000);
    r.checks.push({
      ok: d.child.exitCode === null && up && down,
      what: `the daemon survived and still bridges both ways (client line to the device: ${up}, device line to the client: ${down})`,
    });

    const got = g.received().subarray(0, fromDevice.length);
    const gotHash = createHash('sha256').update(got).digest('hex');
    const firstDiff = got.findIndex((x, i) => x !== fromDevice[i]);
    r.checks.push({
      ok: allIn && gotHash === deviceHash,
      what:
        `${mb(fromDevice.length)} of random device bytes reached the telnet-off client unchanged (` +
        (gotHash === deviceHash
          ? 'same length and SHA-256'
          : `got ${g.bytes} bytes, first difference at ${firstDiff}: sent ${hex(fromDevice, firstDiff)}, got ${hex(got, firstDiff)}; ` +
            `the sent bytes from there appear at ${got.indexOf(fromDevice.subarray(firstDiff, firstDiff + 32), Math.max(0, firstDiff - 64))}`) +
        ')',
    });

    const goods = device.lines.filter((l) => l.startsWith('good '));
    const goodsOk = goods.length === goodSent && goods.every((l, i) => Buffer.from(l, 'latin1').equals(goodLine(i)));
    r.linesSent = goodSent;
    r.linesDelivered = goods.length;
    r.linesDropped = g.notices.filter((n) => n.startsWith('! line refused')).length;
    r.checks.push({
      ok: goodsOk,
      what: `the good client's ${goodSent} lines (NUL and 0xFF inside) reached the device intact and in order during the garbage (${goods.length} arrived)`,
    });

    const matched = device.matchedA;
    const refusedA = a.notices.filter((n) => n.startsWith('! line refused')).length;
    r.checks.push({
      ok: matched === expectA.length,
      what:
        `client A's ${expectA.length} random lines (framed at LF, CR LF, CR NUL or CR; over ${MAX_LINE} bytes dropped) reached the device unchanged ` +
        `and in order: ${matched} matched, ${refusedA} refused with a notice`,
    });

    // The notices travel to C while the device side is being checked: give them the moment they need.
    await waitUntil(() => c.notices.filter((n) => n.startsWith('! line too long')).length >= p.longLines, 3000);
    const tooLong = c.notices.filter((n) => n.startsWith('! line too long')).length;
    const afterLong = device.lines.filter((l) => l.startsWith('after long ')).length;
    r.checks.push({
      ok: tooLong === p.longLines && afterLong === p.longLines,
      what: `${p.longLines} lines of ${100 * MAX_LINE} bytes: ${tooLong} \`! line too long\` notices, ${afterLong} following lines arrived`,
    });

    r.checks.push({
      ok: device.longest <= MAX_LINE && device.tail.length === 0,
      what: `no line longer than maxLineBytes (${MAX_LINE}) reached the device: the longest of ${device.lines.length} was ${device.longest} bytes`,
    });
    r.notes.push(
      `A got ${a.notices.filter((n) => n.startsWith('! line too long')).length} \`! line too long\` notices for its random lines over ` +
        `${MAX_LINE} bytes; the device received ${device.lines.length} lines in all`,
    );
    return r;
  } finally {
    if (goodTimer) clearInterval(goodTimer);
    for (const x of clients) x.socket.destroy();
    await d?.stop();
    pty.close();
  }
}

function config(link: string, lab: number, tel: number): string {
  const listener = (name: string, port: number, telnet: string) => `  - name: ${name}
    host: 127.0.0.1
    port: ${port}
    telnet: ${telnet}
    clientBufferBytes: 2097152`;
  return `serial:
  path: ${link}
lines:
  maxLineBytes: ${MAX_LINE}
  ringBytes: 33554432
  idleFlushMs: 50
tcp:
${listener('lab', lab, 'off')}
${listener('tel', tel, 'on')}
udp: []
log:
  level: warning
`;
}

/** What the device (the test, on the pty's master) receives: split on CR LF as it arrives. */
class DeviceSide {
  readonly lines: string[] = [];
  longest = 0;
  tail = Buffer.alloc(0);
  /** Client A's expected lines, and how many of them (in order) have arrived so far. */
  expectA: string[] = [];
  matchedA = 0;

  constructor(pty: PtyPair) {
    pty.on('data', (chunk) => {
      pty.takeBuffered();
      let buf = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
      for (let at = buf.indexOf(CRLF); at >= 0; at = buf.indexOf(CRLF)) {
        this.longest = Math.max(this.longest, at);
        const line = buf.toString('latin1', 0, at);
        this.lines.push(line);
        if (this.matchedA < this.expectA.length && line === this.expectA[this.matchedA]) this.matchedA++;
        buf = buf.subarray(at + 2);
      }
      this.tail = Buffer.from(buf);
    });
  }
}

/** A client that keeps what it receives (device bytes) and the gateway's notices to it. */
class Peer {
  bytes = 0;
  readonly notices: string[] = [];
  private readonly chunks: Buffer[] = [];
  private text = '';

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new Peer(s)));
      s.once('error', reject);
    });
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.chunks.push(chunk);
    // Notices are looked for in the text; device bytes may look like anything, so only '! ' at a line start counts.
    // Lines are taken out before the rest is trimmed: a big read can carry a notice far from its end.
    this.text += chunk.toString('latin1');
    let at: number;
    while ((at = this.text.indexOf('\r\n')) >= 0) {
      const line = this.text.slice(0, at);
      this.text = this.text.slice(at + 2);
      if (/^! (line too long|line refused|missed)/.test(line)) this.notices.push(line);
    }
    this.text = this.text.slice(-8192);
  }
}

/** The lines the gateway must forward from these bytes (telnet off): the contract of src/net/input-framer.ts. */
function frameLikeGateway(bytes: Buffer, max: number): string[] {
  const lines: string[] = [];
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const x = bytes[i]!;
    if (x !== LF && x !== CR) {
      i++;
      continue;
    }
    if (i - start <= max) lines.push(bytes.toString('latin1', start, i));
    if (x === CR && (bytes[i + 1] === LF || bytes[i + 1] === NUL)) i++;
    i++;
    start = i;
  }
  return lines;
}

/** Random telnet: commands, option requests, subnegotiations (long ones, unended ones), IAC IAC, text, CR NUL. */
function telnetGarbage(rnd: Random, size: number): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  while (n < size) {
    let part: Buffer;
    switch (rnd.int(0, 6)) {
      case 0:
        part = Buffer.from([0xff, rnd.int(0xf0, 0xfe)]);
        break;
      case 1:
        part = Buffer.from([0xff, rnd.int(0xfb, 0xfe), rnd.int(0, 255)]);
        break;
      case 2:
        part = Buffer.concat([Buffer.from([0xff, 0xfa]), rnd.bytes(rnd.int(0, 1500)), rnd.next() < 0.7 ? Buffer.from([0xff, 0xf0]) : Buffer.alloc(0)]);
        break;
      case 3:
        part = Buffer.from([0xff, 0xff]);
        break;
      case 4:
        part = Buffer.from([CR, NUL]);
        break;
      default:
        part = rnd.bytes(rnd.int(1, 200));
    }
    parts.push(part);
    n += part.length;
  }
  return Buffer.concat(parts);
}

function writeAll(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    for (let i = 0; i < bytes.length; i += 65536) socket.write(bytes.subarray(i, i + 65536));
    socket.write(Buffer.alloc(0), () => resolve());
    socket.once('close', () => resolve());
  });
}

function hex(b: Buffer, at: number): string {
  return b.subarray(Math.max(0, at - 8), at + 24).toString('hex');
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
