/**
 * The cut between a client's session (what the gateway does for it: ring cursor, batches, lag, notices,
 * requests, input share, idle) and its transport (how bytes move: TCP with telnet and framing, or a WebSocket).
 * A ClientSession holds every protocol rule; a transport only moves lines and batches, as vscode-jsonrpc's
 * reader/writer pairs and ws's Receiver/Sender do. No node:* import here.
 */
import type { LineRing } from '../line/ring.js';

/** Who a client is, as monitors and the dashboard show it. */
export interface ClientLabel {
  via: 'tcp' | 'udp' | 'web';
  /** The listener's name. */
  listener: string;
  /** `10.0.0.7:51234`. */
  peer: string;
}

export interface InputHandlers {
  /** One framed line, without its terminator: a view valid only during the call. */
  line(bytes: Buffer): void;
  /** Raw framing: a piece of the byte stream (at most maxLineBytes), no delimiter to be added. */
  raw(bytes: Buffer): void;
  /** A line over maxLineBytes was dropped whole. */
  tooLong(droppedBytes: number): void;
  /** A line the transport cannot accept as one line (a WS text frame holding CR or LF). */
  refused(text: string): void;
  /** The input cannot be framed any more (a bad length prefix): the session tells the client and closes. */
  malformed(reason: string): void;
  /** The peer half-closed its side (TCP FIN); the output may still go on. */
  end(): void;
  /** A transport error: the session destroys itself. */
  error(message: string): void;
  /** The transport is gone (both ways). Called once. */
  closed(): void;
}

export interface SessionReader {
  /** Starts delivering input; called once by the session. */
  listen(h: InputHandlers): void;
  /** Stops delivering lines now, even in the middle of a chunk already read: the rest is held. */
  pause(): void;
  /** Delivers the held rest, then reads again (not re-entrantly: after the current call returns). */
  resume(): void;
}

/** Record ranges [bounds[2i], bounds[2i+1]) of the ring, in order; reused batch to batch. */
export interface RecordRuns {
  ring: RingRecords;
  readonly bounds: number[];
  /** The cursor's position after this batch: every record before it has been delivered or passed over. */
  at: number;
}
export type RingRecords = Pick<LineRing, 'span' | 'view' | 'content' | 'terminator' | 'flags' | 'recordLength'>;

/** Why a session ends its output: a WebSocket turns it into a close code, TCP just ends. */
export type CloseWhy = 'done' | 'stopping' | 'reconfigured' | 'removed' | 'busy' | 'policy';

/** The recent past a new client is sent before live data: records [from, to), `lines` lines, the oldest ageMs old. */
export interface HistoryInfo {
  from: number;
  to: number;
  lines: number;
  ageMs: number;
}

/** What a transport may show when a session starts (the TCP banner line, the WS hello). */
export interface Greeting {
  banner: string;
  seq: number;
  lost: number;
  resumed: boolean;
  /** Null: no history (none configured, none held, or a resumed client). */
  history: HistoryInfo | null;
}

export interface SessionWriter {
  /** Bytes given to the transport and not yet taken by the kernel (socket.writableLength, ws.bufferedAmount). */
  readonly bufferedAmount: number;
  /**
   * Sends the runs as device output. `done` runs exactly once, when the transport no longer holds the ring's
   * memory (the session unpins then); one write at a time: a second write before `done` is a bug.
   */
  write(runs: RecordRuns, done: () => void): void;
  /** A gateway notice; false where this transport cannot show one (raw framing). */
  notice(text: string): boolean;
  /** The session has started. */
  greet(g: Greeting): void;
  /** Monitors: a line some client sent to the device; the one place its bytes are made safe to show. */
  clientLine(from: ClientLabel, line: Buffer): void;
  /** The device changed state (a page redraws its status; a TCP client got the notice already). */
  deviceState?(state: string, detail: string): void;
  /** Output is done: flush what is queued, then close (FIN, or a WS close code). */
  end(why: CloseWhy): void;
  /** Close now, dropping what is queued. */
  destroy(): void;
}

export interface ClientTransport {
  readonly label: ClientLabel;
  /** The peer's address alone, for maxClientsPerAddress. */
  readonly address: string;
  /** The peer's port (the transcript names a client by address and port). */
  readonly port: number;
  readonly reader: SessionReader;
  readonly writer: SessionWriter;
}
