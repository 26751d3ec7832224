/**
 * Legacy sysfs GPIO backend: /sys/class/gpio/{export,unexport,gpioN/{active_low,direction,value}}.
 * Deprecated by the kernel and missing on some Pi 5 / Debian 13 systems, but still the only GPIO path on
 * some older installs. N is the chip's base + the BCM number; the chip is found by label (chips.ts).
 *
 * Why not onoff, which the design named: for an output, onoff 6 does exactly these file writes (export,
 * active_low, direction, value, unexport), but it loads the native `epoll` module at require time, so it
 * cannot even be installed on a Pi without a compiler; it hard-codes /sys/class/gpio (no fixture trees);
 * it takes raw global numbers (we would still compute base + BCM); and it waits for udev's permission fix
 * by retrying a synchronous open up to 10000 times in a row. Writing the files here needs nothing, and
 * the wait is a few retries on the daemon's clock instead of a busy loop.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { type LedBackend, LedUnavailable, errText } from './backend.js';
import { PI_CHIP_LABELS, listSysfsChips, nameChips } from './chips.js';

/** After export, udev needs a moment to hand the new files to the gpio group. */
const SETUP_RETRY_MS = 50;
const SETUP_TRIES = 40;

export function openSysfs(
  ledName: string,
  pin: number,
  activeLow: boolean,
  sysRoot: string,
  log: Log,
  clock: Clock,
): LedBackend {
  const classDir = join(sysRoot, 'class', 'gpio');
  const exportFile = join(classDir, 'export');
  if (!existsSync(exportFile)) throw new LedUnavailable(`no ${exportFile} (legacy sysfs GPIO is not in this kernel)`);
  const chips = listSysfsChips(sysRoot);
  const chip = chips.find((c) => PI_CHIP_LABELS.includes(c.label));
  if (chip === undefined) {
    throw new LedUnavailable(`no Raspberry Pi GPIO chip (${PI_CHIP_LABELS.join(', ')}) in ${classDir}; found: ${nameChips(chips)}`);
  }
  if (pin >= chip.ngpio) throw new LedUnavailable(`BCM ${pin} is beyond ${chip.label}'s ${chip.ngpio} lines`);

  const gpio = chip.base + pin;
  const gpioDir = join(classDir, `gpio${gpio}`);
  let exportedByUs = false;
  if (!existsSync(gpioDir)) {
    try {
      writeFileSync(exportFile, String(gpio));
      exportedByUs = true;
    } catch (err) {
      const code = errText(err);
      const hint =
        code === 'EBUSY'
          ? ' (the line is in use: a kernel driver such as a gpio-led overlay, or another program)'
          : code === 'EACCES'
            ? ' (the gpio group needs write access: Raspberry Pi OS udev rules, or run as root)'
            : '';
      throw new LedUnavailable(`export of gpio${gpio} failed: ${code}${hint}`);
    }
  }

  let desired = false;
  let ready = false;
  let released = false;
  let retry: Disposer | null = null;
  let tries = 0;
  let warned = false;
  const warnOnce = (msg: string): void => {
    if (!warned) log.warn(`led ${ledName}: ${msg}`);
    warned = true;
  };

  // active_low first: the kernel applies it to the value written next.
  const setup = (): boolean => {
    try {
      writeFileSync(join(gpioDir, 'active_low'), activeLow ? '1' : '0');
      writeFileSync(join(gpioDir, 'direction'), 'out');
      writeFileSync(join(gpioDir, 'value'), desired ? '1' : '0');
      return true;
    } catch (err) {
      if (++tries >= SETUP_TRIES) {
        warnOnce(`${gpioDir} not usable after ${(SETUP_TRIES * SETUP_RETRY_MS) / 1000} s: ${errText(err)} (is the gpio group allowed to write it?)`);
      }
      return false;
    }
  };
  const trySetup = (): void => {
    retry = null;
    if (released) return;
    if (setup()) ready = true;
    else if (tries < SETUP_TRIES) retry = clock.setTimeout(trySetup, SETUP_RETRY_MS);
  };
  trySetup();

  return {
    name: 'sysfs',
    describe: `sysfs ${gpioDir} (${chip.label} base ${chip.base} + BCM ${pin}${exportedByUs ? '' : ', was already exported'})`,
    set(on) {
      desired = on;
      if (!ready || released) return;
      try {
        writeFileSync(join(gpioDir, 'value'), on ? '1' : '0');
      } catch (err) {
        warnOnce(`writing ${gpioDir}/value failed: ${errText(err)} (further failures not logged)`);
      }
    },
    release() {
      if (released) return;
      released = true;
      if (retry !== null) retry();
      retry = null;
      try {
        if (ready) writeFileSync(join(gpioDir, 'value'), '0');
        if (exportedByUs) writeFileSync(join(classDir, 'unexport'), String(gpio));
      } catch (err) {
        log.debug(`led ${ledName}: releasing gpio${gpio}: ${errText(err)}`);
      }
    },
  };
}
