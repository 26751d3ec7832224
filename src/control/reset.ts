/**
 * The instructor's reset: one pulse on the line the config names (serial.reset). DTR and RTS go away from
 * the level they were left at on open (dtrOnOpen/rtsOnOpen) for `ms` and back: on an Arduino-style board,
 * whose DTR reaches RESET through a 100 nF capacitor, the edge back to asserted is the reset (as avrdude
 * does it). A break holds the line low for `ms`. A GPIO line (the box's reset pin or a relay) is driven
 * active for `ms` through the LED backends, opened for the pulse and released after it.
 */
import type { ResetConfig, SerialConfig, LedsConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { openLed } from '../led/open.js';
import type { ControlSignals } from '../serial/device-port.js';

export interface ResetHost {
  clock: Clock;
  log: Log;
  /** The serial link's modem lines (rejects with the reason when the device is away). */
  signal(signals: ControlSignals): Promise<void>;
  /** Where sysfs and /dev are (leds.sysRoot, leds.devRoot). */
  roots: Pick<LedsConfig, 'sysRoot' | 'devRoot'>;
  env?: NodeJS.ProcessEnv;
}

/** What a reset does, for the log and the answer: `DTR pulse of 100 ms`. */
export function describeReset(r: ResetConfig): string {
  switch (r.method) {
    case 'none':
      return 'none';
    case 'dtr':
      return `DTR pulse of ${r.ms} ms`;
    case 'rts':
      return `RTS pulse of ${r.ms} ms`;
    case 'break':
      return `break of ${r.ms} ms`;
    case 'gpio':
      return `GPIO BCM ${r.pin} active ${r.activeLow ? 'low' : 'high'} for ${r.ms} ms`;
  }
}

/** Resolves once the pulse is over; rejects with a sentence a person can act on. */
export async function pulseReset(serial: SerialConfig, host: ResetHost): Promise<string> {
  const r = serial.reset;
  const wait = (): Promise<void> => new Promise((resolve) => host.clock.setTimeout(resolve, r.ms));
  switch (r.method) {
    case 'none':
      throw new Error('no reset is configured (serial.reset.method is none): set it to dtr, rts, break or gpio');
    case 'dtr':
    case 'rts': {
      const rest = r.method === 'dtr' ? serial.dtrOnOpen : serial.rtsOnOpen;
      await host.signal({ [r.method]: !rest });
      await wait();
      await host.signal({ [r.method]: rest });
      break;
    }
    case 'break':
      await host.signal({ brk: true });
      await wait();
      await host.signal({ brk: false });
      break;
    case 'gpio': {
      if (r.pin < 0) throw new Error('serial.reset.method is gpio but serial.reset.pin is -1: name the BCM line wired to the reset');
      const opened = openLed('reset', { pin: r.pin, activeLow: r.activeLow, backend: r.backend, label: r.label }, host.roots, host.log, { ...(host.env ? { env: host.env } : {}), clock: host.clock }, { quiet: true });
      if (opened.backend.name === 'none') throw new Error(`the reset line (BCM ${r.pin}) cannot be driven: tried ${opened.why.join('; ')}`);
      try {
        opened.backend.set(true);
        await wait();
        opened.backend.set(false);
      } finally {
        opened.backend.release();
        await opened.backend.settled?.();
      }
      return `${describeReset(r)} (${opened.backend.describe})`;
    }
  }
  return describeReset(r);
}
