/**
 * LabBox: the course's lab device, simulated (pure: no I/O, no timers). It reads command lines and answers
 * with CRLF-terminated lines, as the box on the course's slides does for `id\r\n` and `name\r\n`.
 *
 * Input framing is a byte-level state machine: a line ends at CR, LF or CR LF (the LF of a CR LF is not a
 * second line, and a lone LF from `nc` works); nothing but the terminator is trimmed; an empty line is ignored.
 * Commands (exact bytes, lower case):
 *   id          -> the student ID
 *   name        -> the name
 *   help        -> one line listing the commands
 *   echo TEXT   -> TEXT, byte for byte (0x00 and 0xFF included); `echo` alone -> an empty line
 *   stream N    -> N lines `line 1` .. `line N` (0 <= N <= maxStreamLines)
 *   prompt      -> `> ` with no line ending (what a device waiting for input looks like)
 *   other       -> ERR unknown command
 *
 * Output is pulled, not pushed: `readOutput(target)` fills the caller's buffer with at most its length in
 * bytes, generating `stream` lines only as they are pulled, so `stream 1000000` never builds 13 MB and a
 * slow consumer (a serial port waiting for drain) simply pulls later.
 *
 * Memory is bounded: the line being read is at most maxLineBytes (longer input -> `ERR line too long` once
 * its terminator arrives); at most maxPendingReplies answers wait to be pulled. Past that, further commands
 * are dropped and counted in `droppedCommands`, like a device whose input buffer overflowed.
 */

export interface LabBoxOptions {
  /** What `id` answers. Printable text, no CR or LF. */
  studentId: string;
  /** What `name` answers. Printable text, no CR or LF (UTF-8 is fine). */
  name: string;
  /** Longest accepted command line in bytes, terminator excluded. Default 4096. */
  maxLineBytes?: number;
  /** Largest N for `stream N`. Default 1,000,000. */
  maxStreamLines?: number;
  /** Answers that may wait to be pulled before commands are dropped. Default 1024. */
  maxPendingReplies?: number;
}

export const LABBOX_DEFAULTS = {
  maxLineBytes: 4096,
  maxStreamLines: 1_000_000,
  maxPendingReplies: 1024,
} as const;

export const LABBOX_HELP = 'commands: id, name, echo TEXT, stream N, prompt, help';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n', 'latin1');

/** Where the input framer is. */
type InputState = typeof IN_LINE | typeof AFTER_CR | typeof DISCARDING;
/** Collecting a line (or at the start of one). */
const IN_LINE = 0;
/** A CR just ended a line: an LF now is its second half, not an empty line. */
const AFTER_CR = 1;
/** The line passed maxLineBytes: discard up to its terminator, then answer ERR line too long. */
const DISCARDING = 2;

/** A queued answer: fixed bytes, or a `stream` whose lines are generated as they are pulled. */
type Reply =
  | { kind: 'bytes'; bytes: Buffer; offset: number }
  | { kind: 'stream'; next: number; last: number };

const ERR_UNKNOWN = Buffer.from('ERR unknown command\r\n', 'latin1');
const ERR_TOO_LONG = Buffer.from('ERR line too long\r\n', 'latin1');
const PROMPT = Buffer.from('> ', 'latin1');
const ECHO = Buffer.from('echo', 'latin1');
const STREAM = Buffer.from('stream ', 'latin1');

function checkText(option: string, value: unknown): Buffer {
  if (typeof value !== 'string' || value.length === 0 || /[\r\n]/.test(value)) {
    throw new TypeError(`LabBox option ${option} must be a non-empty string without CR or LF, got ${JSON.stringify(value)}`);
  }
  return Buffer.from(value + '\r\n', 'utf8');
}

