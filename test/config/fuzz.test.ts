import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t from 'tap';
import { formatErrors, loadConfig } from '../../src/config/load.js';
import { Random } from '../support/random.js';

const repo = resolve(__dirname, '..', '..', '..');
const original = readFileSync(join(repo, 'config', 'default.yaml'), 'utf8');

const TOKENS = ['yes', 'no', '-1', '0', '99999999999', '1.5', '0x10', '"12abc"', '"x"', '[]', '{}', '~', '',
  '[1, [2]]', '{a: {b: c}}', '&a x', '*a', '*nope', '!!str 5', '!!binary aGk=', '"', "'", ':', '- x', '\t', '|',
  '>-\n  folded', 'sim:labbox', '::', '10.0.0.0/33', 'true', 'null', '.inf', '__proto__', 'constructor', '1e3'];

function mutate(text: string, rand: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  let lines = text.split('\n');
  const steps = 1 + Math.floor(rand() * 3);
  for (let s = 0; s < steps; s++) {
    const i = Math.floor(rand() * lines.length);
    const line = lines[i] ?? '';
    switch (Math.floor(rand() * 7)) {
      case 0: { // delete a few characters
        const at = Math.floor(rand() * (line.length + 1));
        lines[i] = line.slice(0, at) + line.slice(at + 1 + Math.floor(rand() * 4));
        break;
      }
      case 1: { // swap two lines
        const j = Math.floor(rand() * lines.length);
        lines[i] = lines[j] ?? '';
        lines[j] = line;
        break;
      }
      case 2: // change a value
        lines[i] = line.replace(/:\s.*$/, `: ${pick(TOKENS)}`);
        break;
      case 3: // duplicate a line
        lines.splice(i, 0, line);
        break;
      case 4: // drop a line
        lines.splice(i, 1);
        break;
      case 5: { // insert a token anywhere
        const at = Math.floor(rand() * (line.length + 1));
        lines[i] = line.slice(0, at) + pick(TOKENS) + line.slice(at);
        break;
      }
      default: // re-indent
        lines[i] = ' '.repeat(Math.floor(rand() * 6)) + line.trimStart();
    }
  }
  lines = lines.slice(0, 400);
  return lines.join('\n');
}

t.test('a few hundred mutations of default.yaml: never throws, every error one readable line', (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'config.yaml');
  // A fixed seed makes a failure reproducible.
  const rng = new Random(0x5eed);
  const rand = (): number => rng.next();
  let failures = 0;
  let okCount = 0;
  for (let n = 0; n < 400; n++) {
    const text = mutate(original, rand);
    writeFileSync(file, text);
    let result;
    try {
      result = loadConfig(file, {});
    } catch (err) {
      t.fail(`loadConfig threw on mutation ${n}: ${String(err)}`, { text });
      continue;
    }
    if (result.ok) {
      okCount++;
      continue;
    }
    failures++;
    if (result.errors.length === 0) t.fail(`mutation ${n}: ok false without errors`, { text });
    for (const line of formatErrors(result.errors).split('\n')) {
      const bad =
        line.trim() === '' ||
        !(line.startsWith(file) || line.startsWith('$') || line.startsWith('... and ')) ||
        /\n|\r/.test(line) ||
        /\bat .*\(.*:\d+:\d+\)/.test(line) ||
        /internal error/.test(line) ||
        // convict's own wording means a shape slipped past the walk in load.ts.
        /configuration param/.test(line) ||
        line.length > 600;
      if (bad) t.fail(`mutation ${n}: unreadable error line`, { line, text });
    }
  }
  t.ok(failures > 100, `most mutations break something (${failures} broke, ${okCount} still valid)`);
  t.end();
});
