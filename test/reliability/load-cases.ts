import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ReliabilityCase } from './case.js';

/** Every compiled case file, in the order (file names start with the case number: 01-unplug.js ...). */
export function loadCases(): ReliabilityCase[] {
  const dir = join(__dirname, 'cases');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => (require(join(dir, f)) as { reliabilityCase: ReliabilityCase }).reliabilityCase)
    .filter((c) => c !== undefined);
}
