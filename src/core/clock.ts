/**
 * The one source of time for everything in the gateway. No module reads the wall clock or calls the
 * global timers directly, so tests drive time exactly with a FakeClock (test/support/fake-clock.ts).
 */
export type Disposer = () => void;

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall time). */
  now(): number;
  /** Runs fn once after ms; the returned disposer cancels it (calling it late is harmless). */
  setTimeout(fn: () => void, ms: number): Disposer;
  /** Runs fn every ms; the returned disposer stops it. */
  setInterval(fn: () => void, ms: number): Disposer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
  setInterval(fn, ms) {
    const handle = setInterval(fn, ms);
    return () => clearInterval(handle);
  },
};
