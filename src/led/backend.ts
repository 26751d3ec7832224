/**
 * The table of operations every LED backend implements (in the spirit of ser2net's `led_driver_s`).
 *
 * Required:
 *   set(on)   drive the LED; never throws (a failing device is logged once by the backend)
 *   release() turn the LED off and give back the line, export or file; later set() calls do nothing
 * Optional:
 *   settled() resolves once asynchronous work already started (a gpioset child starting or ending) is
 *             done; backends that only write files have none.
 *
 * There is deliberately no "blink" operation: every backend is driven by the one pattern player
 * (LedDriver in src/status/led-patterns.ts) with the daemon's clock. Kernel LED triggers were considered
 * and not used: `timer` knows only one on/off pair (no double blink), and its delay_on/delay_off files
 * appear only after the trigger is switched, owned by root, so the udev rule that opens brightness and
 * trigger to the gpio group cannot have opened them; a few sysfs writes a second cost nothing.
 */
import type { Clock } from '../core/clock.js';
import type { LedBackend as LedBackendName } from '../config/types.js';

export type BackendName = Exclude<LedBackendName, 'auto'>;

export interface LedBackend {
  readonly name: BackendName;
  /** What drives the LED, for logs and --led-test, e.g. `ledclass /sys/class/leds/serialgw-ready`. */
  readonly describe: string;
  set(on: boolean): void;
  release(): void;
  settled?(): Promise<void>;
}

/** Where sysfs and device nodes are (tests point them at fixture trees). */
export interface LedRoots {
  sysRoot: string;
  devRoot: string;
}

/** Ambient things a backend may need besides the config: PATH for gpioset, a clock for retries. */
export interface LedHost {
  env?: Readonly<Record<string, string | undefined>>;
  clock?: Clock;
}

/** The backend of an LED that is not wired, disabled, or that nothing could drive. */
export function noneBackend(describe = 'none'): LedBackend {
  return {
    name: 'none',
    describe,
    set() {},
    release() {},
  };
}

/** A failure to acquire a backend: `why` becomes part of the "skipped" explanation. */
export class LedUnavailable extends Error {
  constructor(readonly why: string) {
    super(why);
    this.name = 'LedUnavailable';
  }
}

/** errno code of a Node fs error, or the message. */
export function errText(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}
