/**
 * The contract every device connection implements: the serialport adapter, the in-process lab-box
 * simulator and test fakes. It carries bytes and lifecycle only; framing happens in the line ring.
 *
 * - `open()` resolves once bytes can flow, or rejects with an Error whose `code` (ENOENT, EACCES, EBUSY, ...)
 *   says why; a rejected open leaves nothing to close.
 * - One write at a time: call `write` again only after the previous callback ran. The callback gets null
 *   once the bytes were handed to the OS (or the simulator), or an Error.
 * - `close()` cancels a pending write (its callback gets an Error with `canceled: true`) and then fires
 *   `onClose(null)`. A device that goes away on its own (USB unplugged, pty closed) fires `onClose(err)` with
 *   `err.disconnected === true`. `onClose` fires exactly once per successful open.
 * - Handlers never throw into the port; the port never throws out of a handler.
 */
export interface DevicePort {
  open(): Promise<void>;
  write(data: Buffer, done: (err: Error | null) => void): void;
  close(): void;
  /**
   * Optional: drives the modem control lines (DTR, RTS) and the break condition; the lines not named keep
   * their level. Resolves once the driver took it; rejects when the port is not open or the driver refused.
   * The instructor's reset pulses one of them (src/control/reset.ts).
   */
  set?(signals: ControlSignals): Promise<void>;
}

/** true = asserted (DTR/RTS: the pin of a TTL adapter goes low); brk: true holds the line in a break. */
export interface ControlSignals {
  dtr?: boolean;
  rts?: boolean;
  brk?: boolean;
}

export interface DevicePortHandlers {
  /** A chunk of bytes from the device. The port may reuse the chunk's memory after this returns. */
  onData(chunk: Buffer): void;
  onClose(err: DevicePortError | null): void;
}

export interface DevicePortError extends Error {
  code?: string;
  disconnected?: boolean;
  canceled?: boolean;
}

/** Settings the serial line needs; the simulator ignores them but reports them in its banner. */
export interface SerialSettings {
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
  flowControl: 'none' | 'rtscts' | 'xonxoff';
}
