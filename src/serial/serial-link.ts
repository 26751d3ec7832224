import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { ControlSignals, DevicePort, DevicePortError, DevicePortHandlers } from './device-port.js';

/**
 * SerialLink: keeps the device connected. A missing or unplugged device is normal: the link waits and retries
 * with backoff (reconnectMinMs doubling to reconnectMaxMs) while clients stay connected. Each state change is
 * logged once, not once per retry.
 *
 * States:
 *   OPENING  an open attempt is under way
 *   OPEN     bytes flow
 *   WAITING  the device is absent (not plugged in, unplugged, not found by USB identity): retrying
 *   FAILED   the device is there but cannot be used until a person acts (permission denied, port locked by
 *            another program, settings refused): still retrying, at the slowest pace
 *   STOPPED  stop() was called
 */
export type LinkState = 'OPENING' | 'OPEN' | 'WAITING' | 'FAILED' | 'STOPPED';

export interface LinkTarget {
  /** What to show people: the path, `sim:labbox`, or `usb 1a86:7523`. */
  describe: string;
  /** Finds the device path now (USB matching lists ports on every attempt); null = not present. */
  resolve(): Promise<string | null>;
  /** Creates a port for a resolved path. */
  create(path: string, handlers: DevicePortHandlers): DevicePort;
  /**
   * Whether the opened path still exists. Checked once a second while open, because serialport can miss a
   * hang-up that lands between two reads (bindings-cpp#162) and would then wait forever on a dead fd.
   */
  present?(path: string): boolean;
}

export interface SerialLinkOptions {
  target: LinkTarget;
  clock: Clock;
  log: Log;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  onData(chunk: Buffer): void;
  onState(state: LinkState, detail: string): void;
}

const NEEDS_A_PERSON = new Set(['EACCES', 'EPERM', 'EBUSY', 'EINVAL']);

export class SerialLink {
  private port: DevicePort | null = null;
  private stateNow: LinkState = 'STOPPED';
  private detail = '';
  private backoff: number;
  private retryTimer: Disposer | null = null;
  private writing = false;
  private generation = 0;
  private presenceTimer: Disposer | null = null;
  readonly stats = { opens: 0, disconnects: 0, bytesIn: 0, bytesOut: 0 };

  constructor(private readonly opts: SerialLinkOptions) {
    if (opts.reconnectMinMs <= 0 || opts.reconnectMaxMs < opts.reconnectMinMs) {
      throw new TypeError(`SerialLink: need 0 < reconnectMinMs <= reconnectMaxMs (${opts.reconnectMinMs}, ${opts.reconnectMaxMs})`);
    }
    this.backoff = opts.reconnectMinMs;
  }

  get state(): LinkState {
    return this.stateNow;
  }

  get stateDetail(): string {
    return this.detail;
  }

  /** The last state reported to onState (OPENING is never reported): what people were last told. */
  get reportedState(): { state: LinkState; detail: string } {
    return this.reported.state === '' ? { state: 'OPENING', detail: this.detail } : { state: this.reported.state, detail: this.reported.detail };
  }

  get describe(): string {
    return this.opts.target.describe;
  }

  /** True when a write can start now. */
  get writable(): boolean {
    return this.stateNow === 'OPEN' && !this.writing;
  }

  start(): void {
    if (this.stateNow !== 'STOPPED') return;
    this.attempt();
  }

  /** Closes the port and stops retrying. */
  stop(): void {
    this.generation++;
    this.retryTimer?.();
    this.retryTimer = null;
    this.presenceTimer?.();
    this.presenceTimer = null;
    const port = this.port;
    this.port = null;
    this.setState('STOPPED', 'stopped');
    port?.close();
  }

  /** Reopens with a new target (changed settings on reload). */
  restart(target: LinkTarget, reconnectMinMs: number, reconnectMaxMs: number): void {
    this.stop();
    Object.assign(this.opts, { target, reconnectMinMs, reconnectMaxMs });
    this.backoff = reconnectMinMs;
    this.attempt();
  }

