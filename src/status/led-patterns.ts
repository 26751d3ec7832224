/**
 * What each status LED shows, and a small player that turns a pattern into `set(on)` calls on time.
 * Pure: no Node I/O; time comes only from the injected Clock.
 *
 * Patterns are chosen so that the ones a single LED can show differ by at least 2:1 in rate or shape
 * (steady, 0.5 Hz, 4 Hz, a double blink), which a person tells apart at a glance; 5 Hz against 6 Hz
 * would not be.
 */
import type { Clock, Disposer } from '../core/clock.js';
import type { LedName } from '../config/types.js';
import type { StatusEvent, StatusSnapshot } from './model.js';

/** A cyclic on/off schedule. Each cycle starts with the LED on. */
export type Pattern =
  | { kind: 'off' }
  | { kind: 'on' }
  | { kind: 'blink'; onMs: number; offMs: number }
  /** Two short blinks, then a long pause: on, gap, on, pause. */
  | { kind: 'double'; onMs: number; gapMs: number; pauseMs: number };

/**
 * A one-shot overlay: the LED shows the opposite of its pattern for `ms` (a flash on a dark LED, a wink
 * on a lit one). Flashes start at most once per `minIntervalMs`; events in between are folded into one
 * more flash when the interval ends, so a stream of events shows as a steady flicker, never as always-on.
 */
export interface Flash {
  ms: number;
  minIntervalMs: number;
}

export const OFF: Pattern = { kind: 'off' };
export const ON: Pattern = { kind: 'on' };
/** "Waiting": 0.5 Hz. */
export const SLOW_BLINK: Pattern = { kind: 'blink', onMs: 1000, offMs: 1000 };
/** "Busy" (ready) or "a person must fix something" (serial): 4 Hz, 8 times the slow blink. */
export const FAST_BLINK: Pattern = { kind: 'blink', onMs: 125, offMs: 125 };
/** "Reload rejected, the old config still runs": blink-blink, pause, every 2 s. */
export const DOUBLE_BLINK: Pattern = { kind: 'double', onMs: 150, gapMs: 150, pauseMs: 1550 };

/** Traffic: a 30 ms flash, at most one per 100 ms (a stream flickers at 10 Hz, 30% lit). */
export const ACTIVITY_FLASH: Flash = { ms: 30, minIntervalMs: 100 };
/** Refused connection: the clients LED inverts for 200 ms, at most one per 500 ms. */
export const REFUSED_FLASH: Flash = { ms: 200, minIntervalMs: 500 };

export interface PatternOptions {
  /**
   * The serial LED is not wired (or has no working backend): `ready` then also shows the device, so a
   * single LED still tells the important states apart (see patternsFor). Default false.
   */
  foldDevice?: boolean;
}

/**
 * The pattern of every LED for a snapshot:
 *
 * | LED      | state                                   | pattern                          |
 * |----------|-----------------------------------------|----------------------------------|
 * | ready    | stopping or stopped                     | off                              |
 * | ready    | starting or reloading                   | fast blink 125/125 ms (4 Hz)     |
 * | ready    | running, last reload rejected           | double blink 150/150/150/1550 ms |
 * | ready    | running                                 | on                               |
 * | serial   | device open                             | on                               |
 * | serial   | waiting (absent, unplugged, retrying)   | slow blink 1000/1000 ms (0.5 Hz) |
 * | serial   | failed (permission, wrong settings)     | fast blink 125/125 ms (4 Hz)     |
 * | serial   | stopped                                 | off                              |
 * | clients  | at least one client                     | on (refused: 200 ms inverted)    |
 * | clients  | no client                               | off (refused: 200 ms flash)      |
 * | activity | idle                                    | off (traffic: 30 ms flashes)     |
 * | error    | degraded                                | on                               |
 * | error    | healthy                                 | off                              |
 *
 * With `foldDevice` (ready alone), a running gateway whose device is not open (waiting or failed) shows
 * the slow blink on ready, ahead of the reload-rejected double blink, because "the lab box is not
 * there" is the most common reason a student sees no answer. So ready alone reads: off = not running,
 * slow blink = running but no device, on = running with the device open (plus fast blink while starting
 * and the double blink after a rejected reload).
 */
export function patternsFor(s: Readonly<StatusSnapshot>, opts: PatternOptions = {}): Record<LedName, Pattern> {
  return {
    ready: readyPattern(s, opts.foldDevice === true),
    serial: serialPattern(s),
    clients: s.clients > 0 ? ON : OFF,
    activity: OFF,
    error: s.degraded ? ON : OFF,
  };
}

function readyPattern(s: Readonly<StatusSnapshot>, foldDevice: boolean): Pattern {
  switch (s.phase) {
    case 'stopping':
    case 'stopped':
      return OFF;
    case 'starting':
    case 'reloading':
      return FAST_BLINK;
    case 'running':
      if (foldDevice && s.device !== 'open') return SLOW_BLINK;
      return s.reloadRejected ? DOUBLE_BLINK : ON;
  }
}

function serialPattern(s: Readonly<StatusSnapshot>): Pattern {
  switch (s.device) {
    case 'open':
      return ON;
    case 'waiting':
      return SLOW_BLINK;
    case 'failed':
      return FAST_BLINK;
    case 'stopped':
      return OFF;
  }
}

/** Which LED a momentary event flashes, and how. */
export function flashFor(event: StatusEvent): { led: LedName; flash: Flash } {
  switch (event) {
    case 'activity':
      return { led: 'activity', flash: ACTIVITY_FLASH };
    case 'refused':
      return { led: 'clients', flash: REFUSED_FLASH };
  }
}

