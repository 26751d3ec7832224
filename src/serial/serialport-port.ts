import { readSync } from 'node:fs';
import { SerialPort } from 'serialport';
import type { DevicePort, DevicePortError, DevicePortHandlers, SerialSettings } from './device-port.js';

/**
 * DevicePort over the serialport package and its native binding. `lock: true` takes an exclusive flock on the
 * tty, so a second gateway (or a stray terminal program) cannot share the port, and the kernel drops the lock
 * when the process dies, so a crash never leaves the port locked.
 */
export function openSerialPort(
  path: string,
  settings: SerialSettings,
  handlers: DevicePortHandlers,
  onOpen: { dtr: boolean; rts: boolean } = { dtr: true, rts: true },
): DevicePort {
  // serialport's set() fills every line not named with its default (DTR and RTS asserted, no break), so the
  // levels are tracked here and always sent whole.
  const levels = { dtr: onOpen.dtr, rts: onOpen.rts, brk: false };
  const port = new SerialPort({
    path,
    baudRate: settings.baudRate,
    dataBits: settings.dataBits,
    parity: settings.parity,
    stopBits: settings.stopBits,
    rtscts: settings.flowControl === 'rtscts',
    xon: settings.flowControl === 'xonxoff',
    xoff: settings.flowControl === 'xonxoff',
    autoOpen: false,
    lock: true,
    // Linux raises DTR and RTS when a tty is opened and drops them when it is closed (HUPCL). With
    // dtrOnOpen: false the port is closed without dropping DTR, so the next open finds it high already and a
    // board that resets on a DTR edge is not reset by a reconnect.
    hupcl: onOpen.dtr,
  });
  let opened = false;
  let closed = false;
  let pending: ((err: Error | null) => void) | null = null;
  let hungUp: DevicePortError | null = null;

  const finish = (err: DevicePortError | null): void => {
    if (closed) return;
    closed = true;
    const cb = pending;
    pending = null;
    if (cb) cb(Object.assign(new Error('write canceled: port closed'), { canceled: true }));
    if (opened) handlers.onClose(err);
  };

  port.on('close', (err: DevicePortError | null) => {
    finish(err ? Object.assign(err, { disconnected: err.disconnected ?? true }) : hungUp);
  });
  // serialport reports read/write faults as 'error' and closes on disconnect itself; an error without a
  // close still means the port is unusable, so it is closed and reported as gone.
  port.on('error', (err: DevicePortError) => {
    if (!opened || closed) return;
    if (port.isOpen) port.close(() => finish(Object.assign(err, { disconnected: true })));
    else finish(Object.assign(err, { disconnected: true }));
  });

  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        port.open((err) => {
          if (err) {
            closed = true;
            reject(withCode(err));
          } else {
            opened = true;
            const hangUp = (why: string): void => {
              if (closed || hungUp) return;
              hungUp = Object.assign(new Error(why), { disconnected: true });
              if (port.isOpen) port.close(() => finish(hungUp));
              else finish(hungUp);
            };
            // Armed in this order: each arming of bindings-cpp's poller replaces the events it watches until
            // one fires, and the reader must be the one left watching.
            watchHangUp(port, () => hangUp('hung up'));
            if (!readDirectly(port, handlers, () => closed, hangUp)) port.on('data', (chunk: Buffer) => handlers.onData(chunk));
            if (onOpen.dtr && onOpen.rts) resolve();
            else port.set({ ...levels }, () => resolve());
          }
        });
      }),
    write(data, done) {
      if (closed) {
        done(Object.assign(new Error('port closed'), { canceled: true }));
        return;
      }
      if (pending) throw new Error('DevicePort: one write at a time');
      pending = done;
      port.write(data, (err) => {
        if (err) {
          // A write fails like this when the device vanished mid-write (serialport then emits 'error' and
          // 'close'). Whatever part reached the wire, the line is reported canceled so it is sent again,
          // whole, once the device is back, and the port is treated as gone.
          if (port.isOpen) port.close(() => finish(Object.assign(err, { disconnected: true })));
          else finish(Object.assign(err, { disconnected: true }));
          return;
        }
        const cb = pending;
        pending = null;
        cb?.(null);
      });
    },
    close() {
      if (closed) return;
      if (port.isOpen) port.close(() => finish(null));
      else finish(null);
    },
    set(signals) {
      if (closed || !port.isOpen) return Promise.reject(new Error('port not open'));
      const next = { ...levels, ...signals };
      return new Promise<void>((resolve, reject) =>
        port.set(next, (err) => {
          if (err) return reject(err);
          Object.assign(levels, next);
          resolve();
        }),
      );
    },
  };
}

