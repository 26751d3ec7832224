import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CaseResult, type ReliabilityCase, type Scale, emptyResult } from '../case.js';
import { MAIN } from '../../support/daemon.js';
import { Random, seedFromEnv } from '../../support/random.js';

/**
 * Issue 7, case 8: config fuzz. The instructor edits /etc/serial-gateway/config.yaml by hand and runs
 * `serial-gateway --check-config`; whatever the file has become, the answer must be exit 0 or 1 and a message a
 * person reads: never a stack trace, a crash, a hang, "undefined" or "[object Object]".
 *
 * Each input is config/default.yaml with 1 to 3 random mutations (delete/insert/duplicate characters and lines,
 * swap lines, a value replaced by another type, random indentation, random unicode and invalid UTF-8,
 * truncation, YAML oddities such as anchors, tags and an alias bomb), run through the BUILT CLI exactly as a
 * person would: `node dist/src/main.js --check-config --config FILE`, PARALLEL at a time. The first few
 * failures are reported with the mutations that made them; SEED=... replays the same inputs.
 */

const PARAMS: Record<Scale, { inputs: number }> = {
  fast: { inputs: 50 },
  soak: { inputs: 1000 },
};

const PARALLEL = 2;
const TIMEOUT_MS = 15_000;
const DEFAULT_YAML = join(__dirname, '..', '..', '..', '..', 'config', 'default.yaml');

export const reliabilityCase: ReliabilityCase = { name: '08 config fuzz', run };

interface Outcome {
  input: number;
  mutations: string[];
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  problem: string;
}

async function run(scale: Scale, dir: string): Promise<CaseResult> {
  const r = emptyResult();
  const rnd = new Random(seedFromEnv());
  r.notes.push(`seed ${rnd.seed} (SEED=${rnd.seed} replays the same ${PARAMS[scale].inputs} inputs)`);
  const original = readFileSync(DEFAULT_YAML);

  const control = await check(join(dir, 'control.yaml'), original, 0, ['none (config/default.yaml as shipped)']);
  r.checks.push({ ok: control.code === 0 && control.problem === '', what: `the unmutated default.yaml passes --check-config (exit ${control.code}${control.problem ? `: ${control.problem}` : ''})` });

  const inputs = Array.from({ length: PARAMS[scale].inputs }, (_, i) => {
    const mutations: string[] = [];
    let bytes: Buffer = original;
    const n = rnd.int(1, 3);
    for (let k = 0; k < n; k++) {
      const m = mutate(bytes, rnd);
      bytes = m.bytes;
      mutations.push(m.what);
    }
    return { i, bytes, mutations };
  });

  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (slot: number): Promise<void> => {
    for (let k = next++; k < inputs.length; k = next++) {
      const input = inputs[k]!;
      outcomes.push(await check(join(dir, `fuzz-${slot}.yaml`), input.bytes, input.i, input.mutations));
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: PARALLEL }, (_, slot) => worker(slot)));
  const secs = (performance.now() - started) / 1000;

  r.faults = outcomes.length;
  const bad = outcomes.filter((o) => o.problem !== '').sort((a, b) => a.input - b.input);
  const valid = outcomes.filter((o) => o.code === 0).length;
  const invalid = outcomes.filter((o) => o.code === 1).length;
  r.checks.push({
    ok: bad.length === 0,
    what:
      bad.length === 0
        ? `${outcomes.length} mutated configs: every one exited 0 (${valid}) or 1 (${invalid}) with a readable message`
        : `${bad.length} of ${outcomes.length} mutated configs broke the contract; first: input ${bad[0]!.input}: ${bad[0]!.problem}`,
  });
  for (const o of bad.slice(0, 3)) {
    r.notes.push(
      `input ${o.input} (${o.mutations.join('; ')}): ${o.problem}; exit ${o.code ?? o.signal}; stderr ${JSON.stringify((o.stderr || o.stdout).slice(0, 300))}`,
    );
  }
  const shortest = outcomes.filter((o) => o.code === 1).map((o) => o.stderr.trim().split('\n')[0]!).sort((a, b) => a.length - b.length)[0];
  r.notes.push(`${outcomes.length} runs in ${secs.toFixed(1)} s, ${PARALLEL} at a time; ${valid} still valid, ${invalid} rejected${shortest ? `; shortest message: ${JSON.stringify(shortest)}` : ''}`);
  return r;
}

