/**
 * A copy of the built program that any user can read, for tests that run the daemon as another user.
 *
 * The checkout may sit in a directory only its owner can enter (/root, a Debian home directory, mktemp -d),
 * so a daemon started as `nobody` from there cannot load its own code. This copies dist/src, package.json
 * and the production dependencies (what `npm ci --omit=dev` would install, found by following the
 * `dependencies` and `optionalDependencies` of each package.json the way Node resolves them) into a fresh
 * 0755 folder under the system's temporary directory.
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

/** The checkout this test build came from (dist/test/support -> repository root). */
export const REPO = resolve(__dirname, '..', '..', '..');

interface Manifest {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Where Node would find package `name` required from inside `from`, or undefined (an absent optional one). */
function resolvePackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
  }
}

/** The production dependency folders of the package at `root`, as paths relative to it. */
export function productionDependencies(root: string = REPO): string[] {
  const seen = new Set<string>();
  const visit = (dir: string): void => {
    const m = manifest(dir);
    for (const name of Object.keys({ ...m.dependencies, ...m.optionalDependencies })) {
      const found = resolvePackage(name, dir, root);
      if (found === undefined || seen.has(found)) continue;
      seen.add(found);
      visit(found);
    }
  };
  visit(root);
  return [...seen].map((p) => relative(root, p)).sort();
}

export interface ReadableCopy {
  dir: string;
  /** dist/src/main.js inside the copy. */
  main: string;
  remove(): void;
}

export function readableCopy(root: string = REPO): ReadableCopy {
  const dir = mkdtempSync(join(tmpdir(), 'serial-gateway-copy-'));
  chmodSync(dir, 0o755);
  cpSync(join(root, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const dep of productionDependencies(root)) {
    // Nested node_modules are copied with their parent, or on their own when resolved there.
    cpSync(join(root, dep), join(dir, dep), { recursive: true, force: true });
  }
  // The copies keep their modes, which npm made world-readable; the folders cpSync creates follow the umask.
  chmodTree(dir);
  return { dir, main: join(dir, 'dist', 'src', 'main.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function chmodTree(dir: string): void {
  const st = statSync(dir);
  chmodSync(dir, st.mode | 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) chmodTree(p);
    else if (entry.isFile()) chmodSync(p, statSync(p).mode | 0o444);
  }
}
