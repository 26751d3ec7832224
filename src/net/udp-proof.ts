import { createHmac, timingSafeEqual } from 'node:crypto';
import { noticeLine, notices } from '../session/notices.js';

/**
 * UDP address validation: the rules that keep the gateway from being a reflector. (Pure: the secret and the
 * clock are given; HMAC is computation, not I/O.)
 *
 * A UDP source address can be forged, so a datagram proves nothing about who will receive the answer. As QUIC
 * does before an address is validated (RFC 9000 §8.1), the gateway sends an unproven source at most
 * AMPLIFICATION times the bytes it received from it, and gives it a way to prove it receives at its address: the
 * first answer is a cookie (like a QUIC Retry token or a DNS cookie, RFC 7873) that only someone reading that
 * address can send back. The cookie is an HMAC of the address, the port and an expiry time under a secret made
 * at start, so the gateway keeps no state for it and a forger cannot make one.
 *
 * Bytes are counted as they are on the wire, IP and UDP headers included (28 bytes for IPv4, 48 for IPv6), both
 * ways: that is what a victim of reflection receives, and it lets an empty datagram (28 bytes) buy the one
 * cookie notice (at most 84 - 28 = 56 bytes of payload) and nothing more.
 */

/** At most this many times the bytes received are sent to an address that has not proven itself. */
export const AMPLIFICATION = 3;

/** How long a cookie may be sent back. */
export const COOKIE_LIFETIME_MS = 120_000;

const PREFIX = 'sg-';
const MAC_CHARS = 16; // 96 bits of base64url
/** sg-<expiry, seconds, base36>-<mac> */
const COOKIE_PATTERN = /sg-([0-9a-z]{1,11})-([A-Za-z0-9_-]{16})/;

/** IP + UDP header bytes for a datagram to or from `address` (an IPv4-mapped IPv6 address travels as IPv4). */
export function wireOverhead(address: string): number {
  return address.includes(':') && !address.startsWith('::ffff:') ? 48 : 28;
}

/** The line that carries a cookie: short enough that an empty IPv4 datagram's budget covers it. */
export function cookieNotice(cookie: string): string {
  return noticeLine(notices.sendBack(cookie));
}

export type CookieCheck = 'none' | 'valid' | 'expired' | 'forged';

export class CookieJar {
  constructor(
    private readonly secret: Buffer,
    private readonly now: () => number,
    private readonly lifetimeMs = COOKIE_LIFETIME_MS,
  ) {
    if (secret.length < 16) throw new TypeError(`CookieJar: the secret must be at least 16 bytes, got ${secret.length}`);
  }

  /** A cookie for `address` and `port`, good for lifetimeMs. */
  mint(address: string, port: number): string {
    const expiry = Math.ceil((this.now() + this.lifetimeMs) / 1000).toString(36);
    return `${PREFIX}${expiry}-${this.mac(expiry, address, port)}`;
  }

  /**
   * Whether `datagram` carries a cookie, and whether it is good for this address and port now. The cookie may
   * stand anywhere in the datagram, so a person can paste the whole notice line back and a program can echo the
   * datagram it got.
   */
  check(datagram: Buffer, address: string, port: number): CookieCheck {
    if (datagram.indexOf(PREFIX) < 0) return 'none';
    const m = COOKIE_PATTERN.exec(datagram.toString('latin1'));
    if (!m) return 'none';
    const [, expiry, mac] = m as unknown as [string, string, string];
    const want = Buffer.from(this.mac(expiry, address, port));
    const got = Buffer.from(mac);
    if (!timingSafeEqual(want, got)) return 'forged';
    return parseInt(expiry, 36) * 1000 < this.now() ? 'expired' : 'valid';
  }

  private mac(expiry: string, address: string, port: number): string {
    return createHmac('sha256', this.secret)
      .update(`${expiry}|${address}|${port}`)
      .digest('base64url')
      .slice(0, MAC_CHARS);
  }
}

/**
 * What an unproven source has received against what it sent: `mayReceive(n)` says whether a datagram of n
 * payload bytes keeps the total on the wire within AMPLIFICATION times what came from it.
 */
export class SendBudget {
  private receivedWire = 0;
  private sentWire = 0;

  constructor(private readonly overhead: number) {}

  received(payloadBytes: number): void {
    this.receivedWire += payloadBytes + this.overhead;
  }

  mayReceive(payloadBytes: number): boolean {
    return this.sentWire + payloadBytes + this.overhead <= AMPLIFICATION * this.receivedWire;
  }

  sent(payloadBytes: number): void {
    this.sentWire += payloadBytes + this.overhead;
  }

  get ratio(): number {
    return this.receivedWire === 0 ? 0 : this.sentWire / this.receivedWire;
  }
}

/**
 * The `trusted` list with its words resolved: `loopback` is 127.0.0.0/8 and ::1; `local-networks` is every network
 * this machine has an address on (the lab LAN), given as `localNetworks`. Unknown words cannot reach here
 * (config validation refuses them).
 */
export function resolveTrusted(entries: readonly string[], localNetworks: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    if (entry === 'loopback') out.push('127.0.0.0/8', '::1/128');
    else if (entry === 'local-networks') out.push(...localNetworks);
    else out.push(entry);
  }
  return [...new Set(out)];
}
