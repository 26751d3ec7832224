/**
 * The value checks behind every config key, and their registration as convict formats.
 *
 * convict's built-in formats coerce (`int` runs parseInt, so "12abc" became 12; Boolean turns every
 * string but "false" into true), so every key uses one of the strict `sg-*` formats below instead. None
 * of them has a coerce function: a string in the file stays a string and is refused where a number or a
 * boolean belongs. convict formats are module-global, so registration happens once per process.
 *
 * convict folds all of its errors into one multi-line Error; to keep each problem's key path and message
 * apart, the formats also report into a collector that `collectProblems` installs around validate().
 */
import convict from 'convict';
import { describeFound, didYouMean, quote } from './errors.js';

/** Named string checks, so schema nodes stay plain data (convict deep-clones them). */
export type StringCheck = 'listenerName' | 'host' | 'hostName' | 'hexId' | 'serialPath' | 'absPath' | 'ledLabel' | 'cidr' | 'trusted';

interface LeafBase {
  doc: string;
  /** null on a required key: the file must give it. */
  default: unknown;
  required?: boolean;
}

export interface IntSpec extends LeafBase {
  format: 'sg-int';
  min: number;
  max: number;
  unit?: string;
}

export interface BoolSpec extends LeafBase {
  format: 'sg-bool';
}

export interface EnumSpec extends LeafBase {
  format: 'sg-enum';
  values: readonly (string | number)[];
  /** Why a tempting value is refused, e.g. monitor on a UDP listener. */
  refusals?: Readonly<Record<string, string>>;
}

export interface StringSpec extends LeafBase {
  format: 'sg-string';
  maxLength: number;
  check?: StringCheck;
}

/** A list of strings checked one by one (the allow lists). Lists of sections are handled in load.ts. */
export interface StringListSpec extends LeafBase {
  format: 'sg-string-list';
  maxItems: number;
  item: StringSpec;
}

/** A list of listener sections; each item is validated by a convict instance of its own. */
export interface SectionListSpec extends LeafBase {
  format: 'sg-section-list';
  maxItems: number;
  item: SectionSpec;
  /** How a person names one item in a message: "listener". */
  itemNoun: string;
}

export type LeafSpec = IntSpec | BoolSpec | EnumSpec | StringSpec | StringListSpec | SectionListSpec;

export interface SectionSpec {
  [key: string]: LeafSpec | SectionSpec;
}

export function isLeaf(node: LeafSpec | SectionSpec): node is LeafSpec {
  return Object.prototype.hasOwnProperty.call(node, 'default');
}

/** A problem found in one value; `at` extends the key path (`[2]` for the third allow entry). */
export interface Problem {
  at: string;
  message: string;
}

/** Checks one value against its leaf spec. Empty array = fine. Never throws. */
export function checkLeaf(spec: LeafSpec, value: unknown): Problem[] {
  if (value === null || value === undefined) {
    const want = expectation(spec);
    return [
      {
        at: '',
        message: spec.required
          ? `${want}; found nothing (this key is required)`
          : `${want}; found nothing (an empty value): give a value or remove the key to get the default`,
      },
    ];
  }
  switch (spec.format) {
    case 'sg-int':
      return one(checkInt(spec, value));
    case 'sg-bool':
      return one(typeof value === 'boolean' ? null : `must be true or false; found ${describeFound(value)}`);
    case 'sg-enum':
      return one(checkEnum(spec, value));
    case 'sg-string':
      return one(checkString(spec, value));
    case 'sg-string-list':
      return checkStringList(spec, value);
    case 'sg-section-list':
      return one(checkListShape(spec, value));
  }
}

function one(message: string | null): Problem[] {
  return message === null ? [] : [{ at: '', message }];
}

/** "an integer from 1 to 65535", "one of shared, request, monitor": what the key wants, in words. */
export function expectation(spec: LeafSpec): string {
  switch (spec.format) {
    case 'sg-int':
      return `must be an integer from ${spec.min} to ${spec.max}${spec.unit ? ` (${spec.unit})` : ''}`;
    case 'sg-bool':
      return 'must be true or false';
    case 'sg-enum':
      return `must be one of ${spec.values.join(', ')}`;
    case 'sg-string':
      return spec.check ? `must be ${STRING_CHECKS[spec.check].want}` : 'must be text';
    case 'sg-string-list':
      return `must be a list of ${STRING_CHECKS[spec.item.check ?? 'cidr'].want}s`;
    case 'sg-section-list':
      return `must be a list of ${spec.itemNoun} sections`;
  }
}

