/**
 * The clients, in a process of their own (forked by farm.ts) so that reading fifty or five hundred sockets
 * does not delay the device's writes, and so the bridge, the device and the clients each get a core's share.
 *
 * Readers count bytes (throughput) or parse stamped lines and record pty-write -> socket-read delay in a
 * histogram (latency). Stalled clients are raw sockets made through libc: SO_RCVBUF is shrunk before connect
 * (Node cannot) and they never read, so the bridge's sends to them back up after a few KiB.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { Histogram } from './histogram.js';
import { acceptQueue } from './proc.js';
import { LINE_BYTES, SEQ_AT, SEQ_DIGITS, STAMP_AT, STAMP_DIGITS, getDigits } from './lines.js';
import type { FarmReply, FarmRequest, ReaderReport } from './farm.js';

const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });
const libc = koffi.load('libc.so.6');
const cSocket = libc.func('int socket(int, int, int)') as (d: number, t: number, p: number) => number;
const cSetsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  len: number,
) => number;
const cConnect = libc.func('int connect(int, const void *, uint32_t)') as (fd: number, addr: Buffer, len: number) => number;
const cClose = libc.func('int close(int)') as (fd: number) => number;
const cWrite = libc.func('long write(int, const void *, size_t)') as (fd: number, buf: Buffer, n: number) => number;
const cRead = libc.func('long read(int, _Out_ uint8_t *, size_t)') as (fd: number, buf: Buffer, n: number) => number;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
// ser2net listens with a backlog of 5: more connects than that before it accepts overflow its accept queue, and
// the kernel drops the handshake's last ACK or the SYN (the client or server retries only a second later). So
// clients connect a few at a time, and the next few wait until the server has accepted the last.
const CONNECT_BATCH = 4;
const ACCEPT_WAIT_MS = 2000;

type Mode = 'sync' | 'bytes' | 'stamps';

let mode: Mode = 'sync';
let baseNs = process.hrtime.bigint();
let hist = new Histogram();
const readers: Reader[] = [];
const stalled: number[] = [];

const LF = 0x0a;
const BANG = 0x21;
const LF_BANG = Buffer.from('\n!');

const nowNs = (): number => Number(process.hrtime.bigint() - baseNs);

class Reader {
  bytes = 0;
  lastAt = 0;
  lines = 0;
  lost = 0;
  other = 0;
  nextSeq = -1;
  syncSeen = -1;
  closed = false;
  private carry: Buffer | null = null;
  private atLineStart = true;
  private inNotice = false;
  private syncTail = '';

  /** A TCP socket or a WebSocket: the reader only needs to know when it closed, and to close it. */
  constructor(readonly socket: { destroy(): void }) {}

  reset(): void {
    this.bytes = 0;
    this.lastAt = 0;
    this.lines = 0;
    this.lost = 0;
    this.other = 0;
    this.nextSeq = -1;
    this.carry = null;
  }

  onData(chunk: Buffer): void {
    const now = nowNs();
    // A gateway notice (`! missed N lines`, sent up to 2 s after the data it is about) is not device data:
    // counting its arrival as the last byte would stretch a throughput run by those seconds.
    const data = chunk.length - this.noticeBytes(chunk);
    if (data > 0) {
      this.bytes += data;
      this.lastAt = now;
    }
    if (mode === 'stamps') this.parse(chunk, now);
    else if (mode === 'sync') this.scanSync(chunk);
  }

  /** How many bytes of `chunk` belong to lines starting with `!` (tracked across chunks). */
  private noticeBytes(chunk: Buffer): number {
    let notice = 0;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.inNotice || (this.atLineStart && chunk[pos] === BANG)) {
        const lf = chunk.indexOf(LF, pos);
        const end = lf < 0 ? chunk.length : lf + 1;
        notice += end - pos;
        this.inNotice = lf < 0;
        this.atLineStart = lf >= 0;
        pos = end;
        continue;
      }
      const at = chunk.indexOf(LF_BANG, pos);
      if (at < 0) {
        this.atLineStart = chunk[chunk.length - 1] === LF;
        return notice;
      }
      pos = at + 1;
      this.atLineStart = true;
    }
    return notice;
  }

  private scanSync(chunk: Buffer): void {
    const text = this.syncTail + chunk.toString('latin1');
    for (const m of text.matchAll(/SYNC (\d+)\r\n/g)) this.syncSeen = Math.max(this.syncSeen, Number(m[1]));
    this.syncTail = text.slice(-16);
  }

  private parse(chunk: Buffer, now: number): void {
    let pos = 0;
    if (this.carry) {
      const lf = chunk.indexOf(0x0a);
      if (lf < 0) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      const line = Buffer.concat([this.carry, chunk.subarray(0, lf + 1)]);
      this.carry = null;
      this.line(line, 0, line.length - 1, now);
      pos = lf + 1;
    }
    while (pos < chunk.length) {
      const lf = chunk.indexOf(0x0a, pos);
      if (lf < 0) {
        this.carry = Buffer.from(chunk.subarray(pos));
        return;
      }
      this.line(chunk, pos, lf, now);
      pos = lf + 1;
    }
  }

  private line(buf: Buffer, start: number, lf: number, now: number): void {
    if (buf[start] !== 0x54 || lf - start + 1 !== LINE_BYTES) {
      this.other++;
      return;
    }
    const stamp = getDigits(buf, start + STAMP_AT, STAMP_DIGITS);
    const seq = getDigits(buf, start + SEQ_AT, SEQ_DIGITS);
    if (Number.isNaN(stamp) || Number.isNaN(seq)) {
      this.other++;
      return;
    }
    hist.record((now - stamp) / 1000);
    if (this.nextSeq >= 0 && seq > this.nextSeq) this.lost += seq - this.nextSeq;
    this.nextSeq = seq + 1;
    this.lines++;
  }

  report(): ReaderReport {
    return { bytes: this.bytes, lastAtMs: this.lastAt / 1e6, lines: this.lines, lost: this.lost, other: this.other, closed: this.closed };
  }
}

