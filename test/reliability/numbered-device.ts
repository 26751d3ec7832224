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
