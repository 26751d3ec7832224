/**
 * Transcript file names and the retention rule (pure). One file per local day, `transcript-2026-12-01.jsonl`;
 * a day that outgrows maxFileBytes goes on in `transcript-2026-12-01.1.jsonl`, `.2`, ... Sorting by (day, index)
 * is time order.
 */

export interface TranscriptFile {
  name: string;
  day: string;
  index: number;
  size: number;
}

const NAME = /^transcript-(\d{4}-\d{2}-\d{2})(?:\.(\d{1,6}))?\.jsonl$/;

export function fileName(day: string, index: number): string {
  return index === 0 ? `transcript-${day}.jsonl` : `transcript-${day}.${index}.jsonl`;
}

/** The day and index of a transcript file name, or null for any other file (left alone). */
export function parseFileName(name: string): { day: string; index: number } | null {
  const m = NAME.exec(name);
  if (!m) return null;
  return { day: m[1]!, index: m[2] === undefined ? 0 : Number(m[2]) };
}

export function byTime(a: { day: string; index: number }, b: { day: string; index: number }): number {
  return a.day < b.day ? -1 : a.day > b.day ? 1 : a.index - b.index;
}

/**
 * Which files to delete: those of days before `oldestDay` (keepDays), then the oldest others until the files
 * other than `current` fit in `maxBytes - maxFileBytes`, so that with the current file (at most maxFileBytes,
 * plus one batch) the whole transcript stays within maxBytes. The current file is never deleted.
 */
export function retentionPlan(
  files: readonly TranscriptFile[],
  o: { current: string | null; oldestDay: string; maxBytes: number; maxFileBytes: number },
): string[] {
  const doomed: string[] = [];
  const kept: TranscriptFile[] = [];
  for (const f of [...files].sort(byTime)) {
    if (f.name === o.current) continue;
    if (f.day < o.oldestDay) doomed.push(f.name);
    else kept.push(f);
  }
  let total = kept.reduce((n, f) => n + f.size, 0);
  const budget = Math.max(0, o.maxBytes - o.maxFileBytes);
  for (const f of kept) {
    if (total <= budget) break;
    doomed.push(f.name);
    total -= f.size;
  }
  return doomed;
}

/** The local day `days` calendar days before `day` (YYYY-MM-DD), DST-safe. */
export function dayBefore(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, d - days));
  return t.toISOString().slice(0, 10);
}
