import type { WebSocket } from 'ws';
import { notices } from '../session/notices.js';
import type {
  ClientLabel,
  ClientTransport,
  CloseWhy,
  Greeting,
  InputHandlers,
  RecordRuns,
  SessionReader,
  SessionWriter,
} from '../session/transport.js';
import { CloseCode, type Hello, type ServerMessage, type WebDevice } from './protocol.js';

const CLOSE_CODES: Record<CloseWhy, number> = {
  done: CloseCode.DONE,
  stopping: CloseCode.GOING_AWAY,
  reconfigured: CloseCode.RECONFIGURED,
  removed: CloseCode.REMOVED,
  busy: CloseCode.BUSY,
  policy: CloseCode.POLICY,
};

export interface WsTransportOptions {
  label: ClientLabel;
  address: string;
  port: number;
  maxLineBytes: number;
  /** The hello for this socket, from the session's greeting. */
  hello(g: Greeting): Hello;
  /** The device as a page shows it. */
  device(state: string, detail: string): WebDevice;
  /** Monitor sockets: a text frame that is an action for the gateway (true: taken, not a line). */
  control?(text: string): boolean;
  /**
   * The TCP socket under the WebSocket (the upgrade's): a batch's frames and its {at} are written under one
   * cork, so they leave in one writev instead of one system call each.
   */
  socket?: { cork(): void; uncork(): void };
}

/**
 * A browser tab's transport over a `ws` WebSocket: one text frame in is one line; device runs go out as binary
 * frames of the ring's own views (ws writes [header, view] without copying), followed by {at}; everything else
 * is a JSON text frame (protocol.ts).
 */
export function wsTransport(ws: WebSocket, opts: WsTransportOptions): ClientTransport {
  return {
    label: opts.label,
    address: opts.address,
    port: opts.port,
    reader: new WsLineReader(ws, opts.maxLineBytes, opts.control),
    writer: new WsLineWriter(ws, opts),
  };
}

export class WsLineReader implements SessionReader {
  private h: InputHandlers | null = null;
  private paused = false;
  /**
   * Lines that arrived after a pause: ws keeps emitting the messages of a chunk it has already parsed
   * (`pause()` only stops reading the socket), so they wait here, at most one socket read's worth.
   */
  private readonly held: Buffer[] = [];

  constructor(
    private readonly ws: WebSocket,
    private readonly maxLineBytes: number,
    private readonly control?: (text: string) => boolean,
  ) {}

  listen(h: InputHandlers): void {
    this.h = h;
    const ws = this.ws;
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      // Once closing, ws still emits what the peer sends until its close frame comes, for up to 30 s: a peer
      // that never sends it could otherwise make `held` grow at link rate. Nothing takes a line now anyway.
      if (ws.readyState !== ws.OPEN) {
        this.held.length = 0;
        return;
      }
      if (isBinary) {
        ws.close(CloseCode.UNSUPPORTED, 'send lines as text frames');
        return;
      }
      const line = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (this.control && line[0] === 0x7b && this.control(line.toString('utf8'))) return;
      if (this.paused || this.held.length > 0) this.held.push(line);
      else this.deliver(line);
    });
    ws.on('error', (err: Error) => h.error(`websocket error: ${err.message}`));
    ws.on('close', () => h.closed());
  }

  pause(): void {
    this.paused = true;
    this.ws.pause();
  }

  resume(): void {
    this.paused = false;
    queueMicrotask(() => {
      while (!this.paused && this.held.length > 0) this.deliver(this.held.shift()!);
      if (!this.paused) this.ws.resume();
    });
  }

  private deliver(line: Buffer): void {
    const h = this.h!;
    if (line.length > this.maxLineBytes) h.tooLong(line.length);
    else if (line.includes(0x0a) || line.includes(0x0d)) h.refused(notices.lineHasBreak());
    else h.line(line);
  }
}

export class WsLineWriter implements SessionWriter {
  constructor(
    private readonly ws: WebSocket,
    private readonly opts: WsTransportOptions,
  ) {}

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  write(runs: RecordRuns, done: () => void): void {
    const { ring, bounds } = runs;
    const n = bounds.length;
    if (n === 0) queueMicrotask(done);
    // At 50 tabs the gateway's time is in these system calls (the profile: ~80% in writev): one per batch.
    const socket = this.opts.socket;
    socket?.cork();
    for (let i = 0; i < n; i += 2) {
      const view = ring.span(bounds[i]!, bounds[i + 1]!);
      // One callback per batch: ws calls it once the socket took the frame (or with an error once closed).
      if (i + 2 < n) this.ws.send(view, { binary: true });
      else this.ws.send(view, { binary: true }, () => done());
    }
    this.send({ at: runs.at });
    socket?.uncork();
  }

  notice(text: string): boolean {
    this.send({ notice: text });
    return true;
  }

  greet(g: Greeting): void {
    this.send({ hello: this.opts.hello(g) });
  }

  clientLine(from: ClientLabel, line: Buffer): void {
    // As text for JSON: invalid UTF-8 becomes U+FFFD; the page shows control characters as symbols, never markup.
    this.send({ sent: { via: from.via, listener: from.listener, peer: from.peer, line: line.toString('utf8'), ts: Date.now() } });
  }

  deviceState(state: string, detail: string): void {
    this.send({ device: this.opts.device(state, detail) });
  }

  /** Monitor feed and listener-wide messages. */
  send(message: ServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  ping(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  end(why: CloseWhy): void {
    // A closing session has paused its reader, and a paused ws never reads the page's close frame: the
    // closing handshake would then wait for ws's 30 s timeout before the page hears the close.
    if (this.ws.isPaused) this.ws.resume();
    this.ws.close(CLOSE_CODES[why]);
  }

  destroy(): void {
    this.ws.terminate();
  }
}
