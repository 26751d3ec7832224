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
import { AMPLIFICATION, COOKIE_LIFETIME_MS, CookieJar, SendBudget, cookieNotice, resolveTrusted, wireOverhead } from './udp-proof.js';
import { noticeLine, notices } from '../session/notices.js';
import { peerLabel } from './peer.js';

/**
 * One configured UDP port. A datagram carries one or more lines for the device (no terminator: one line), and
 * makes its sender a subscriber for `leaseSeconds`; subscribers get device lines as datagrams, one line each,
 * terminator included. An empty datagram only renews the lease. The subscriber table is bounded by `maxPeers`:
 * when full, the peer whose lease is oldest gives way.
 *
 * Only a source that has shown it receives at its address subscribes (udp-proof.ts says why): one inside the
 * `trusted` networks, or one that sent back the cookie it was given. Until then it is "unproven": its lines still
 * reach the device, but it is sent nothing beyond AMPLIFICATION times the bytes it sent (in practice the cookie
 * notice), and what it would have been sent is withheld and counted. Once it proves itself it gets the lines
 * still in the ring since its first datagram (the answer to what it typed), then the stream. Unproven sources
 * live in a table of their own, so a flood of forged ones can never push a subscriber out.
 *
 * Output reads the ring through one cursor for the whole port; a batch of sends is pinned until the last send
 * completed, like a TCP client's batch.
 */
interface Remote {
  key: string;
  address: string;
  port: number;
  tag: number;
  source: WriteSource;
  /** Subscribers: when the lease ends. Unproven: when the entry is forgotten. */
  expiresAt: number;
  /** null once the source is trusted or proven: it is no longer bounded. */
  budget: SendBudget | null;
  /** The ring's end at its first datagram: where its catch-up starts once it proves itself. */
  firstSeq: number;
  lastCookieAt: number;
}

export interface UdpListenerContext {
  bridge: Bridge;
  clock: Clock;
  log: Log;
  maxLineBytes: () => number;
  /** The networks this machine has addresses on, for `trusted: [local-networks]` (looked up at each call). */
  localNetworks: () => string[];
  /** The per-start secret cookies are keyed with. */
  cookieSecret: Buffer;
  changed(): void;
  /** The instructor barred this address for a while (kick --ban): its datagrams are dropped unread. */
  barred?(address: string): boolean;
}

const BATCH_RECORDS = 256;
/** Unproven sources remembered at once; past this the longest-silent is forgotten. */
const MAX_UNPROVEN = 4096;
/** Lines from before a source proved itself that it is sent once it does (the reply to what it typed). */
const CATCH_UP_LINES = 32;
/** A source is sent a fresh cookie at most this often. */
const COOKIE_INTERVAL_MS = 1000;
/** Warnings about unproven sources: at most this many a minute, the rest counted in the next one. */
const WARNINGS_PER_MINUTE = 10;

export class UdpListener implements Consumer {
  private socket: DgramSocket | null = null;
  /** Subscribers. Insertion order = lease order: a renewed peer moves to the end. */
  private readonly peers = new Map<string, Remote>();
  /** Sources that have not proven their address. Insertion order = silence order. */
  private readonly unproven = new Map<string, Remote>();
  private readonly unprovenByTag = new Map<number, Remote>();
  private readonly allow: AllowList;
  private trusted: AllowList | null = null;
  private trustedCidrs: string[] = [];
  private readonly cookies: CookieJar;
  private warningsThisMinute = 0;
  private warningMinute = 0;
  private warningsSuppressed = 0;
  private cursor: RingCursor | null = null;
  private inFlight = 0;
  private sweepTimer: Disposer | null = null;
  /**
   * Which socket the batch sends belong to: bumped per socket. A reopen closes a socket with sends still queued,
   * and libuv completes those (ECANCELED) later, when the new socket may be sending: counted, they would release its batch
   * while its own sends still hold views of the ring.
   */
  private generation = 0;
  private onSent: () => void = () => {};
  readonly stats = {
    datagramsIn: 0,
    datagramsOut: 0,
    refused: 0,
    evicted: 0,
    lost: 0,
    /** Sources that sent back a good cookie. */
    validations: 0,
    /** Datagrams carrying a cookie that was forged, expired or for another address. */
    cookiesRefused: 0,
    /** Datagrams (and their bytes) not sent to an unproven source, to keep within AMPLIFICATION. */
    withheld: 0,
    withheldBytes: 0,
  };

  constructor(
    readonly config: UdpListenerConfig,
    private readonly ctx: UdpListenerContext,
  ) {
    this.allow = new AllowList(config.allow);
    this.cookies = new CookieJar(ctx.cookieSecret, () => ctx.clock.now());
    this.retrust(config.trusted);
  }

