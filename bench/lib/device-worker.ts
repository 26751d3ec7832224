/**
 * The device's writing side, in a worker thread so it may block (poll(2) until the pty takes more, a futex
 * wait until the next line is due) without stalling the benchmark's event loop.
 *
 * Why not PtyPair.write: it retries EAGAIN on a 2 ms timer, which caps a pty (a few tens of KiB of buffer) at
 * about 7 MB/s here, below what the bridges can relay; poll(POLLOUT) wakes the moment the bridge has read.
 * The master fd is O_NONBLOCK (PtyPair opens it so); this worker never changes that.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import { LINE_BYTES, bulkBlock, stampLine, stampTemplate, syncLine } from './lines.js';
import type { DeviceReply, DeviceRequest } from './device.js';

// koffi's package is "type": "module"; its CommonJS entry works (see test/support/pty.ts).
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });
const libc = koffi.load('libc.so.6');
const poll = libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)') as (
  fds: Buffer,
  n: number,
  timeoutMs: number,
) => number;

const POLLOUT = 4;
const { fd, base } = workerData as { fd: number; base: string };
const baseNs = BigInt(base);
const pollFd = Buffer.alloc(8);
pollFd.writeInt32LE(fd, 0);
pollFd.writeInt16LE(POLLOUT, 4);
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const nowNs = (): number => Number(process.hrtime.bigint() - baseNs);

/** Time spent waiting for the pty to take bytes, this request. */
let blockedNs = 0;

/**
 * Writes buf from `from` on, waiting in poll(2) whenever the pty is full; returns how many bytes went in, which
 * is short of the end only if the pty stayed full past deadlineNs.
 */
function writeAll(buf: Buffer, deadlineNs: number, from = 0): number {
  let off = from;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      const t = nowNs();
      if (t > deadlineNs) break;
      poll(pollFd, 1, Math.max(1, Math.min(100, Math.ceil((deadlineNs - t) / 1e6))));
      blockedNs += nowNs() - t;
    }
  }
  return off - from;
}

function sleepUntil(ns: number): void {
  const wait = ns - nowNs();
  if (wait > 20_000) Atomics.wait(sleeper, 0, 0, (wait - 10_000) / 1e6);
}

/** Whole lines only (a bridge that frames lines would hold a trailing piece back), until maxMs at most. */
function bulk(bytes: number, maxMs: number): DeviceReply {
  const block = bulkBlock(64 * 1024);
  const total = bytes - (bytes % LINE_BYTES);
  const start = nowNs();
  const deadline = start + maxMs * 1e6;
  let written = 0;
  while (written < total) {
    const n = Math.min(block.length, total - written);
    const put = writeAll(block.subarray(0, n), deadline);
    written += put;
    if (put < n || nowNs() > deadline) {
      // Out of time: finish the line in progress so the bridge is not left holding half a line.
      const rest = (LINE_BYTES - (written % LINE_BYTES)) % LINE_BYTES;
      if (rest > 0) written += writeAll(block.subarray(0, put + rest), nowNs() + 1e9, put);
      break;
    }
  }
  return { op: 'bulk', written, ms: (nowNs() - start) / 1e6, blockedMs: blockedNs / 1e6, startNs: start };
}

/**
 * `rate` stamped lines a second for `seconds`; the stamp is taken just before each line's write(2). A line is
 * due at start + seq/rate; when the writer falls behind (the pty was full) it catches up line by line, each
 * with its own stamp, so a stalled bridge shows as lines written late (lateMaxMs) and blocked time.
 */
function paced(rate: number, seconds: number, graceMs: number): DeviceReply {
  const line = stampTemplate();
  const total = Math.round(rate * seconds);
  const stepNs = 1e9 / rate;
  const start = nowNs() + 1e6;
  const deadline = start + seconds * 1e9 + graceMs * 1e6;
  let written = 0;
  let lateMaxNs = 0;
  for (let seq = 0; seq < total; seq++) {
    const due = start + seq * stepNs;
    sleepUntil(due);
    const t = nowNs();
    if (t - due > lateMaxNs) lateMaxNs = t - due;
    stampLine(line, t, seq);
    if (writeAll(line, deadline) < line.length) break;
    written++;
  }
  return { op: 'paced', written, scheduled: total, ms: (nowNs() - start) / 1e6, blockedMs: blockedNs / 1e6, lateMaxMs: lateMaxNs / 1e6 };
}

parentPort!.on('message', (req: DeviceRequest) => {
  blockedNs = 0;
  let reply: DeviceReply;
  switch (req.op) {
    case 'bulk':
      reply = bulk(req.bytes, req.maxMs);
      break;
    case 'paced':
      reply = paced(req.rate, req.seconds, req.graceMs);
      break;
    case 'sync': {
      const line = syncLine(req.token);
      reply = { op: 'sync', ok: writeAll(line, nowNs() + 1e9) === line.length };
      break;
    }
  }
  parentPort!.postMessage(reply);
});
