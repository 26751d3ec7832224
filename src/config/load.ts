/**
 * Reads one YAML config file and returns either a fully validated GatewayConfig or a list of errors a
 * person can act on. Never throws for bad input and never prints.
 *
 * The steps, each feeding the next only what it has checked:
 *  1. YAML is parsed here (not through convict.addParser) because convict's parser hook gets only the
 *     text: it loses the file name and the document's node positions, which every message needs.
 *  2. The parsed value is walked against the schema tree: unknown keys (with did-you-mean), a scalar
 *     where a section belongs, a mapping where a value belongs (convict's overlay would throw a TypeError).
 *     What survives is a clean object holding only known keys.
 *  3. Environment overrides are applied on top.
 *  4. convict validates every value through the strict sg-* formats (formats.ts), with allowed: 'strict'.
 *     Each listener in tcp/udp gets a convict instance of its own, so items are checked and defaulted
 *     exactly like sections.
 *  5. Cross-key rules run on the typed result (only when every single value was fine, so one typo does
 *     not cascade into noise).
 */
import { readFileSync, statSync } from 'node:fs';
import convict from 'convict';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { didYouMean, describeFound, quote } from './errors.js';
import type { ConfigError } from './errors.js';
import {
  canonicalHost,
  checkLeaf,
  collectProblems,
  expectation,
  isLeaf,
  isWildcardHost,
  registerConvictFormats,
} from './formats.js';
import type { SectionListSpec, SectionSpec } from './formats.js';
import { gatewaySchema, tcpListenerSchema, toConvictSchema, udpListenerSchema, webListenerSchema } from './schema.js';
import type { GatewayConfig, TcpListenerConfig, UdpListenerConfig } from './types.js';

export type { ConfigError } from './errors.js';
export { formatErrors } from './errors.js';

/** Where a value came from: the schema default, the file, or an environment variable (`env:NAME`). */
export type ConfigSource = 'default' | 'file' | `env:${string}`;
/** Keyed by every leaf key path: `serial.baudRate`, `tcp` (the list itself), `tcp[0].port`, ... */
export type ConfigSources = Record<string, ConfigSource>;

export type LoadResult =
  | { ok: true; config: GatewayConfig; sources: ConfigSources }
  | { ok: false; errors: ConfigError[] };

/** The environment variables that override file values, applied after the file. Empty = not set. */
export const ENV_OVERRIDES = [
  { name: 'SERIAL_GATEWAY_SERIAL_PATH', path: 'serial.path', number: false },
  { name: 'SERIAL_GATEWAY_BAUD_RATE', path: 'serial.baudRate', number: true },
  { name: 'SERIAL_GATEWAY_LOG_LEVEL', path: 'log.level', number: false },
  { name: 'SERIAL_GATEWAY_TCP_PORT', path: 'tcp[0].port', number: true },
] as const;

const MAX_FILE_BYTES = 1024 * 1024;
/** After the first few, YAML errors are mostly echoes of the first. */
const MAX_YAML_ERRORS = 3;

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    const stat = statSync(file);
    if (stat.isDirectory()) return failed(file, 'cannot read the config file: it is a directory');
    if (stat.size > MAX_FILE_BYTES) {
      return failed(file, `cannot read the config file: it is ${stat.size} bytes; a config is at most ${MAX_FILE_BYTES}`);
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return failed(file, readProblem(err));
  }
  return loadConfigText(text, file, env);
}

/** Like loadConfig, for text already in hand (reload, tests); `file` names it in messages. */
export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  try {
    return new ConfigCheck(file).run(text, env);
  } catch (err) {
    // A bug of ours, not the user's: still one readable line rather than a stack trace.
    const detail = err instanceof Error ? err.message : String(err);
    return failed(file, `internal error while checking the config (please report it): ${detail}`);
  }
}

function failed(file: string, message: string): LoadResult {
  return { ok: false, errors: [{ file, path: '', message: message.replace(/\s*[\r\n]+\s*/g, ' ') }] };
}