/**
 * bindings-cpp#162: a hang-up that lands between two reads makes serialport retry a 0-byte read forever (a busy
 * thread-pool thread and a promise chain that grows without end: 2 GB of RSS in ten minutes, seen in reliability
 * case 1) and never emit 'close'; the path may exist again by then (the device came back), so no presence check
 * notices. A hung-up tty stays hung up, so watching its fd for the hang-up ourselves catches it wherever it lands.
 * There is no public hook: this reaches into bindings-cpp's poller, which closing the port stops (a `canceled`
 * event, ignored).
 */
function watchHangUp(port: SerialPort, onHangUp: () => void): void {
  type Poller = { once(event: 'disconnect', cb: (err: DevicePortError | null) => void): unknown };
  const poller = (port as unknown as { port?: { poller?: Poller } }).port?.poller;
  poller?.once('disconnect', (err) => {
    if (!err?.canceled) onHangUp();
  });
}

interface BindingInternals {
  fd?: number;
  poller?: { once(event: 'readable', cb: (err: DevicePortError | null) => void): unknown };
}

const READ_BUFFER_BYTES = 64 * 1024;
const READS_PER_WAKEUP = 16;
/**
 * What one read of a tty returns at most when its line discipline's buffer (N_TTY, 4 KiB) was full. A shorter
 * read emptied the tty, so reading again would only fail with EAGAIN, and that failure is a thrown exception
 * costing more than the read itself (measured 14 us median, 70 us p99, against 4 us for the read): on a lab
 * box's line-at-a-time traffic it would be paid once per line, on the line's way to the clients.
 */
const FULL_TTY_READ = 4095;

/**
 * Reads the device without serialport's stream: when bindings-cpp's poller says the fd is readable, read it
 * directly while reads come back full (at most 16 reads into one 64 KiB buffer) and hand the bytes over in one
 * call.
 * serialport's own path does an `fs.read` on the thread pool per chunk (a pty gives at most ~4 KB), which
 * profiles of `npm run bench` showed as the gateway's main cost: the main thread sat idle waiting for
 * thread-pool round trips. This path measured 3-4x the throughput at a third of the CPU per MB, and it sees a
 * hang-up (EIO, or a read of 0) wherever it lands (bindings-cpp#162). Falls back to serialport's 'data' events
 * (returns false) if the binding's internals are not as expected.
 */
function readDirectly(port: SerialPort, handlers: DevicePortHandlers, isClosed: () => boolean, hangUp: (why: string) => void): boolean {
  const binding = (port as unknown as { port?: BindingInternals }).port;
  const fd = binding?.fd;
  const poller = binding?.poller;
  if (typeof fd !== 'number' || !poller || typeof poller.once !== 'function') return false;
  // The chunk handed to onData is only valid during the call (the DevicePort contract): the ring copies it.
  const buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  const onReadable = (err: DevicePortError | null): void => {
    if (isClosed()) return;
    if (err) {
      if (!err.canceled) hangUp(err.message);
      return;
    }
    let got = 0;
    let gone = '';
    try {
      for (let i = 0; i < READS_PER_WAKEUP && got < READ_BUFFER_BYTES; i++) {
        const n = readSync(fd, buf, got, READ_BUFFER_BYTES - got, null);
        if (n === 0) {
          gone = 'end of file';
          break;
        }
        got += n;
        if (n < FULL_TTY_READ) break;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') gone = (e as Error).message;
    }
    if (got > 0) handlers.onData(buf.subarray(0, got));
    if (gone) hangUp(gone);
    else if (!isClosed()) poller.once('readable', onReadable);
  };
  poller.once('readable', onReadable);
  return true;
}

/** serialport's open errors carry the errno only in the message ("Error: No such file or directory, cannot open"). */
function withCode(err: Error): DevicePortError {
  const e = err as DevicePortError;
  if (!e.code) {
    const m = /(ENOENT|EACCES|EBUSY|EPERM|EINVAL|ENXIO|ENODEV|EIO)\b/.exec(e.message);
    if (m) e.code = m[1];
    else if (/No such file/i.test(e.message)) e.code = 'ENOENT';
    else if (/Permission denied/i.test(e.message)) e.code = 'EACCES';
    else if (/Cannot lock port|Resource temporarily unavailable/i.test(e.message)) e.code = 'EBUSY';
    else if (/No such device/i.test(e.message)) e.code = 'ENODEV';
  }
  return e;
}
