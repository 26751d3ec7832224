/**
 * The arguments of the instructor's actions, parsed once for the CLI, the control socket and the dashboard:
 * durations (`10m`), client addresses (`10.0.0.7`, `10.0.0.7:51234`, `[::1]:40112`) and notice texts.
 * Pure: no I/O. Each parser returns a value or a sentence saying what is wrong and what would be right.
 */
import { isIP } from 'node:net';

/** The longest pause or ban: a lab session, not a policy (none survives a restart anyway). */
export const MAX_ACTION_MS = 24 * 3600_000;
/** The longest `say` text, in characters: one line on a phone. */
export const MAX_SAY_CHARS = 200;
export const MAX_REASON_CHARS = 120;

const UNITS: Record<string, number> = { s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3600_000 };

/** `90s`, `10m`, `10min`, `1h`, `1h30m`: a duration in ms, between 1 s and 24 h. */
export function parseDuration(text: string): number | string {
  const t = text.trim().toLowerCase();
  const parts = /^(?:(\d{1,5})(h|min|m|sec|s))+$/.test(t) ? [...t.matchAll(/(\d{1,5})(h|min|m|sec|s)/g)] : [];
  if (parts.length === 0) return `not a duration: ${JSON.stringify(text)} (use a number with s, m or h, like 90s, 10m or 1h)`;
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
  if (ms < 1000 || ms > MAX_ACTION_MS) return `${text} is out of range (1s to 24h)`;
  return ms;
}

export interface ClientTarget {
  /** Normalized: lowercase, an IPv4-mapped IPv6 address as plain IPv4. */
  address: string;
  /** null: every client from the address. */
  port: number | null;
}

/** `::ffff:10.0.0.7` is 10.0.0.7: what a dual-stack socket reports for an IPv4 client. */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** `ADDRESS[:PORT]` as the dashboard and `clients` show peers: `10.0.0.7:51234`, `[::1]:40112`, `::1`. */
export function parseTarget(text: string): ClientTarget | string {
  const t = text.trim();
  const bad = `not a client address: ${JSON.stringify(text)} (use ADDRESS or ADDRESS:PORT as \`serial-gateway clients\` lists them, like 10.0.0.7:51234 or [::1]:40112)`;
  let address = t;
  let port: string | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracketed) {
    address = bracketed[1]!;
    port = bracketed[2] ?? null;
  } else if (isIP(t) === 0) {
    const colon = t.lastIndexOf(':');
    if (colon < 0) return bad;
    address = t.slice(0, colon);
    port = t.slice(colon + 1);
    // An unbracketed IPv6 address with a port is ambiguous: only IPv4 (or the mapped form) takes `:PORT` bare.
    if (isIP(address) === 6 && !address.startsWith('::ffff:')) return bad;
  }
  if (isIP(address) === 0) return bad;
  if (port !== null && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return `${bad}: the port must be 1 to 65535`;
  return { address: normalizeAddress(address), port: port === null ? null : Number(port) };
}

/** Whether a client (its socket's remote address and port) is the target. */
export function targetMatches(target: ClientTarget, address: string, port: number): boolean {
  return normalizeAddress(address) === target.address && (target.port === null || target.port === port);
}

/** The port at the end of a peer label (`10.0.0.7:51234`, `[::1]:40112`). */
export function peerPort(peer: string): number {
  return Number(peer.slice(peer.lastIndexOf(':') + 1));
}

/**
 * A text for `say` or a kick reason: one line of printable characters, at most `max`. Control characters are
 * refused rather than stripped (the instructor sees exactly what the class will see).
 */
export function checkText(text: string, max: number, what: string, allowEmpty = false): string | null {
  const t = text.trim();
  if (t === '' && !allowEmpty) return `${what} is empty`;
  if ([...t].length > max) return `${what} is too long (${[...t].length} characters, at most ${max})`;
  // C0, DEL and C1 controls, and the Unicode line and paragraph separators.
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(t)) return `${what} must be one line of text (no control characters)`;
  return null;
}
