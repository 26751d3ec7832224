/**
 * Reads the V8 CPU profiles that `node --cpu-prof` writes (BENCH_PROFILE=1) and lists where the time went:
 * self time per function, heaviest first, with its file and line, so a report can name the cost.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface CostLine {
  selfPct: number;
  selfMs: number;
  where: string;
}

/** Self time per function (by name + location), heaviest first; `(idle)` and `(program)` kept as V8 names them. */
export function topCosts(file: string, limit = 20, root = process.cwd()): { totalMs: number; busyPct: number; lines: CostLine[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    if (!node) continue;
    const f = node.callFrame;
    const url = f.url.replace(/^file:\/\//, '');
    const where = `${f.functionName || '(anonymous)'} ${url ? `${relative(root, url)}:${f.lineNumber + 1}` : ''}`.trim();
    selfUs.set(where, (selfUs.get(where) ?? 0) + dt);
    totalUs += dt;
    if (f.functionName === '(idle)') idleUs += dt;
  }
  const lines = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([where, us]) => ({ where, selfMs: us / 1000, selfPct: (100 * us) / Math.max(1, totalUs) }));
  return { totalMs: totalUs / 1000, busyPct: (100 * (totalUs - idleUs)) / Math.max(1, totalUs), lines };
}

/** Every .cpuprofile under dir (one level of subdirectories: one per workload). */
export function profilesUnder(dir: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (e.endsWith('.cpuprofile')) out.push(p);
    else {
      try {
        for (const f of readdirSync(p)) if (f.endsWith('.cpuprofile')) out.push(join(p, f));
      } catch {
        /* not a directory */
      }
    }
  }
  return out.sort();
}
