import type { ClientRef } from './transcript/record.js';
import type { LinkState } from './serial/serial-link.js';

export type { ClientRef } from './transcript/record.js';

/**
 * What happened in the gateway, for whoever keeps a record of it (the transcript). One sink, called from a few
 * places: the bridge (device lines as they are framed, client lines as the device accepts them), the listeners
 * (connect, disconnect, refusal, notices) and the daemon (device state, reloads). Every method must be cheap
 * and must not throw: it runs on the data path.
 */
export interface GatewayEvents {
  /** A device record as framed (`flags`: RecordFlag bits). `content` is a view of the ring: copy it now or never. */
  deviceLine(content: Buffer, flags: number): void;
  /** A client line the device was sent (without the output delimiter). */
  clientLine(from: ClientRef, line: Buffer): void;
  connected(client: ClientRef): void;
  disconnected(client: ClientRef, detail: { why?: string; in?: number; out?: number; lost?: number }): void;
  refused(client: ClientRef, why: string): void;
  /** A `!` line the gateway sent a client (without the `! `). */
  notice(client: ClientRef, text: string): void;
  deviceState(state: LinkState, detail: string): void;
  reloaded(ok: boolean, detail?: string): void;
}

export const noEvents: GatewayEvents = {
  deviceLine() {},
  clientLine() {},
  connected() {},
  disconnected() {},
  refused() {},
  notice() {},
  deviceState() {},
  reloaded() {},
};

/** A TCP socket's client as the events name it. */
export function tcpClient(listener: string, socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): ClientRef {
  return { via: 'tcp', listener, address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
}
