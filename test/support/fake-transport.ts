import type { Bridge } from '../../src/bridge.js';
import type { SerialLink } from '../../src/serial/serial-link.js';
import type {
  ClientLabel,
  ClientTransport,
  CloseWhy,
  Greeting,
  InputHandlers,
  RecordRuns,
  SessionReader,
  SessionWriter,
} from '../../src/session/transport.js';

/**
 * A transport that enforces the SessionWriter contract, as serialport's binding-mock enforces its own: a
 * second write before the first one's `done` throws; `done` may be held by the test (a client that stops
 * reading) and released later; every byte the session hands over is recorded exactly, copied at write time
 * (the ring's views are only valid while pinned, and a copy taken late would hide a pin bug).
 */
export class FakeTransport implements ClientTransport {
  readonly reader: FakeReader;
  readonly writer: FakeWriter;
  readonly label: ClientLabel;
  readonly address: string;
  readonly port: number;

  constructor(peer = '10.0.0.7:51234', listener = 'test') {
    this.address = peer.slice(0, peer.lastIndexOf(':'));
    this.port = Number(peer.slice(peer.lastIndexOf(':') + 1));
    this.label = { via: 'tcp', listener, peer };
    this.reader = new FakeReader();
    this.writer = new FakeWriter();
  }

  /** The client sends a line. */
  line(text: string): void {
    this.reader.handlers.line(Buffer.from(text));
  }
}

export class FakeReader implements SessionReader {
  private h: InputHandlers | null = null;
  paused = false;
  pauses = 0;

  get handlers(): InputHandlers {
    if (!this.h) throw new Error('the session never called listen()');
    return this.h;
  }

  listen(h: InputHandlers): void {
    if (this.h) throw new Error('listen() called twice');
    this.h = h;
  }

  pause(): void {
    this.paused = true;
    this.pauses++;
  }

  resume(): void {
    this.paused = false;
  }
}

export class FakeWriter implements SessionWriter {
  /** What the transport holds, as the session sees it: set by the test to act out a backed-up socket. */
  bufferedAmount = 0;
  /** Device bytes, in order. */
  readonly device: Buffer[] = [];
  /** Everything in order, as text: `data:<bytes>`, `notice:<text>`, `greet:<banner>`, `sent:<peer> <line>`. */
  readonly events: string[] = [];
  readonly ats: number[] = [];
  greeting: Greeting | null = null;
  ended: CloseWhy | null = null;
  destroyed = false;
  /** Hold every batch's `done` until release() (a client that stopped reading). */
  hold = false;
  private pending: (() => void) | null = null;
  private closed = false;

  write(runs: RecordRuns, done: () => void): void {
    if (this.pending) throw new Error('write() before the previous batch was done: more than one batch in flight');
    if (this.closed) throw new Error('write() after end() or destroy()');
    const parts: Buffer[] = [];
    for (let i = 0; i < runs.bounds.length; i += 2) parts.push(Buffer.from(runs.ring.span(runs.bounds[i]!, runs.bounds[i + 1]!)));
    const bytes = Buffer.concat(parts);
    this.device.push(bytes);
    this.events.push(`data:${bytes.toString('latin1')}`);
    this.ats.push(runs.at);
    this.pending = done;
    if (!this.hold) this.release();
  }

  /** Lets the held batch complete (on a later tick, as a socket callback would). */
  release(): void {
    const done = this.pending;
    if (!done) return;
    queueMicrotask(() => {
      this.pending = null;
      done();
    });
  }

  get inFlight(): boolean {
    return this.pending !== null;
  }

  notice(text: string): boolean {
    this.events.push(`notice:${text}`);
    return true;
  }

  greet(g: Greeting): void {
    this.greeting = g;
    this.events.push(`greet:${g.banner}`);
  }

  clientLine(from: ClientLabel, line: Buffer): void {
    this.events.push(`sent:${from.via} ${from.listener} ${from.peer} ${line.toString('latin1')}`);
  }

  end(why: CloseWhy): void {
    this.ended ??= why;
    this.closed = true;
  }

  destroy(): void {
    this.destroyed = true;
    this.closed = true;
  }

  /** Device text received so far. */
  get text(): string {
    return Buffer.concat(this.device).toString('latin1');
  }

  get notices(): string[] {
    return this.events.filter((e) => e.startsWith('notice:')).map((e) => e.slice(7));
  }
}

/** A device link for the bridge that takes every write at once and records it. */
export function fakeLink(bridge: Bridge): { written: string[] } {
  const written: string[] = [];
  const link = {
    writable: true,
    reportedState: { state: 'OPEN', detail: 'test' },
    write(bytes: Buffer, cb: (err: Error | null) => void): void {
      written.push(bytes.toString('latin1'));
      queueMicrotask(() => cb(null));
    },
  };
  // The bridge reads only these members of its link.
  bridge.attachLink(link as unknown as SerialLink);
  return { written };
}
