import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedConfig } from '../../src/config/types.js';
import type { LedBackend } from '../../src/led/backend.js';
import { gpiosetArgs, parseGpiosetVersion } from '../../src/led/gpiochip.js';
import { openLed } from '../../src/led/open.js';
import { PI4_66, captureLog, devChips, gpiodetectStandIn, gpiosetStandIn, sysfsGpioTree } from './fixtures/trees.js';

const led = (pin: number, patch: Partial<LedConfig> = {}): LedConfig => ({
  pin,
  activeLow: false,
  backend: 'gpiochip',
  label: 'serialgw-ready',
  ...patch,
});

/** The runs the stand-in recorded, as [pid, args] pairs. */
function runs(logFile: string): { pid: number; args: string }[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const space = l.indexOf(' ');
      return { pid: Number(l.slice(0, space)), args: l.slice(space + 1) };
    });
}

/** Waits (real time, bounded) until the stand-in has recorded n runs. */
async function waitForRuns(logFile: string, n: number): Promise<void> {
  for (let i = 0; i < 300 && runs(logFile).length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('dialects from --version; arguments of both', (t) => {
  t.same(parseGpiosetVersion('gpioset (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski\n'), { dialect: 'v1', version: '1.6.3' });
  t.same(parseGpiosetVersion('gpioset (libgpiod) v2.1.3\n'), { dialect: 'v2', version: '2.1.3' });
  t.same(parseGpiosetVersion('gpioset (libgpiod) v2.2\n'), { dialect: 'v2', version: '2.2' });
  t.equal(parseGpiosetVersion('gpioset (libgpiod) v3.0.0'), null);
  t.equal(parseGpiosetVersion('usage: gpioset'), null);
  const spec = { gpioset: 'gpioset', chipPath: '/dev/gpiochip0', offset: 17, activeLow: true, consumer: 'serialgw-ready' };
  t.same(gpiosetArgs({ ...spec, dialect: 'v1' }, true, true), ['--mode=signal', '--active-low', '/dev/gpiochip0', '17=1']);
  t.same(gpiosetArgs({ ...spec, dialect: 'v1' }, false, false), ['--active-low', '/dev/gpiochip0', '17=0']);
  t.same(gpiosetArgs({ ...spec, dialect: 'v2' }, true, true), ['--chip', '/dev/gpiochip0', '--consumer', 'serialgw-ready', '--active-low', '17=1']);
  t.same(gpiosetArgs({ ...spec, dialect: 'v2' }, false, false), ['--chip', '/dev/gpiochip0', '--consumer', 'serialgw-ready', '--active-low', '--toggle', '0', '17=0']);
  t.end();
});

/** A Pi 4 (chip found through legacy sysfs) or a Pi 5 without sysfs GPIO (chip found by gpiodetect). */
function machine(t: Test, version: '1.6.3' | '2.1.3', board: 'pi4-sysfs' | 'pi5-gpiodetect') {
  const root = t.testdir();
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  const bin = join(root, 'bin');
  const logFile = join(root, 'gpioset.log');
  gpiosetStandIn(bin, version);
  if (board === 'pi4-sysfs') {
    sysfsGpioTree(sys, PI4_66);
    devChips(dev, ['gpiochip0', 'gpiochip1']);
  } else {
    gpiodetectStandIn(bin, [
      { name: 'gpiochip0', label: 'pinctrl-rp1', lines: 54 },
      { name: 'gpiochip10', label: 'gpio-brcmstb@107d508500', lines: 32 },
    ]);
    devChips(dev, ['gpiochip0', 'gpiochip10']);
  }
  return { roots: { sysRoot: sys, devRoot: dev }, env: { PATH: bin, GPIOSET_LOG: logFile }, logFile, dev };
}

async function holdRelease(t: Test, backend: LedBackend, logFile: string): Promise<{ pid: number; args: string }[]> {
  backend.set(false);
  await backend.settled?.();
  await waitForRuns(logFile, 1);
  backend.set(true);
  await backend.settled?.();
  await waitForRuns(logFile, 2);
  const first = runs(logFile);
  t.notOk(alive(first[0]!.pid), 'the holder of the old value has exited');
  t.ok(alive(first[1]!.pid), 'the holder of the new value runs');
  backend.release();
  await backend.settled?.();
  await waitForRuns(logFile, 3);
  const all = runs(logFile);
  t.notOk(all.some((r) => alive(r.pid)), 'no gpioset left after release');
  return all;
}

t.test('gpiochip v1.6: Pi 4 chip found by label through sysfs, line held with --mode=signal, off on release', async (t) => {
  const m = machine(t, '1.6.3', 'pi4-sysfs');
  const log = captureLog();
  const { backend, why } = openLed('ready', led(17), m.roots, log, { env: m.env });
  t.same(why, []);
  t.equal(backend.describe, 'gpiochip pinctrl-bcm2711 line 17 (gpiochip0, gpioset v1.6.3)');
  const all = await holdRelease(t, backend, m.logFile);
  const chip = join(m.dev, 'gpiochip0');
  t.same(all.map((r) => r.args), [`--mode=signal ${chip} 17=0`, `--mode=signal ${chip} 17=1`, `${chip} 17=0`]);
  t.same(log.warnings(), []);
});

t.test('gpiochip v2: Pi 5 without sysfs GPIO, chip found by gpiodetect, active low, consumer label', async (t) => {
  const m = machine(t, '2.1.3', 'pi5-gpiodetect');
  const log = captureLog();
  const { backend, why } = openLed('serial', led(27, { label: 'serialgw-serial', activeLow: true, backend: 'auto' }), m.roots, log, { env: m.env });
  t.same(why, ['ledclass: no LED class entry serialgw-serial']);
  t.equal(backend.describe, 'gpiochip pinctrl-rp1 line 27 (gpiochip0, gpioset v2.1.3)');
  const all = await holdRelease(t, backend, m.logFile);
  const head = `--chip ${join(m.dev, 'gpiochip0')} --consumer serialgw-serial --active-low`;
  t.same(all.map((r) => r.args), [`${head} 27=0`, `${head} 27=1`, `${head} --toggle 0 27=0`]);
  t.same(log.warnings(), []);
});

t.test('gpiochip: values asked for while a holder is being replaced are coalesced', async (t) => {
  const m = machine(t, '2.1.3', 'pi4-sysfs');
  const { backend } = openLed('activity', led(22), m.roots, captureLog(), { env: m.env });
  backend.set(false);
  await backend.settled?.();
  await waitForRuns(m.logFile, 1);
  backend.set(true);
  backend.set(false);
  backend.set(true);
  await backend.settled?.();
  await waitForRuns(m.logFile, 2);
  await new Promise((r) => setTimeout(r, 50));
  t.same(runs(m.logFile).map((r) => r.args.split(' ').at(-1)), ['22=0', '22=1']);
  backend.set(false);
  backend.release();
  await backend.settled?.();
  t.notOk(runs(m.logFile).some((r) => alive(r.pid)));
});

t.test('gpiochip: a gpioset that fails warns once with its message and is not restarted', async (t) => {
  const m = machine(t, '2.1.3', 'pi4-sysfs');
  gpiosetStandIn(join(t.testdirName, 'bin'), '2.1.3', "gpioset: unable to request lines on chip '/dev/gpiochip0': Device or resource busy");
  const log = captureLog();
  const { backend } = openLed('ready', led(17), m.roots, log, { env: m.env });
  backend.set(true);
  await backend.settled?.();
  for (let i = 0; i < 100 && log.warnings().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  backend.set(false);
  backend.set(true);
  await backend.settled?.();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(runs(m.logFile).length, 1, 'not restarted');
  t.same(log.warnings(), [
    "led ready: gpioset exited with 1: gpioset: unable to request lines on chip '/dev/gpiochip0': Device or resource busy; " +
      'LED off until restart (gpiochip pinctrl-bcm2711 line 17 (gpiochip0, gpioset v2.1.3))',
  ]);
  backend.release();
});

t.test('gpiochip: reasons to skip it', (t) => {
  const m = machine(t, '2.1.3', 'pi4-sysfs');
  const log = captureLog();
  const noTool = openLed('ready', led(17), m.roots, log, { env: { PATH: join(t.testdirName, 'nowhere') } });
  t.same(noTool.why, ['gpiochip: gpioset not found on PATH (apt install gpiod)']);
  const noChip = openLed('ready', led(17), { sysRoot: join(t.testdirName, 'empty'), devRoot: m.roots.devRoot }, log, {
    env: { PATH: join(t.testdirName, 'nowhere-else') + ':' + join(t.testdirName, 'bin') },
  });
  t.same(noChip.why, ['gpiochip: no Raspberry Pi GPIO chip (pinctrl-bcm2835, pinctrl-bcm2711, pinctrl-rp1) from nothing (no GPIO chip labels in sysfs, no gpiodetect); found: none']);
  const beyond = openLed('ready', led(60), m.roots, log, { env: m.env });
  t.same(beyond.why, ["gpiochip: BCM 60 is beyond pinctrl-bcm2711's 58 lines"]);
  const noDev = openLed('ready', led(17), { sysRoot: m.roots.sysRoot, devRoot: join(t.testdirName, 'nodev') }, log, { env: m.env });
  t.same(noDev.why, [`gpiochip: no ${join(t.testdirName, 'nodev', 'gpiochip0')}`]);
  t.equal(runs(m.logFile).length, 0, 'nothing spawned while probing');
  t.end();
});
