import { connect, type Socket } from 'node:net';
import type { PtyPair } from '../support/pty.js';
import { sleep } from './measure.js';

export interface NumberedDeviceOptions {
  /** Pause between batches of four lines, ms. */
  paceMs: number;
  /**
   * Keep going when a write fails (no daemon has the port open and the pty is full or was replugged), as a real
   * UART would overrun rather than stop; otherwise a failed write ends the loop and stop() rejects with it.
   */
  ignoreWriteErrors?: boolean;
}

/**
 * A device that writes numbered lines (`L00000042 xxx…x\r\n`, 50 bytes) four at a time until stopped, for the
 * cases that check every line was delivered or announced as missed, in order. `written` counts lines handed to
 * the pty.
 */
export class NumberedLineDevice {
  written = 0;
  private running: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly pty: PtyPair,
    private readonly opts: NumberedDeviceOptions,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let batch = '';
      for (let i = 0; i < 4; i++) batch += `L${String(this.written + i).padStart(8, '0')} ${'x'.repeat(40)}\r\n`;
      const wrote = this.pty.write(batch);
      await (this.opts.ignoreWriteErrors ? wrote.catch(() => undefined) : wrote);
      this.written += 4;
      await sleep(this.opts.paceMs);
    }
  }
}

const NUMBERED_LINE = /^L(\d{8}) x{40}$/;
const MISSED = /^! missed (\d+) lines?/;

export interface TallyOptions {
  /**
   * The connection was made after the daemon was killed and restarted: it may open with the tail of a line the
   * dead daemon had half read (counted in `leading`), and it hears `! device ...` notices (skipped). Otherwise
   * either is a disorder.
   */
  afterRestart?: boolean;
}

/**
 * One client of the NumberedLineDevice's lines: counts them and the misses it was told of (`! missed N`), and
 * records anything out of order or unexpected in `disorder`.
 */
export class NumberedLineTally {
  lines = 0;
  missed = 0;
  /** Line fragments before the first whole line (afterRestart only). */
  leading = 0;
  closed = false;
  firstLineAt = Infinity;
  readonly disorder: string[] = [];
  private first = -1;
  private last = -1;
  private rest = '';

  private constructor(
    private readonly socket: Socket,
    private readonly opts: TallyOptions,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => this.onData(s));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number, opts: TallyOptions = {}): Promise<NumberedLineTally> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new NumberedLineTally(s, opts)));
      s.once('error', reject);
    });
  }

  static async connectRetrying(port: number, timeoutMs: number, opts: TallyOptions = {}): Promise<NumberedLineTally> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        return await NumberedLineTally.connect(port, opts);
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await sleep(10);
      }
    }
  }

  /** Lines between the first and the last this connection saw: each was delivered or announced, or is a gap. */
  get window(): number {
    return this.first < 0 ? 0 : this.last - this.first + 1;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(s: string): void {
    const parts = (this.rest + s).split('\r\n');
    this.rest = parts.pop()!;
    for (const line of parts) {
      const miss = MISSED.exec(line);
      if (miss) {
        this.missed += Number(miss[1]);
        continue;
      }
      if (this.opts.afterRestart && line.startsWith('! ')) continue; // device away/back: not a device line
      const m = NUMBERED_LINE.exec(line);
      if (!m) {
        // The tail of a line the killed daemon had half read can open a new connection.
        if (this.opts.afterRestart && this.first < 0 && /^[L\d]*\s?x*$/.test(line)) this.leading++;
        else this.disorder.push(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
        continue;
      }
      const seq = Number(m[1]);
      if (this.first < 0) {
        this.first = seq;
        this.firstLineAt = performance.now();
      } else if (seq <= this.last) {
        // A gap is not judged here: the totals (window = delivered + announced) show an unannounced one.
        this.disorder.push(`L${seq} after L${this.last}`);
      }
      this.last = seq;
      this.lines++;
    }
  }
}
