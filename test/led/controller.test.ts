import t from 'tap';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LED_NAMES, type LedConfig, type LedName, type LedsConfig } from '../../src/config/types.js';
import { createLedController } from '../../src/led/controller.js';
import { StatusModel } from '../../src/status/model.js';
import { FakeClock } from '../support/fake-clock.js';
import { captureLog, ledClassEntry } from './fixtures/trees.js';

const noTools = { env: { PATH: '/nonexistent' } };

function ledsConfig(sysRoot: string, pins: Partial<Record<LedName, number>>, enabled = true): LedsConfig {
  const one = (name: LedName): LedConfig => ({ pin: pins[name] ?? -1, activeLow: false, backend: 'auto', label: `serialgw-${name}` });
  return {
    enabled,
    sysRoot,
    devRoot: join(sysRoot, 'dev'),
    ready: one('ready'),
    serial: one('serial'),
    clients: one('clients'),
    activity: one('activity'),
    error: one('error'),
  };
}

/** Every LED as a kernel LED class entry; returns a reader of the brightness files. */
function allLedClass(sys: string): (name: LedName) => string | null {
  for (const name of LED_NAMES) ledClassEntry(sys, `serialgw-${name}`);
  return (name) => {
    const file = join(sys, 'class', 'leds', `serialgw-${name}`, 'brightness');
    return existsSync(file) ? readFileSync(file, 'utf8') : null;
  };
}

const ALL_PINS = { ready: 17, serial: 27, clients: 22, activity: 23, error: 24 };

t.test('leds.enabled false: nothing touched, nothing warned, describe says so', (t) => {
  const sys = t.testdir();
  const brightness = allLedClass(sys);
  rmSync(join(sys, 'class/leds/serialgw-ready/brightness'));
  const log = captureLog();
  const clock = new FakeClock();
  const model = new StatusModel();
  const c = createLedController(ledsConfig(sys, ALL_PINS, false), model, clock, log, noTools);
  model.update({ phase: 'running', device: 'open', clients: 2 });
  model.emit('activity');
  t.same(c.describe(), ['leds: disabled (leds.enabled: false)']);
  t.equal(brightness('ready'), null, 'never written');
  t.equal(brightness('clients'), '0\n', 'untouched');
  t.same(log.lines, []);
  t.equal(clock.pending, 0);
  c.dispose();
  t.end();
});

t.test('the model drives every LED; changes are logged at debug level; dispose turns all off', (t) => {
  const sys = t.testdir();
  const brightness = allLedClass(sys);
  const log = captureLog();
  const clock = new FakeClock();
  const model = new StatusModel();
  const c = createLedController(ledsConfig(sys, ALL_PINS), model, clock, log, noTools);
  t.same(c.describe(), LED_NAMES.map((n) => `${n} (BCM ${ALL_PINS[n]}): ledclass ${join(sys, 'class/leds', `serialgw-${n}`)}`));
  t.same(log.debugs(), ['led ready: blink 125/125', 'led serial: off', 'led clients: off', 'led activity: off', 'led error: off']);
  t.equal(brightness('ready'), '1', 'starting: blink begins lit');
  clock.advance(125);
  t.equal(brightness('ready'), '0');
  clock.advance(125);
  t.equal(brightness('ready'), '1');

  log.lines.length = 0;
  model.update({ phase: 'running', device: 'waiting' });
  t.equal(brightness('ready'), '1');
  t.equal(brightness('serial'), '1', 'waiting: slow blink, lit first');
  clock.advance(1000);
  t.equal(brightness('serial'), '0');
  model.update({ device: 'open' });
  model.update({ clients: 1 });
  model.emit('activity');
  t.equal(brightness('activity'), '1');
  clock.advance(30);
  t.equal(brightness('activity'), '0');
  for (let i = 0; i < 9; i++) {
    clock.advance(50);
    model.emit('activity');
  }
  model.update({ clients: 0 });
  model.update({ degraded: true });
  t.same(log.debugs(), [
    'led ready: on',
    'led serial: blink 1000/1000',
    'led serial: on',
    'led clients: on',
    'led activity: flash',
    'led clients: off',
    'led error: on',
  ], 'one flash line per second, however many events');
  // The last event (at 1730) waits for the rate limit to end at 1750: the activity LED is dark now.
  t.same(LED_NAMES.map((n) => brightness(n)), ['1', '1', '0', '0', '1']);

  c.dispose();
  t.same(LED_NAMES.map((n) => brightness(n)), ['0', '0', '0', '0', '0'], 'all off');
  t.equal(clock.pending, 0, 'no timer left');
  rmSync(join(sys, 'class/leds/serialgw-ready/brightness'));
  model.update({ phase: 'reloading' });
  clock.advance(1000);
  t.equal(brightness('ready'), null, 'no longer listening to the model');
  t.end();
});

