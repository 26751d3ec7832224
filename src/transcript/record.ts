/**
 * The transcript's record model (pure: no I/O). One record per event, one JSON object per line (JSON Lines),
 * keys in a fixed order so files diff and grep well:
 *
 *   {"t":"2026-12-01T10:02:14.120Z","k":"client","via":"tcp","listener":"class","addr":"10.0.0.7","port":51234,"text":"id"}
 *   {"t":"2026-12-01T10:02:14.131Z","k":"device","text":"6510500000"}
 *
 * `t` is wall time in UTC. Line bytes go in `text` when they are valid UTF-8 (JSON escapes control bytes, so a
 * record is always one line), otherwise in `b64`. Readers must skip a line they cannot parse: a crash can cut
 * the last line of a file short.
 */
import { isUtf8 } from 'node:buffer';
import { makeVisible } from '../net/visible.js';
import { peerLabel } from '../net/peer.js';

export type Via = 'tcp' | 'udp' | 'web';

/** A client as the transcript names it. */
export interface ClientRef {
  via: Via;
  listener: string;
  address: string;
  port: number;
}

interface Base {
  /** ISO 8601 wall time, UTC. */
  t: string;
}

interface ClientFields {
  via: Via;
  listener: string;
  addr: string;
  port: number;
}

/** Line bytes: `text` (valid UTF-8) or `b64` (anything else). */
interface Payload {
  text?: string;
  b64?: string;
}

export type DevicePart = 'fragment' | 'partial' | 'raw';

export type TranscriptRecord =
  | (Base & Payload & { k: 'device'; part?: DevicePart; cont?: true })
  | (Base & Payload & ClientFields & { k: 'client' })
  | (Base & ClientFields & { k: 'connect' })
  | (Base & ClientFields & { k: 'disconnect'; why?: string; in?: number; out?: number; lost?: number })
  | (Base & ClientFields & { k: 'refused'; why: string })
  | (Base & ClientFields & { k: 'notice'; text: string })
  | (Base & { k: 'device-away' | 'device-back'; detail: string })
  | (Base & { k: 'reload'; ok: boolean; detail?: string })
  | (Base & { k: 'start' | 'stop'; detail?: string })
  | (Base & { k: 'dropped'; count: number })
  /** An instructor's action (reset, pause, say, kick, ...): what was done and who asked. */
  | (Base & { k: 'instructor'; by: string; text: string });

export type RecordKind = TranscriptRecord['k'];

export const RECORD_KINDS: readonly RecordKind[] = [
  'device',
  'client',
  'connect',
  'disconnect',
  'refused',
  'notice',
  'device-away',
  'device-back',
  'reload',
  'start',
  'stop',
  'dropped',
  'instructor',
];

export function isoTime(wallMs: number): string {
  return new Date(wallMs).toISOString();
}

/** The record as one line, newline included. */
export function formatRecord(r: TranscriptRecord): string {
  // JSON.stringify keeps insertion order; the constructors below build objects in the documented order.
  return `${JSON.stringify(r)}\n`;
}

export function payload(bytes: Uint8Array): Payload {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return isUtf8(b) ? { text: b.toString('utf8') } : { b64: b.toString('base64') };
}

function clientFields(c: ClientRef): ClientFields {
  return { via: c.via, listener: c.listener, addr: c.address, port: c.port };
}

export const make = {
  device(t: string, bytes: Uint8Array, part?: DevicePart, cont?: boolean): TranscriptRecord {
    const r: TranscriptRecord = { t, k: 'device', ...payload(bytes) };
    if (part) r.part = part;
    if (cont) r.cont = true;
    return r;
  },
  client(t: string, c: ClientRef, bytes: Uint8Array): TranscriptRecord {
    return { t, k: 'client', ...clientFields(c), ...payload(bytes) };
  },
  connect(t: string, c: ClientRef): TranscriptRecord {
    return { t, k: 'connect', ...clientFields(c) };
  },
  disconnect(t: string, c: ClientRef, d: { why?: string; in?: number; out?: number; lost?: number }): TranscriptRecord {
    return { t, k: 'disconnect', ...clientFields(c), ...d };
  },
  refused(t: string, c: ClientRef, why: string): TranscriptRecord {
    return { t, k: 'refused', ...clientFields(c), why };
  },
  notice(t: string, c: ClientRef, text: string): TranscriptRecord {
    return { t, k: 'notice', ...clientFields(c), text };
  },
  device_state(t: string, away: boolean, detail: string): TranscriptRecord {
    return { t, k: away ? 'device-away' : 'device-back', detail };
  },
  reload(t: string, ok: boolean, detail?: string): TranscriptRecord {
    return detail === undefined ? { t, k: 'reload', ok } : { t, k: 'reload', ok, detail };
  },
  lifecycle(t: string, k: 'start' | 'stop', detail?: string): TranscriptRecord {
    return detail === undefined ? { t, k } : { t, k, detail };
  },
  dropped(t: string, count: number): TranscriptRecord {
    return { t, k: 'dropped', count };
  },
  instructor(t: string, by: string, text: string): TranscriptRecord {
    return { t, k: 'instructor', by, text };
  },
};

