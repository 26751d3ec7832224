/**
 * The benchmark's side of the client farm (client-farm.ts runs in a child process): connect clients, say
 * when to start measuring, collect what they saw.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Histogram } from './histogram.js';

export interface ReaderReport {
  bytes: number;
  /** When the last byte arrived, ms after the measurement's base. */
  lastAtMs: number;
  /** Stamped lines received, lines missing between them, and other lines (bridge notices). */
  lines: number;
  lost: number;
  other: number;
  closed: boolean;
}

export type FarmRequest =
  | { op: 'connect'; port: number; count: number; stalled?: boolean; rcvbuf?: number; web?: boolean }
  | { op: 'synced'; token: number }
  | { op: 'measure'; mode: 'bytes' | 'stamps'; base: string }
  | { op: 'wait'; bytes: number; idleMs: number; maxMs: number }
  | { op: 'report' }
  | { op: 'close' };

export type FarmReply =
  | { op: 'connect'; connected: number }
  | { op: 'synced'; seen: number; open: number }
  | { op: 'measure' }
  | { op: 'wait'; complete: boolean }
  | { op: 'report'; readers: ReaderReport[]; hist: { buckets: [number, number][]; maxUs: number }; stalled: number }
  | { op: 'close' };

type ReplyOf<O extends FarmRequest['op']> = Extract<FarmReply, { op: O }>;

export interface FarmReport {
  readers: ReaderReport[];
  hist: Histogram;
  stalled: number;
}

export class Farm {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(r: FarmReply): void; reject(e: Error): void }>();

  constructor() {
    this.child = fork(join(__dirname, 'client-farm.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: { id: number; reply?: FarmReply; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`client farm: ${m.error}`));
      else if (m.reply) w?.resolve(m.reply);
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`client farm exited (${code})`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private ask<O extends FarmRequest['op']>(req: Extract<FarmRequest, { op: O }>): Promise<ReplyOf<O>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: (r) => resolve(r as ReplyOf<O>), reject });
      this.child.send({ id, req });
    });
  }

  /** What reading clients are: TCP sockets, or browser tabs (WebSockets on a web listener's /ws). */
  clientKind: 'tcp' | 'web' = 'tcp';

  /** Connects `count` reading clients; resolves with how many connected. */
  async readers(port: number, count: number): Promise<number> {
    return (await this.ask({ op: 'connect', port, count, web: this.clientKind === 'web' })).connected;
  }

  /**
   * Connects `count` clients that never read, with SO_RCVBUF set to `rcvbuf` before connecting (browser tabs:
   * the WebSocket handshake first, then nothing read).
   */
  async stalled(port: number, count: number, rcvbuf = 4096): Promise<number> {
    return (await this.ask({ op: 'connect', port, count, stalled: true, rcvbuf, web: this.clientKind === 'web' })).connected;
  }

  synced(token: number): Promise<{ seen: number; open: number }> {
    return this.ask({ op: 'synced', token });
  }

  async measure(mode: 'bytes' | 'stamps', baseNs: bigint): Promise<void> {
    await this.ask({ op: 'measure', mode, base: String(baseNs) });
  }

  /** Until every open reader has `bytes`, or nothing arrived anywhere for idleMs, or maxMs. */
  async wait(bytes: number, idleMs: number, maxMs: number): Promise<boolean> {
    return (await this.ask({ op: 'wait', bytes, idleMs, maxMs })).complete;
  }

  async report(): Promise<FarmReport> {
    const r = await this.ask({ op: 'report' });
    return { readers: r.readers, hist: Histogram.fromSparse(r.hist), stalled: r.stalled };
  }

  /** Closes every client (the farm stays up for the next peer). */
  async closeAll(): Promise<void> {
    await this.ask({ op: 'close' });
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.disconnect();
    await gone;
  }
}
