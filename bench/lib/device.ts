/**
 * The benchmark's device: a fresh PtyPair (test/support/pty.ts) for each bridge process, its slave end at a
 * stable link the bridge opens as its serial port, and a worker thread (device-worker.ts) that writes on the
 * master end.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { PtyPair } from '../../test/support/pty.js';

export type DeviceRequest =
  | { op: 'bulk'; bytes: number; maxMs: number }
  | { op: 'paced'; rate: number; seconds: number; graceMs: number }
  | { op: 'sync'; token: number };

export type DeviceReply =
  | { op: 'bulk'; written: number; ms: number; blockedMs: number; startNs: number }
  | { op: 'paced'; written: number; scheduled: number; ms: number; blockedMs: number; lateMaxMs: number }
  | { op: 'sync'; ok: boolean };

export type BulkResult = Extract<DeviceReply, { op: 'bulk' }>;
export type PacedResult = Extract<DeviceReply, { op: 'paced' }>;

export class Device {
  private readonly worker: Worker;
  private pending: ((r: DeviceReply) => void) | null = null;
  private failed: Error | null = null;

  /** `baseNs`: process.hrtime.bigint() at the start of the run; stamps are nanoseconds since it. */
  constructor(
    readonly pty: PtyPair,
    baseNs: bigint,
  ) {
    this.worker = new Worker(join(__dirname, 'device-worker.js'), { workerData: { fd: pty.masterFd, base: String(baseNs) } });
    this.worker.on('message', (r: DeviceReply) => {
      const p = this.pending;
      this.pending = null;
      p?.(r);
    });
    this.worker.on('error', (err) => {
      this.failed = err;
    });
  }

  static open(link: string, baseNs: bigint): Device {
    return new Device(PtyPair.open(link), baseNs);
  }

  private request<R extends DeviceReply>(req: DeviceRequest): Promise<R> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.pending) return Promise.reject(new Error('Device: one request at a time'));
    return new Promise((resolve) => {
      this.pending = (r) => resolve(r as R);
      this.worker.postMessage(req);
    });
  }

  /** Writes `bytes` of 60-byte lines as fast as the pty takes them; gives up after maxMs. */
  bulk(bytes: number, maxMs: number): Promise<BulkResult> {
    return this.request({ op: 'bulk', bytes, maxMs });
  }

  /** `rate` stamped lines a second for `seconds`; gives up graceMs after the schedule ends if the pty is full. */
  paced(rate: number, seconds: number, graceMs = 2000): Promise<PacedResult> {
    return this.request({ op: 'paced', rate, seconds, graceMs });
  }

  async sync(token: number): Promise<boolean> {
    const r = await this.request<Extract<DeviceReply, { op: 'sync' }>>({ op: 'sync', token });
    return r.ok;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
    this.pty.close();
  }
}