/** A line of a transcript file back as a record, or null when it is not one (a torn last line, garbage). */
export function parseRecord(line: string): TranscriptRecord | null {
  if (line.length === 0 || line[0] !== '{') return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'string' || typeof o.k !== 'string' || !(RECORD_KINDS as readonly string[]).includes(o.k)) return null;
  if (Number.isNaN(Date.parse(o.t))) return null;
  return o as unknown as TranscriptRecord;
}

/** The bytes of a line record (device or client). */
export function payloadBytes(r: Payload): Buffer {
  if (r.b64 !== undefined) return Buffer.from(r.b64, 'base64');
  return Buffer.from(r.text ?? '', 'utf8');
}

/**
 * Text a person can read safely: the bytes as monitors show them (src/net/visible.ts): every control byte and
 * every byte outside well-formed UTF-8 as `\xNN`, so bytes a student sent are shown, never executed by the
 * reader's terminal.
 */
export function visible(r: Payload): string {
  return makeVisible(payloadBytes(r)).toString('utf8');
}

export function visibleText(s: string): string {
  return makeVisible(Buffer.from(s, 'utf8')).toString('utf8');
}

/** `tcp:class 10.0.0.7:51234` (IPv6 in brackets). */
export function clientLabel(r: ClientFields): string {
  return `${r.via}:${r.listener} ${peerLabel(r.addr, r.port)}`;
}

/** Local wall time as HH:MM:SS. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The local calendar day (YYYY-MM-DD) of a wall time: the transcript's files are per day. */
export function localDay(wallMs: number): string {
  const d = new Date(wallMs);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * One record as a line of a chat, for a person: `10:02:14 tcp:class 10.0.0.7:51234 > id`,
 * `10:02:14 device < 6510500000`. Everything from a client or the device goes through `visible`.
 */
export function renderRecord(r: TranscriptRecord): string {
  const at = clockTime(r.t);
  switch (r.k) {
    case 'device': {
      const mark = r.part === 'partial' ? ' (no line end yet)' : r.part === 'fragment' ? ' (cut: line too long)' : '';
      return `${at} device <${r.cont ? '…' : ''} ${visible(r)}${mark}`;
    }
    case 'client':
      return `${at} ${clientLabel(r)} > ${visible(r)}`;
    case 'connect':
      return `${at} ${clientLabel(r)} connected`;
    case 'disconnect': {
      const counts = r.in !== undefined ? ` (${r.in} in, ${r.out ?? 0} out${r.lost ? `, ${r.lost} missed` : ''})` : '';
      return `${at} ${clientLabel(r)} disconnected${r.why ? `: ${visibleText(r.why)}` : ''}${counts}`;
    }
    case 'refused':
      return `${at} ${clientLabel(r)} refused: ${visibleText(r.why)}`;
    case 'notice':
      return `${at} ${clientLabel(r)} ! ${visibleText(r.text)}`;
    case 'device-away':
      return `${at} device away: ${visibleText(r.detail)}`;
    case 'device-back':
      return `${at} device back: ${visibleText(r.detail)}`;
    case 'reload':
      return `${at} gateway ${r.ok ? 'reloaded its config' : 'rejected a reload'}${r.detail ? `: ${visibleText(r.detail)}` : ''}`;
    case 'start':
      return `${at} gateway started${r.detail ? `: ${visibleText(r.detail)}` : ''}`;
    case 'stop':
      return `${at} gateway stopping${r.detail ? `: ${visibleText(r.detail)}` : ''}`;
    case 'dropped':
      return `${at} transcript: ${r.count} record${r.count === 1 ? '' : 's'} dropped here (the disk could not keep up)`;
    case 'instructor':
      return `${at} instructor: ${visibleText(r.text)} (asked by ${visibleText(r.by)})`;
  }
}