  /** Writes one whole item; the callback gets null once the device accepted it. One write at a time. */
  write(bytes: Buffer, done: (err: DevicePortError | null) => void): void {
    const port = this.port;
    if (!port || this.stateNow !== 'OPEN') {
      done(Object.assign(new Error('device not open'), { canceled: true }));
      return;
    }
    if (this.writing) throw new Error('SerialLink: one write at a time');
    this.writing = true;
    port.write(bytes, (err) => {
      this.writing = false;
      if (!err) this.stats.bytesOut += bytes.length;
      done(err as DevicePortError | null);
    });
  }

  /** Drives DTR/RTS/break on the open port; rejects with the reason when the device is away or has none. */
  signal(signals: ControlSignals): Promise<void> {
    const port = this.port;
    if (!port || this.stateNow !== 'OPEN') return Promise.reject(new Error(`the device is away (${this.detail})`));
    if (!port.set) return Promise.reject(new Error(`${this.opts.target.describe} has no modem control lines`));
    return port.set(signals);
  }

  private attempt(): void {
    const gen = ++this.generation;
    this.retryTimer = null;
    this.setState('OPENING', `opening ${this.opts.target.describe}`);
    this.opts.target
      .resolve()
      .then((path) => {
        if (gen !== this.generation) return;
        if (path === null) {
          this.retry('WAITING', `${this.opts.target.describe}: not present`);
          return;
        }
        const port = this.opts.target.create(path, {
          onData: (chunk) => {
            if (gen !== this.generation) return;
            this.stats.bytesIn += chunk.length;
            this.opts.onData(chunk);
          },
          onClose: (err) => {
            if (gen !== this.generation) return;
            this.presenceTimer?.();
            this.presenceTimer = null;
            this.port = null;
            this.writing = false;
            this.stats.disconnects++;
            this.backoff = this.opts.reconnectMinMs;
            this.retry('WAITING', `${path}: ${err ? `gone (${err.message})` : 'closed'}`);
          },
        });
        port.open().then(
          () => {
            if (gen !== this.generation) {
              port.close();
              return;
            }
            this.port = port;
            this.stats.opens++;
            this.backoff = this.opts.reconnectMinMs;
            this.setState('OPEN', path);
            const present = this.opts.target.present;
            if (present) {
              this.presenceTimer = this.opts.clock.setInterval(() => {
                if (gen === this.generation && this.port === port && !present(path)) port.close();
              }, 1000);
            }
          },
          (err: DevicePortError) => {
            if (gen !== this.generation) return;
            const code = err.code ?? '';
            const why = describeOpenError(path, err);
            this.retry(NEEDS_A_PERSON.has(code) ? 'FAILED' : 'WAITING', why);
          },
        );
      })
      .catch((err: unknown) => {
        if (gen !== this.generation) return;
        this.retry('FAILED', `${this.opts.target.describe}: ${err instanceof Error ? err.message : String(err)}`);
      });
  }

  private retry(state: 'WAITING' | 'FAILED', detail: string): void {
    this.setState(state, detail);
    const delay = state === 'FAILED' ? this.opts.reconnectMaxMs : this.backoff;
    this.backoff = Math.min(this.opts.reconnectMaxMs, this.backoff * 2);
    this.retryTimer = this.opts.clock.setTimeout(() => this.attempt(), delay);
  }

  /**
   * Reports a change once: OPENING is transient and never reported, so a retry that ends where it began
   * (WAITING -> OPENING -> WAITING, same reason) says nothing.
   */
  private setState(state: LinkState, detail: string): void {
    this.stateNow = state;
    this.detail = detail;
    if (state === 'OPENING') return;
    if (state === this.reported.state && (state !== 'OPEN' || detail === this.reported.detail)) {
      if (detail !== this.reported.detail) {
        this.reported.detail = detail;
        this.opts.log.debug(`device still ${state.toLowerCase()}: ${detail}`);
      }
      return;
    }
    this.reported = { state, detail };
    this.opts.onState(state, detail);
  }

  private reported: { state: LinkState | ''; detail: string } = { state: '', detail: '' };
}

function describeOpenError(path: string, err: DevicePortError): string {
  switch (err.code) {
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      return `${path}: not present`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied (add the service user to the dialout group)`;
    case 'EBUSY':
      return `${path}: in use by another program (${err.message})`;
    case 'EINVAL':
      return `${path}: settings refused by the driver (${err.message})`;
    default:
      return `${path}: ${err.message}`;
  }
}
