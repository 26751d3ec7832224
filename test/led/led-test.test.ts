import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedConfig, LedName, LedsConfig } from '../../src/config/types.js';
import { runLedTest } from '../../src/led/led-test.js';
import { FakeClock } from '../support/fake-clock.js';
import { captureLog, ledClassEntry } from './fixtures/trees.js';

const noTools = { env: { PATH: '/nonexistent' } };

function ledsConfig(sysRoot: string, pins: Partial<Record<LedName, number>>): LedsConfig {
  const one = (name: LedName): LedConfig => ({ pin: pins[name] ?? -1, activeLow: false, backend: 'auto', label: `serialgw-${name}` });
  return { enabled: true, sysRoot, devRoot: '/nonexistent', ready: one('ready'), serial: one('serial'), clients: one('clients'), activity: one('activity'), error: one('error') };
}

/** Runs the LED test on a fake clock, sampling the file every 5 ms; returns its transitions as `1@t`. */
async function play(
  clock: FakeClock,
  run: Promise<void>,
  file: string,
  until = Infinity,
): Promise<string[]> {
  let done = false;
  void run.then(() => {
    done = true;
  });
  const seen: string[] = [];
  let last = '';
  while (!done && clock.now() < until) {
    const v = readFileSync(file, 'utf8');
    if (v !== last) seen.push(`${v}@${clock.now()}`);
    last = v;
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  return seen;
}

t.test('--led-test: says which backend each LED got and why, then shows every pattern, then all off', async (t) => {
  const sys = t.testdir();
  const dir = ledClassEntry(sys, 'serialgw-ready');
  const clock = new FakeClock();
  const out: string[] = [];
  const log = captureLog();
  const run = runLedTest(ledsConfig(sys, { ready: 17, clients: 22 }), clock, log, (l) => out.push(l), { host: noTools });
  const seen = await play(clock, run, join(dir, 'brightness'));
  await run;
  const window = (from: number, to: number): string[] => seen.filter((s) => {
    const at = Number(s.split('@')[1]);
    return at >= from && at < to;
  });
  t.same(window(0, 3000), ['1@0'], 'on');
  t.same(window(3000, 6000), ['0@4000', '1@5000'], 'slow blink');
  t.equal(window(6000, 9000).length, 23, 'fast blink: an edge every 125 ms');
  t.same(window(9000, 12000), ['1@9000', '0@9150', '1@9300', '0@9450', '1@11000', '0@11150', '1@11300', '0@11450'], 'double blink');
  const flicker = window(12000, 15000);
  t.equal(flicker.filter((s) => s.startsWith('1')).length, 30, 'traffic: ten 30 ms flashes a second');
  t.same(flicker.slice(0, 4), ['1@12020', '0@12050', '1@12120', '0@12150']);
  t.same(window(15000, 17999), ['1@15000', '0@16000', '1@16200', '0@17000', '1@17200'], 'refused: 200 ms dark');
  t.equal(readFileSync(join(dir, 'brightness'), 'utf8'), '0', 'all off at the end');
  t.same(out.slice(0, 5), [
    `ready (BCM 17): ledclass ${dir}`,
    'serial: not wired (pin -1)',
    `clients (BCM 22): none (ledclass: no LED class entry serialgw-clients; gpiochip: gpioset not found on PATH (apt install gpiod); sysfs: no ${join(sys, 'class/gpio/export')} (legacy sysfs GPIO is not in this kernel))`,
    'activity: not wired (pin -1)',
    'error: not wired (pin -1)',
  ]);
  t.same(out.slice(5), [
    'ready: on (on)',
    'ready: slow blink, serial waiting (blink 1000/1000)',
    'ready: fast blink, starting / serial failed (blink 125/125)',
    'ready: double blink, reload rejected (double 150/150/1550)',
    'ready: traffic flicker (flash 30 ms, at most one per 100 ms)',
    'ready: refused connections while lit (200 ms dark)',
    'all off',
  ]);
  t.equal(clock.pending, 0, 'no timer left');
});

t.test('--led-test with nothing drivable says so; an abort stops it with the LED off', async (t) => {
  const sys = t.testdir();
  const out: string[] = [];
  await runLedTest(ledsConfig(sys, {}), new FakeClock(), captureLog(), (l) => out.push(l), { host: noTools });
  t.equal(out.at(-1), 'no LED can be driven: nothing to show');

  const dir = ledClassEntry(sys, 'serialgw-error');
  const clock = new FakeClock();
  const ac = new AbortController();
  const lines: string[] = [];
  const run = runLedTest(ledsConfig(sys, { error: 24 }), clock, captureLog(), (l) => lines.push(l), { host: noTools, signal: ac.signal, stepMs: 1000 });
  await play(clock, run, join(dir, 'brightness'), 1500);
  ac.abort();
  await run;
  t.equal(readFileSync(join(dir, 'brightness'), 'utf8'), '0');
  t.equal(lines.at(-1), 'error: slow blink, serial waiting (blink 1000/1000)', 'stopped during the second pattern');
  t.equal(clock.pending, 0);
});
