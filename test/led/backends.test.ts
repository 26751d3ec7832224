import t from 'tap';
import { readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { LedConfig } from '../../src/config/types.js';
import { openLed, describeLed } from '../../src/led/open.js';
import { listCdevChips, listSysfsChips, parseGpiodetect } from '../../src/led/chips.js';
import { FakeClock } from '../support/fake-clock.js';
import {
  OLD_KERNEL,
  PI4_66,
  PI5_66,
  captureLog,
  kernelExports,
  ledClassEntry,
  sysfsGpioTree,
} from './fixtures/trees.js';

const led = (pin: number, patch: Partial<LedConfig> = {}): LedConfig => ({
  pin,
  activeLow: false,
  backend: 'auto',
  label: 'serialgw-ready',
  ...patch,
});
const read = (file: string): string => readFileSync(file, 'utf8');
/** No gpioset/gpiodetect anywhere: the gpiochip backend is skipped deterministically. */
const noTools = { env: { PATH: '/nonexistent' } };

t.test('ledclass: brightness written, trigger set to none, max_brightness honoured, off on release', (t) => {
  const sys = t.testdir();
  const dir = ledClassEntry(sys, 'serialgw-ready', { trigger: 'none rc-feedback [heartbeat] timer\n', maxBrightness: 255 });
  const log = captureLog();
  const { backend, why } = openLed('ready', led(17), { sysRoot: sys, devRoot: '/nonexistent' }, log, noTools);
  t.equal(backend.name, 'ledclass');
  t.same(why, []);
  t.equal(backend.describe, `ledclass ${dir}`);
  t.equal(read(join(dir, 'trigger')), 'none', 'heartbeat replaced by none');
  t.equal(read(join(dir, 'brightness')), '0', 'starts dark');
  backend.set(true);
  t.equal(read(join(dir, 'brightness')), '255');
  backend.set(false);
  t.equal(read(join(dir, 'brightness')), '0');
  backend.set(true);
  backend.release();
  t.equal(read(join(dir, 'brightness')), '0', 'release turns it off');
  backend.set(true);
  t.equal(read(join(dir, 'brightness')), '0', 'set after release does nothing');
  t.same(log.warnings(), []);
  t.end();
});

t.test('ledclass: a trigger already none is left alone; a write that starts failing warns once', (t) => {
  const sys = t.testdir();
  const dir = ledClassEntry(sys, 'serialgw-ready');
  const before = read(join(dir, 'trigger'));
  const log = captureLog();
  const { backend } = openLed('ready', led(17), { sysRoot: sys, devRoot: '/nonexistent' }, log, noTools);
  t.equal(read(join(dir, 'trigger')), before);
  rmSync(dir, { recursive: true });
  backend.set(true);
  backend.set(false);
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0], /^led ready: writing .*brightness failed: ENOENT/);
  t.end();
});

t.test('ledclass: no entry for the label -> next backend, and the reason is kept', (t) => {
  const sys = t.testdir();
  ledClassEntry(sys, 'some-other-led');
  sysfsGpioTree(sys, PI4_66);
  kernelExports(sys, 529);
  const log = captureLog();
  const clock = new FakeClock();
  const opened = openLed('serial', led(17, { label: 'serialgw-serial' }), { sysRoot: sys, devRoot: '/nonexistent' }, log, { ...noTools, clock });
  t.equal(opened.backend.name, 'sysfs');
  t.same(opened.why, ['ledclass: no LED class entry serialgw-serial', 'gpiochip: gpioset not found on PATH (apt install gpiod)']);
  t.equal(
    describeLed('serial', led(17), opened),
    `serial (BCM 17): sysfs ${join(sys, 'class/gpio/gpio529')} (pinctrl-bcm2711 base 512 + BCM 17, was already exported) ` +
      '(ledclass: no LED class entry serialgw-serial; gpiochip: gpioset not found on PATH (apt install gpiod))',
  );
  opened.backend.release();
  t.end();
});

