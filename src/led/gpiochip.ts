/**
 * GPIO character device backend through libgpiod's `gpioset` (Debian package gpiod): no compiler and no
 * native module on the Pi. The chip is found by label (chips.ts), the line offset is the BCM number.
 *
 * A line requested through /dev/gpiochipN stays driven only while the requesting process holds it, so
 * each LED keeps one long-running gpioset child that holds its line at the current value. A change of
 * value kills that child and, once it has exited (the kernel refuses a second request for the line while
 * the first is open), starts a new one with the new value; values asked for meanwhile are coalesced, so
 * a fast pattern costs at most one child per edge. On release the holder is killed; if it was holding the
 * LED lit, one last gpioset sets the line to 0 and exits, so a stopped gateway leaves its LEDs dark.
 *
 * Two dialects, told apart by `gpioset --version` (`gpioset (libgpiod) v1.6.3` / `... v2.1.3`):
 * - v1.6 (Debian 12): `gpioset [-l] --mode=signal CHIP OFFSET=VALUE` holds until SIGTERM; without
 *   --mode it sets and exits. The chip may be a path starting with /dev/. No consumer label option.
 * - v2.x (Debian 13): `gpioset -c CHIP [-C CONSUMER] [-l] OFFSET=VALUE` holds by default until killed;
 *   `-t 0` sets and exits. CHIP may be a number, name or path. Its interactive mode (`-i`) would avoid
 *   the respawns but exists only when built with libedit and loops forever on end of input, so it is
 *   not used.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Log } from '../core/log.js';
import { type LedBackend, type LedRoots, LedUnavailable, errText } from './backend.js';
import { PI_CHIP_LABELS, findOnPath, listCdevChips, nameChips } from './chips.js';

export type GpiosetDialect = 'v1' | 'v2';

export interface GpiosetLineSpec {
  gpioset: string;
  dialect: GpiosetDialect;
  chipPath: string;
  offset: number;
  activeLow: boolean;
  consumer: string;
}

/** Arguments for one gpioset run: `hold` keeps the line until killed, otherwise set and exit. */
export function gpiosetArgs(spec: GpiosetLineSpec, value: boolean, hold: boolean): string[] {
  const assign = `${spec.offset}=${value ? 1 : 0}`;
  const low = spec.activeLow ? ['--active-low'] : [];
  if (spec.dialect === 'v1') return [...(hold ? ['--mode=signal'] : []), ...low, spec.chipPath, assign];
  return ['--chip', spec.chipPath, '--consumer', spec.consumer, ...low, ...(hold ? [] : ['--toggle', '0']), assign];
}

/** `gpioset (libgpiod) v1.6.3` -> v1; v2.x -> v2. */
export function parseGpiosetVersion(text: string): { dialect: GpiosetDialect; version: string } | null {
  const m = /\(libgpiod\)\s+v(\d+)\.(\d+)(\.\d+)?/.exec(text);
  if (m === null) return null;
  const version = `${m[1]}.${m[2]}${m[3] ?? ''}`;
  if (m[1] === '1') return { dialect: 'v1', version };
  if (m[1] === '2') return { dialect: 'v2', version };
  return null;
}

