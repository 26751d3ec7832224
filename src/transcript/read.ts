import { readdirSync, statSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, formatErrors } from '../config/load.js';
import { locateConfig } from '../config/locate.js';
import { byTime, parseFileName } from './files.js';
import { localDay, parseRecord, renderRecord, type TranscriptRecord } from './record.js';

/**
 * `serial-gateway transcript`: reads the transcript files back, as a chat for a person or as JSON Lines.
 * Read-only; needs only read access to the directory (the service group has it).
 */

export const TRANSCRIPT_HELP = `usage: serial-gateway transcript [--config FILE | --dir DIR] [--since WHEN] [--until WHEN]
                                [--client ADDRESS] [--listener NAME] [--follow] [--json]

Prints the class transcript as a chat:   10:02:14 tcp:class 10.0.0.7:51234 > id
                                         10:02:14 device < 6510500000
  --config FILE      find the directory from this config's transcript.dir (else as the daemon finds its config)
  --dir DIR          read this directory instead
  --since, --until   a time: 2026-12-01, "2026-12-01 10:00", 10:00 (today), 90m / 2h / 3d (ago), or ISO 8601
  --client ADDRESS   only this client (10.0.0.7, or 10.0.0.7:51234 for one connection), with the device lines
                     that came after its lines and before anyone else's
  --listener NAME    only clients of this listener (class, or tcp:class), with the device lines that answered them
  --follow           keep printing new records as they are written (Ctrl-C ends)
  --json             print the records as they are stored, one JSON object a line
Bytes from clients and the device are shown with control bytes as \\xNN (\\x1b), as monitors show them.
`;

export interface TranscriptArgs {
  config?: string;
  dir?: string;
  since?: number;
  until?: number;
  client?: string;
  listener?: string;
  follow: boolean;
  json: boolean;
}

/** Parses `--since`/`--until`: a time in ms, or null when it is none of the accepted forms. */
export function parseWhen(s: string, nowMs: number): number | null {
  const ago = /^(\d+)\s*(s|m|min|h|d)$/.exec(s.trim());
  if (ago) {
    const unit = { s: 1000, m: 60000, min: 60000, h: 3600000, d: 86400000 }[ago[2] as 's' | 'm' | 'min' | 'h' | 'd'];
    return nowMs - Number(ago[1]) * unit;
  }
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
  if (clock) {
    const d = new Date(nowMs);
    d.setHours(Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0), 0);
    return d.getTime();
  }
  const date = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/.exec(s.trim());
  if (date) {
    const [, y, mo, d, h, mi, se] = date;
    return new Date(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(se ?? 0)).getTime();
  }
  if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/.test(s.trim())) {
    const t = Date.parse(s.trim());
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

export function parseTranscriptArgs(argv: string[], nowMs: number): TranscriptArgs | string {
  const a: TranscriptArgs = { follow: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string | undefined => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return undefined;
      i++;
      return v;
    };
    const need = (what: string): string => {
      const v = value();
      if (v === undefined) throw new Error(`${flag} needs ${what}`);
      return v;
    };
    try {
      switch (flag) {
        case '--config':
          a.config = need('a FILE');
          break;
        case '--dir':
          a.dir = need('a DIR');
          break;
        case '--since':
        case '--until': {
          const v = need('a time');
          const t = parseWhen(v, nowMs);
          if (t === null) return `${flag} ${JSON.stringify(v)}: expected 2026-12-01, "2026-12-01 10:00", 10:00, 90m, 2h, 3d or ISO 8601`;
          if (flag === '--since') a.since = t;
          else a.until = t;
          break;
        }
        case '--client':
          a.client = need('an ADDRESS');
          break;
        case '--listener':
          a.listener = need('a NAME');
          break;
        case '--follow':
        case '-f':
          a.follow = true;
          break;
        case '--json':
          a.json = true;
          break;
        default:
          return `unknown argument ${JSON.stringify(raw)}`;
      }
    } catch (err) {
      return (err as Error).message;
    }
  }
  return a;
}

function hasClient(r: TranscriptRecord): r is Extract<TranscriptRecord, { addr: string }> {
  return 'addr' in r;
}

/**
 * The record filter. --client/--listener pick client records; a device line is kept when the last client line
 * before it was a picked one (what the device answered them); gateway-wide events (device away/back, reloads,
 * start/stop, drops) are always kept as context.
 */
