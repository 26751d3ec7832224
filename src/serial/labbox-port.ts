/**
 * Runs a LabBox on a real serial port (`serial-gateway labbox --port PATH`): plug a USB serial adapter into
 * a second machine, or the other end of a pty pair, and the gateway has a lab box to talk to.
 *
 * Output respects the port's write backpressure: when serialport's write() returns false we stop pulling
 * from the box until 'drain', so `stream 1000000` holds at most about one high-water mark (64 KiB) plus one
 * chunk in memory, however slowly the line drains.
 */
import { SerialPort } from 'serialport';
import { LabBox, type LabBoxOptions } from './labbox.js';

export interface LabBoxPortOptions extends LabBoxOptions {
  /** Default 115200. */
  baudRate?: number;
  /** flock the port so nothing else opens it by mistake. Default true. */
  lock?: boolean;
  /** Port faults while running (not canceled writes at close), for the CLI to log. */
  onError?: (err: Error) => void;
}

export interface LabBoxOnPort {
  /**
   * Settles when the port closed: null after close(); after an unplug, serialport's error with
   * `disconnected: true` (set here when serialport's first report lacks it).
   */
  readonly closed: Promise<(Error & { disconnected?: boolean }) | null>;
  /** Output handed to serialport and not yet written: bounded by its high-water mark plus one chunk. */
  readonly queuedBytes: number;
  readonly box: LabBox;
  /** The open port, for diagnostics and tests; do not write to it. */
  readonly port: SerialPort;
  close(): Promise<void>;
}

/** Bytes pulled from the box per port.write. */
const WRITE_CHUNK_BYTES = 16 * 1024;

export async function runLabBoxOnPort(path: string, opts: LabBoxPortOptions): Promise<LabBoxOnPort> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new TypeError(`runLabBoxOnPort needs a port path, got ${JSON.stringify(path)}`);
  }
  const box = new LabBox(opts);
  const port = await new Promise<SerialPort>((resolve, reject) => {
    const p: SerialPort = new SerialPort(
      { path, baudRate: opts.baudRate ?? 115200, lock: opts.lock ?? true },
      (err) => (err ? reject(err) : resolve(p)),
    );
  });

  let waitingForDrain = false;
  let stopped = false;
  let closingByUs = false;
  let lastError: Error | undefined;
  let resolveClosed: (err: (Error & { disconnected?: boolean }) | null) => void = () => undefined;
  const closed = new Promise<(Error & { disconnected?: boolean }) | null>((resolve) => {
    resolveClosed = resolve;
  });

  function pump(): void {
    while (!stopped && !waitingForDrain && box.hasOutput) {
      // A fresh buffer per write: serialport holds on to it until the bytes are written.
      const chunk = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
      const n = box.readOutput(chunk);
      if (!port.write(chunk.subarray(0, n))) {
        waitingForDrain = true;
        port.once('drain', portOnDrain);
      }
    }
  }

  function portOnDrain(): void {
    waitingForDrain = false;
    pump();
  }

  port.on('data', (data: Buffer) => {
    box.receive(data);
    pump();
  });
  port.on('error', (err: Error & { canceled?: boolean }) => {
    if (err.canceled === true) return;
    lastError = err;
    opts.onError?.(err);
  });
  // On an unplug with a write pending serialport emits 'error', then 'close' with no argument, then 'close'
  // with the DisconnectedError (see test/serial/pty.test.ts): the first close counts, with the error seen.
  // A close we did not ask for means the device went away, whatever serialport's first report says.
  port.on('close', (err?: Error | null) => {
    stopped = true;
    if (closingByUs) return resolveClosed(null);
    const why: Error & { disconnected?: boolean } = err ?? lastError ?? new Error(`serial port ${path} closed`);
    why.disconnected = true;
    resolveClosed(why);
  });

  return {
    closed,
    box,
    port,
    get queuedBytes() {
      return port.writableLength;
    },
    async close() {
      stopped = true;
      closingByUs = true;
      if (port.isOpen) {
        await new Promise<void>((resolve) => port.close(() => resolve()));
        // serialport emits no 'close' when closing fails; the port is unusable either way.
        resolveClosed(null);
      }
      await closed;
    },
  };
}