t.test('a refused connection blinks the clients LED', (t) => {
  const sys = t.testdir();
  const brightness = allLedClass(sys);
  const clock = new FakeClock();
  const model = new StatusModel();
  const c = createLedController(ledsConfig(sys, { clients: 22 }), model, clock, captureLog(), noTools);
  model.emit('refused');
  t.equal(brightness('clients'), '1', 'dark LED flashes');
  clock.advance(200);
  t.equal(brightness('clients'), '0');
  model.update({ clients: 3 });
  clock.advance(1000);
  model.emit('refused');
  t.equal(brightness('clients'), '0', 'lit LED winks dark');
  clock.advance(200);
  t.equal(brightness('clients'), '1');
  c.dispose();
  t.end();
});

t.test('ready alone: with the serial LED not wired, ready shows the device', (t) => {
  const sys = t.testdir();
  const brightness = allLedClass(sys);
  const log = captureLog();
  const clock = new FakeClock();
  const model = new StatusModel();
  const c = createLedController(ledsConfig(sys, { ready: 17 }), model, clock, log, noTools);
  model.update({ phase: 'running', device: 'waiting' });
  t.equal(log.debugs().at(-1), 'led ready: blink 1000/1000');
  model.update({ device: 'open' });
  t.equal(log.debugs().at(-1), 'led ready: on');
  t.equal(brightness('ready'), '1');
  model.update({ device: 'failed' });
  t.equal(log.debugs().at(-1), 'led ready: blink 1000/1000');
  model.update({ phase: 'stopped' });
  t.equal(brightness('ready'), '0');
  t.same(c.describe().slice(1), ['serial: not wired (pin -1)', 'clients: not wired (pin -1)', 'activity: not wired (pin -1)', 'error: not wired (pin -1)']);
  c.dispose();
  t.end();
});

t.test('reload: only changed LEDs are released and re-acquired; the others are not touched', (t) => {
  const sys = t.testdir();
  const brightness = allLedClass(sys);
  ledClassEntry(sys, 'front-clients');
  const log = captureLog();
  const clock = new FakeClock();
  const model = new StatusModel();
  const cfg = ledsConfig(sys, ALL_PINS);
  const c = createLedController(cfg, model, clock, log, noTools);
  model.update({ phase: 'running', device: 'open', clients: 1 });
  t.equal(brightness('ready'), '1');
  t.equal(brightness('clients'), '1');
  // A write to ready's brightness would recreate the file: its absence proves ready was left alone.
  rmSync(join(sys, 'class/leds/serialgw-ready/brightness'));
  c.reconfigure({ ...cfg, clients: { ...cfg.clients, label: 'front-clients' } });
  t.equal(brightness('ready'), null, 'unchanged LED not written');
  t.equal(brightness('clients'), '0', 'old clients LED turned off');
  t.equal(readFileSync(join(sys, 'class/leds/front-clients/brightness'), 'utf8'), '1', 'new one shows the current state');
  t.match(c.describe()[2], /^clients \(BCM 22\): ledclass .*front-clients$/);
  t.equal(log.debugs().at(-1), 'led clients: on');
  // Unplug the serial LED from the config: ready now folds the device state in.
  c.reconfigure({ ...cfg, clients: { ...cfg.clients, label: 'front-clients' }, serial: { ...cfg.serial, pin: -1 } });
  t.equal(brightness('serial'), '0');
  model.update({ device: 'waiting' });
  t.equal(log.debugs().at(-1), 'led ready: blink 1000/1000');
  c.dispose();
  t.equal(clock.pending, 0);
  t.end();
});

t.test('no GPIO on this machine: one warning names every LED and what was tried; the states are still logged', async (t) => {
  const sys = t.testdir();
  const log = captureLog();
  const clock = new FakeClock();
  const model = new StatusModel();
  const c = createLedController(ledsConfig(sys, { ready: 17, clients: 22, activity: 23 }), model, clock, log, noTools);
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0], /^leds: no way to drive 3 LEDs, running without: ready \(BCM 17\): ledclass: no LED class entry serialgw-ready; gpiochip: gpioset not found on PATH.* \| clients \(BCM 22\): .* \| activity \(BCM 23\): /);
  model.update({ phase: 'running', device: 'open' });
  model.update({ clients: 1 });
  model.emit('activity');
  model.update({ clients: 0 });
  t.same(log.debugs(), ['led ready: blink 125/125', 'led clients: off', 'led activity: off', 'led ready: on', 'led clients: on', 'led activity: flash', 'led clients: off']);
  t.equal(clock.pending, 0, 'no timers run for LEDs nothing can drive');
  t.match(c.describe()[0], /^ready \(BCM 17\): none \(ledclass: no LED class entry serialgw-ready; gpiochip: .*; sysfs: .*\)$/);
  await c.settled();
  c.dispose();
  t.equal(log.warnings().length, 1);
});
