/**
 * Access lists: which client addresses a listener accepts. Pure (node:net's BlockList would do the
 * matching, mapped addresses included, but not the error messages, and it would tie this module to net).
 *
 * Every address is compared as 16 bytes: IPv4 `a.b.c.d` is held as its IPv4-mapped form `::ffff:a.b.c.d`
 * (prefix + 96), so `10.0.0.0/8` matches both `10.1.2.3` and the `::ffff:10.1.2.3` a dual-stack Node
 * socket reports, and `::/0` matches everyone. A zone (`fe80::1%eth0`) in a peer's address is ignored.
 */

export interface Cidr {
  /** The text as configured. */
  readonly text: string;
  readonly family: 'ipv4' | 'ipv6';
  /** The network as 16 bytes (IPv4 mapped into ::ffff:0:0/96). */
  readonly bytes: Uint8Array;
  /** Prefix length over the 16 bytes (an IPv4 /8 is 104). */
  readonly prefix: number;
}

function parseIpv4(text: string, into: Uint8Array, at: number): string | null {
  if (/[^0-9.]/.test(text)) return `"${text}" is not an IPv4 or IPv6 address (names are not accepted here)`;
  const parts = text.split('.');
  if (parts.length !== 4) return `an IPv4 address has 4 dot-separated numbers, "${text}" has ${parts.length}`;
  for (let p = 0; p < 4; p++) {
    const part = parts[p]!;
    if (!/^[0-9]{1,3}$/.test(part)) return `"${part}" in "${text}" is not a number from 0 to 255`;
    if (part.length > 1 && part[0] === '0') {
      return `"${part}" in "${text}" has a leading zero (octal or decimal is ambiguous); write ${Number(part)}`;
    }
    const value = Number(part);
    if (value > 255) return `"${part}" in "${text}" is over 255`;
    into[at + p] = value;
  }
  return null;
}

function parseIpv6(text: string, into: Uint8Array): string | null {
  const halves = text.split('::');
  if (halves.length > 2) return `"${text}" uses "::" more than once`;
  const groups: (string | null)[] = [];
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const all = halves.length === 2 ? [...head, null, ...tail] : head;
  let embedded: string | null = null;
  const last = all[all.length - 1];
  if (typeof last === 'string' && last.includes('.')) {
    embedded = last;
    all.pop();
  }
  for (const g of all) groups.push(g);
  const explicit = groups.filter((g) => g !== null).length + (embedded === null ? 0 : 2);
  if (halves.length === 1 && explicit !== 8) return `"${text}" has ${explicit} of 8 IPv6 groups (use "::" for zeros)`;
  if (halves.length === 2 && explicit > 7) return `"${text}" has too many IPv6 groups for "::"`;
  let o = 0;
  for (const g of groups) {
    if (g === null) {
      const zeros = 8 - explicit;
      for (let z = 0; z < zeros * 2; z++) into[o++] = 0;
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return `"${g}" in "${text}" is not an IPv6 group of 1 to 4 hex digits`;
    const value = parseInt(g, 16);
    into[o++] = value >> 8;
    into[o++] = value & 0xff;
  }
  if (embedded !== null) return parseIpv4(embedded, into, o);
  return null;
}

/** Parses an address into 16 bytes; returns its family, or a problem. */
function parseAddress(text: string, into: Uint8Array): 'ipv4' | 'ipv6' | string {
  if (text.includes(':')) {
    const problem = parseIpv6(text, into);
    return problem ?? 'ipv6';
  }
  into.fill(0, 0, 10);
  into[10] = 0xff;
  into[11] = 0xff;
  const problem = parseIpv4(text, into, 12);
  return problem ?? 'ipv4';
}

function formatAddress(bytes: Uint8Array, family: 'ipv4' | 'ipv6'): string {
  if (family === 'ipv4') return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) groups.push((bytes[g * 2]! << 8) | bytes[g * 2 + 1]!);
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && groups[end] === 0) end++;
    if (end - g > bestLength) {
      bestStart = g;
      bestLength = end - g;
    }
    g = end;
  }
  const hex = groups.map((v) => v.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function matches(address: Uint8Array, cidr: Cidr): boolean {
  const whole = cidr.prefix >> 3;
  for (let b = 0; b < whole; b++) if (address[b] !== cidr.bytes[b]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((address[whole]! ^ cidr.bytes[whole]!) & mask) === 0;
}

/**
 * Parses `10.0.0.0/8`, `192.168.1.7` (one host), `::1/128`, `fe80::/10`, `2001:db8::/32`. Returns the
 * Cidr, or an Error (returned, not thrown) whose message names the text and what is wrong with it.
 */
export function parseCidr(text: string): Cidr | Error {
  const problem = (what: string): Error => new Error(`bad address range "${text}": ${what}`);
  if (typeof text !== 'string' || text.trim() === '') return problem('it is empty');
  if (text !== text.trim()) return problem('it has spaces around it');
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  if (addressText.includes('%')) return problem('a zone ("%eth0") cannot be part of an allowed range');
  const bytes = new Uint8Array(16);
  const family = parseAddress(addressText, bytes);
  if (family !== 'ipv4' && family !== 'ipv6') return problem(family);
  const bits = family === 'ipv4' ? 32 : 128;
  let ownPrefix = bits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefixText)) {
      return problem(`the prefix length after "/" must be a number from 0 to ${bits}, got "${prefixText}"`);
    }
    ownPrefix = Number(prefixText);
    if (ownPrefix > bits) {
      return problem(`prefix /${ownPrefix} is too long for an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address ` +
        `(0 to ${bits})`);
    }
  }
  const prefix = family === 'ipv4' ? ownPrefix + 96 : ownPrefix;
  const network = new Uint8Array(bytes);
  for (let bit = prefix; bit < 128; bit++) network[bit >> 3]! &= ~(0x80 >> (bit & 7));
  for (let b = 0; b < 16; b++) {
    if (network[b] !== bytes[b]) {
      return problem(`it has bits set after the first ${ownPrefix}; the range is ` +
        `${formatAddress(network, family)}/${ownPrefix}`);
    }
  }
  return { text, family, bytes: network, prefix };
}