export class RecordFilter {
  private answering = false;

  constructor(private readonly a: Pick<TranscriptArgs, 'since' | 'until' | 'client' | 'listener'>) {}

  keep(r: TranscriptRecord): boolean {
    const t = Date.parse(r.t);
    const picking = this.a.client !== undefined || this.a.listener !== undefined;
    let keep: boolean;
    if (hasClient(r)) {
      const mine = this.matches(r);
      if (r.k === 'client') this.answering = mine;
      keep = mine;
    } else {
      keep = r.k !== 'device' || !picking || this.answering;
    }
    if (this.a.since !== undefined && t < this.a.since) return false;
    if (this.a.until !== undefined && t > this.a.until) return false;
    return keep;
  }

  private matches(r: Extract<TranscriptRecord, { addr: string }>): boolean {
    const c = this.a.client;
    if (c !== undefined) {
      const bare = c.replace(/^\[(.*)\](:\d+)?$/, '$1$2');
      if (c !== r.addr && bare !== r.addr && c !== `${r.addr}:${r.port}` && c !== `[${r.addr}]:${r.port}`) return false;
    }
    const l = this.a.listener;
    if (l !== undefined && l !== r.listener && l !== `${r.via}:${r.listener}`) return false;
    return true;
  }
}

const EMPTY = Buffer.alloc(0);

interface Cursor {
  name: string;
  offset: number;
  /** Bytes after the last newline (kept as bytes: a chunk may end inside a UTF-8 character). */
  rest: Buffer;
}

export interface DirReaderOptions {
  /** Skip files of days before this one (YYYY-MM-DD). */
  fromDay?: string;
  /** Read only the files of this day. */
  day?: string;
  /** Bytes read at a time: the CLI reads 1 MiB; the daemon (a download) less, so the data path is never held long. */
  chunkBytes?: number;
}

/**
 * Reads the directory's transcript files in time order, from where the last call stopped. Asynchronous, one
 * chunk at a time: the daemon serves downloads with it without blocking its event loop.
 */
export class TranscriptDirReader {
  private readonly cursors = new Map<string, Cursor>();
  skipped = 0;

  constructor(
    readonly dir: string,
    private readonly o: DirReaderOptions = {},
  ) {}

  /** The transcript files of the options' days, in time order. */
  async files(): Promise<string[]> {
    const { fromDay, day } = this.o;
    return (await readdir(this.dir))
      .map((name) => ({ name, p: parseFileName(name) }))
      .filter((f): f is { name: string; p: { day: string; index: number } } => f.p !== null)
      // A record is written a moment after it happened: a file of the day before may still hold it.
      .filter((f) => (fromDay === undefined || f.p.day >= fromDay) && (day === undefined || f.p.day === day))
      .sort((x, y) => byTime(x.p, y.p))
      .map((f) => f.name);
  }

  /**
   * New whole lines since the last call (a line still being written waits for its newline). `pause` is awaited
   * after each chunk read, so a slow reader (a pipe to less, a download) holds the reading back instead of
   * filling memory; it may throw to stop reading.
   */
  async read(onLine: (line: string) => void, final: boolean, pause?: () => Promise<void>): Promise<void> {
    for (const name of await this.files()) {
      let c = this.cursors.get(name);
      if (!c) {
        c = { name, offset: 0, rest: EMPTY };
        this.cursors.set(name, c);
      }
      await this.readFile(c, onLine, pause);
      if (final && c.rest.length > 0) {
        // A torn last line (a crash mid-write), or one being written now: not a record yet.
        this.skipped++;
        c.rest = EMPTY;
      }
    }
  }

