/**
 * Kernel LED class backend: /sys/class/leds/LABEL/brightness, for LEDs declared in
 * /boot/firmware/config.txt with `dtoverlay=gpio-led,gpio=17,label=serialgw-ready,trigger=none`.
 * Immune to GPIO renumbering: the kernel owns the pin, the name is ours.
 *
 * activeLow is not handled here: the overlay's `active_low=1` tells the kernel, and brightness then
 * means "lit" either way. The config's activeLow matters only to the GPIO backends.
 *
 * Writing brightness and trigger needs root or the udev rule in deploy/99-serial-gateway.rules, which
 * gives the gpio group write access to both files of every serialgw-* LED.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../core/log.js';
import { type LedBackend, LedUnavailable, errText } from './backend.js';

export function openLedClass(label: string, sysRoot: string, log: Log, ledName: string): LedBackend {
  const dir = join(sysRoot, 'class', 'leds', label);
  if (!existsSync(dir)) throw new LedUnavailable(`no LED class entry ${label}`);
  const brightness = join(dir, 'brightness');
  const onValue = String(readMaxBrightness(dir));

  // Any trigger but none would fight our writes (and writing brightness 0 silently drops the trigger).
  const triggerFile = join(dir, 'trigger');
  const current = currentTrigger(triggerFile);
  if (current !== null && current !== 'none') {
    try {
      writeFileSync(triggerFile, 'none');
    } catch (err) {
      throw new LedUnavailable(`${triggerFile}: cannot set trigger none (was ${current}): ${errText(err)}`);
    }
  }
  // The first write doubles as the permission check: it fails here, not later in a timer.
  try {
    writeFileSync(brightness, '0');
  } catch (err) {
    const hint = errText(err) === 'EACCES' ? ' (install deploy/99-serial-gateway.rules, or run as root)' : '';
    throw new LedUnavailable(`${brightness} not writable: ${errText(err)}${hint}`);
  }

  let released = false;
  let warned = false;
  const write = (value: string): void => {
    try {
      writeFileSync(brightness, value);
    } catch (err) {
      if (!warned) log.warn(`led ${ledName}: writing ${brightness} failed: ${errText(err)} (further failures not logged)`);
      warned = true;
    }
  };
  return {
    name: 'ledclass',
    describe: `ledclass ${dir}`,
    set(on) {
      if (!released) write(on ? onValue : '0');
    },
    release() {
      if (released) return;
      write('0');
      released = true;
    },
  };
}

function readMaxBrightness(dir: string): number {
  try {
    const n = Number.parseInt(readFileSync(join(dir, 'max_brightness'), 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : 1;
  } catch {
    return 1;
  }
}

/** The trigger file lists every trigger and brackets the active one: `none [timer] heartbeat`. */
function currentTrigger(file: string): string | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const m = /\[([^\]]+)\]/.exec(text);
  return m?.[1] ?? null;
}
