import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The pure core has no I/O: the line ring, the router, the session core and its transport contract, the status
 * model and LED patterns, the web protocol and the metrics text. They take time from the injected Clock and
 * bytes from their callers, so they run the same under tests, on a Pi and in a browser's reading of protocol.ts.
 * tsconfig gives every file Node's types, so this is what keeps the rule from being only a convention.
 */
const src = join(__dirname, '..', '..', '..', 'src');
const pure = [
  ...['line', 'route', 'session'].flatMap((dir) => readdirSync(join(src, dir)).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f))),
  'status/model.ts',
  'status/led-patterns.ts',
  'web/protocol.ts',
  'web/metrics.ts',
];

t.test('the pure modules import nothing from node:* (or a package with I/O)', (t) => {
  for (const file of pure) {
    const text = readFileSync(join(src, file), 'utf8');
    const imports = [...text.matchAll(/^import[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
    const impure = imports.filter((m) => m.startsWith('node:') || !m.startsWith('.'));
    t.same(impure, [], `${file}: ${imports.length} imports, all relative and pure`);
  }
  t.ok(pure.length >= 10, `${pure.length} files checked`);
  t.end();
});