function readProblem(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  switch (code) {
    case 'ENOENT':
      return 'cannot read the config file: it does not exist (give another with --config FILE)';
    case 'EACCES':
    case 'EPERM':
      return 'cannot read the config file: permission denied';
    case 'EISDIR':
      return 'cannot read the config file: it is a directory';
    default:
      return `cannot read the config file: ${code !== '' ? code : err instanceof Error ? err.message : String(err)}`;
  }
}

// ---- key paths ----

/** `serial` + `baudRate` -> `serial.baudRate`; odd keys are JSON-quoted so a path stays one line. */
export function joinPath(parent: string, key: string): string {
  const segment = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return parent === '' ? segment : `${parent}.${segment}`;
}

function parentPath(path: string): string {
  const m = /(\.[A-Za-z0-9_-]+|\."(?:[^"\\]|\\.)*"|\[\d+\])$/.exec(path);
  return m ? path.slice(0, m.index) : '';
}

/** `tcp[0].port` -> ['tcp', 0, 'port'] (paths built from schema keys only). */
function pathSegments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([A-Za-z0-9_-]+)|\[(\d+)\]/g)) {
    out.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? ''));
  }
  return out;
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

interface Position {
  line: number;
  col: number;
}

/** Where each key (and list item) starts in the file, by key path. */
function indexPositions(node: unknown, path: string, lines: LineCounter, out: Map<string, Position>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const childPath = joinPath(path, String(pair.key.value));
      const range = pair.key.range;
      if (range) out.set(childPath, lines.linePos(range[0]));
      indexPositions(pair.value, childPath, lines, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const childPath = `${path}[${i}]`;
      const range = (item as YamlNode | null)?.range;
      if (range) out.set(childPath, lines.linePos(range[0]));
      indexPositions(item, childPath, lines, out);
    });
  }
}

// ---- the check ----

const tcpItemSchema = toConvictSchema(tcpListenerSchema);
const udpItemSchema = toConvictSchema(udpListenerSchema);
const webItemSchema = toConvictSchema(webListenerSchema);
const rootConvictSchema = toConvictSchema(gatewaySchema);

class ConfigCheck {
  private readonly errors: ConfigError[] = [];
  /** Key paths the file gave a value for. */
  private readonly present = new Set<string>();
  /** Key path -> the environment variable that set it. */
  private readonly fromEnv = new Map<string, string>();
  private positions = new Map<string, Position>();

  constructor(private readonly file: string) {}

  run(text: string, env: NodeJS.ProcessEnv): LoadResult {
    const parsed = this.parse(text);
    if (this.errors.length > 0) return this.failure();

    let clean: Mapping = {};
    if (isMapping(parsed)) {
      clean = this.walkSection(parsed, gatewaySchema, '');
    } else if (parsed !== null && parsed !== undefined) {
      this.add('', `the file must be a mapping of sections (serial:, lines:, tcp:, ...); found ${describeFound(parsed)}`);
    }
    this.applyEnv(clean, env);

    registerConvictFormats();
    const main = convict(rootConvictSchema as convict.Schema<unknown>, { env: {}, args: [] });
    main.load(clean);
    this.validate(main, '');
    const all = main.getProperties() as Mapping;
    const config = {
      ...all,
      tcp: this.validateItems(all['tcp'], tcpItemSchema, 'tcp'),
      udp: this.validateItems(all['udp'], udpItemSchema, 'udp'),
      web: this.validateItems(all['web'], webItemSchema, 'web'),
    } as unknown as GatewayConfig;

    if (this.errors.length > 0) return this.failure();
    this.crossCheck(config);
    if (this.errors.length > 0) return this.failure();
    return { ok: true, config, sources: this.sources(config) };
  }

  private failure(): LoadResult {
    return { ok: false, errors: this.errors };
  }

  private add(path: string, message: string): void {
    const env = this.fromEnv.get(path);
    if (env !== undefined) {
      this.errors.push({ file: this.file, path, message, env });
      return;
    }
    const error: ConfigError = { file: this.file, path, message };
    for (let p = path; ; p = parentPath(p)) {
      const pos = this.positions.get(p);
      if (pos !== undefined) {
        error.line = pos.line;
        error.column = pos.col;
        break;
      }
      if (p === '') break;
    }
    this.errors.push(error);
  }