function checkCount(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`LabBox option ${option} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export class LabBox {
  /** Lines framed so far, empty and too-long ones included (CR LF is one line). */
  linesReceived = 0;
  /** Commands dropped because maxPendingReplies answers were already waiting. */
  droppedCommands = 0;

  private readonly idLine: Buffer;
  private readonly nameLine: Buffer;
  private readonly helpLine = Buffer.from(LABBOX_HELP + '\r\n', 'latin1');
  private readonly maxLineBytes: number;
  private readonly maxStreamLines: number;
  private readonly maxPendingReplies: number;

  private state: InputState = IN_LINE;
  private readonly line: Buffer;
  private lineLength = 0;

  private replies: Reply[] = [];
  /** The current `stream` line, rendered here and copied out (across pulls when it does not fit). */
  private readonly streamLine = Buffer.alloc(32);
  private streamLineLength = 0;
  private streamLineOffset = 0;

  constructor(opts: LabBoxOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('LabBox needs an options object');
    this.idLine = checkText('studentId', opts.studentId);
    this.nameLine = checkText('name', opts.name);
    this.maxLineBytes = checkCount('maxLineBytes', opts.maxLineBytes, LABBOX_DEFAULTS.maxLineBytes);
    this.maxStreamLines = checkCount('maxStreamLines', opts.maxStreamLines, LABBOX_DEFAULTS.maxStreamLines);
    this.maxPendingReplies = checkCount('maxPendingReplies', opts.maxPendingReplies, LABBOX_DEFAULTS.maxPendingReplies);
    this.line = Buffer.alloc(this.maxLineBytes);
  }

  /** True while answers wait to be pulled with readOutput. */
  get hasOutput(): boolean {
    return this.replies.length > 0 || this.streamLineOffset < this.streamLineLength;
  }

  /** Answers waiting to be pulled (a `stream` counts as one). */
  get pendingReplies(): number {
    return this.replies.length;
  }

  /**
   * Queues a line of the box's own (a power-on banner, say) after the answers already waiting. Counts
   * against maxPendingReplies like an answer.
   */
  announce(text: string): void {
    this.queue({ kind: 'bytes', bytes: Buffer.from(text + '\r\n', 'utf8'), offset: 0 });
  }

  /** Bytes from the host, in any fragmentation. The caller may reuse `chunk` after this returns. */
  receive(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      const terminator = byte === CR || byte === LF;
      if (this.state === AFTER_CR) {
        this.state = IN_LINE;
        if (byte === LF) continue;
      }
      if (this.state === DISCARDING) {
        if (!terminator) continue;
        this.linesReceived++;
        this.lineLength = 0;
        this.queue({ kind: 'bytes', bytes: ERR_TOO_LONG, offset: 0 });
      } else if (terminator) {
        this.lineEnded();
      } else if (this.lineLength < this.maxLineBytes) {
        this.line[this.lineLength++] = byte;
        continue;
      } else {
        this.state = DISCARDING;
        continue;
      }
      // A terminator ended a line (or a discarded one).
      this.state = byte === CR ? AFTER_CR : IN_LINE;
    }
  }

  /**
   * Copies pending output into `target` (as much as fits, in order) and returns the number of bytes written;
   * 0 when there is nothing to send. Answers may be split across calls at any byte.
   */
  readOutput(target: Uint8Array): number {
    let at = 0;
    while (at < target.length) {
      if (this.streamLineOffset < this.streamLineLength) {
        const n = Math.min(target.length - at, this.streamLineLength - this.streamLineOffset);
        target.set(this.streamLine.subarray(this.streamLineOffset, this.streamLineOffset + n), at);
        this.streamLineOffset += n;
        at += n;
        continue;
      }
      const reply = this.replies[0];
      if (reply === undefined) break;
      if (reply.kind === 'bytes') {
        const n = Math.min(target.length - at, reply.bytes.length - reply.offset);
        target.set(reply.bytes.subarray(reply.offset, reply.offset + n), at);
        reply.offset += n;
        at += n;
        if (reply.offset === reply.bytes.length) this.replies.shift();
      } else {
        // Render one line into streamLine; the branch above copies it out.
        this.streamLineLength = this.streamLine.write(`line ${reply.next}\r\n`, 0, 'latin1');
        this.streamLineOffset = 0;
        if (++reply.next > reply.last) this.replies.shift();
      }
    }
    return at;
  }

  private lineEnded(): void {
    this.linesReceived++;
    const length = this.lineLength;
    this.lineLength = 0;
    if (length === 0) return;
    const line = this.line.subarray(0, length);
    if (equals(line, 'id')) this.queue({ kind: 'bytes', bytes: this.idLine, offset: 0 });
    else if (equals(line, 'name')) this.queue({ kind: 'bytes', bytes: this.nameLine, offset: 0 });
    else if (equals(line, 'help')) this.queue({ kind: 'bytes', bytes: this.helpLine, offset: 0 });
    else if (equals(line, 'prompt')) this.queue({ kind: 'bytes', bytes: PROMPT, offset: 0 });
    else if (length === ECHO.length && line.equals(ECHO)) this.queue({ kind: 'bytes', bytes: CRLF, offset: 0 });
    else if (length > ECHO.length && line[ECHO.length] === 0x20 && startsWith(line, ECHO)) {
      // A copy: `line` is the framer's buffer and is overwritten by the next command.
      const text = line.subarray(ECHO.length + 1);
      const bytes = Buffer.allocUnsafe(text.length + 2);
      bytes.set(text, 0);
      bytes[text.length] = CR;
      bytes[text.length + 1] = LF;
      this.queue({ kind: 'bytes', bytes, offset: 0 });
    } else if (startsWith(line, STREAM)) this.stream(line.subarray(STREAM.length));
    else this.queue({ kind: 'bytes', bytes: ERR_UNKNOWN, offset: 0 });
  }

  private stream(digits: Buffer): void {
    let n = 0;
    // At most 9 digits, so n stays a small exact integer; leading zeros are fine.
    if (digits.length === 0 || digits.length > 9) return this.streamUsage();
    for (const d of digits) {
      if (d < 0x30 || d > 0x39) return this.streamUsage();
      n = n * 10 + (d - 0x30);
    }
    if (n > this.maxStreamLines) return this.streamUsage();
    if (n > 0) this.queue({ kind: 'stream', next: 1, last: n });
  }

  private streamUsage(): void {
    const text = `ERR stream N needs 0 <= N <= ${this.maxStreamLines}\r\n`;
    this.queue({ kind: 'bytes', bytes: Buffer.from(text, 'latin1'), offset: 0 });
  }

  private queue(reply: Reply): void {
    if (this.replies.length >= this.maxPendingReplies) {
      this.droppedCommands++;
      return;
    }
    this.replies.push(reply);
  }
}

function equals(line: Buffer, word: string): boolean {
  if (line.length !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (line[i] !== word.charCodeAt(i)) return false;
  return true;
}

function startsWith(line: Buffer, prefix: Buffer): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix[i]) return false;
  return true;
}