/** Runs the built CLI on `bytes` and judges what it said. */
function check(file: string, bytes: Buffer, input: number, mutations: string[]): Promise<Outcome> {
  writeFileSync(file, bytes);
  return new Promise((resolve) => {
    execFile(
      // Through env(1) without NODE_OPTIONS: under tap, every node child gets tap's process-tracking loader
      // injected there, which tripled the cost of each run (3 s became 8.5 s) and is not how a person runs it.
      'env',
      ['-u', 'NODE_OPTIONS', process.execPath, MAIN, '--check-config', '--config', file],
      // A clean environment: SERIAL_GATEWAY_* overrides from the caller's shell must not mask the file.
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: TIMEOUT_MS, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        const signal = err?.signal ?? null;
        const o: Outcome = { input, mutations, code, signal, stdout, stderr, problem: '' };
        o.problem = judge(o, bytes.toString('latin1'), file);
        resolve(o);
      },
    );
  });
}

/** '' when the run kept the contract; else what was wrong. */
function judge(o: Outcome, text: string, file: string): string {
  if (o.signal !== null) return `killed by ${o.signal}${o.signal === 'SIGTERM' ? ` (no answer within ${TIMEOUT_MS / 1000} s)` : ''}`;
  if (o.code !== 0 && o.code !== 1) return `exit code ${o.code}, expected 0 or 1`;
  const said = o.code === 0 ? o.stdout : o.stderr;
  const all = o.stdout + o.stderr;
  if (said.trim() === '') return `exit ${o.code} with nothing on ${o.code === 0 ? 'stdout' : 'stderr'}`;
  if (/\n\s+at /.test(all)) return 'a stack trace';
  if (/internal error/i.test(all)) return '"internal error"';
  for (const word of ['undefined', '[object Object]', 'NaN']) {
    if (all.includes(word) && !text.includes(word)) return `"${word}" in the message`;
  }
  if (o.code === 0 && !o.stdout.startsWith(`${file}: ok`)) return `exit 0 without "${file}: ok"`;
  if (o.code === 1) {
    const stray = said
      .trimEnd()
      .split('\n')
      .find((l) => !l.startsWith(file) && !l.startsWith('$') && !/^\.\.\. and \d+ more errors$/.test(l));
    if (stray !== undefined) return `a message line that does not name the file: ${JSON.stringify(stray.slice(0, 120))}`;
  }
  return '';
}

// ---------------------------------------------------------------------------------------------- mutations

const SPECIAL = [...':{}[]&*!|>\'"%@`#,-?\\=~<', '\t', '\n', ' ', '\r', '0', '9', 'a', 'Z', '\u0000'];
const UNICODE = ['é', 'ß', '€', '😀', '\u200b', '\u202e', '\ufeff', '\u2028', '\u0085', 'Ω', '中文', '\u00a0', '\ud83d\ude00\u0301'];
const VALUES = [
  '0', '-1', '65536', '99999999999999999999', '3.5', '1e309', '.inf', '-.nan', '0x1F', '0o17', '1_000',
  'yes', 'no', 'off', 'true', 'false', '~', 'null', '', '""', "''", '"\\u0000"', '[]', '[1, 2]', '{}', '{a: 1}',
  '2024-01-01', '2024-01-01T10:00:00Z', '!!binary aGVsbG8=', '!!str 5', '!!int x', '!!float', '!!set {a, b}',
  '!!omap [a: 1]', '!custom x', '*nope', '&anchor 5', '"x"y', "'unterminated", '"unterminated', '|', '>-',
  '- a', 'a: b', '@', '`', '%', 'x'.repeat(10_000), '"\\xff\\ud800"', '0.0.0.0/33', '::1', '12abc', '-0', '+5',
];
const LINES = [
  'foo: bar', '- x', 'tcp: []', 'udp: 5', 'tcp:\n  - port: 1', '<<: *base', 'base: &base {a: 1}', '? complex key',
  ': value', '%YAML 1.2', '%TAG ! tag:x,2000:', '---', '...', '--- !!map', '# comment', '\t', 'serial:', 'serial: {}',
  'lines: [1, 2]', 'log: {level: loud}', 'tcp: [{name: a, port: 1}, {name: a, port: 2}]', 'udp: [{name: lab, port: 2323}]',
  '&a [*a]', 'key: !!binary |\n  aGVsbG8=', 'leds: {ready: {pin: 9999}}',
];

/** An alias bomb ("billion laughs"): a YAML library that expands aliases naively never answers. */
const ALIAS_BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
].join('\n');

type Mutator = (text: string, lines: string[], rnd: Random) => { text: string; what: string };

