/**
 * Choosing a backend per LED: the first that works of ledclass -> gpiochip -> sysfs, unless the LED's
 * `backend` names one; `none` when nothing works, with one warning that says what was tried and why each
 * failed. Never throws for anything found (or not found) on the machine.
 */
import type { LedConfig, LedName } from '../config/types.js';
import { systemClock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { type BackendName, type LedBackend, type LedHost, type LedRoots, LedUnavailable, errText, noneBackend } from './backend.js';
import { openGpiochip } from './gpiochip.js';
import { openLedClass } from './ledclass.js';
import { openSysfs } from './sysfs.js';

export interface OpenedLed {
  backend: LedBackend;
  /** One entry per backend tried and skipped, e.g. `ledclass: no LED class entry serialgw-serial`. */
  why: string[];
}

const AUTO_ORDER: readonly Exclude<BackendName, 'none'>[] = ['ledclass', 'gpiochip', 'sysfs'];

export function openLed(
  /** An LED's name, or `reset` for the instructor's GPIO reset line (the same backends drive it). */
  name: LedName | 'reset',
  cfg: LedConfig,
  roots: LedRoots,
  log: Log,
  host: LedHost = {},
  opts: { quiet?: boolean } = {},
): OpenedLed {
  if (cfg.pin < 0) return { backend: noneBackend('not wired'), why: [] };
  if (cfg.backend === 'none') return { backend: noneBackend('none (backend: none in the config)'), why: [] };
  const env = host.env ?? process.env;
  const clock = host.clock ?? systemClock;
  const order = cfg.backend === 'auto' ? AUTO_ORDER : [cfg.backend];
  const why: string[] = [];
  for (const kind of order) {
    try {
      switch (kind) {
        case 'ledclass':
          return { backend: openLedClass(cfg.label, roots.sysRoot, log, name), why };
        case 'gpiochip':
          return { backend: openGpiochip(name, cfg.pin, cfg.activeLow, cfg.label, roots, log, env), why };
        case 'sysfs':
          return { backend: openSysfs(name, cfg.pin, cfg.activeLow, roots.sysRoot, log, clock), why };
      }
    } catch (err) {
      why.push(`${kind}: ${err instanceof LedUnavailable ? err.why : errText(err)}`);
    }
  }
  if (!opts.quiet) log.warn(`led ${name} (BCM ${cfg.pin}): no way to drive it, running without it; tried ${why.join('; ')}`);
  return { backend: noneBackend('none'), why };
}

/** `ready (BCM 17): ledclass /sys/class/leds/serialgw-ready`, plus why earlier backends were skipped. */
export function describeLed(name: LedName, cfg: LedConfig, opened: OpenedLed): string {
  if (cfg.pin < 0) return `${name}: not wired (pin -1)`;
  const skipped = opened.why.length > 0 ? ` (${opened.why.join('; ')})` : '';
  return `${name} (BCM ${cfg.pin}): ${opened.backend.describe}${skipped}`;
}
