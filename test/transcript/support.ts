import type { Log } from '../../src/core/log.js';
import { FakeClock } from '../support/fake-clock.js';
import { droppedLine } from '../../src/transcript/recorder.js';
import { TranscriptWriter, type TranscriptWriterOptions } from '../../src/transcript/writer.js';

/** A Log that keeps what it was told, by level. */
export function recordingLog(): Log & { warnings: string[]; lines: string[] } {
  const warnings: string[] = [];
  const lines: string[] = [];
  return {
    warnings,
    lines,
    error: (m) => lines.push(`error ${m}`),
    warn: (m) => {
      warnings.push(m);
      lines.push(`warning ${m}`);
    },
    info: (m) => lines.push(`info ${m}`),
    debug: (m) => lines.push(`debug ${m}`),
    setLevel() {},
    enabled: () => true,
  };
}

/** Noon, local time, on a day: far from midnight whatever the test machine's time zone. */
export function localNoon(y: number, m: number, d: number): number {
  return new Date(y, m - 1, d, 12, 0, 0).getTime();
}

export const DAY = 86_400_000;

export function makeWriter(dir: string, o: Partial<TranscriptWriterOptions> = {}) {
  const clock = new FakeClock();
  const wall = { ms: localNoon(2026, 12, 1) };
  const log = recordingLog();
  let failures = 0;
  const wallNow = () => wall.ms;
  const writer = new TranscriptWriter({
    dir,
    maxBytes: 1 << 30,
    maxFileBytes: 1 << 24,
    keepDays: 14,
    bufferBytes: 1 << 20,
    flushMs: 200,
    clock,
    wallNow,
    log,
    dropRecord: droppedLine(wallNow),
    failed: () => failures++,
    ...o,
  });
  return { writer, clock, wall, log, failures: () => failures };
}