for (const [name, chips, pin, gpio] of [
  ['old kernel, base 0', OLD_KERNEL, 17, 17],
  ['Pi 4 on 6.6, base 512', PI4_66, 17, 529],
  ['Pi 5, pinctrl-rp1 at 571', PI5_66, 27, 598],
] as const) {
  t.test(`sysfs: ${name}: export base + BCM, direction out, value, unexport`, (t) => {
    const sys = t.testdir();
    sysfsGpioTree(sys, [...chips]);
    const log = captureLog();
    const clock = new FakeClock();
    const { backend } = openLed('ready', led(pin, { backend: 'sysfs' }), { sysRoot: sys, devRoot: '/nonexistent' }, log, { clock });
    t.equal(backend.name, 'sysfs');
    const classDir = join(sys, 'class', 'gpio');
    t.equal(read(join(classDir, 'export')), String(gpio), 'export written with base + BCM');
    // The kernel creates gpioN; udev then opens it to the gpio group. The backend retries meanwhile.
    backend.set(true);
    clock.advance(120);
    const dir = kernelExports(sys, gpio);
    clock.advance(50);
    t.equal(read(join(dir, 'active_low')), '0');
    t.equal(read(join(dir, 'direction')), 'out');
    t.equal(read(join(dir, 'value')), '1', 'the value asked for while waiting is applied');
    backend.set(false);
    t.equal(read(join(dir, 'value')), '0');
    backend.set(true);
    backend.release();
    t.equal(read(join(dir, 'value')), '0', 'off on release');
    t.equal(read(join(classDir, 'unexport')), String(gpio), 'unexported on release');
    t.equal(clock.pending, 0);
    t.same(log.warnings(), []);
    t.end();
  });
}

t.test('sysfs: activeLow is written to active_low before direction', (t) => {
  const sys = t.testdir();
  sysfsGpioTree(sys, PI4_66);
  const dir = kernelExports(sys, 539);
  const log = captureLog();
  const { backend } = openLed('error', led(27, { backend: 'sysfs', activeLow: true }), { sysRoot: sys, devRoot: '/x' }, log, { clock: new FakeClock() });
  t.equal(read(join(dir, 'active_low')), '1');
  t.equal(read(join(dir, 'direction')), 'out');
  t.equal(read(join(sys, 'class/gpio/export')), '', 'already exported: not exported again');
  backend.release();
  t.equal(read(join(sys, 'class/gpio/unexport')), '', 'and not unexported, since someone else exported it');
  t.end();
});

t.test('sysfs: gpioN never becomes usable -> one warning after the retries, no timer left', (t) => {
  const sys = t.testdir();
  sysfsGpioTree(sys, PI4_66);
  const log = captureLog();
  const clock = new FakeClock();
  const { backend } = openLed('ready', led(17, { backend: 'sysfs' }), { sysRoot: sys, devRoot: '/x' }, log, { clock });
  clock.advance(5000);
  t.equal(clock.pending, 0);
  t.equal(log.warnings().length, 1);
  t.match(log.warnings()[0], /gpio529 not usable after 2 s: ENOENT/);
  backend.set(true);
  backend.release();
  t.end();
});