export function samePattern(a: Pattern, b: Pattern): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'blink' && b.kind === 'blink') return a.onMs === b.onMs && a.offMs === b.offMs;
  if (a.kind === 'double' && b.kind === 'double') {
    return a.onMs === b.onMs && a.gapMs === b.gapMs && a.pauseMs === b.pauseMs;
  }
  return true;
}

/** For logs and --led-test: `on`, `off`, `blink 125/125`, `double 150/150/1550`. */
export function describePattern(p: Pattern): string {
  switch (p.kind) {
    case 'off':
    case 'on':
      return p.kind;
    case 'blink':
      return `blink ${p.onMs}/${p.offMs}`;
    case 'double':
      return `double ${p.onMs}/${p.gapMs}/${p.pauseMs}`;
  }
}

/** Lit/dark steps of one cycle; null for a steady pattern. */
function stepsOf(p: Pattern): readonly number[] | null {
  switch (p.kind) {
    case 'off':
    case 'on':
      return null;
    case 'blink':
      return [p.onMs, p.offMs];
    case 'double':
      return [p.onMs, p.gapMs, p.onMs, p.pauseMs];
  }
}

function checkPattern(p: Pattern): void {
  const steps = stepsOf(p);
  if (steps === null) return;
  for (const ms of steps) {
    if (!Number.isInteger(ms) || ms < 1) throw new TypeError(`pattern ${describePattern(p)}: every step must be a whole number of ms >= 1`);
  }
}

/**
 * Plays one LED: its current pattern plus flash overlays, through `set(on)`, with at most one timer armed.
 * `set` is called only when the level changes. A pattern equal to the current one changes nothing (no
 * restart, no flicker); a different one starts its cycle now. dispose() turns the LED off and disarms.
 */
export class LedDriver {
  private pattern: Pattern = OFF;
  private steps: readonly number[] | null = null;
  private period = 0;
  private cycleStart = 0;
  private level: boolean | null = null;
  private timer: Disposer | null = null;
  private flashSpec: Flash | null = null;
  private flashUntil = -Infinity;
  private nextFlashAt = -Infinity;
  private flashPending = false;
  private disposed = false;

  constructor(
    private readonly clock: Clock,
    private readonly set: (on: boolean) => void,
  ) {
    this.update();
  }

  get current(): Pattern {
    return this.pattern;
  }

  play(pattern: Pattern): void {
    if (this.disposed || samePattern(pattern, this.pattern)) return;
    checkPattern(pattern);
    this.pattern = pattern;
    this.steps = stepsOf(pattern);
    this.period = this.steps === null ? 0 : this.steps.reduce((a, b) => a + b, 0);
    this.cycleStart = this.clock.now();
    this.update();
  }

  /** Shows the opposite of the pattern for flash.ms, rate-limited as Flash describes. */
  flash(flash: Flash): void {
    if (this.disposed) return;
    if (!(flash.ms >= 1 && flash.minIntervalMs >= flash.ms)) throw new TypeError('flash: need ms >= 1 and minIntervalMs >= ms');
    const now = this.clock.now();
    if (now < this.nextFlashAt) {
      this.flashSpec = flash;
      // Already waiting: the armed timer covers it, so a stream of events does not re-arm on every one.
      if (this.flashPending) return;
      this.flashPending = true;
      this.update();
      return;
    }
    this.startFlash(flash, now);
    this.update();
  }

  /** Ends a flash in progress and forgets one waiting for the rate limit. */
  clearFlash(): void {
    if (this.disposed) return;
    this.flashUntil = -Infinity;
    this.nextFlashAt = -Infinity;
    this.flashPending = false;
    this.update();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.disarm();
    this.flashPending = false;
    if (this.level !== false) {
      this.level = false;
      this.set(false);
    }
  }

  private startFlash(flash: Flash, now: number): void {
    this.flashSpec = flash;
    this.flashUntil = now + flash.ms;
    this.nextFlashAt = now + flash.minIntervalMs;
    this.flashPending = false;
  }

  /** Brings the LED to the level due now and arms the one timer for the next change. */
  private update(): void {
    if (this.disposed) return;
    this.disarm();
    const now = this.clock.now();
    if (this.flashPending && this.flashSpec !== null && now >= this.nextFlashAt) this.startFlash(this.flashSpec, now);
    const base = this.baseAt(now);
    const lit = now < this.flashUntil ? !base.lit : base.lit;
    if (lit !== this.level) {
      this.level = lit;
      this.set(lit);
    }
    let next = base.nextChange;
    if (now < this.flashUntil) next = Math.min(next, this.flashUntil);
    if (this.flashPending) next = Math.min(next, this.nextFlashAt);
    if (next !== Infinity) this.timer = this.clock.setTimeout(() => this.tick(), Math.max(1, Math.ceil(next - now)));
  }

  private tick(): void {
    this.timer = null;
    this.update();
  }

  private disarm(): void {
    if (this.timer !== null) {
      this.timer();
      this.timer = null;
    }
  }

  private baseAt(now: number): { lit: boolean; nextChange: number } {
    if (this.steps === null) return { lit: this.pattern.kind === 'on', nextChange: Infinity };
    const intoCycle = (now - this.cycleStart) % this.period;
    let edge = 0;
    for (let i = 0; i < this.steps.length; i++) {
      edge += this.steps[i] ?? 0;
      if (intoCycle < edge) return { lit: i % 2 === 0, nextChange: now - intoCycle + edge };
    }
    return { lit: true, nextChange: now - intoCycle + this.period };
  }
}
