/**
 * npm run soak: every reliability case at soak scale, one after the other, then a summary a person reads.
 * Exits non-zero if any invariant broke. Bounded: each case stops by itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CaseResult, skipReason, unaccounted } from './case.js';
import { loadCases } from './load-cases.js';

async function main(): Promise<number> {
  const only = process.argv[2];
  const rows: { name: string; r: CaseResult | null; error?: string; secs: number }[] = [];
  const skipped: string[] = [];
  for (const c of loadCases()) {
    if (only && !c.name.includes(only)) continue;
    const why = skipReason(c);
    if (why) {
      skipped.push(`${c.name}: ${why}`);
      process.stdout.write(`skipped ${c.name}: ${why}\n`);
      continue;
    }
    const dir = mkdtempSync(join(tmpdir(), 'sg-soak-'));
    const t0 = Date.now();
    process.stdout.write(`running ${c.name} ...\n`);
    try {
      const r = await c.run('soak', dir);
      rows.push({ name: c.name, r, secs: (Date.now() - t0) / 1000 });
      for (const ch of r.checks) if (!ch.ok) process.stdout.write(`  BROKEN: ${ch.what}\n`);
    } catch (err) {
      rows.push({ name: c.name, r: null, error: (err as Error).message, secs: (Date.now() - t0) / 1000 });
      process.stdout.write(`  FAILED: ${(err as Error).message}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const ok = (x: (typeof rows)[number]) => x.r !== null && x.r.checks.every((c) => c.ok) && unaccounted(x.r) === 0;
  const sum = (f: (r: CaseResult) => number) => rows.reduce((n, x) => n + (x.r ? f(x.r) : 0), 0);
  const lines: string[] = [];
  lines.push('| case | result | faults | lines sent | delivered | dropped (counted) | unaccounted | fds leaked | RSS growth | time |');
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const x of rows) {
    const r = x.r;
    lines.push(
      `| ${x.name} | ${ok(x) ? 'passed' : `BROKEN${x.error ? `: ${x.error}` : ''}`} | ${r?.faults ?? '-'} | ${r?.linesSent ?? '-'} | ${r?.linesDelivered ?? '-'} | ${r?.linesDropped ?? '-'} | ${r ? unaccounted(r) : '-'} | ${r?.fdsLeaked ?? '-'} | ${r ? `${(r.rssGrowth / 1e6).toFixed(1)} MB` : '-'} | ${x.secs.toFixed(0)} s |`,
    );
  }
  const passed = rows.filter(ok).length;
  lines.push('');
  lines.push(
    `cases: ${passed} passed, ${rows.length - passed} broken, ${skipped.length} skipped; faults injected and survived: ${sum((r) => r.faults)}; lines sent ${sum((r) => r.linesSent)}, delivered ${sum((r) => r.linesDelivered)}, counted as dropped ${sum((r) => r.linesDropped)}, unaccounted ${sum(unaccounted)}; fds leaked ${sum((r) => r.fdsLeaked)}`,
  );
  for (const x of rows) for (const n of x.r?.notes ?? []) lines.push(`- ${x.name}: ${n}`);
  for (const s of skipped) lines.push(`- skipped ${s}`);
  process.stdout.write(`\n${lines.join('\n')}\n`);
  return passed === rows.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
