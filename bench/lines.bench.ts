/**
 * npm run bench:lines — the line engine against serialport's own parsers, in one run on one machine.
 *
 * A 64 MiB stream of CRLF lines (8 to 200 bytes) is cut into random chunks of 1 byte to 4 KiB, as a serial
 * port delivers them, and pushed through (a) LineRing, (b) @serialport/parser-readline, (c)
 * @serialport/parser-delimiter, each with one consumer that touches every line. Figures: MB/s, lines/s and
 * Buffer bytes allocated per line (counted at Buffer's allocation functions while the engine runs; the stream
 * and its chunk views are made beforehand and not counted). Each engine runs ROUNDS times; the median counts.
 *
 * Environment: BENCH_MB (default 64), ROUNDS (default 3).
 */
import { DelimiterParser } from '@serialport/parser-delimiter';
import { ReadlineParser } from '@serialport/parser-readline';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineRing } from '../src/line/ring.js';
import { systemClock } from '../src/core/clock.js';
import { Random } from '../test/support/random.js';

const MB = Number(process.env.BENCH_MB ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

interface Result {
  engine: string;
  mbPerSec: number;
  linesPerSec: number;
  allocPerLine: number;
  lines: number;
}

function makeStream(bytes: number): { stream: Buffer; cuts: Int32Array; lines: number } {
  const rnd = new Random(42);
  const stream = Buffer.allocUnsafe(bytes);
  let off = 0;
  let lines = 0;
  while (off < bytes) {
    const len = rnd.int(8, 200);
    if (off + len > bytes) break;
    for (let i = 0; i < len - 2; i++) stream[off + i] = 0x20 + ((off + i) % 90);
    stream[off + len - 2] = 0x0d;
    stream[off + len - 1] = 0x0a;
    off += len;
    lines++;
  }
  const used = stream.subarray(0, off);
  const cutList: number[] = [0];
  for (let p = 0; p < off; ) {
    p = Math.min(off, p + rnd.int(1, 4096));
    cutList.push(p);
  }
  return { stream: used, cuts: Int32Array.from(cutList), lines };
}

/** Counts bytes requested from Buffer's allocators while `fn` runs (Buffer.concat goes through allocUnsafe). */
async function countingAllocations<T>(fn: () => Promise<T>): Promise<{ value: T; allocated: number }> {
  let allocated = 0;
  const B = Buffer as unknown as Record<string, (...args: unknown[]) => Buffer>;
  const names = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const;
  const originals = names.map((n) => B[n]!);
  names.forEach((n, i) => {
    const original = originals[i]!;
    B[n] = function (...args: unknown[]) {
      allocated += Number(args[0]) || 0;
      return original.apply(Buffer, args);
    };
  });
  try {
    return { value: await fn(), allocated };
  } finally {
    names.forEach((n, i) => (B[n] = originals[i]!));
  }
}

/** An engine is set up first (not measured: a ring's one allocation is not per line), then fed and finished. */
interface Engine {
  feed(chunk: Buffer): void;
  finish(): Promise<number>;
}

function ringEngine(mode: 'view' | 'run'): Engine {
  let count = 0;
  let touch = 0;
  const ring: LineRing = new LineRing({
    capacityBytes: 1 << 20,
    maxLineBytes: 4096,
    clock: systemClock,
    idleFlushMs: 0,
    onRecords:
      mode === 'view'
        ? () => {
            // A consumer that wants each line as its own Buffer (a line protocol).
            for (let s = ring.next(cursor); s >= 0; s = ring.next(cursor)) {
              touch += ring.view(s)[0]!;
              count++;
              ring.advance(cursor, s + 1);
            }
          }
        : () => {
            // What the TCP fan-out does: consecutive lines go out as one view of the ring.
            for (let s = ring.next(cursor); s >= 0; s = ring.next(cursor)) {
              const end = ring.runEnd(s, 64 * 1024);
              touch += ring.span(s, end)[0]!;
              count += end - s;
              ring.advance(cursor, end);
            }
          },
  });
  const cursor = ring.attach(() => {});
  return {
    feed: (chunk) => ring.push(chunk),
    finish: async () => {
      ring.dispose();
      return touch >= 0 ? count : -1;
    },
  };
}

function streamEngine(parser: NodeJS.ReadWriteStream, touchLine: (line: Buffer | string) => number): Engine {
  let count = 0;
  let touch = 0;
  const done = new Promise<number>((resolve) => parser.on('end', () => resolve(touch >= 0 ? count : -1)));
  parser.on('data', (line: Buffer | string) => {
    touch += touchLine(line);
    count++;
  });
  return {
    feed: (chunk) => void parser.write(chunk),
    finish: () => {
      parser.end();
      return done;
    },
  };
}

const engines: Record<string, () => Engine> = {
  'LineRing, a view per line': () => ringEngine('view'),
  'LineRing, a view per run': () => ringEngine('run'),
  '@serialport/parser-readline': () =>
    streamEngine(new ReadlineParser({ delimiter: '\r\n' }), (l) => (l as string).charCodeAt(0) || 0),
  '@serialport/parser-delimiter': () =>
    streamEngine(new DelimiterParser({ delimiter: Buffer.from('\r\n'), includeDelimiter: true }), (l) => (l as Buffer)[0]!),
};

async function main(): Promise<void> {
  const { stream, cuts, lines } = makeStream(MB * 1024 * 1024);
  console.log(`stream: ${(stream.length / 1e6).toFixed(1)} MB, ${lines} lines, ${cuts.length - 1} chunks of 1 B..4 KiB; ${ROUNDS} rounds, median\n`);
  const samples = new Map<string, Result[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of Object.entries(engines)) {
      const engine = make();
      const t0 = performance.now();
      const { value: got, allocated } = await countingAllocations(async () => {
        for (let i = 1; i < cuts.length; i++) engine.feed(stream.subarray(cuts[i - 1]!, cuts[i]!));
        return engine.finish();
      });
      const secs = (performance.now() - t0) / 1000;
      if (got !== lines) throw new Error(`${name} delivered ${got} lines, expected ${lines}`);
      const list = samples.get(name) ?? [];
      list.push({ engine: name, mbPerSec: stream.length / 1e6 / secs, linesPerSec: lines / secs, allocPerLine: allocated / lines, lines });
      samples.set(name, list);
    }
  }
  const results = [...samples.values()].map((list) => {
    const sorted = [...list].sort((a, b) => a.mbPerSec - b.mbPerSec);
    return sorted[Math.floor(sorted.length / 2)]!;
  });
  const ours = results[0]!;
  const ourRuns = results[1]!;
  const rows = results.map((r) => [
    r.engine,
    r.mbPerSec.toFixed(1),
    (r.linesPerSec / 1e6).toFixed(2),
    r.allocPerLine.toFixed(2),
    `${(ours.mbPerSec / r.mbPerSec).toFixed(2)}x`,
    `${(ourRuns.mbPerSec / r.mbPerSec).toFixed(2)}x`,
  ]);
  const header = ['engine', 'MB/s', 'Mlines/s', 'alloc B/line', 'view/line is', 'view/run is'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  console.log(fmt(header));
  console.log('|' + widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|') + '|');
  for (const r of rows) console.log(fmt(r));
  const readline = results.find((r) => r.engine.includes('readline'))!;
  const delimiter = results.find((r) => r.engine.includes('delimiter'))!;
  const targets = [
    [`>= 5x parser-delimiter (view per line)`, ours.mbPerSec / delimiter.mbPerSec >= 5],
    [`>= 10x parser-readline (view per line)`, ours.mbPerSec / readline.mbPerSec >= 10],
    [`>= 5x parser-delimiter (view per run)`, ourRuns.mbPerSec / delimiter.mbPerSec >= 5],
    [`>= 10x parser-readline (view per run)`, ourRuns.mbPerSec / readline.mbPerSec >= 10],
    [`< 1 byte allocated per line`, ours.allocPerLine < 1 && ourRuns.allocPerLine < 1],
  ] as const;
  console.log('\ntargets:');
  for (const [what, ok] of targets) console.log(`  ${what}: ${ok ? 'met' : 'NOT met'}`);
  const dir = join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lines.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, mb: MB, results }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
