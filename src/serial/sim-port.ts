/**
 * A DevicePort over an in-process LabBox: the gateway's demo mode and a device for tests that need no pty.
 *
 * It keeps the DevicePort contract (src/serial/device-port.ts) the way a real port would, so code that works
 * against it has no easy time it would not have on hardware:
 * - Everything the host sees happens later, never inside the call that caused it: open resolves, write
 *   callbacks run and output arrives from setImmediate (or the clock, when paced).
 * - Output comes in chunks of at most chunkBytes (4 KiB), one per event-loop turn, so a `stream 1000000`
 *   neither starves the loop nor arrives as one buffer; the chunk's memory is reused after onData returns.
 * - A second write before the first callback ran throws (a programmer mistake, as in the fake port).
 * - close() stops output at once; then the pending write's callback gets `canceled: true` and onClose(null)
 *   runs, exactly once per successful open. unplug() is the device leaving: onClose(err) with
 *   `disconnected: true`, and open() fails with ENOENT until replug().
 * - Like a UART with hardware flow control, a write's callback is held while more than HOLD_WRITES_ABOVE
 *   answers wait to be sent, so a host piping commands faster than the box answers is slowed, not dropped.
 */
import type { Clock, Disposer } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { DevicePort, DevicePortError, DevicePortHandlers, SerialSettings } from './device-port.js';
import { LabBox, type LabBoxOptions } from './labbox.js';

export interface SimulatedLabBoxOptions extends LabBoxOptions {
  /** Largest onData chunk in bytes. Default 4096. */
  chunkBytes?: number;
  /** Pace output like a serial line (115200 baud 8N1 is 11520 bytes/s); 0, the default, means unpaced. */
  bytesPerSecond?: number;
  /** Send a banner line naming the line settings when opened. Default false: the course's box has none. */
  banner?: boolean;
  /** The settings the host opened the line with, for the banner. */
  settings?: SerialSettings;
}

export interface SimulatedLabBox extends DevicePort {
  readonly isOpen: boolean;
  /** The box behind the current open (a fresh one, power-cycled, per open), for its counters. */
  readonly box: LabBox | undefined;
  /** The device goes away: onClose(err) with `disconnected: true`; open() fails with ENOENT until replug(). */
  unplug(): void;
  replug(): void;
  /** Times the box rebooted on its reset line (see set). */
  readonly reboots: number;
}

export const SIM_DEFAULT_CHUNK_BYTES = 4096;
/** Answers waiting in the box above which a write's callback is held (simulated flow control). */
const HOLD_WRITES_ABOVE = 64;

type PortState = 'CLOSED' | 'OPENING' | 'OPEN';

interface PendingWrite {
  data: Buffer;
  done: (err: Error | null) => void;
  /** Handed to the box; only flow control holds the callback. */
  received: boolean;
}

function portError(message: string, props: Partial<DevicePortError>): DevicePortError {
  return Object.assign(new Error(message), props);
}

function checkOptional(option: string, value: unknown, min: number): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < min)) {
    throw new TypeError(`simulated lab box option ${option} must be a number >= ${min}, got ${String(value)}`);
  }
}

function bannerText(settings: SerialSettings | undefined): string {
  if (settings === undefined) return 'LABBOX ready';
  const parity = settings.parity.charAt(0).toUpperCase();
  return `LABBOX ready ${settings.baudRate} ${settings.dataBits}${parity}${settings.stopBits} flow=${settings.flowControl}`;
}

