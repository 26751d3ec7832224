/**
 * The status LEDs of a running gateway: reads the StatusModel, picks each LED's pattern (led-patterns.ts)
 * and plays it on the LED's backend. Logs every pattern change at debug level (`led ready: on`,
 * `led serial: blink 1000/1000`, `led activity: flash`), also for LEDs that ended up with no backend, so
 * a machine without GPIO still shows what the LEDs would do.
 *
 * Reload: an LED whose settings (or the roots) changed is turned off, released and acquired again; the
 * others keep their backend, their pattern and its phase, so they do not flicker.
 */
import { LED_NAMES, type LedConfig, type LedName, type LedsConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { StatusModel, StatusSnapshot } from '../status/model.js';
import { LedDriver, type Pattern, describePattern, flashFor, patternsFor, samePattern } from '../status/led-patterns.js';
import { type LedBackend, type LedHost, noneBackend } from './backend.js';
import { type OpenedLed, describeLed, openLed } from './open.js';

export interface LedController {
  reconfigure(cfg: LedsConfig): void;
  /** Turns every LED off and releases its line, export or file. */
  dispose(): void;
  /** One line per LED: which backend it got and why earlier ones were skipped. */
  describe(): string[];
  /** Resolves once backends' asynchronous work (gpioset children starting or ending) is done. */
  settled(): Promise<void>;
}

interface Slot {
  cfg: LedConfig;
  opened: OpenedLed;
  driver: LedDriver | null;
  shown: Pattern | null;
  lastFlashLog: number;
}

/** A flash per traffic event would flood a debug log: at most one flash line per LED per second. */
const FLASH_LOG_INTERVAL_MS = 1000;

export function createLedController(
  initial: LedsConfig,
  model: StatusModel,
  clock: Clock,
  log: Log,
  host: LedHost = {},
): LedController {
  let cfg = initial;
  const slots = new Map<LedName, Slot>();
  const releasing = new Set<LedBackend>();
  const hostWithClock: LedHost = { ...host, clock: host.clock ?? clock };

  const acquire = (name: LedName, ledCfg: LedConfig): void => {
    if (!cfg.enabled || ledCfg.pin < 0) return;
    // Quiet: on a machine without GPIO every LED fails the same way, and that is said once (acquireAll).
    const opened = openLed(name, ledCfg, cfg, log, hostWithClock, { quiet: true });
    const backend = opened.backend;
    const driver = backend.name === 'none' ? null : new LedDriver(clock, (on) => backend.set(on));
    slots.set(name, { cfg: ledCfg, opened, driver, shown: null, lastFlashLog: -Infinity });
  };

  const release = (name: LedName): void => {
    const slot = slots.get(name);
    if (slot === undefined) return;
    slots.delete(name);
    slot.driver?.dispose();
    slot.opened.backend.release();
    if (slot.opened.backend.settled !== undefined) {
      releasing.add(slot.opened.backend);
      void slot.opened.backend.settled().then(() => releasing.delete(slot.opened.backend));
    }
  };

  const show = (snapshot: Readonly<StatusSnapshot>): void => {
    const serial = slots.get('serial');
    const foldDevice = serial === undefined || serial.driver === null;
    const patterns = patternsFor(snapshot, { foldDevice });
    for (const [name, slot] of slots) {
      const p = patterns[name];
      if (slot.shown !== null && samePattern(slot.shown, p)) continue;
      slot.shown = p;
      log.debug(`led ${name}: ${describePattern(p)}`);
      slot.driver?.play(p);
    }
  };

  const unsubscribe = model.subscribe({
    changed: show,
    event(kind) {
      const { led, flash } = flashFor(kind);
      const slot = slots.get(led);
      if (slot === undefined) return;
      slot.driver?.flash(flash);
      const now = clock.now();
      if (now - slot.lastFlashLog >= FLASH_LOG_INTERVAL_MS) {
        slot.lastFlashLog = now;
        log.debug(`led ${led}: flash`);
      }
    },
  });

  const acquireAll = (only?: ReadonlySet<LedName>): void => {
    const failed: string[] = [];
    for (const name of LED_NAMES) {
      if (only && !only.has(name)) continue;
      acquire(name, cfg[name]);
      const slot = slots.get(name);
      if (slot && slot.driver === null && slot.opened.why.length > 0) failed.push(`${name} (BCM ${slot.cfg.pin}): ${slot.opened.why.join('; ')}`);
    }
    if (failed.length > 0) {
      log.warn(`leds: no way to drive ${failed.length === 1 ? 'this LED' : `${failed.length} LEDs`}, running without: ${failed.join(' | ')}`);
    }
  };
  // subscribe() already called show() with no LEDs; acquire, then show for real.
  acquireAll();
  show(model.snapshot);

  let disposed = false;
  return {
    reconfigure(next) {
      if (disposed) return;
      const rootsChanged = next.enabled !== cfg.enabled || next.sysRoot !== cfg.sysRoot || next.devRoot !== cfg.devRoot;
      const prev = cfg;
      cfg = next;
      const changed = new Set(LED_NAMES.filter((name) => rootsChanged || !sameLed(prev[name], next[name])));
      for (const name of changed) release(name);
      acquireAll(changed);
      show(model.snapshot);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      unsubscribe();
      for (const name of LED_NAMES) release(name);
    },
    describe() {
      if (!cfg.enabled) return ['leds: disabled (leds.enabled: false)'];
      return LED_NAMES.map((name) => {
        const slot = slots.get(name);
        return describeLed(name, cfg[name], slot?.opened ?? { backend: noneBackend('not wired'), why: [] });
      });
    },
    async settled() {
      const pending = [...releasing, ...[...slots.values()].map((s) => s.opened.backend)];
      await Promise.all(pending.map((b) => b.settled?.()));
    },
  };
}

function sameLed(a: LedConfig, b: LedConfig): boolean {
  return a.pin === b.pin && a.activeLow === b.activeLow && a.backend === b.backend && a.label === b.label;
}