t.test('sysfs: an unknown chip is named in the reason, and none warns once with every reason', (t) => {
  const sys = t.testdir();
  sysfsGpioTree(sys, [{ label: 'gpio-mockup-A', base: 0, ngpio: 8 }]);
  const log = captureLog();
  const { backend, why } = openLed('ready', led(17), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.equal(backend.name, 'none');
  t.same(why, [
    'ledclass: no LED class entry serialgw-ready',
    'gpiochip: gpioset not found on PATH (apt install gpiod)',
    `sysfs: no Raspberry Pi GPIO chip (pinctrl-bcm2835, pinctrl-bcm2711, pinctrl-rp1) in ${join(sys, 'class/gpio')}; found: gpio-mockup-A (base 0)`,
  ]);
  t.same(log.warnings(), [`led ready (BCM 17): no way to drive it, running without it; tried ${why.join('; ')}`]);
  backend.set(true);
  backend.release();
  t.end();
});

t.test('sysfs: pin beyond the chip, export refused', (t) => {
  const sys = t.testdir();
  sysfsGpioTree(sys, OLD_KERNEL);
  const log = captureLog();
  const beyond = openLed('ready', led(60, { backend: 'sysfs' }), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.same(beyond.why, ["sysfs: BCM 60 is beyond pinctrl-bcm2835's 54 lines"]);
  rmSync(join(sys, 'class/gpio/export'));
  const missing = openLed('ready', led(17, { backend: 'sysfs' }), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.match(missing.why[0], /^sysfs: no .*class\/gpio\/export \(legacy sysfs GPIO is not in this kernel\)$/);
  writeFileSync(join(sys, 'class/gpio/export'), '');
  chmodSync(join(sys, 'class/gpio/export'), 0o444);
  const isRoot = process.getuid?.() === 0;
  const refused = openLed('ready', led(17, { backend: 'sysfs' }), { sysRoot: sys, devRoot: '/x' }, log, { clock: new FakeClock() });
  if (isRoot) t.equal(refused.backend.name, 'sysfs', 'root writes read-only files anyway');
  else t.match(refused.why[0], /export of gpio17 failed: EACCES \(the gpio group needs write access/);
  refused.backend.release();
  t.end();
});

t.test('no sysfs GPIO and nothing else: none, with one warning; backend none and pin -1: silent', (t) => {
  const sys = t.testdir();
  const log = captureLog();
  const { backend, why } = openLed('serial', led(27, { label: 'serialgw-serial' }), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.equal(backend.name, 'none');
  t.equal(why.length, 3);
  t.match(why[2], /^sysfs: no .* \(legacy sysfs GPIO is not in this kernel\)$/);
  t.equal(log.warnings().length, 1);
  const chosen = openLed('serial', led(27, { backend: 'none' }), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.equal(chosen.backend.name, 'none');
  const unwired = openLed('serial', led(-1), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.equal(unwired.backend.describe, 'not wired');
  t.equal(log.warnings().length, 1, 'no more warnings');
  t.equal(describeLed('serial', led(-1), unwired), 'serial: not wired (pin -1)');
  t.end();
});

t.test('a named backend is the only one tried', (t) => {
  const sys = t.testdir();
  ledClassEntry(sys, 'serialgw-ready');
  sysfsGpioTree(sys, PI4_66);
  const log = captureLog();
  const { backend, why } = openLed('ready', led(17, { backend: 'gpiochip' }), { sysRoot: sys, devRoot: '/x' }, log, noTools);
  t.equal(backend.name, 'none');
  t.same(why, ['gpiochip: gpioset not found on PATH (apt install gpiod)']);
  t.end();
});

t.test('chip discovery: legacy entries name the cdev, new chipN entries, gpiodetect output', (t) => {
  const sys = t.testdir();
  sysfsGpioTree(sys, PI5_66);
  t.same(
    listSysfsChips(sys).map((c) => `${c.label}@${c.base}/${c.ngpio}=${c.cdev}`),
    [
      'gpio-brcmstb@107d508500@512/32=gpiochip0',
      'gpio-brcmstb@107d508500@544/4=gpiochip1',
      'gpio-brcmstb@107d517c00@548/17=gpiochip2',
      'gpio-brcmstb@107d517c00@565/6=gpiochip3',
      'pinctrl-rp1@571/54=gpiochip4',
    ],
  );
  t.same(listCdevChips(sys, null).chips.at(-1), { name: 'gpiochip4', label: 'pinctrl-rp1', lines: 54 });
  const newer = t.testdir({ class: { gpio: { chip0: { label: 'pinctrl-rp1\n', ngpio: '54\n' }, chip10: { label: 'gpio-brcmstb@107d508500\n', ngpio: '32\n' } } } });
  t.same(listCdevChips(newer, null).chips, [
    { name: 'gpiochip0', label: 'pinctrl-rp1', lines: 54 },
    { name: 'gpiochip10', label: 'gpio-brcmstb@107d508500', lines: 32 },
  ]);
  t.same(parseGpiodetect('gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\n'), [
    { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
    { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 },
  ]);
  t.end();
});