  private parse(text: string): unknown {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors.slice(0, MAX_YAML_ERRORS)) {
        const first = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '');
        const pos = e.linePos?.[0];
        const error: ConfigError = { file: this.file, path: '', message: `invalid YAML: ${first}` };
        if (pos) {
          error.line = pos.line;
          error.column = pos.col;
        }
        this.errors.push(error);
      }
      const more = doc.errors.length - MAX_YAML_ERRORS;
      if (more > 0) {
        this.errors.push({ file: this.file, path: '', message: `${more} more YAML errors, usually caused by the first one` });
      }
      return undefined;
    }
    indexPositions(doc.contents, '', lines, this.positions);
    try {
      return doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // e.g. an alias bomb ("Excessive alias count ...") or an alias to nowhere.
      this.add('', `invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** Copies the known keys of `value`, reporting unknown keys and wrong shapes. */
  private walkSection(value: Mapping, spec: SectionSpec, path: string): Mapping {
    const out: Mapping = {};
    for (const key of Object.keys(value)) {
      const childPath = joinPath(path, key);
      const node = Object.prototype.hasOwnProperty.call(spec, key) ? spec[key] : undefined;
      if (node === undefined) {
        this.unknownKey(key, spec, path);
        continue;
      }
      const v = value[key];
      if (isLeaf(node)) {
        if (node.format === 'sg-section-list') {
          const list = this.walkList(v, node, childPath, key);
          if (list !== undefined) out[key] = list;
        } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
          // A mapping (or !!binary data) on a value key: convict's overlay would throw or flatten it.
          this.add(childPath, checkLeaf(node, v)[0]?.message ?? `${expectation(node)}; found ${describeFound(v)}`);
        } else {
          out[key] = v;
          this.present.add(childPath);
        }
      } else if (v === null) {
        // An empty section (every key under it commented out) means all defaults, like an absent one.
      } else if (!isMapping(v)) {
        const fits = leafAccepting(node, v);
        this.add(
          childPath,
          `expected a section (a mapping with keys ${Object.keys(node).join(', ')}); found ${describeFound(v)}` +
            (fits !== undefined ? `; did you mean ${quote(`${joinPath(childPath, fits)}: ${String(v)}`)}?` : ''),
        );
      } else {
        out[key] = this.walkSection(v, node, childPath);
      }
    }
    return out;
  }

  private walkList(value: unknown, spec: SectionListSpec, path: string, key: string): unknown[] | undefined {
    if (value === null) {
      this.add(
        path,
        `${expectation(spec)}; found nothing (write "${key}: []" for no ${key} listeners, or remove the key for the default)`,
      );
      return undefined;
    }
    const shape = checkLeaf(spec, value)[0];
    if (shape !== undefined || !Array.isArray(value)) {
      const hint = isMapping(value) ? ` (start each ${spec.itemNoun} with "- ")` : '';
      this.add(path, (shape?.message ?? expectation(spec)) + hint);
      return undefined;
    }
    this.present.add(path);
    return value.map((item, i) => {
      const itemPath = `${path}[${i}]`;
      if (!isMapping(item)) {
        this.add(itemPath, `expected a ${spec.itemNoun} section (a mapping with name:, port:, ...); found ${describeFound(item)}`);
        return null;
      }
      return this.walkSection(item, spec.item, itemPath);
    });
  }

  private unknownKey(key: string, spec: SectionSpec, parent: string): void {
    const path = joinPath(parent, key);
    const keys = Object.keys(spec);
    const near = didYouMean(key, keys);
    if (near !== undefined) {
      this.add(path, `unknown key; did you mean ${quote(joinPath(parent, near))}?`);
      return;
    }
    const homes = whereKeyLives(key);
    if (homes.length > 0) {
      this.add(path, `unknown key here; ${quote(key)} is a key of ${homes.join(', ')}`);
      return;
    }
    const noun = parent === '' ? 'section' : 'key';
    this.add(path, `unknown ${noun}; the ${noun}s ${parent === '' ? 'are' : `of ${parent} are`} ${keys.join(', ')}`);
  }

  private applyEnv(clean: Mapping, env: NodeJS.ProcessEnv): void {
    for (const override of ENV_OVERRIDES) {
      const raw = env[override.name];
      if (raw === undefined || raw === '') continue;
      const value = override.number && /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw;
      if (override.path === 'tcp[0].port') {
        this.fromEnv.set(override.path, override.name);
        if (!('tcp' in clean)) clean['tcp'] = structuredClone(gatewaySchema['tcp']?.default) as unknown;
        const list = clean['tcp'];
        if (!Array.isArray(list) || list.length === 0) {
          this.add(override.path, 'there is no tcp listener to set the port of (the tcp list is empty)');
        } else if (isMapping(list[0])) {
          list[0]['port'] = value;
        }
        continue;
      }
      const [section, key] = override.path.split('.') as [string, string];
      const target = isMapping(clean[section]) ? clean[section] : (clean[section] = {});
      (target as Mapping)[key] = value;
      this.fromEnv.set(override.path, override.name);
    }
  }

  private validate(instance: convict.Config<unknown>, prefix: string): void {
    const { problems, unexplained } = collectProblems(() => instance.validate({ allowed: 'strict' }));
    for (const p of problems) this.add(prefix === '' ? p.path : `${prefix}.${p.path}`, p.message);
    if (unexplained !== undefined) {
      // Not expected after the walk; kept so convict's own complaint still reaches the person.
      for (const line of unexplained.split('\n')) {
        const m = /configuration param '([^']*)'/.exec(line);
        this.add(m?.[1] !== undefined ? (prefix === '' ? m[1] : `${prefix}.${m[1]}`) : prefix, line);
      }
    }
  }

  private validateItems(list: unknown, itemSchema: object, key: 'tcp' | 'udp' | 'web'): Mapping[] {
    if (!Array.isArray(list)) return [];
    const out: Mapping[] = [];
    list.forEach((item, i) => {
      if (!isMapping(item)) return; // reported by the walk or by the list format
      const one = convict(itemSchema as convict.Schema<unknown>, { env: {}, args: [] });
      one.load(item);
      this.validate(one, `${key}[${i}]`);
      const props = one.getProperties() as Mapping;
      // History is marked by notices; where none can be seen (raw framing, notices: false), where a program reads
      // length prefixes, or where each connection is one question and its answer (closeAfterReply: `echo id | nc`
      // prints the answer alone), it is off unless the file asks for it.
      const oneShot = props['closeAfterReply'] === true;
      if (key === 'tcp' && !('historyLines' in item) && (props['framing'] !== 'lines' || props['notices'] === false || oneShot)) {
        props['historyLines'] = 0;
      }
      out.push(props);
    });
    return out;
  }

  private crossCheck(config: GatewayConfig): void {
    const { serial, lines } = config;
    if (serial.reconnectMaxMs < serial.reconnectMinMs) {
      this.add(
        'serial.reconnectMaxMs',
        `must be at least serial.reconnectMinMs (${serial.reconnectMinMs}); found ${serial.reconnectMaxMs}`,
      );
    }
    if (lines.ringBytes < 8 * lines.maxLineBytes) {
      this.add(
        'lines.ringBytes',
        `must be at least 8 times lines.maxLineBytes (${lines.maxLineBytes}), so ${8 * lines.maxLineBytes}; found ${lines.ringBytes} (raise lines.ringBytes or lower lines.maxLineBytes)`,
      );
    }
    let biggest: { path: string; bytes: number } | undefined;
    const buffered = [...config.tcp.map((l, i) => ({ l, path: `tcp[${i}]` })), ...config.web.map((l, i) => ({ l, path: `web[${i}]` }))];
    for (const { l, path } of buffered) {
      if (biggest === undefined || l.clientBufferBytes > biggest.bytes) {
        biggest = { path: `${path}.clientBufferBytes`, bytes: l.clientBufferBytes };
      }
    }
    if (biggest !== undefined && lines.ringBytes < 4 * biggest.bytes) {
      this.add(
        'lines.ringBytes',
        `must be at least 4 times the largest clientBufferBytes (${biggest.path} = ${biggest.bytes}), so ${4 * biggest.bytes}; found ${lines.ringBytes} (raise lines.ringBytes or lower ${biggest.path})`,
      );
    }

    const names = new Map<string, string>();
    const listeners: { path: string; name: string }[] = [
      ...config.tcp.map((l, i) => ({ path: `tcp[${i}]`, name: l.name })),
      ...config.udp.map((l, i) => ({ path: `udp[${i}]`, name: l.name })),
      ...config.web.map((l, i) => ({ path: `web[${i}]`, name: l.name })),
    ];
    for (const { path, name } of listeners) {
      const first = names.get(name);
      if (first !== undefined) {
        this.add(`${path}.name`, `${quote(name)} is already the name of ${first}; listener names must be unique across tcp, udp and web`);
      } else {
        names.set(name, path);
      }
    }

    this.checkPorts(config.tcp, 'tcp');
    this.checkPorts(config.udp, 'udp');
    this.checkWebPorts(config);

    if (config.transcript.maxFileBytes > config.transcript.maxBytes) {
      this.add(
        'transcript.maxFileBytes',
        `must not exceed transcript.maxBytes (${config.transcript.maxBytes}); found ${config.transcript.maxFileBytes} (lower maxFileBytes or raise maxBytes)`,
      );
    }

    config.tcp.forEach((l, i) => {
      if (l.closeAfterReply && l.mode !== 'request') {
        this.add(
          `tcp[${i}].closeAfterReply`,
          `only works with mode: request; this listener's mode is ${l.mode} (set mode: request or remove closeAfterReply)`,
        );
      }
      if (l.controlBytes === 'raw' && l.mode !== 'monitor') {
        this.add(
          `tcp[${i}].controlBytes`,
          `only applies to mode: monitor (other modes always pass device bytes on unchanged); this listener's mode is ${l.mode} (remove controlBytes)`,
        );
      }
    });
  }

  /** A web listener is a TCP port too: it may clash with another web listener or with a tcp one. */
  private checkWebPorts(config: GatewayConfig): void {
    const taken = [
      ...config.tcp.map((l, i) => ({ l, path: `tcp[${i}]` })),
      ...config.web.map((l, i) => ({ l, path: `web[${i}]` })),
    ];
    config.web.forEach((b, j) => {
      const mine = `web[${j}]`;
      for (const { l: a, path } of taken) {
        if (path === mine) return; // only clashes with those listed before it
        if (a.port !== b.port || !hostsOverlap(a.host, b.host)) continue;
        this.add(`${mine}.port`, `port ${b.port} on ${b.host} is already used by ${path} (${a.name} on ${a.host}); a web listener is a TCP port too`);
        return;
      }
    });
  }

  /** Two listeners of one protocol cannot bind the same port on overlapping addresses. */
  private checkPorts(list: (TcpListenerConfig | UdpListenerConfig)[], key: 'tcp' | 'udp'): void {
    list.forEach((b, j) => {
      for (let i = 0; i < j; i++) {
        const a = list[i];
        if (a === undefined || a.port !== b.port || !hostsOverlap(a.host, b.host)) continue;
        const why =
          isWildcardHost(a.host) || isWildcardHost(b.host)
            ? '0.0.0.0 and :: listen on every address'
            : 'both listen on the same address';
        const env = this.fromEnv.get(`${key}[${i}].port`);
        const via = env !== undefined ? `, port from $${env}` : '';
        this.add(
          `${key}[${j}].port`,
          `${key} port ${b.port} on ${b.host} is already used by ${key}[${i}] (${a.name} on ${a.host}${via}); ${why}`,
        );
        return;
      }
    });
  }

  private sources(config: GatewayConfig): ConfigSources {
    const out: ConfigSources = {};
    const sourceOf = (path: string): ConfigSource => {
      const env = this.fromEnv.get(path);
      if (env !== undefined) return `env:${env}`;
      return this.present.has(path) ? 'file' : 'default';
    };
    const walk = (section: SectionSpec, path: string, value: Mapping): void => {
      for (const [key, node] of Object.entries(section)) {
        const childPath = joinPath(path, key);
        if (!isLeaf(node)) {
          walk(node, childPath, value[key] as Mapping);
          continue;
        }
        out[childPath] = sourceOf(childPath);
        if (node.format === 'sg-section-list') {
          (value[key] as Mapping[]).forEach((item, i) => walk(node.item, `${childPath}[${i}]`, item));
        }
      }
    };
    walk(gatewaySchema, '', config as unknown as Mapping);
    return out;
  }
}

