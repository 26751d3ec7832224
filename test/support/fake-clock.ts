import type { Clock, Disposer } from '../../src/core/clock.js';

interface Timer {
  id: number;
  at: number;
  every: number; // 0 for one-shot
  fn: () => void;
}

/** A Clock whose time moves only when the test calls advance(). Timers fire in time order. */
export class FakeClock implements Clock {
  private current = 0;
  private nextId = 1;
  private timers: Timer[] = [];

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Disposer {
    return this.add(fn, ms, 0);
  }

  setInterval(fn: () => void, ms: number): Disposer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Moves time forward by ms, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let due: Timer | undefined;
      for (const t of this.timers) if (t.at <= target && (due === undefined || t.at < due.at)) due = t;
      if (due === undefined) break;
      this.current = due.at;
      if (due.every > 0) due.at += due.every;
      else this.timers = this.timers.filter((t) => t !== due);
      due.fn();
    }
    this.current = target;
  }

  /** How many timers are armed: lets a test check that nothing is left running. */
  get pending(): number {
    return this.timers.length;
  }

  private add(fn: () => void, ms: number, every: number): Disposer {
    const timer: Timer = { id: this.nextId++, at: this.current + Math.max(0, ms), every, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }
}
