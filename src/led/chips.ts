/**
 * Finding the Raspberry Pi's header GPIO chip, always by its label, never by number: chip numbers and
 * sysfs bases moved between kernels (sysfs base 0 on old kernels, 512 on a Pi 4 with 6.6, 571 or 569 for
 * pinctrl-rp1 on a Pi 5; the Pi 5's character device went from gpiochip4 to gpiochip0 in 6.6.45).
 *
 * What sysfs offers (checked against kernel sources and reports from Pi users):
 * - /sys/class/gpio/gpiochipBASE/{base,label,ngpio}: the legacy interface (CONFIG_GPIO_SYSFS). The entry
 *   lives under the chip's parent device (…/107d517c00.gpio/gpio/gpiochip453), whose directory also holds
 *   the character device's entry gpiochipN: so `gpiochipBASE/device/gpiochipN` names /dev/gpiochipN.
 * - /sys/class/gpio/chipN/{label,ngpio}: the per-chip entries newer kernels add beside the legacy ones,
 *   numbered like /dev/gpiochipN.
 * - /sys/bus/gpio/devices/gpiochipN holds only dev, of_node, subsystem and uevent: no label.
 * Where sysfs GPIO is compiled out (reported on some Pi 5 / Debian 13 systems) the label is only
 * available by ioctl, which `gpiodetect` (same package as gpioset) prints: `gpiochip0 [pinctrl-rp1] (54 lines)`.
 */
import { accessSync, constants, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** Labels of the chip that carries the 40-pin header: Pi 1-3 / Zero, Pi 4 / 400 / CM4, Pi 5 / CM5. */
export const PI_CHIP_LABELS: readonly string[] = ['pinctrl-bcm2835', 'pinctrl-bcm2711', 'pinctrl-rp1'];

export interface SysfsChip {
  label: string;
  base: number;
  ngpio: number;
  /** /dev name of the same chip (gpiochipN), when sysfs tells it. */
  cdev: string | null;
}

export interface CdevChip {
  /** gpiochipN */
  name: string;
  label: string;
  /** null when the source does not say. */
  lines: number | null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function readInt(file: string): number | null {
  const text = readText(file);
  if (text === null || !/^\d+$/.test(text)) return null;
  return Number(text);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch {
    return [];
  }
}

/** Legacy sysfs chips, /sys/class/gpio/gpiochipBASE. Empty when the interface is absent. */
export function listSysfsChips(sysRoot: string): SysfsChip[] {
  const classDir = join(sysRoot, 'class', 'gpio');
  const chips: SysfsChip[] = [];
  for (const entry of listDir(classDir)) {
    if (!/^gpiochip\d+$/.test(entry)) continue;
    const dir = join(classDir, entry);
    const label = readText(join(dir, 'label'));
    const base = readInt(join(dir, 'base'));
    const ngpio = readInt(join(dir, 'ngpio'));
    if (label === null || base === null || ngpio === null) continue;
    chips.push({ label, base, ngpio, cdev: cdevBeside(join(dir, 'device')) });
  }
  return chips;
}

/** The gpiochipN entry in the parent device's directory (or the device itself, for a parentless chip). */
function cdevBeside(deviceLink: string): string | null {
  const inside = listDir(deviceLink).find((e) => /^gpiochip\d+$/.test(e));
  if (inside !== undefined) return inside;
  try {
    const self = basename(realpathSync(deviceLink));
    return /^gpiochip\d+$/.test(self) ? self : null;
  } catch {
    return null;
  }
}

/** Character-device chips with their labels: from sysfs if it tells, else from `gpiodetect`. */
export function listCdevChips(sysRoot: string, gpiodetect: string | null): { chips: CdevChip[]; source: string } {
  const classDir = join(sysRoot, 'class', 'gpio');
  const chips: CdevChip[] = [];
  for (const entry of listDir(classDir)) {
    const m = /^chip(\d+)$/.exec(entry);
    if (m === null) continue;
    const label = readText(join(classDir, entry, 'label'));
    if (label !== null) chips.push({ name: `gpiochip${m[1]}`, label, lines: readInt(join(classDir, entry, 'ngpio')) });
  }
  if (chips.length > 0) return { chips, source: `${classDir}/chip*` };
  for (const c of listSysfsChips(sysRoot)) {
    if (c.cdev !== null) chips.push({ name: c.cdev, label: c.label, lines: c.ngpio });
  }
  if (chips.length > 0) return { chips, source: `${classDir}/gpiochip*` };
  if (gpiodetect === null) return { chips, source: 'nothing (no GPIO chip labels in sysfs, no gpiodetect)' };
  return { chips: runGpiodetect(gpiodetect), source: 'gpiodetect' };
}

/** Parses `gpiochip0 [pinctrl-bcm2711] (58 lines)`, the format of libgpiod v1.6 and v2. */
export function parseGpiodetect(text: string): CdevChip[] {
  const chips: CdevChip[] = [];
  for (const line of text.split('\n')) {
    const m = /^(gpiochip\d+) \[(.*)\] \((\d+) lines\)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) chips.push({ name: m[1], label: m[2], lines: Number(m[3]) });
  }
  return chips;
}

function runGpiodetect(path: string): CdevChip[] {
  const r = spawnSync(path, [], { encoding: 'utf8', timeout: 3000 });
  return typeof r.stdout === 'string' ? parseGpiodetect(r.stdout) : [];
}

/** "pinctrl-bcm2711 (base 512), gpio-brcmstb@107d508500 (base 544)" for messages. */
export function nameChips(chips: readonly { label: string; base?: number; name?: string }[]): string {
  if (chips.length === 0) return 'none';
  return chips.map((c) => (c.base !== undefined ? `${c.label} (base ${c.base})` : `${c.label} (${c.name ?? '?'})`)).join(', ');
}

/** An executable of that name on PATH, or null. */
export function findOnPath(name: string, env: Readonly<Record<string, string | undefined>>): string | null {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
