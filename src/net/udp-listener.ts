import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Bridge, Consumer } from '../bridge.js';
import { newClientTag } from '../bridge.js';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { UdpListenerConfig } from '../config/types.js';
import { RecordFlag, type RingCursor } from '../line/ring.js';
import type { LinkState } from '../serial/serial-link.js';
import type { WriteSource } from '../route/write-queue.js';
import { AllowList } from './allow.js';

/**
 * One configured UDP port. A datagram carries one or more lines for the device (no terminator: one line), and
 * makes its sender a subscriber for `leaseSeconds`; subscribers get device lines as datagrams, one line each,
 * terminator included. An empty datagram only renews the lease. The subscriber table is bounded by `maxPeers`:
 * when full, the peer whose lease is oldest gives way.
 *
 * Output reads the ring through one cursor for the whole port; a batch of sends is pinned until the last send
 * completed, like a TCP client's batch.
 */
interface Peer {
  key: string;
  address: string;
  port: number;
  expiresAt: number;
  tag: number;
  source: WriteSource;
}

export interface UdpListenerContext {
  bridge: Bridge;
  clock: Clock;
  log: Log;
  maxLineBytes: () => number;
  changed(): void;
}

const BATCH_RECORDS = 256;

export class UdpListener implements Consumer {
  private socket: DgramSocket | null = null;
  /** Insertion order = lease order: a renewed peer moves to the end. */
  private readonly peers = new Map<string, Peer>();
  private readonly allow: AllowList;
  private cursor: RingCursor | null = null;
  private inFlight = 0;
  private sweepTimer: Disposer | null = null;
  private readonly onSent = (): void => this.sent();
  readonly stats = { datagramsIn: 0, datagramsOut: 0, refused: 0, evicted: 0, lost: 0 };

  constructor(
    readonly config: UdpListenerConfig,
    private readonly ctx: UdpListenerContext,
  ) {
    this.allow = new AllowList(config.allow);
  }

  get name(): string {
    return this.config.name;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  get port(): number {
    const s = this.socket;
    try {
      return s ? s.address().port : this.config.port;
    } catch {
      return this.config.port;
    }
  }

  listen(): Promise<void> {
    const socket = createSocket({ type: isIPv6(this.config.host) ? 'udp6' : 'udp4', reuseAddr: false });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.config.host, port: this.config.port, exclusive: true }, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.ctx.log.warn(`${this.name}: ${err.message}`));
        this.cursor = this.ctx.bridge.ring.attach(() => {
          // UDP sends complete within a tick, so a batch still in flight a whole ring later means the socket is
          // wedged: drop it (closing cancels the sends) rather than let the ring overwrite what it holds.
          this.ctx.log.error(`${this.name}: UDP sends stalled for a whole ring; reopening the port`);
          this.reopen();
        });
        this.ctx.bridge.addConsumer(this);
        this.sweepTimer = this.ctx.clock.setInterval(() => this.sweep(), 1000);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.sweepTimer?.();
    this.sweepTimer = null;
    this.ctx.bridge.removeConsumer(this);
    if (this.cursor) this.ctx.bridge.ring.detach(this.cursor);
    this.cursor = null;
    for (const p of this.peers.values()) this.ctx.bridge.forgetSource(p.source, p.tag);
    this.peers.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  kick(): void {
    this.flush();
  }

  deviceChanged(_state: LinkState, _detail: string): void {
    // UDP has no session to tell; lines simply wait in the device queue.
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    this.stats.datagramsIn++;
    if (!this.allow.allows(address)) {
      this.stats.refused++;
      return;
    }
    const max = this.ctx.maxLineBytes();
    if (msg.length > max) {
      this.stats.refused++;
      this.reply(address, port, `! datagram refused: ${msg.length} bytes, the limit is ${max} (lines.maxLineBytes)\r\n`);
      return;
    }
    const peer = this.renew(address, port);
    if (msg.length === 0) return;
    // Lines end at LF, CR LF or CR; a datagram without a terminator is one line.
    let from = 0;
    let i = 0;
    while (i < msg.length) {
      const b = msg[i];
      if (b !== 0x0a && b !== 0x0d) {
        i++;
        continue;
      }
      this.submit(peer, msg.subarray(from, i));
      i += b === 0x0d && msg[i + 1] === 0x0a ? 2 : 1;
      from = i;
    }
    if (from < msg.length) this.submit(peer, msg.subarray(from));
  }