/** The problem with a CIDR text, for the config layer; null when it is fine. */
export function validateCidr(text: string): string | null {
  const result = parseCidr(text);
  return result instanceof Error ? result.message : null;
}

export class AllowList {
  readonly cidrs: readonly Cidr[];
  private readonly scratch = new Uint8Array(16);

  /** An empty list allows everyone. Bad entries are a programmer mistake here: validate config first. */
  constructor(cidrs: readonly string[]) {
    if (!Array.isArray(cidrs)) throw new TypeError('AllowList: cidrs must be an array of strings');
    const parsed: Cidr[] = [];
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if (cidr instanceof Error) throw new TypeError(`AllowList: ${cidr.message}`);
      parsed.push(cidr);
    }
    this.cidrs = parsed;
  }

  /** `address` as Node reports it (socket.remoteAddress / rinfo.address). Unparsable addresses are refused. */
  allows(address: string | undefined): boolean {
    if (this.cidrs.length === 0) return true;
    if (typeof address !== 'string') return false;
    const zone = address.indexOf('%');
    const text = zone === -1 ? address : address.slice(0, zone);
    const family = parseAddress(text, this.scratch);
    if (family !== 'ipv4' && family !== 'ipv6') return false;
    for (const cidr of this.cidrs) if (matches(this.scratch, cidr)) return true;
    return false;
  }
}

/**
 * The network a host's own address belongs to, as a range: `192.168.1.7/24` -> `192.168.1.0/24`,
 * `fe80::1c2:3/64` -> `fe80::/64` (what os.networkInterfaces() gives as `cidr`). Null when it cannot be read.
 */
export function networkOf(hostCidr: string): string | null {
  const slash = hostCidr.indexOf('/');
  if (slash < 0) return null;
  const bytes = new Uint8Array(16);
  const zone = hostCidr.indexOf('%');
  const family = parseAddress(hostCidr.slice(0, zone >= 0 && zone < slash ? zone : slash), bytes);
  if (family !== 'ipv4' && family !== 'ipv6') return null;
  const ownPrefix = Number(hostCidr.slice(slash + 1));
  const bits = family === 'ipv4' ? 32 : 128;
  if (!Number.isInteger(ownPrefix) || ownPrefix < 0 || ownPrefix > bits) return null;
  const prefix = family === 'ipv4' ? ownPrefix + 96 : ownPrefix;
  for (let bit = prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatAddress(bytes, family)}/${ownPrefix}`;
}
