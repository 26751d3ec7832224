/**
 * Config errors as data, and the one place that turns them into lines a person reads. Every message is
 * a single line: what was expected, then what was found, so the fix is obvious without the schema.
 */

export interface ConfigError {
  /** The config file as it was named to loadConfig (or the label given to loadConfigText). */
  file: string;
  /** Key path like `tcp[1].mode`; '' when the problem is the file as a whole (YAML syntax, unreadable). */
  path: string;
  /** One line, no key path or file in it: `must be one of shared, request, monitor; found "shraed"`. */
  message: string;
  /** 1-based position of the offending key (or value) in the file, when the YAML shows it. */
  line?: number;
  column?: number;
  /** Set when the bad value came from this environment variable rather than from the file. */
  env?: string;
}

const MAX_SHOWN = 40;

/** `config.yaml:12:5: tcp[1].mode: must be ...`, one error per line, ordered by position in the file. */
export function formatErrors(errors: readonly ConfigError[]): string {
  const ordered = [...errors].sort((a, b) => rank(a) - rank(b));
  const lines = ordered.slice(0, MAX_SHOWN).map(formatError);
  if (ordered.length > MAX_SHOWN) lines.push(`... and ${ordered.length - MAX_SHOWN} more errors`);
  return lines.join('\n');
}

export function formatError(e: ConfigError): string {
  let where: string;
  if (e.env !== undefined) where = `$${e.env}`;
  else if (e.line !== undefined) where = `${e.file}:${e.line}${e.column !== undefined ? `:${e.column}` : ''}`;
  else where = e.file;
  const parts = [where];
  if (e.path !== '') parts.push(e.path);
  parts.push(oneLine(e.message));
  return parts.join(': ');
}

function rank(e: ConfigError): number {
  if (e.env !== undefined) return Number.MAX_SAFE_INTEGER;
  return e.line ?? Number.MAX_SAFE_INTEGER - 1;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return flat === '' ? 'invalid' : flat;
}

const SHOWN_CHARS = 60;

/** What a value looks like to the person who wrote it: `"shraed"`, `70000`, `a list`, `nothing`. */
export function describeFound(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (an empty value)';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (value instanceof Set) return 'a set';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object') return 'a section (a mapping)';
  return typeof value;
}

/** A string shown in a message: JSON-quoted so control characters cannot break the line, and clipped. */
export function quote(text: string): string {
  const clipped = text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}...` : text;
  return JSON.stringify(clipped);
}

/**
 * The key the person probably meant: a case-insensitive match first (`baudrate` -> `baudRate`), else the
 * closest by edit distance (adjacent swaps count as one edit, so `mdoe` -> `mode`), within a third of
 * the word's length.
 */
export function didYouMean(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = candidates.find((c) => c.toLowerCase() === lower);
  if (exact !== undefined) return exact;
  const limit = Math.max(1, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transposition). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prevPrev: number[] = [];
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (prevPrev[j - 2] ?? 0) + 1);
      }
      row.push(d);
    }
    prevPrev = prev;
    prev = row;
  }
  return prev[b.length] ?? 0;
}