const MUTATORS: Mutator[] = [
  (t, _, rnd) => {
    const at = rnd.int(0, t.length - 1);
    return { text: t.slice(0, at) + t.slice(at + 1), what: `deleted char ${at} ${JSON.stringify(t[at])}` };
  },
  (t, _, rnd) => {
    const at = rnd.int(0, t.length);
    const ch = rnd.pick(SPECIAL);
    return { text: t.slice(0, at) + ch + t.slice(at), what: `inserted ${JSON.stringify(ch)} at ${at}` };
  },
  (t, _, rnd) => {
    const at = rnd.int(0, t.length - 1);
    return { text: t.slice(0, at + 1) + t.slice(at), what: `doubled char ${at} ${JSON.stringify(t[at])}` };
  },
  (_, ls, rnd) => {
    const at = rnd.int(0, ls.length - 1);
    return { text: [...ls.slice(0, at), ...ls.slice(at + 1)].join('\n'), what: `deleted line ${at + 1}` };
  },
  (_, ls, rnd) => {
    const at = rnd.int(0, ls.length - 1);
    return { text: [...ls.slice(0, at + 1), ...ls.slice(at)].join('\n'), what: `duplicated line ${at + 1}` };
  },
  (_, ls, rnd) => {
    const at = rnd.int(0, ls.length);
    const line = `${' '.repeat(rnd.pick([0, 0, 2, 4, 6]))}${rnd.pick(LINES)}`;
    return { text: [...ls.slice(0, at), line, ...ls.slice(at)].join('\n'), what: `inserted line ${JSON.stringify(line)} before ${at + 1}` };
  },
  (_, ls, rnd) => {
    const a = rnd.int(0, ls.length - 1);
    const b = rnd.int(0, ls.length - 1);
    const out = [...ls];
    [out[a], out[b]] = [ls[b]!, ls[a]!];
    return { text: out.join('\n'), what: `swapped lines ${a + 1} and ${b + 1}` };
  },
  (_, ls, rnd) => {
    const keyed = ls.map((l, i) => ({ l, i })).filter(({ l }) => /^\s*(- )?[A-Za-z]+:/.test(l));
    const value = rnd.pick(VALUES);
    if (keyed.length === 0) return { text: `${ls.join('\n')}\nserial: ${value}\n`, what: `appended serial: ${JSON.stringify(value.slice(0, 20))}` };
    const { l, i } = rnd.pick(keyed);
    const line = l.replace(/^(\s*(?:- )?[A-Za-z]+:)\s*[^#\n]*/, (_m, key: string) => `${key} ${value} `);
    const out = [...ls];
    out[i] = line;
    return { text: out.join('\n'), what: `line ${i + 1}: value -> ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}...(${value.length})` : value)}` };
  },
  (_, ls, rnd) => {
    const at = rnd.int(0, ls.length - 1);
    const indent = rnd.pick(['', ' ', '   ', '\t', '  \t', '        ', ' '.repeat(rnd.int(1, 12))]);
    const out = [...ls];
    out[at] = indent + ls[at]!.trimStart();
    return { text: out.join('\n'), what: `line ${at + 1}: indentation -> ${JSON.stringify(indent)}` };
  },
  (t, _, rnd) => {
    const at = rnd.int(0, t.length);
    const u = rnd.pick(UNICODE);
    return { text: t.slice(0, at) + u + t.slice(at), what: `inserted unicode ${JSON.stringify(u)} at ${at}` };
  },
  (t, _, rnd) => {
    const at = rnd.int(0, t.length);
    return { text: t.slice(0, at), what: `truncated at ${at} of ${t.length}` };
  },
  (t, _, rnd) => {
    const at = rnd.pick([0, t.length]);
    return { text: at === 0 ? `${ALIAS_BOMB}\n${t}` : `${t}\n${ALIAS_BOMB}\n`, what: `alias bomb at the ${at === 0 ? 'start' : 'end'}` };
  },
];

/** One mutation. Most work on text; one in 12 writes raw bytes (invalid UTF-8, NUL, a stray BOM). */
function mutate(bytes: Buffer, rnd: Random): { bytes: Buffer; what: string } {
  if (rnd.int(0, 11) === 0) {
    const at = rnd.int(0, bytes.length);
    const junk = rnd.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0]), rnd.bytes(rnd.int(1, 16))]);
    return { bytes: Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]), what: `inserted bytes ${junk.toString('hex')} at byte ${at}` };
  }
  const text = bytes.toString('utf8');
  const m = rnd.pick(MUTATORS)(text, text.split('\n'), rnd);
  return { bytes: Buffer.from(m.text, 'utf8'), what: m.what };
}
