/**
 * The reliability suite: each case file in test/reliability/cases/ exports `reliabilityCase`, run at two scales:
 * 'fast' inside `npm test` (a few seconds each) and 'soak' from `npm run soak` (minutes, bounded, stops by
 * itself). Every case runs the built daemon as a child process and checks invariants from outside.
 */
import { ptyUnavailableReason } from '../support/pty.js';

export type Scale = 'fast' | 'soak';

export interface CaseResult {
  /** Invariants that held / broke, each with a one-line reason a person can read. */
  checks: { ok: boolean; what: string }[];
  /** Faults injected (unplugs, resets, garbage bytes, SIGHUPs, kills...) and survived. */
  faults: number;
  /** Device lines accounting, where the case has it (else 0): unaccounted must be 0. */
  linesSent: number;
  linesDelivered: number;
  linesDropped: number;
  /** File descriptors of the daemon after minus before (where measured, else 0). */
  fdsLeaked: number;
  /** Daemon RSS growth over the case in bytes (where measured, else 0). */
  rssGrowth: number;
  notes: string[];
}

export interface ReliabilityCase {
  /** `1 unplug/replug` ... `10 access`: the number is the issue's. */
  name: string;
  /** The case plays the device on a pty: where none can be made here, the runners skip it and say why. */
  needsPty?: boolean;
  run(scale: Scale, dir: string): Promise<CaseResult>;
}

export function emptyResult(): CaseResult {
  return { checks: [], faults: 0, linesSent: 0, linesDelivered: 0, linesDropped: 0, fdsLeaked: 0, rssGrowth: 0, notes: [] };
}

export function unaccounted(r: CaseResult): number {
  return r.linesSent - r.linesDelivered - r.linesDropped;
}

/** Why `c` cannot run on this machine, or undefined. */
export function skipReason(c: ReliabilityCase): string | undefined {
  return c.needsPty ? ptyUnavailableReason() : undefined;
}