export function openGpiochip(
  ledName: string,
  pin: number,
  activeLow: boolean,
  consumer: string,
  roots: LedRoots,
  log: Log,
  env: Readonly<Record<string, string | undefined>>,
): LedBackend {
  const gpioset = findOnPath('gpioset', env);
  if (gpioset === null) throw new LedUnavailable('gpioset not found on PATH (apt install gpiod)');
  const probe = spawnSync(gpioset, ['--version'], { encoding: 'utf8', timeout: 3000, env: { ...env } });
  const parsed = parseGpiosetVersion(`${probe.stdout ?? ''}`);
  if (parsed === null) {
    const said = `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim().split('\n')[0] ?? '';
    throw new LedUnavailable(`${gpioset} --version: unknown libgpiod version (${said || errText(probe.error)})`);
  }
  const { chips, source } = listCdevChips(roots.sysRoot, findOnPath('gpiodetect', env));
  const chip = chips.find((c) => PI_CHIP_LABELS.includes(c.label));
  if (chip === undefined) {
    throw new LedUnavailable(`no Raspberry Pi GPIO chip (${PI_CHIP_LABELS.join(', ')}) from ${source}; found: ${nameChips(chips)}`);
  }
  if (chip.lines !== null && pin >= chip.lines) throw new LedUnavailable(`BCM ${pin} is beyond ${chip.label}'s ${chip.lines} lines`);
  const chipPath = join(roots.devRoot, chip.name);
  if (!existsSync(chipPath)) throw new LedUnavailable(`no ${chipPath}`);
  try {
    accessSync(chipPath, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new LedUnavailable(`${chipPath} not accessible: ${errText(err)} (the service user needs the gpio group)`);
  }
  const spec: GpiosetLineSpec = { gpioset, dialect: parsed.dialect, chipPath, offset: pin, activeLow, consumer };
  return new GpiosetLine(ledName, spec, `gpiochip ${chip.label} line ${pin} (${chip.name}, gpioset v${parsed.version})`, log, env);
}

const STDERR_KEEP = 400;

/** One LED line held by a gpioset child. Never throws; a child that dies on its own disables the LED. */
class GpiosetLine implements LedBackend {
  readonly name = 'gpiochip' as const;
  private holder: ChildProcess | null = null;
  private holderValue = false;
  private holderUp = false;
  private killing = false;
  private finalOff: ChildProcess | null = null;
  private desired = false;
  private broken = false;
  private released = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly ledName: string,
    private readonly spec: GpiosetLineSpec,
    readonly describe: string,
    private readonly log: Log,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  set(on: boolean): void {
    if (this.released || this.broken) return;
    this.desired = on;
    this.pump();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.holder !== null && !this.killing) {
      this.killing = true;
      this.holder.kill('SIGTERM');
    }
    this.notify();
  }

  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private isSettled(): boolean {
    if (this.finalOff !== null) return false;
    if (this.holder === null) return true;
    return this.holderUp && !this.killing && this.holderValue === this.desired;
  }

  private notify(): void {
    if (!this.isSettled()) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private pump(): void {
    if (this.holder !== null) {
      if (this.holderValue !== this.desired && !this.killing) {
        this.killing = true;
        this.holder.kill('SIGTERM');
      }
      return;
    }
    if (this.released || this.broken) return;
    this.startHolder(this.desired);
  }

  private run(value: boolean, hold: boolean, onEnd: (failure: string | null) => void): ChildProcess {
    const child = spawn(this.spec.gpioset, gpiosetArgs(this.spec, value, hold), {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...this.env },
    });
    let stderr = '';
    let ended = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    const end = (failure: string | null): void => {
      if (ended) return;
      ended = true;
      onEnd(failure);
    };
    child.on('error', (err) => end(`could not run ${this.spec.gpioset}: ${errText(err)}`));
    child.on('close', (code, signal) => {
      const said = stderr.trim().replace(/\s*\n\s*/g, '; ');
      end(code === 0 ? null : `gpioset exited with ${code ?? signal}${said ? `: ${said}` : ''}`);
    });
    return child;
  }

  private startHolder(value: boolean): void {
    this.holderValue = value;
    this.holderUp = false;
    this.killing = false;
    const child = this.run(value, true, (failure) => this.holderEnded(child, failure));
    this.holder = child;
    child.on('spawn', () => {
      if (this.holder !== child) return;
      this.holderUp = true;
      this.notify();
    });
  }

  private holderEnded(child: ChildProcess, failure: string | null): void {
    if (this.holder !== child) return;
    this.holder = null;
    const expected = this.killing;
    this.killing = false;
    if (!expected) {
      this.broken = true;
      this.log.warn(`led ${this.ledName}: ${failure ?? 'gpioset exited'}; LED off until restart (${this.describe})`);
    } else if (this.released) {
      if (this.holderValue) this.startFinalOff();
    } else {
      this.pump();
    }
    this.notify();
  }

  private startFinalOff(): void {
    const child = this.run(false, false, (failure) => {
      if (failure !== null) this.log.debug(`led ${this.ledName}: turning off on release: ${failure}`);
      this.finalOff = null;
      this.notify();
    });
    this.finalOff = child;
  }
}