  private async readFile(c: Cursor, onLine: (line: string) => void, pause?: () => Promise<void>): Promise<void> {
    let handle;
    try {
      handle = await open(join(this.dir, c.name), 'r');
    } catch {
      return; // deleted by retention meanwhile
    }
    try {
      const size = (await handle.stat()).size;
      if (size < c.offset) {
        c.offset = 0;
        c.rest = EMPTY;
      }
      const buf = Buffer.allocUnsafe(Math.min(this.o.chunkBytes ?? 1 << 20, Math.max(size - c.offset, 1)));
      while (c.offset < size) {
        const { bytesRead: n } = await handle.read(buf, 0, Math.min(buf.length, size - c.offset), c.offset);
        if (n <= 0) break;
        c.offset += n;
        // Split on the newline byte: UTF-8 never has 0x0a inside a character.
        let from = 0;
        for (let nl = buf.indexOf(0x0a, 0); nl >= 0 && nl < n; nl = buf.indexOf(0x0a, from)) {
          const line = c.rest.length > 0 ? Buffer.concat([c.rest, buf.subarray(from, nl)]).toString('utf8') : buf.toString('utf8', from, nl);
          c.rest = EMPTY;
          from = nl + 1;
          onLine(line);
        }
        if (from < n) c.rest = Buffer.concat([c.rest, buf.subarray(from, n)]);
        await pause?.();
      }
    } finally {
      await handle.close();
    }
  }
}

/**
 * Stored lines to output: as a chat for a person (`--- 2026-12-01 ---` before each day's first record) or the
 * JSON Lines as stored; records the filter leaves out and lines that are not records print nothing.
 */
export class TranscriptPrinter {
  private day = '';

  constructor(
    private readonly format: 'chat' | 'json',
    private readonly filter?: RecordFilter,
  ) {}

  /** The text to print for one stored line (newline included; '' for none), or null when it is not a record. */
  line(line: string): string | null {
    const r = parseRecord(line);
    if (!r) return null;
    if (this.filter && !this.filter.keep(r)) return '';
    if (this.format === 'json') return `${jsonForTerminal(line)}\n`;
    const d = localDay(Date.parse(r.t));
    const head = d === this.day ? '' : `--- ${d} ---\n`;
    this.day = d;
    return `${head}${renderRecord(r)}\n`;
  }
}

/**
 * A stored record as printed by --json: JSON.stringify leaves DEL and the C1 controls (U+007F-U+009F) as they
 * are, and a terminal acts on C1 (U+009B is CSI): written as \u escapes instead, the same JSON to a parser.
 * They can only occur inside strings (anything else would not have parsed).
 */
function jsonForTerminal(line: string): string {
  return line.replace(/[\u007f-\u009f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

export interface TranscriptIo {
  out: (s: string) => void;
  err: (s: string) => void;
  now: () => number;
  /** --follow: resolves when the reader should stop (SIGINT). */
  stopped?: Promise<void>;
  /** Resolves once the output has room again (stdout's 'drain'). */
  pause?: () => Promise<void>;
}

/** Runs the command; returns the exit code (0 ok, 1 nothing readable, 2 usage). */
export async function runTranscriptCommand(argv: string[], env: NodeJS.ProcessEnv, io: TranscriptIo): Promise<number> {
  const a = parseTranscriptArgs(argv, io.now());
  if (typeof a === 'string') {
    io.err(`serial-gateway transcript: ${a}\n\n${TRANSCRIPT_HELP}`);
    return 2;
  }
  let dir = a.dir;
  let note = '';
  if (dir === undefined) {
    const located = locateConfig({ config: a.config }, env);
    const loaded = loadConfig(located.file, env);
    if (!loaded.ok) {
      io.err(`serial-gateway transcript: the config is invalid:\n${formatErrors(loaded.errors)}\n`);
      return 1;
    }
    dir = loaded.config.transcript.dir;
    if (!loaded.config.transcript.enabled) note = ` (transcript.enabled is false in ${located.file})`;
  }
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    readdirSync(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no transcript yet' : e.code === 'EACCES' ? 'not readable by you (the service group can read it)' : e.message;
    io.err(`serial-gateway transcript: ${dir}: ${why}${note}\n`);
    return 1;
  }
  const reader = new TranscriptDirReader(dir, { fromDay: a.since !== undefined ? localDay(a.since - 86400000) : undefined });
  const printer = new TranscriptPrinter(a.json ? 'json' : 'chat', new RecordFilter(a));
  const print = (line: string): void => {
    const out = printer.line(line);
    if (out === null) reader.skipped++;
    else if (out !== '') io.out(out);
  };
  await reader.read(print, !a.follow, io.pause);
  if (a.follow) {
    let done = false;
    void io.stopped?.then(() => (done = true));
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await reader.read(print, false, io.pause);
    }
  }
  if (reader.skipped > 0) {
    io.err(`(${reader.skipped} unreadable line${reader.skipped === 1 ? '' : 's'} skipped: a record cut short by a crash or a full disk)\n`);
  }
  return 0;
}
