/**
 * Cuts one client's input (after telnet decoding) into lines for the device. Pure.
 *
 * A line ends at LF, CR LF, CR NUL or a bare CR; the terminator is not part of the line. The line is
 * delivered as soon as its CR arrives (telnet in character mode sends CR NUL, a terminal may send a bare
 * CR), and an LF or NUL right after that CR, even in the next chunk, is swallowed rather than read as a
 * second, empty line. Every other terminator ends a line, so `a CR CR LF` is `a` and an empty line (what
 * `printf 'a\r\n' | telnet` sends after telnet turns CR into CR NUL and LF into CR LF).
 *
 * Views: a line that lies inside one pushed chunk is a subarray of that chunk. A line that spans chunks is
 * gathered in the framer's own buffer (maxLineBytes, allocated on first need) and delivered as a view of
 * it, which is overwritten as soon as the callback returns: a caller that keeps a line copies it.
 *
 * Bounds: a line longer than maxLineBytes is dropped whole, never cut into pieces (a piece of a command is
 * a wrong command), and reported once, when its terminator arrives, with its full length. Memory held is
 * at most maxLineBytes whatever the input.
 */

export interface InputFramerOptions {
  maxLineBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;

export class InputFramer {
  readonly maxLineBytes: number;

  private buffer: Buffer | undefined;
  /** Bytes of an unfinished line held in `buffer`. */
  private pendingBytes = 0;
  /** The current line already exceeds maxLineBytes; counts its bytes without keeping them. */
  private discarding = false;
  private discardedBytes = 0;
  /** The previous chunk ended a line at CR: an LF or NUL opening this one belongs to that terminator. */
  private afterCr = false;

  constructor(opts: InputFramerOptions) {
    const max: unknown = opts?.maxLineBytes;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new TypeError(`InputFramer: maxLineBytes must be a positive integer, got ${String(max)}`);
    }
    this.maxLineBytes = max;
  }

  /** Bytes of an unterminated line currently held (0 while discarding an over-long one). */
  get pending(): number {
    return this.pendingBytes;
  }

  /**
   * Frames `view`, calling onLine for each whole line. `stop`, asked after each line, ends framing early (the
   * receiver cannot take more now): the return value is how many bytes of `view` were consumed, and the caller
   * pushes the rest later (as LengthPrefixDecoder.push does). Without a stop, the whole view is consumed.
   */
  push(view: Buffer, onLine: (line: Buffer) => void, onOverflow: (droppedBytes: number) => void, stop?: () => boolean): number {
    const n = view.length;
    let i = 0;
    if (this.afterCr && n > 0) {
      this.afterCr = false;
      const first = view[0];
      if (first === LF || first === NUL) i = 1;
    }
    let start = i;
    for (; i < n; i++) {
      const b = view[i];
      if (b !== LF && b !== CR) continue;
      this.endLine(view, start, i, onLine, onOverflow);
      if (b === CR) {
        if (i + 1 === n) {
          this.afterCr = true;
        } else {
          const next = view[i + 1];
          if (next === LF || next === NUL) i++;
        }
      }
      start = i + 1;
      if (stop !== undefined && start < n && stop()) return start;
    }
    if (start < n) this.hold(view, start, n);
    return n;
  }

  /**
   * Ends the stream: an unterminated line still held is delivered (or reported, if it was over-long).
   * Call it when the client half-closes, if a last line without a terminator should reach the device.
   */
  end(onLine: (line: Buffer) => void, onOverflow: (droppedBytes: number) => void): void {
    this.afterCr = false;
    if (this.discarding) {
      const dropped = this.discardedBytes;
      this.discarding = false;
      this.discardedBytes = 0;
      onOverflow(dropped);
    } else if (this.pendingBytes > 0) {
      const length = this.pendingBytes;
      this.pendingBytes = 0;
      onLine(this.buffer!.subarray(0, length));
    }
  }

  private endLine(
    view: Buffer,
    start: number,
    end: number,
    onLine: (line: Buffer) => void,
    onOverflow: (droppedBytes: number) => void,
  ): void {
    const length = end - start;
    if (this.discarding) {
      const dropped = this.discardedBytes + length;
      this.discarding = false;
      this.discardedBytes = 0;
      onOverflow(dropped);
    } else if (this.pendingBytes === 0) {
      if (length > this.maxLineBytes) onOverflow(length);
      else onLine(view.subarray(start, end));
    } else {
      const total = this.pendingBytes + length;
      this.pendingBytes = 0;
      if (total > this.maxLineBytes) {
        onOverflow(total);
      } else {
        const buffer = this.buffer!;
        view.copy(buffer, total - length, start, end);
        onLine(buffer.subarray(0, total));
      }
    }
  }

  private hold(view: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.discarding) {
      this.discardedBytes += length;
      return;
    }
    const total = this.pendingBytes + length;
    if (total > this.maxLineBytes) {
      this.discarding = true;
      this.discardedBytes = total;
      this.pendingBytes = 0;
      return;
    }
    // Off the shared pool: this buffer lives as long as the client, and must not pin a pool slab.
    const buffer = (this.buffer ??= Buffer.allocUnsafeSlow(this.maxLineBytes));
    view.copy(buffer, this.pendingBytes, start, end);
    this.pendingBytes = total;
  }
}
