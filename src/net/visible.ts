/**
 * Bytes that one person sent, made safe to put on another person's terminal (monitor listeners).
 *
 * A terminal acts on control bytes: ESC starts sequences that set the window title, clear the screen, or on some
 * terminals write the clipboard (OSC 52) or answer back with text the shell then reads. So every control byte is
 * shown as the four characters `\xNN` instead of being sent:
 * - C0 (0x00-0x1F, TAB, CR and LF within a line included) and DEL (0x7F);
 * - C1 controls, whether sent as single bytes (0x80-0x9F, which some terminals act on in 8-bit mode) or encoded
 *   as UTF-8 (U+0080-U+009F, bytes C2 80-C2 9F, which a UTF-8 terminal acts on);
 * - every byte that is not part of well-formed UTF-8 (stray continuation bytes, overlong forms, surrogates, code
 *   points past U+10FFFF, a sequence cut short), so no terminal in any mode can read one as a control.
 * Everything else, printable ASCII and well-formed UTF-8 (Thai, emoji), passes unchanged.
 *
 * `\xNN` rather than caret (`^[`) or picture (`␛`) notation: it names the byte exactly (caret notation has no
 * form for C1 or invalid bytes), it is plain ASCII on any terminal and in any log, and it is what Python's
 * repr() and the journal show, which students and instructors already read. A literal backslash is left as it
 * is, so `\x1b` typed as four characters looks the same as an ESC byte: ordinary text stays unchanged, and the
 * ambiguity costs nothing because neither form can act on the terminal.
 *
 * Pure; allocates only when something must change.
 */

const HEX = '0123456789abcdef';

/** The length of the well-formed UTF-8 sequence at `i` that is not a C1 control, or 0 (RFC 3629 table 3-7). */
function printableSequenceLength(b: Uint8Array, i: number): number {
  const b0 = b[i]!;
  if (b0 < 0xc2 || b0 > 0xf4) return 0;
  const n = b.length;
  const cont = (k: number): boolean => i + k < n && (b[i + k]! & 0xc0) === 0x80;
  if (b0 < 0xe0) {
    if (!cont(1)) return 0;
    // U+0080-U+009F: the C1 controls, encoded.
    return b0 === 0xc2 && b[i + 1]! < 0xa0 ? 0 : 2;
  }
  if (b0 < 0xf0) {
    if (!cont(1) || !cont(2)) return 0;
    const b1 = b[i + 1]!;
    if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b0 === 0xed && b1 > 0x9f) return 0; // UTF-16 surrogates
    return 3;
  }
  if (!cont(1) || !cont(2) || !cont(3)) return 0;
  const b1 = b[i + 1]!;
  if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
  if (b0 === 0xf4 && b1 > 0x8f) return 0; // past U+10FFFF
  return 4;
}

/** The index of the first byte that would have to be shown as `\xNN`, or -1 when `bytes` is safe as it is. */
export function firstUnsafeByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b >= 0x20 && b < 0x7f) {
      i++;
      continue;
    }
    if (b < 0x80) return i;
    const len = printableSequenceLength(bytes, i);
    if (len === 0) return i;
    i += len;
  }
  return -1;
}

/** `bytes` with every control and every byte outside well-formed UTF-8 written as `\xNN`; `bytes` itself if none. */
export function makeVisible(bytes: Buffer): Buffer {
  let i = firstUnsafeByte(bytes);
  if (i < 0) return bytes;
  // At most 4 output bytes per input byte.
  const out = Buffer.allocUnsafe(bytes.length * 4);
  let o = bytes.copy(out, 0, 0, i);
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b >= 0x20 && b < 0x7f) {
      out[o++] = b;
      i++;
      continue;
    }
    const len = b < 0x80 ? 0 : printableSequenceLength(bytes, i);
    if (len > 0) {
      o += bytes.copy(out, o, i, i + len);
      i += len;
      continue;
    }
    out[o++] = 0x5c; // '\'
    out[o++] = 0x78; // 'x'
    out[o++] = HEX.charCodeAt(b >> 4);
    out[o++] = HEX.charCodeAt(b & 0x0f);
    i++;
  }
  return out.subarray(0, o);
}
