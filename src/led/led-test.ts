/**
 * `serial-gateway --led-test`: for a person checking the wiring. Prints which backend each LED got (and
 * why earlier ones were skipped), then shows every pattern on each LED in turn, a few seconds each, then
 * turns everything off and releases it. Ignores leds.enabled: wiring is checked before turning LEDs on.
 */
import { LED_NAMES, type LedName, type LedsConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import {
  ACTIVITY_FLASH,
  DOUBLE_BLINK,
  type Flash,
  FAST_BLINK,
  LedDriver,
  ON,
  type Pattern,
  REFUSED_FLASH,
  SLOW_BLINK,
  describePattern,
} from '../status/led-patterns.js';
import type { LedHost } from './backend.js';
import { type OpenedLed, describeLed, openLed } from './open.js';

export interface LedTestOptions {
  /** How long each pattern shows; default 3000 ms. */
  stepMs?: number;
  host?: LedHost;
  /** Stops the test early (Ctrl-C); LEDs are still turned off and released. */
  signal?: AbortSignal;
}

interface Step {
  what: string;
  pattern: Pattern;
  /** Events fired every `everyMs` during the step, to show a flash overlay. */
  flash?: { spec: Flash; everyMs: number };
}

const STEPS: readonly Step[] = [
  { what: `on (${describePattern(ON)})`, pattern: ON },
  { what: `slow blink, serial waiting (${describePattern(SLOW_BLINK)})`, pattern: SLOW_BLINK },
  { what: `fast blink, starting / serial failed (${describePattern(FAST_BLINK)})`, pattern: FAST_BLINK },
  { what: `double blink, reload rejected (${describePattern(DOUBLE_BLINK)})`, pattern: DOUBLE_BLINK },
  { what: `traffic flicker (flash ${ACTIVITY_FLASH.ms} ms, at most one per ${ACTIVITY_FLASH.minIntervalMs} ms)`, pattern: { kind: 'off' }, flash: { spec: ACTIVITY_FLASH, everyMs: 20 } },
  { what: `refused connections while lit (${REFUSED_FLASH.ms} ms dark)`, pattern: ON, flash: { spec: REFUSED_FLASH, everyMs: 1000 } },
];

export async function runLedTest(
  cfg: LedsConfig,
  clock: Clock,
  log: Log,
  out: (line: string) => void,
  opts: LedTestOptions = {},
): Promise<void> {
  const stepMs = opts.stepMs ?? 3000;
  const host: LedHost = { ...opts.host, clock: opts.host?.clock ?? clock };
  const opened = new Map<LedName, OpenedLed>();
  if (!cfg.enabled) out('note: leds.enabled is false in the config; testing the LEDs anyway');
  for (const name of LED_NAMES) {
    const o = openLed(name, cfg[name], cfg, log, host);
    opened.set(name, o);
    out(describeLed(name, cfg[name], o));
  }
  const usable = [...opened].filter(([, o]) => o.backend.name !== 'none');
  try {
    if (usable.length === 0) {
      out('no LED can be driven: nothing to show');
      return;
    }
    for (const [name, o] of usable) {
      const driver = new LedDriver(clock, (on) => o.backend.set(on));
      try {
        for (const step of STEPS) {
          if (opts.signal?.aborted === true) return;
          out(`${name}: ${step.what}`);
          driver.play(step.pattern);
          const stopFlashing = step.flash === undefined ? null : clock.setInterval(() => driver.flash(step.flash!.spec), step.flash.everyMs);
          await sleep(clock, stepMs, opts.signal);
          stopFlashing?.();
          driver.clearFlash();
        }
      } finally {
        driver.dispose();
      }
    }
    out('all off');
  } finally {
    for (const o of opened.values()) o.backend.release();
    await Promise.all([...opened.values()].map((o) => o.backend.settled?.()));
  }
}

function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const cancel = clock.setTimeout(done, ms);
    function done(): void {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
