/**
 * The course's chat-lab framing: `lengthDigits` ASCII decimal digits (default 3), then exactly that many
 * bytes of content. `007hello, ` is one message `hello, `; `000` is an empty message. Pure.
 *
 * Decoder views: a message inside one pushed chunk is a subarray of it; a message that spans chunks is
 * gathered in the decoder's own buffer (grown to the largest such message, never past 10^digits - 1) and
 * it is overwritten as soon as the callback returns: a caller that keeps a message copies it.
 *
 * A non-digit in a prefix is not recoverable (the stream has lost its frame): the decoder reports it once
 * through `onMalformed` with a reason fit for a notice to the client, and ignores everything after it.
 */

export interface LengthPrefixOptions {
  /** Digits in each prefix, 1..9; default 3. The largest message is 10^digits - 1 bytes. */
  lengthDigits?: number;
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Reading the decimal prefix. */
const GET_LENGTH = 0;
/** Reading a message's content. */
const GET_CONTENT = 1;
/** A bad prefix was seen; everything after it is ignored. */
const FAILED = 2;

type State = typeof GET_LENGTH | typeof GET_CONTENT | typeof FAILED;

function checkDigits(digits: unknown, who: string): number {
  if (typeof digits !== 'number' || !Number.isInteger(digits) || digits < 1 || digits > 9) {
    throw new TypeError(`${who}: lengthDigits must be an integer from 1 to 9, got ${String(digits)}`);
  }
  return digits;
}

function describeByte(b: number): string {
  const hex = `0x${b.toString(16).padStart(2, '0')}`;
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}' (${hex})` : hex;
}

export class LengthPrefixDecoder {
  readonly lengthDigits: number;
  readonly maxLength: number;

  private state: State = GET_LENGTH;
  private digitsRead = 0;
  private length = 0;
  /** Content bytes of the current message gathered in `buffer` so far. */
  private gathered = 0;
  private buffer: Buffer | undefined;

  constructor(opts: LengthPrefixOptions = {}) {
    this.lengthDigits = checkDigits(opts.lengthDigits ?? 3, 'LengthPrefixDecoder');
    this.maxLength = 10 ** this.lengthDigits - 1;
  }

  /** True after a malformed prefix: the caller should tell the client and close. */
  get failed(): boolean {
    return this.state === FAILED;
  }

  /**
   * Decodes `view`, calling onMessage for each whole message. `stop`, asked after each message, ends decoding
   * early (the receiver cannot take more now): the return value is how many bytes of `view` were consumed, and
   * the caller pushes the rest later. A malformed prefix consumes everything.
   */
  push(view: Buffer, onMessage: (message: Buffer) => void, onMalformed: (reason: string) => void, stop?: () => boolean): number {
    const n = view.length;
    let i = 0;
    while (i < n) {
      if (this.state === GET_LENGTH) {
        const b = view[i]!;
        if (b < DIGIT_0 || b > DIGIT_9) {
          this.state = FAILED;
          onMalformed(
            `length prefix byte ${this.digitsRead + 1} of ${this.lengthDigits} is ${describeByte(b)}, ` +
              `not a decimal digit: each message must start with ${this.lengthDigits} ASCII digits ` +
              `giving its length (e.g. ${'5'.padStart(this.lengthDigits, '0')}hello)`,
          );
          return n;
        }
        this.length = this.length * 10 + (b - DIGIT_0);
        i++;
        if (++this.digitsRead === this.lengthDigits) {
          if (this.length === 0) {
            this.resetMessage();
            onMessage(view.subarray(i, i));
            if (stop?.()) return i;
          } else {
            this.state = GET_CONTENT;
          }
        }
      } else if (this.state === GET_CONTENT) {
        const wanted = this.length - this.gathered;
        const available = n - i;
        if (this.gathered === 0 && available >= wanted) {
          const message = view.subarray(i, i + wanted);
          i += wanted;
          this.resetMessage();
          onMessage(message);
          if (stop?.()) return i;
        } else {
          const take = Math.min(wanted, available);
          const buffer = this.bufferFor(this.length);
          view.copy(buffer, this.gathered, i, i + take);
          this.gathered += take;
          i += take;
          if (this.gathered === this.length) {
            const length = this.length;
            this.resetMessage();
            onMessage(buffer.subarray(0, length));
            if (stop?.()) return i;
          }
        }
      } else {
        return n;
      }
    }
    return n;
  }

  private resetMessage(): void {
    this.state = GET_LENGTH;
    this.digitsRead = 0;
    this.length = 0;
    this.gathered = 0;
  }

  private bufferFor(length: number): Buffer {
    if (this.buffer === undefined || this.buffer.length < length) this.buffer = Buffer.allocUnsafeSlow(length);
    return this.buffer;
  }
}

/**
 * Frames content for a chat-lab client: [prefix, content] with no copy of the content. Content longer than
 * 10^digits - 1 becomes several messages [prefix, part, prefix, part, ...], each part a view of it.
 */
export function encodeLengthPrefix(content: Buffer, digits = 3): Buffer[] {
  checkDigits(digits, 'encodeLengthPrefix');
  const max = 10 ** digits - 1;
  if (content.length <= max) return [prefixOf(content.length, digits), content];
  const out: Buffer[] = [];
  for (let start = 0; start < content.length; start += max) {
    const part = content.subarray(start, Math.min(start + max, content.length));
    out.push(prefixOf(part.length, digits), part);
  }
  return out;
}

function prefixOf(length: number, digits: number): Buffer {
  const prefix = Buffer.allocUnsafe(digits);
  let value = length;
  for (let d = digits - 1; d >= 0; d--) {
    prefix[d] = DIGIT_0 + (value % 10);
    value = Math.floor(value / 10);
  }
  return prefix;
}
