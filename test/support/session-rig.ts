import { Bridge } from '../../src/bridge.js';
import { silentLog } from '../../src/core/log.js';
import { ClientSession, type SessionPolicy } from '../../src/session/client-session.js';
import { FakeClock } from './fake-clock.js';
import { FakeTransport, fakeLink } from './fake-transport.js';

/**
 * Client sessions without sockets: a Bridge on a FakeClock, its device end a fakeLink, and sessions over the
 * contract-enforcing FakeTransport. The session unit tests build on it.
 */

/** One turn of the event loop: what a session queued with setImmediate has run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A shared listener, no banner, no history; each test overrides what it is about. */
export const basePolicy: SessionPolicy = {
  name: 'test',
  port: 1,
  mode: 'shared',
  clientBufferBytes: 262144,
  notices: true,
  idleTimeoutMs: 0,
  closeOn: '',
  closeAfterReply: false,
  banner: '',
  historyLines: 0,
  historySeconds: 0,
  replyMaxLines: 0,
  replyQuietMs: 100,
  requestTimeoutMs: 2000,
};

export interface RigOptions {
  ringBytes?: number;
  maxLineBytes?: number;
  /** Laid over basePolicy for every session of this rig (a test file's own defaults). */
  policy?: Partial<SessionPolicy>;
}

export interface OpenOptions {
  /** The transport's peer address. */
  peer?: string;
  /** Resume from this record (a reconnecting client), instead of the newest. */
  startAt?: number;
  /** The writer holds every batch until the test releases it (a client that stopped reading). */
  hold?: boolean;
}

export function sessionRig(t: { teardown(fn: () => void): void }, opts: RigOptions = {}) {
  const maxLineBytes = opts.maxLineBytes ?? 256;
  const clock = new FakeClock();
  const bridge = new Bridge({
    clock,
    log: silentLog,
    ringBytes: opts.ringBytes ?? 1 << 20,
    maxLineBytes,
    delimiter: 'crlf',
    idleFlushMs: 0,
    outputDelimiter: 'crlf',
    writeQueueBytes: 65536,
  });
  const link = fakeLink(bridge);
  t.teardown(() => bridge.dispose());
  /** The open sessions, as the listener knows them: a session leaves when it tells the listener it closed. */
  const sessions: ClientSession[] = [];
  const open = (policy: Partial<SessionPolicy> = {}, o: OpenOptions = {}) => {
    const transport = new FakeTransport(o.peer);
    if (o.hold) transport.writer.hold = true;
    const session = new ClientSession(transport, {
      bridge,
      policy: { ...basePolicy, ...opts.policy, ...policy },
      clock,
      log: silentLog,
      maxLineBytes,
      device: () => ({ device: 'sim', settings: '115200 8N1' }),
      clientCount: () => sessions.length,
      ...(o.startAt !== undefined ? { startAt: o.startAt } : {}),
      closed: (s) => sessions.splice(sessions.indexOf(s), 1),
    });
    sessions.push(session);
    session.start();
    return { transport, session, writer: transport.writer };
  };
  /** The device sends `text` (raw bytes, delimiters included). */
  const device = (text: string): void => bridge.deviceData(Buffer.from(text));
  return { clock, bridge, link, open, sessions, device };
}
