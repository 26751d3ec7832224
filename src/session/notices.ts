/**
 * Every gateway notice, written once. TCP clients get them as `! <text>` lines, UDP peers as `! <text>`
 * datagrams, browsers as {"notice": "<text>"}: one wording, so a script, a README and a page all match.
 * Pure: no I/O.
 */
export const notices = {
  lineTooLong: (bytes: number, limit: number): string => `line too long (${bytes} bytes, the limit is ${limit}): discarded`,
  lineHasBreak: (): string => 'line refused: it holds a CR or LF (send one line per message)',
  deviceAway: (detail: string): string => `device away: ${detail}`,
  deviceBack: (detail: string): string => `device back: ${detail}`,
  missed: (n: number): string => `missed ${n} line${n === 1 ? '' : 's'} (this client was too slow)`,
  queueFull: (deviceAway: boolean): string => `line refused: the device queue is full${deviceAway ? ' (the device is away)' : ''}`,
  noReply: (ms: number): string => `no reply from the device within ${ms} ms`,
  readOnly: (): string => 'this listener is read-only: nothing you type reaches the device',
  idle: (ms: number): string => `idle for ${Math.round(ms / 1000)} s: closing`,
  malformed: (reason: string): string => `malformed message: ${reason}`,
  busy: (why: string): string => `busy: ${why}`,
  datagramTooLong: (bytes: number, limit: number): string =>
    `datagram refused: ${bytes} bytes, the limit is ${limit} (lines.maxLineBytes)`,
  /** UDP, from outside `trusted`: short enough that an empty IPv4 datagram's 3x budget covers it (udp-proof.ts). */
  sendBack: (cookie: string): string => `send back to subscribe: ${cookie}`,
  subscribed: (seconds: number): string => `subscribed: device lines for ${seconds} s after each datagram you send`,
  reconfigured: (): string => 'this listener was reconfigured: please reconnect',
  stopping: (): string => 'the gateway is stopping',
} as const;

/** A notice as one CRLF-terminated text line (TCP `lines` framing, UDP datagrams). */
export function noticeLine(text: string): string {
  return `! ${text}\r\n`;
}