function hostsOverlap(a: string, b: string): boolean {
  if (isWildcardHost(a) || isWildcardHost(b)) return true;
  const loopback = (h: string): boolean => h === 'localhost' || h === '127.0.0.1' || canonicalHost(h) === canonicalHost('::1');
  if ((a === 'localhost' || b === 'localhost') && loopback(a) && loopback(b)) return true;
  return canonicalHost(a) === canonicalHost(b);
}

/** For `serial: /dev/ttyUSB0`: the key of the section the value was probably meant for (`path`). */
function leafAccepting(section: SectionSpec, value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  for (const [key, node] of Object.entries(section)) {
    // Free text accepts anything and a number fits many keys, so neither says anything about intent.
    if (!isLeaf(node) || node.format === 'sg-int' || (node.format === 'sg-string' && node.check === undefined)) continue;
    if (node.format === 'sg-string' && value === '') continue;
    if (checkLeaf(node, value).length === 0) return key;
  }
  return undefined;
}

/** The sections that do have `key` (case-insensitively), for "port is a key of tcp[N], udp[N]". */
function whereKeyLives(key: string): string[] {
  const lower = key.toLowerCase();
  const homes: string[] = [];
  const walk = (section: SectionSpec, path: string): void => {
    for (const [k, node] of Object.entries(section)) {
      if (k.toLowerCase() === lower && path !== '') homes.push(path);
      if (!isLeaf(node)) walk(node, joinPath(path, k));
      else if (node.format === 'sg-section-list') walk(node.item, `${joinPath(path, k)}[N]`);
    }
  };
  walk(gatewaySchema, '');
  return homes;
}