export function createSimulatedLabBox(
  opts: SimulatedLabBoxOptions,
  handlers: DevicePortHandlers,
  clock: Clock = systemClock,
): SimulatedLabBox {
  // Fail at construction, not at the first open, on bad box options.
  void new LabBox(opts);
  checkOptional('chunkBytes', opts.chunkBytes, 1);
  checkOptional('bytesPerSecond', opts.bytesPerSecond, 0);
  if (opts.chunkBytes !== undefined && !Number.isInteger(opts.chunkBytes)) {
    throw new TypeError(`simulated lab box option chunkBytes must be an integer, got ${opts.chunkBytes}`);
  }
  const chunk = Buffer.alloc(opts.chunkBytes ?? SIM_DEFAULT_CHUNK_BYTES);
  const bytesPerSecond = opts.bytesPerSecond ?? 0;

  let state: PortState = 'CLOSED';
  let plugged = true;
  let box: LabBox | undefined;
  let pending: PendingWrite | undefined;
  /** Bumped by every open and close, so callbacks scheduled for an earlier session do nothing. */
  let session = 0;
  let cancelOpening: ((err: Error) => void) | undefined;
  let stopPump: Disposer | undefined;
  // An Arduino-style board: DTR and RTS are asserted by the open; it reboots when one of them becomes
  // asserted again (the edge its reset capacitor passes) or a break ends, and says so with its banner.
  const lines = { dtr: true, rts: true, brk: false };
  let reboots = 0;

  function later(fn: () => void, ms = 0): Disposer {
    if (ms > 0) return clock.setTimeout(fn, ms);
    const handle = setImmediate(fn);
    return () => clearImmediate(handle);
  }

  function schedulePump(delayMs = 0): void {
    if (stopPump !== undefined || state !== 'OPEN' || box === undefined || !box.hasOutput) return;
    const mine = session;
    stopPump = later(() => {
      stopPump = undefined;
      if (mine === session) pumpOnce();
    }, delayMs);
  }

  function pumpOnce(): void {
    if (box === undefined) return;
    const n = box.readOutput(chunk);
    releaseHeldWrite();
    if (n > 0) handlers.onData(chunk.subarray(0, n));
    // The handler may have closed the port; schedulePump checks.
    schedulePump(bytesPerSecond > 0 ? (n * 1000) / bytesPerSecond : 0);
  }

  function releaseHeldWrite(): void {
    if (pending === undefined || !pending.received || box === undefined) return;
    if (box.pendingReplies > HOLD_WRITES_ABOVE) return;
    const { done } = pending;
    pending = undefined;
    done(null);
  }

  /** Ends the session: output stops now, callbacks run on the next turn (never inside the caller). */
  function endSession(closeErr: DevicePortError | null, writeErr: DevicePortError): void {
    state = 'CLOSED';
    session++;
    box = undefined;
    stopPump?.();
    stopPump = undefined;
    const write = pending;
    pending = undefined;
    later(() => {
      write?.done(writeErr);
      handlers.onClose(closeErr);
    });
  }

  const port: SimulatedLabBox = {
    get isOpen() {
      return state === 'OPEN';
    },
    get box() {
      return box;
    },
    get reboots() {
      return reboots;
    },

    set(signals) {
      if (state !== 'OPEN') return Promise.reject(portError('simulated lab box: port is not open', { code: 'ENOTOPEN' }));
      const mine = session;
      return new Promise<void>((resolve) =>
        later(() => {
          const reboot = (signals.dtr === true && !lines.dtr) || (signals.rts === true && !lines.rts) || (signals.brk === false && lines.brk);
          Object.assign(lines, signals);
          if (reboot && mine === session && state === 'OPEN') {
            reboots++;
            // Power-on state: what it was saying is gone, and it prints its banner.
            box = new LabBox(opts);
            box.announce(bannerText(opts.settings));
            releaseHeldWrite();
            schedulePump();
          }
          resolve();
        }),
      );
    },

    open() {
      if (state !== 'CLOSED') {
        return Promise.reject(portError('simulated lab box: already open', { code: 'EBUSY' }));
      }
      if (!plugged) {
        return Promise.reject(portError('simulated lab box: unplugged (no such device)', { code: 'ENOENT' }));
      }
      state = 'OPENING';
      const mine = ++session;
      return new Promise<void>((resolve, reject) => {
        const stop = later(() => {
          cancelOpening = undefined;
          if (mine !== session) return;
          state = 'OPEN';
          Object.assign(lines, { dtr: true, rts: true, brk: false });
          box = new LabBox(opts);
          if (opts.banner === true) box.announce(bannerText(opts.settings));
          resolve();
          schedulePump();
        });
        cancelOpening = (err) => {
          stop();
          cancelOpening = undefined;
          reject(err);
        };
      });
    },

    write(data, done) {
      if (pending !== undefined) {
        throw new Error('DevicePort.write: a write is already pending; wait for its callback (one write at a time)');
      }
      if (state !== 'OPEN') {
        later(() => done(portError('simulated lab box: port is not open', { code: 'ENOTOPEN' })));
        return;
      }
      const write: PendingWrite = { data, done, received: false };
      pending = write;
      const mine = session;
      later(() => {
        if (mine !== session || box === undefined) return;
        write.received = true;
        box.receive(write.data);
        releaseHeldWrite();
        schedulePump();
      });
    },

    close() {
      if (state === 'CLOSED') return;
      if (state === 'OPENING') {
        state = 'CLOSED';
        session++;
        cancelOpening?.(portError('simulated lab box: closed while opening', { canceled: true }));
        return;
      }
      endSession(null, portError('simulated lab box: write canceled by close', { canceled: true }));
    },

    unplug() {
      plugged = false;
      if (state === 'OPENING') {
        state = 'CLOSED';
        session++;
        cancelOpening?.(portError('simulated lab box: unplugged (no such device)', { code: 'ENOENT' }));
      } else if (state === 'OPEN') {
        endSession(
          portError('simulated lab box: unplugged', { code: 'ENXIO', disconnected: true }),
          portError('simulated lab box: unplugged during write', { code: 'ENXIO', disconnected: true }),
        );
      }
    },

    replug() {
      plugged = true;
    },
  };
  return port;
}