function checkInt(spec: IntSpec, value: unknown): string | null {
  const want = expectation(spec);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return `${want}; found ${describeFound(value)}`;
    if (value < spec.min || value > spec.max) return `${want}; found ${value}`;
    return null;
  }
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) {
    return `${want}; found the string ${quote(value)} (write the number without quotes)`;
  }
  return `${want}; found ${describeFound(value)}`;
}

function checkEnum(spec: EnumSpec, value: unknown): string | null {
  if (spec.values.includes(value as string | number)) return null;
  let message = `${expectation(spec)}; found ${describeFound(value)}`;
  const refusal = spec.refusals?.[String(value)];
  if (refusal !== undefined) return `${message} (${refusal})`;
  if (typeof value === 'string') {
    if (spec.values.some((v) => typeof v === 'number' && String(v) === value.trim())) {
      return `${message} (write the number without quotes)`;
    }
    const near = didYouMean(
      value,
      spec.values.filter((v): v is string => typeof v === 'string'),
    );
    if (near !== undefined) message += `; did you mean ${quote(near)}?`;
  }
  return message;
}

function checkString(spec: StringSpec, value: unknown): string | null {
  const want = expectation(spec);
  if (typeof value !== 'string') {
    if (typeof value === 'number') {
      return `${want}; found the number ${value} (YAML reads unquoted digits as a number: put the value in quotes)`;
    }
    if (typeof value === 'boolean') {
      return `${want}; found the boolean ${value} (YAML reads unquoted true/false as a boolean: put the value in quotes)`;
    }
    return `${want}; found ${describeFound(value)}`;
  }
  if (value.length > spec.maxLength) {
    return `must be at most ${spec.maxLength} characters; found ${value.length}`;
  }
  if (spec.check !== undefined) {
    const reason = STRING_CHECKS[spec.check].test(value);
    if (reason !== null) return `${want}; found ${quote(value)}${reason === '' ? '' : ` (${reason})`}`;
  }
  return null;
}

function checkStringList(spec: StringListSpec, value: unknown): Problem[] {
  const shape = checkListShape(spec, value);
  if (shape !== null) return [{ at: '', message: shape }];
  const problems: Problem[] = [];
  (value as unknown[]).forEach((item, i) => {
    const message = item === null || item === undefined
      ? `${expectation(spec.item)}; found nothing (an empty value)`
      : checkString(spec.item, item);
    if (message !== null) problems.push({ at: `[${i}]`, message });
  });
  return problems;
}

function checkListShape(spec: StringListSpec | SectionListSpec, value: unknown): string | null {
  if (!Array.isArray(value)) return `${expectation(spec)}; found ${describeFound(value)}`;
  if (value.length > spec.maxItems) {
    return `must have at most ${spec.maxItems} entries; found ${value.length}`;
  }
  return null;
}

/**
 * Each check returns null when the text is fine, else a reason ('' when the expectation says it all).
 */
const STRING_CHECKS: Record<StringCheck, { want: string; test(text: string): string | null }> = {
  listenerName: {
    want: '1 to 32 characters from a-z, 0-9, _ and -',
    test: (s) => (/^[a-z0-9_-]{1,32}$/.test(s) ? null : ''),
  },
  host: {
    want: "an IP address to listen on (0.0.0.0 for every IPv4 address, :: for every address, or 'localhost')",
    test: (s) => (s === 'localhost' || isIpAddress(s) ? null : ''),
  },
  hostName: {
    want: 'a DNS name the pages are opened by, like lab-pi.school.example (letters, digits, - and .)',
    test: (s) => (/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(s) ? null : ''),
  },
  hexId: {
    want: 'a USB id of 4 hex digits in quotes, like "0403", or "" for any',
    test: (s) => (s === '' || /^[0-9a-fA-F]{4}$/.test(s) ? null : ''),
  },
  serialPath: {
    want: "a device path like /dev/ttyUSB0, 'sim:labbox' for the simulator, or '' to find the port by serial.match",
    test: (s) => {
      if (s === '' || s === 'sim:labbox') return null;
      if (s.startsWith('sim:')) return 'the only simulator is sim:labbox';
      return s.startsWith('/') ? null : 'use an absolute path';
    },
  },
  absPath: {
    want: 'an absolute path',
    test: (s) => (s.startsWith('/') ? null : ''),
  },
  ledLabel: {
    want: 'an LED name of 1 to 64 characters from A-Z, a-z, 0-9 and _ . : + -',
    test: (s) => (/^[A-Za-z0-9_.:+-]{1,64}$/.test(s) && s !== '.' && s !== '..' ? null : ''),
  },
  cidr: {
    want: 'an IPv4 or IPv6 address with an optional /prefix (like 192.168.1.0/24 or fd00::/8)',
    test: (s) => cidrProblem(s),
  },
  trusted: {
    want: 'loopback, local-networks, or an IPv4 or IPv6 address with an optional /prefix (like 192.168.1.0/24)',
    test: (s) => (s === 'loopback' || s === 'local-networks' ? null : cidrProblem(s)),
  },
};

