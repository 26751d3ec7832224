/**
 * The lines the benchmark's device sends, shared by the device (which writes them) and the client farm (which
 * reads them back). Every line is LINE_BYTES long, CRLF included, as the issue asks (60-byte CRLF lines).
 *
 * Stamped line: `T<stamp:15 digits> <seq:10 digits> xxx…xxx\r\n`, where stamp is nanoseconds since the run's
 * base (process.hrtime, i.e. CLOCK_MONOTONIC, the same clock in every thread and process on the machine).
 * Bulk line: `B` and filler; the throughput workload only counts bytes.
 * Sync line: `SYNC <token>\r\n`; the benchmark sends it until every client has seen it, so a run starts with
 * every bridge open on the device and every client attached.
 */
export const LINE_BYTES = 60;
export const STAMP_DIGITS = 15;
export const SEQ_DIGITS = 10;
/** Offsets inside a stamped line. */
export const STAMP_AT = 1;
export const SEQ_AT = STAMP_AT + STAMP_DIGITS + 1;

const CR = 0x0d;
const LF = 0x0a;

/** A block of whole bulk lines, about `bytes` long: written again and again by the throughput workload. */
export function bulkBlock(bytes: number): Buffer {
  const lines = Math.max(1, Math.floor(bytes / LINE_BYTES));
  const block = Buffer.alloc(lines * LINE_BYTES);
  for (let l = 0; l < lines; l++) {
    const at = l * LINE_BYTES;
    block[at] = 0x42; // 'B'
    for (let i = 1; i < LINE_BYTES - 2; i++) block[at + i] = 0x21 + ((l + i) % 94);
    block[at + LINE_BYTES - 2] = CR;
    block[at + LINE_BYTES - 1] = LF;
  }
  return block;
}

/** A stamped line template: fill it with `stampLine` before each write. */
export function stampTemplate(): Buffer {
  const line = Buffer.alloc(LINE_BYTES, 0x78); // 'x'
  line[0] = 0x54; // 'T'
  line[SEQ_AT - 1] = 0x20;
  line[SEQ_AT + SEQ_DIGITS] = 0x20;
  line[LINE_BYTES - 2] = CR;
  line[LINE_BYTES - 1] = LF;
  return line;
}

/** Writes `value` as `digits` zero-padded decimal digits at `at`, with no allocation. */
function putDigits(buf: Buffer, at: number, digits: number, value: number): void {
  let v = value;
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

export function stampLine(line: Buffer, stampNs: number, seq: number): void {
  putDigits(line, STAMP_AT, STAMP_DIGITS, stampNs);
  putDigits(line, SEQ_AT, SEQ_DIGITS, seq);
}

/** Reads `digits` decimal digits at `at` (as written by putDigits); NaN if any is not a digit. */
export function getDigits(buf: Uint8Array, at: number, digits: number): number {
  let v = 0;
  for (let i = at; i < at + digits; i++) {
    const d = (buf[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}

export function syncLine(token: number): Buffer {
  return Buffer.from(`SYNC ${token}\r\n`, 'latin1');
}