/**
 * Every reader reads into this one buffer (`onread`: no Buffer allocated and no stream machinery per read): the
 * farm reads fifty sockets per line in one thread, and its own cost per read is delay it adds to every bridge's
 * figures. A reader is done with a chunk when its callback returns (what it keeps, it copies).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function connectReader(port: number): Promise<Reader | null> {
  return new Promise((resolve) => {
    let reader: Reader | null = null;
    const s = connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          reader?.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    s.once('connect', () => {
      const r = (reader = new Reader(s));
      s.on('close', () => (r.closed = true));
      s.on('error', () => {});
      resolve(r);
    });
    s.once('error', () => resolve(null));
  });
}

/**
 * A browser tab as the gateway sees one: a WebSocket on the web listener's /ws, device bytes in binary frames
 * (the gateway's JSON text frames, {at} after each batch, are control, not data).
 */
function connectWebReader(port: number): Promise<Reader | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'serial-gateway.1', { perMessageDeflate: false });
    const reader = new Reader({ destroy: () => ws.terminate() });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) reader.onData(data);
    });
    ws.once('open', () => resolve(reader));
    ws.on('close', () => (reader.closed = true));
    ws.on('error', () => resolve(null));
  });
}

/**
 * A stalled browser tab: the WebSocket handshake for /ws on a blocking socket, then never another read (what a
 * frozen or backgrounded tab does to the gateway). The 101 answer is read up to its blank line; what follows it
 * stays in the socket.
 */
function upgradeStalled(fd: number, port: number): boolean {
  const request = Buffer.from(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: serial-gateway.1\r\n\r\n`,
  );
  if (cWrite(fd, request, request.length) !== request.length) return false;
  const one = Buffer.alloc(1);
  let head = '';
  // Byte by byte, so nothing after the answer's header is taken off the socket.
  while (!head.endsWith('\r\n\r\n') && head.length < 4096) {
    if (cRead(fd, one, 1) !== 1) return false;
    head += one.toString('latin1');
  }
  return head.startsWith('HTTP/1.1 101');
}

function connectStalled(port: number, rcvbuf: number, web: boolean): boolean {
  const fd = cSocket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const size = Buffer.alloc(4);
  size.writeInt32LE(rcvbuf);
  cSetsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4);
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  addr.writeUInt16BE(port, 2);
  addr.set([127, 0, 0, 1], 4);
  // Blocking connect: on loopback it completes as soon as the kernel queues the connection.
  if (cConnect(fd, addr, 16) !== 0 || (web && !upgradeStalled(fd, port))) {
    cClose(fd);
    return false;
  }
  stalled.push(fd);
  return true;
}

/** Waits (briefly) until the server at `port` has accepted every connection the kernel completed. */
async function acceptedBy(port: number): Promise<void> {
  const until = Date.now() + ACCEPT_WAIT_MS;
  while (acceptQueue(port) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
}

async function handle(req: FarmRequest): Promise<FarmReply> {
  switch (req.op) {
    case 'connect': {
      let connected = 0;
      if (req.stalled) {
        for (let i = 0; i < req.count; i++) {
          if (connectStalled(req.port, req.rcvbuf ?? 4096, req.web === true)) connected++;
          await acceptedBy(req.port);
        }
        return { op: 'connect', connected };
      }
      for (let i = 0; i < req.count; i += CONNECT_BATCH) {
        const connectOne = req.web ? connectWebReader : connectReader;
        const batch = await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, req.count - i) }, () => connectOne(req.port)));
        for (const r of batch) if (r) (readers.push(r), connected++);
        await acceptedBy(req.port);
      }
      return { op: 'connect', connected };
    }
    case 'synced':
      mode = 'sync';
      return { op: 'synced', seen: readers.filter((r) => !r.closed && r.syncSeen >= req.token).length, open: readers.filter((r) => !r.closed).length };
    case 'measure':
      baseNs = BigInt(req.base);
      hist = new Histogram();
      for (const r of readers) r.reset();
      mode = req.mode;
      return { op: 'measure' };
    case 'wait':
      return new Promise((resolve) => {
        const started = Date.now();
        let lastTotal = -1;
        let lastChange = Date.now();
        const timer = setInterval(() => {
          const open = readers.filter((r) => !r.closed);
          const total = readers.reduce((n, r) => n + r.bytes, 0);
          if (total !== lastTotal) (lastTotal = total), (lastChange = Date.now());
          const done = open.every((r) => r.bytes >= req.bytes);
          if (done || Date.now() - lastChange > req.idleMs || Date.now() - started > req.maxMs) {
            clearInterval(timer);
            resolve({ op: 'wait', complete: done });
          }
        }, 5);
      });
    case 'report':
      return { op: 'report', readers: readers.map((r) => r.report()), hist: hist.toSparse(), stalled: stalled.length };
    case 'close':
      for (const r of readers) r.socket.destroy();
      readers.length = 0;
      for (const fd of stalled) cClose(fd);
      stalled.length = 0;
      return { op: 'close' };
  }
}

process.on('message', (msg: { id: number; req: FarmRequest }) => {
  handle(msg.req).then(
    (reply) => process.send!({ id: msg.id, reply }),
    (err: Error) => process.send!({ id: msg.id, error: err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