  /**
   * Resolves `trusted` again (a reload, or the Pi's networks changed) without touching the socket or the
   * subscribers: a subscriber that is no longer trusted keeps its lease, and must prove itself when it ends.
   */
  retrust(entries: string[]): void {
    this.config.trusted = entries;
    this.trustedCidrs = resolveTrusted(entries, this.ctx.localNetworks());
    this.trusted = this.trustedCidrs.length > 0 ? new AllowList(this.trustedCidrs) : null;
  }

  /** How this port treats sources, for the ready line, STATUS= and the journal. */
  get proofPolicy(): string {
    const trusted = this.trustedCidrs.length > 0 ? this.trustedCidrs.join(' ') : 'none';
    return `sources outside trusted (${trusted}) get a cookie and at most ${AMPLIFICATION}x their bytes until they send it back`;
  }

  get unprovenCount(): number {
    return this.unproven.size;
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
    const generation = ++this.generation;
    this.onSent = () => {
      if (generation === this.generation) this.sent();
    };
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

  /**
   * Stops the port. `notice` (the gateway stopping, a reload moving this listener) goes to every subscriber
   * first, as TCP and web clients get it: an `nc -u` would otherwise just go quiet.
   */
  async close(notice?: string): Promise<void> {
    if (notice !== undefined && this.socket && this.peers.size > 0) {
      const sent = [...this.peers.values()].map((p) => new Promise<void>((resolve) => this.sendText(p, noticeLine(notice), () => resolve())));
      // Loopback and a LAN take these at once; a wedged link must not hold the stop up.
      let cancel: Disposer = () => {};
      await Promise.race([Promise.all(sent), new Promise<void>((resolve) => (cancel = this.ctx.clock.setTimeout(resolve, 500)))]);
      cancel();
    }
    this.sweepTimer?.();
    this.sweepTimer = null;
    this.ctx.bridge.removeConsumer(this);
    if (this.cursor) this.ctx.bridge.ring.detach(this.cursor);
    this.cursor = null;
    for (const p of this.peers.values()) this.ctx.bridge.forgetSource(p.source, p.tag);
    this.peers.clear();
    for (const u of this.unproven.values()) this.ctx.bridge.forgetSource(u.source, u.tag);
    this.unproven.clear();
    this.unprovenByTag.clear();
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
    if (!this.allow.allows(address) || this.ctx.barred?.(address)) {
      this.stats.refused++;
      if (this.ctx.bridge.recording) this.ctx.bridge.events.refused({ via: 'udp', listener: this.name, address, port }, 'not in the allow list');
      return;
    }
    const key = `${address}|${port}`;
    const from = this.peers.get(key) ?? (this.trusted?.allows(address) ? this.subscribe(key, address, port, null) : this.unprovenSource(key, address, port));
    if (from.budget) {
      from.budget.received(msg.length);
      const proof = this.cookies.check(msg, address, port);
      if (proof === 'valid') {
        this.prove(from);
        return;
      }
      if (proof !== 'none') {
        // Never passed on to the device: it was meant for the gateway.
        this.stats.cookiesRefused++;
        this.warn(`${this.name}: ${address}:${port} sent a cookie that is ${proof === 'expired' ? 'expired' : 'not for this address (forged, or from another client)'}`);
        this.sendCookie(from, true);
        return;
      }
      this.sendCookie(from, false);
    } else {
      this.renew(from);
    }
    const max = this.ctx.maxLineBytes();
    if (msg.length > max) {
      this.stats.refused++;
      this.sendText(from, noticeLine(notices.datagramTooLong(msg.length, max)));
      return;
    }
    if (msg.length === 0) return;
    // Lines end at LF, CR LF or CR; a datagram without a terminator is one line.
    let start = 0;
    let i = 0;
    while (i < msg.length) {
      const b = msg[i];
      if (b !== 0x0a && b !== 0x0d) {
        i++;
        continue;
      }
      this.submit(from, msg.subarray(start, i));
      i += b === 0x0d && msg[i + 1] === 0x0a ? 2 : 1;
      start = i;
    }
    if (start < msg.length) this.submit(from, msg.subarray(start));
  }

  private submit(peer: Remote, line: Buffer): void {
    const cfg = this.config;
    const request =
      cfg.mode === 'request'
        ? {
            owner: peer.tag,
            timing: cfg,
            finished: (r: { timedOut: boolean }) => {
              if (r.timedOut) this.sendText(peer, noticeLine(notices.noReply(cfg.requestTimeoutMs)));
            },
          }
        : undefined;
    const result = this.ctx.bridge.submit(line, {
      source: peer.source,
      from: { via: 'udp', listener: this.name, peer: peerLabel(peer.address, peer.port) },
      sender: { via: 'udp', listener: this.name, address: peer.address, port: peer.port },
      ...(request ? { request } : {}),
    });
    if (result === 'full') {
      this.stats.refused++;
      this.sendText(peer, noticeLine(notices.queueFull(false)));
    } else if (result === 'paused') {
      this.stats.refused++;
      this.sendText(peer, noticeLine(notices.pausedRefused()));
    }
  }

  /** An instructor notice to every subscriber, one datagram each (never inside a device line's datagram). */
  broadcast(text: string): number {
    for (const p of this.peers.values()) this.sendText(p, noticeLine(text));
    return this.peers.size;
  }

  /** Subscribers, as `10.0.0.7:51234` with their lease's end (unix ms), for the instructor's client list. */
  subscribers(): { peer: string; address: string; port: number; expiresInMs: number; tag: number }[] {
    const now = this.ctx.clock.now();
    return [...this.peers.values()].map((p) => ({
      peer: peerLabel(p.address, p.port),
      address: p.address,
      port: p.port,
      expiresInMs: p.expiresAt - now,
      tag: p.tag,
    }));
  }

  /** The instructor removes the subscribers `matches` picks: each is told why and its lease ends now. */
  remove(matches: (address: string, port: number, tag: number) => boolean, text: string): number {
    let n = 0;
    for (const p of [...this.peers.values()]) {
      if (!matches(p.address, p.port, p.tag)) continue;
      this.sendText(p, noticeLine(text));
      this.drop(p);
      n++;
    }
    if (n > 0) this.ctx.changed();
    return n;
  }

  private renew(peer: Remote): void {
    this.peers.delete(peer.key);
    peer.expiresAt = this.ctx.clock.now() + this.config.leaseSeconds * 1000;
    this.peers.set(peer.key, peer);
  }

  /** A trusted or proven source becomes a subscriber (keeping the tag its requests were made with). */
  private subscribe(key: string, address: string, port: number, from: Remote | null): Remote {
    if (this.peers.size >= this.config.maxPeers) {
      const oldest = this.peers.values().next().value as Remote;
      this.drop(oldest);
      this.stats.evicted++;
    }
    const tag = from?.tag ?? newClientTag();
    const peer: Remote = from ?? {
      key,
      address,
      port,
      tag,
      source: { id: tag, pause() {}, resume() {}, tell: (text: string) => this.sendText(peer, noticeLine(text)) },
      expiresAt: 0,
      budget: null,
      firstSeq: 0,
      lastCookieAt: -Infinity,
    };
    peer.budget = null;
    this.renew(peer);
    if (this.ctx.bridge.recording) this.ctx.bridge.events.connected({ via: 'udp', listener: this.name, address, port });
    this.ctx.changed();
    return peer;
  }

  private unprovenSource(key: string, address: string, port: number): Remote {
    const now = this.ctx.clock.now();
    let u = this.unproven.get(key);
    if (u) {
      this.unproven.delete(key);
    } else {
      if (this.unproven.size >= MAX_UNPROVEN) this.forget(this.unproven.values().next().value as Remote);
      const tag = newClientTag();
      u = {
        key,
        address,
        port,
        tag,
        source: { id: tag, pause() {}, resume() {}, tell: (text: string) => this.sendText(u!, noticeLine(text)) },
        expiresAt: 0,
        budget: new SendBudget(wireOverhead(address)),
        firstSeq: this.ctx.bridge.ring.endSeq,
        lastCookieAt: -Infinity,
      };
      this.unprovenByTag.set(tag, u);
      this.warn(`${this.name}: ${address}:${port} is outside the trusted networks: it gets a cookie to send back, and at most ${AMPLIFICATION}x its bytes until it does`);
    }
    u.expiresAt = now + COOKIE_LIFETIME_MS;
    this.unproven.set(key, u);
    return u;
  }

  /** The cookie came back: the source receives at its address. It subscribes, and gets what it missed. */
  private prove(u: Remote): void {
    this.unproven.delete(u.key);
    this.unprovenByTag.delete(u.tag);
    this.stats.validations++;
    this.ctx.log.info(`${this.name}: ${u.address}:${u.port} proved its address: subscribed for ${this.config.leaseSeconds} s after each datagram`);
    this.subscribe(u.key, u.address, u.port, u);
    this.sendText(u, noticeLine(notices.subscribed(this.config.leaseSeconds)));
    // Lines the flush has already passed over (the reply to what it typed); later ones reach it as a subscriber.
    const ring = this.ctx.bridge.ring;
    const until = this.cursor ? this.cursor.seq : ring.endSeq;
    const request = this.config.mode === 'request';
    const lines: Buffer[] = [];
    for (let s = Math.max(u.firstSeq, ring.oldestSeq); s < until; s++) {
      if (ring.flags(s) & RecordFlag.TERM_TAIL) continue;
      const tag = ring.tag(s);
      if (request && tag !== 0 && tag !== u.tag) continue;
      lines.push(ring.view(s));
    }
    // Copies: these sends are not part of a pinned batch.
    for (const line of lines.slice(-CATCH_UP_LINES)) this.sendTo(u, Buffer.from(line));
  }

  private forget(u: Remote): void {
    this.unproven.delete(u.key);
    this.unprovenByTag.delete(u.tag);
    this.ctx.bridge.forgetSource(u.source, u.tag);
  }

  /** Rate-limited: a flood of forged sources is a few lines in the journal, not one per datagram. */
  private warn(text: string): void {
    const minute = Math.floor(this.ctx.clock.now() / 60_000);
    if (minute !== this.warningMinute) {
      if (this.warningsSuppressed > 0) {
        this.ctx.log.warn(`${this.name}: ${this.warningsSuppressed} more warnings about unproven sources were not logged`);
      }
      this.warningMinute = minute;
      this.warningsThisMinute = 0;
      this.warningsSuppressed = 0;
    }
    if (this.warningsThisMinute >= WARNINGS_PER_MINUTE) {
      this.warningsSuppressed++;
      return;
    }
    this.warningsThisMinute++;
    this.ctx.log.warn(text);
  }

  private sendCookie(u: Remote, always: boolean): void {
    const now = this.ctx.clock.now();
    if (!always && now - u.lastCookieAt < COOKIE_INTERVAL_MS) return;
    u.lastCookieAt = now;
    this.sendText(u, cookieNotice(this.cookies.mint(u.address, u.port)));
  }

  private drop(peer: Remote): void {
    this.peers.delete(peer.key);
    if (this.ctx.bridge.recording) this.ctx.bridge.events.disconnected({ via: 'udp', listener: this.name, address: peer.address, port: peer.port }, { why: 'lease ended' });
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
    for (const u of this.unproven.values()) {
      if (u.expiresAt > now) break;
      this.forget(u);
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
    // Every subscriber lost those lines: counted where STATUS= `dropped` and the error LED read them, as for TCP.
    this.ctx.bridge.counters.lost += lost * this.peers.size;
    const request = this.config.mode === 'request';
    // With no subscriber there is no one to send to; but replies meant for unproven sources are still counted.
    if (this.peers.size === 0 && !(request && this.unprovenByTag.size > 0)) {
      ring.skipToNewest(cursor);
      cursor.takeLost();
      return;
    }
    let s = ring.next(cursor);
    if (s < 0) return;
    ring.pin(cursor, s);
    const end = Math.min(ring.endSeq, s + BATCH_RECORDS);
    for (; s < end; s++) {
      if (ring.flags(s) & RecordFlag.TERM_TAIL) continue;
      const tag = ring.tag(s);
      const view = ring.view(s);
      if (request && tag !== 0 && this.unprovenByTag.has(tag)) {
        // A reply to an unproven source: kept in the ring, sent if it proves itself in time.
        this.stats.withheld++;
        this.stats.withheldBytes += view.length;
        continue;
      }
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

  private sendText(to: Remote, text: string, done?: () => void): void {
    if (this.ctx.bridge.recording) this.ctx.bridge.events.notice({ via: 'udp', listener: this.name, address: to.address, port: to.port }, text.replace(/^! /, '').replace(/\r\n$/, ''));
    this.sendTo(to, Buffer.from(text), done);
  }

  /** The one way to send outside the ring batches: an unproven source only within its budget. */
  private sendTo(to: Remote, bytes: Buffer, done?: () => void): void {
    if (!this.socket) return done?.();
    if (to.budget) {
      if (!to.budget.mayReceive(bytes.length)) {
        this.stats.withheld++;
        this.stats.withheldBytes += bytes.length;
        return done?.();
      }
      to.budget.sent(bytes.length);
    }
    this.stats.datagramsOut++;
    if (done) this.socket.send(bytes, to.port, to.address, () => done());
    else this.socket.send(bytes, to.port, to.address);
  }

  private reopen(): void {
    const old = this.socket;
    if (this.cursor) this.ctx.bridge.ring.release(this.cursor);
    // The old socket's sends no longer count (they complete with ECANCELED once it is closed).
    this.generation++;
    this.inFlight = 0;
    this.socket = null;
    old?.close();
    void this.close().then(() => this.listen()).catch((err: Error) => this.ctx.log.error(`${this.name}: reopen failed: ${err.message}`));
  }
}