// ---- IP addresses, written here rather than shared with src/net so config stays self-contained ----

/** The four bytes of a dotted IPv4 address, or null. Leading zeros are refused (some tools read octal). */
export function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    bytes.push(n);
  }
  return bytes;
}

/** The eight 16-bit groups of an IPv6 address (`::` and a trailing dotted IPv4 allowed), or null. */
export function parseIPv6(text: string): number[] | null {
  if (text.length === 0 || text.length > 45) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? '';
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (v4 === null) return null;
        groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0] ?? '');
  if (head === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const tail = parseGroups(halves[1] ?? '');
  if (tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

export function isIpAddress(text: string): boolean {
  return parseIPv4(text) !== null || parseIPv6(text) !== null;
}

/** null when `text` is an address or address/prefix; otherwise what is wrong ('' if nothing specific). */
export function cidrProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const isV4 = parseIPv4(address) !== null;
  const isV6 = !isV4 && parseIPv6(address) !== null;
  if (!isV4 && !isV6) return address.trim() !== address ? 'remove the spaces' : '';
  if (slash < 0) return null;
  const prefix = text.slice(slash + 1);
  const max = isV4 ? 32 : 128;
  if (!/^(0|[1-9]\d{0,2})$/.test(prefix)) return `the prefix after / must be a number from 0 to ${max}`;
  if (Number(prefix) > max) return `an ${isV4 ? 'IPv4' : 'IPv6'} prefix is at most /${max}`;
  return null;
}

/** A form of a listen host that compares equal for equal addresses (`::1` and `0:0::1`). */
export function canonicalHost(host: string): string {
  const v6 = parseIPv6(host);
  if (v6 !== null) return v6.map((g) => g.toString(16)).join(':');
  return host;
}

/** 0.0.0.0 and :: listen on every address, so they clash with any other host on the same port. */
export function isWildcardHost(host: string): boolean {
  if (host === '0.0.0.0') return true;
  const v6 = parseIPv6(host);
  return v6 !== null && v6.every((g) => g === 0);
}

// ---- convict registration and the problem collector ----

/** Set while validate() runs; formats report here as well as throwing for convict. */
let collector: { keyPathOf: (item: unknown) => string; problems: { path: string; message: string }[] } | null =
  null;

/**
 * Runs `fn` (a convict validate call) and returns the problems the sg-* formats saw, each with its full
 * key path, plus whatever convict threw that no format reported (a safety net; normally nothing).
 */
export function collectProblems(fn: () => void): { problems: { path: string; message: string }[]; unexplained?: string } {
  const problems: { path: string; message: string }[] = [];
  const previous = collector;
  collector = { keyPathOf, problems };
  try {
    fn();
    return { problems };
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    return problems.length > 0 ? { problems } : { problems, unexplained: text };
  } finally {
    collector = previous;
  }
}

/** Schema nodes carry their own key path (added by toConvictSchema) so formats can name it. */
function keyPathOf(item: unknown): string {
  if (typeof item === 'object' && item !== null && 'keyPath' in item) {
    const path = (item as { keyPath: unknown }).keyPath;
    if (typeof path === 'string') return path;
  }
  return '';
}

let registered = false;

export function registerConvictFormats(): void {
  if (registered) return;
  registered = true;
  const names: LeafSpec['format'][] = ['sg-int', 'sg-bool', 'sg-enum', 'sg-string', 'sg-string-list', 'sg-section-list'];
  for (const name of names) {
    convict.addFormat({
      name,
      validate(value: unknown, schemaItem: unknown) {
        const problems = checkLeaf(schemaItem as LeafSpec, value);
        if (problems.length === 0) return;
        if (collector !== null) {
          const base = collector.keyPathOf(schemaItem);
          for (const p of problems) collector.problems.push({ path: base + p.at, message: p.message });
        }
        throw new Error(problems.map((p) => p.message).join('; '));
      },
    });
  }
}
