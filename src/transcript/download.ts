import { TranscriptDirReader, TranscriptPrinter } from './read.js';

/**
 * One day of the transcript as a download (the dashboard's link): the day's files in order, as the chat
 * `serial-gateway transcript` prints (`.txt`) or as the stored JSON Lines (`.jsonl`). Lines that are not whole
 * records (a torn last line, the batch being written this moment) are left out, so every download parses.
 */

export type DownloadFormat = 'chat' | 'json';

const NAME = /^(\d{4}-\d{2}-\d{2})\.(txt|jsonl)$/;

/** `2026-12-01.txt` (the part of the path after `/transcript/`): its day and format, or null. */
export function parseDownloadName(name: string): { day: string; format: DownloadFormat } | null {
  const m = NAME.exec(name);
  if (!m) return null;
  return { day: m[1]!, format: m[2] === 'txt' ? 'chat' : 'json' };
}

/** The path part of a day's download: `2026-12-01.txt`. */
export function downloadName(day: string, format: DownloadFormat): string {
  return `${day}.${format === 'chat' ? 'txt' : 'jsonl'}`;
}

/** What a download writes to: a response that may ask the writer to wait (backpressure) or go away. */
export interface DownloadSink {
  /** False: wait for `drained` before writing more. */
  write(text: string): boolean;
  /** Resolves once there is room again; rejects when the receiver went away. */
  drained(): Promise<void>;
}

/** Bytes read per step: ~600 records, a few ms of rendering at a time between the gateway's own work. */
const CHUNK_BYTES = 64 * 1024;

/** The files of `day` in `dir` (none: the day has no transcript). */
export function dayFiles(dir: string, day: string): Promise<string[]> {
  return new TranscriptDirReader(dir, { day }).files();
}

/**
 * Writes the day's records to `sink`, one read chunk's worth of text per write. Rejects when the sink does (the
 * receiver left); returns how many records were sent and how many lines were not records.
 */
export async function streamDay(dir: string, day: string, format: DownloadFormat, sink: DownloadSink): Promise<{ records: number; skipped: number }> {
  const reader = new TranscriptDirReader(dir, { day, chunkBytes: CHUNK_BYTES });
  const printer = new TranscriptPrinter(format);
  let records = 0;
  let out: string[] = [];
  const send = async (): Promise<void> => {
    if (out.length === 0) return;
    const text = out.join('');
    out = [];
    if (!sink.write(text)) await sink.drained();
  };
  await reader.read(
    (line) => {
      const text = printer.line(line);
      if (text === null) reader.skipped++;
      else {
        records++;
        out.push(text);
      }
    },
    true,
    send,
  );
  await send();
  return { records, skipped: reader.skipped };
}