// ---- --print-config ----

const HIDDEN = '(hidden)';

/**
 * The effective config as YAML, with a comment on each value that is not the default naming where it
 * came from. The output loads back to the same config.
 */
export function describeConfig(config: GatewayConfig, sources: ConfigSources, file?: string): string {
  // A password is not printed: --print-config output ends up in terminals, tickets and chat.
  const shown = { ...config, web: config.web.map((l) => (l.monitorPassword === '' ? l : { ...l, monitorPassword: HIDDEN })) };
  const doc = new Document(shown);
  doc.commentBefore = [
    ' serial-gateway: effective configuration' + (file !== undefined ? ` (config file: ${file.replace(/[\r\n]/g, ' ')})` : ''),
    ' Values without a comment are the built-in defaults.',
  ].join('\n');
  for (const [path, source] of Object.entries(sources)) {
    if (source === 'default') continue;
    let note = source === 'file' ? ' from the config file' : ` from $${source.slice('env:'.length)}`;
    if (path.endsWith('.monitorPassword')) note += '; set, not shown';
    const segments = pathSegments(path);
    const node = doc.getIn(segments, true);
    if (isScalar(node)) {
      node.comment = note;
      continue;
    }
    // A list: put the note on its key, where a reader looks.
    const parent = doc.getIn(segments.slice(0, -1), true) ?? doc.contents;
    const last = segments[segments.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === last);
      if (pair !== undefined) {
        const keyNode = isScalar(pair.key) ? pair.key : doc.createNode(pair.key);
        keyNode.comment = note;
        pair.key = keyNode;
      }
    }
  }
  // How UDP treats sources outside `trusted` is not a value, so it would not show otherwise.
  config.udp.forEach((_, i) => {
    const listener = doc.getIn(['udp', i], true);
    if (!isMap(listener)) return;
    const pair = listener.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === 'trusted');
    if (pair === undefined) return;
    const keyNode = isScalar(pair.key) ? pair.key : doc.createNode(pair.key);
    const policy = ' others must prove their address: a cookie first, and at most 3x their bytes until they send it back';
    keyNode.comment = keyNode.comment ? `${keyNode.comment};${policy}` : policy;
    pair.key = keyNode;
  });
  return doc.toString({ lineWidth: 0 });
}