  private submit(peer: Peer, line: Buffer): void {
    const cfg = this.config;
    const request =
      cfg.mode === 'request'
        ? {
            owner: peer.tag,
            timing: cfg,
            finished: (r: { timedOut: boolean }) => {
              if (r.timedOut) this.reply(peer.address, peer.port, `! no reply from the device within ${cfg.requestTimeoutMs} ms\r\n`);
            },
          }
        : undefined;
    const result = this.ctx.bridge.submit(line, {
      source: peer.source,
      from: `${peer.address}:${peer.port} (udp)`,
      ...(request ? { request } : {}),
    });
    if (result === 'full') {
      this.stats.refused++;
      this.reply(peer.address, peer.port, '! line refused: the device queue is full\r\n');
    }
  }

  private renew(address: string, port: number): Peer {
    const key = `${address}|${port}`;
    const expiresAt = this.ctx.clock.now() + this.config.leaseSeconds * 1000;
    let peer = this.peers.get(key);
    if (peer) {
      this.peers.delete(key);
      peer.expiresAt = expiresAt;
      this.peers.set(key, peer);
      return peer;
    }
    if (this.peers.size >= this.config.maxPeers) {
      const oldest = this.peers.values().next().value as Peer;
      this.drop(oldest);
      this.stats.evicted++;
    }
    const tag = newClientTag();
    peer = { key, address, port, expiresAt, tag, source: { id: tag, pause() {}, resume() {} } };
    this.peers.set(key, peer);
    this.ctx.changed();
    return peer;
  }

  private drop(peer: Peer): void {
    this.peers.delete(peer.key);
    this.ctx.bridge.forgetSource(peer.source, peer.tag);
  }

  private sweep(): void {
    const now = this.ctx.clock.now();
    let changed = false;
    for (const p of this.peers.values()) {
      if (p.expiresAt > now) break; // lease order: the rest are younger
      this.drop(p);
      changed = true;
    }
    if (changed) this.ctx.changed();
  }

  private flush(): void {
    const socket = this.socket;
    const cursor = this.cursor;
    if (!socket || !cursor || this.inFlight > 0) return;
    const ring = this.ctx.bridge.ring;
    const lost = cursor.takeLost();
    this.stats.lost += lost;
    if (this.peers.size === 0) {
      ring.skipToNewest(cursor);
      cursor.takeLost();
      return;
    }
    let s = ring.next(cursor);
    if (s < 0) return;
    ring.pin(cursor, s);
    const request = this.config.mode === 'request';
    const end = Math.min(ring.endSeq, s + BATCH_RECORDS);
    for (; s < end; s++) {
      if (ring.flags(s) & RecordFlag.TERM_TAIL) continue;
      const tag = ring.tag(s);
      const view = ring.view(s);
      for (const p of this.peers.values()) {
        if (request && tag !== 0 && tag !== p.tag) continue;
        this.inFlight++;
        this.stats.datagramsOut++;
        socket.send(view, p.port, p.address, this.onSent);
      }
    }
    ring.advance(cursor, end);
    if (this.inFlight === 0) ring.release(cursor);
  }

  private sent(): void {
    if (--this.inFlight > 0) return;
    if (this.cursor) this.ctx.bridge.ring.release(this.cursor);
    this.flush();
  }

  private reply(address: string, port: number, text: string): void {
    this.socket?.send(Buffer.from(text), port, address);
  }

  private reopen(): void {
    const old = this.socket;
    if (this.cursor) this.ctx.bridge.ring.release(this.cursor);
    this.inFlight = 0;
    this.socket = null;
    old?.close();
    void this.close().then(() => this.listen()).catch((err: Error) => this.ctx.log.error(`${this.name}: reopen failed: ${err.message}`));
  }
}
