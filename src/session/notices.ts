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
  // The instructor's actions (issue 16): what every student client is told.
  boxReset: (): string => 'box reset by the instructor',
  paused: (forMs: number | null): string =>
    `read-only: the instructor has paused input${forMs === null ? ' until further notice' : ` for ${describeDuration(forMs)}`}`,
  resumed: (): string => 'input resumed: lines reach the device again',
  pausedRefused: (): string => 'line refused: input is paused by the instructor (not queued)',
  instructor: (text: string): string => `instructor: ${text}`,
  removed: (reason: string): string => `removed by the instructor${reason ? `: ${reason}` : ''}`,
  banned: (address: string): string => `busy: ${address} is barred for a while by the instructor`,
  queueCleared: (n: number): string =>
    n === 1 ? 'one of your lines waiting for the device was dropped by the instructor' : `${n} of your lines waiting for the device were dropped by the instructor`,
  history: (lines: number, ageMs: number): string => `history: ${lines} line${lines === 1 ? '' : 's'} from the last ${span(ageMs)}`,
  live: (): string => 'live',
} as const;

/** `10 min`, `90 s`, `1 h 30 min`: how a person says a duration. */
export function describeDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s % 60 !== 0 && s < 600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  return min % 60 === 0 ? `${min / 60} h` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** `40 s`, `5 min`, `3 h`: rounded up, so "the last 5 min" holds every line it names. */
function span(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.ceil(s / 60);
  if (min < 120) return `${min} min`;
  return `${Math.ceil(min / 60)} h`;
}

/** A notice as one CRLF-terminated text line (TCP `lines` framing, UDP datagrams). */
export function noticeLine(text: string): string {
  return `! ${text}\r\n`;
}
