/**
 * Telnet (RFC 854/855) on the client-to-gateway direction: strips every command from a client's bytes and
 * refuses every option, so a real `telnet` client neither hangs nor leaks negotiation bytes to the device.
 * Pure: bytes in, views and replies out.
 *
 * Return shape (zero copy): `decode(chunk, onData, onReply, onCommand?)` calls
 * - `onData(view)` with subarray views of `chunk` for the data between commands (never empty; the views
 *   share the chunk's memory, so keeping one keeps the chunk alive). `IAC IAC` becomes a one-byte view of
 *   the second 0xFF. In `auto` mode a 0xFF held back at a chunk's end may come out as a shared one-byte
 *   constant: never write into a view.
 * - `onReply(bytes)` at most once per call, after all data, with the refusals to send back to the client
 *   (a fresh Buffer the caller owns).
 * - `onCommand(code)` for each two-byte command (IP = Ctrl-C, AYT, BRK, ...), so a session may act on them;
 *   the decoder itself only drops them.
 *
 * Modes: `off` never interprets (every chunk goes to onData whole). `on` always interprets. `auto` passes
 * bytes untouched, 0xFF included, until the first IAC followed by a command byte (0xF0..0xFE), and then
 * interprets for the rest of the connection. Check `active` before writing to the client: while it is
 * true, output must go through `escapeIac`.
 *
 * Observed with inetutils telnet 2.4 (test/net/fixtures/README.md): on a port given on the command line it
 * negotiates nothing and sends `id CR LF`; after the server negotiates (SGA) it sends `CR NUL` for Enter;
 * Ctrl-C in line mode sends `IAC IP IAC DO TIMING-MARK` and then discards everything the server sends
 * until TIMING-MARK is answered, which is why every DO TIMING-MARK gets its WONT.
 */

export type TelnetMode = 'auto' | 'on' | 'off';

export interface TelnetDecoderOptions {
  mode: TelnetMode;
  /** A subnegotiation (IAC SB ... IAC SE) longer than this is abandoned; default 512. */
  maxSubnegotiationBytes?: number;
  /** Refusals per option and direction before the decoder stops answering a peer stuck in a loop; default 8. */
  maxRefusalsPerOption?: number;
}

export const IAC = 0xff;
export const DONT = 0xfe;
export const DO = 0xfd;
export const WONT = 0xfc;
export const WILL = 0xfb;
export const SB = 0xfa;
export const GA = 0xf9;
export const EL = 0xf8;
export const EC = 0xf7;
export const AYT = 0xf6;
export const AO = 0xf5;
export const IP = 0xf4;
export const BRK = 0xf3;
export const DM = 0xf2;
export const NOP = 0xf1;
export const SE = 0xf0;
export const OPT_ECHO = 0x01;
export const OPT_SGA = 0x03;
export const OPT_TIMING_MARK = 0x06;

const CR = 0x0d;
const NUL = 0x00;

/** Bytes pass untouched (auto before the first command; off always). */
const RAW = 0;
/** Auto mode held back a 0xFF at a chunk's end: the next byte decides whether it starts a command. */
const RAW_IAC = 1;
/** Telnet data. */
const DATA = 2;
/** Saw IAC in telnet data. */
const GET_COMMAND = 3;
/** Saw IAC WILL/WONT/DO/DONT; the option byte comes next. */
const GET_OPTION = 4;
/** Inside IAC SB ... (skipped, never stored). */
const SUBNEG = 5;
/** Saw IAC inside a subnegotiation. */
const SUBNEG_IAC = 6;

type State = typeof RAW | typeof RAW_IAC | typeof DATA | typeof GET_COMMAND | typeof GET_OPTION |
  typeof SUBNEG | typeof SUBNEG_IAC;

const HELD_IAC: Buffer = Buffer.from([IAC]);

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`TelnetDecoder: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export class TelnetDecoder {
  readonly mode: TelnetMode;
  readonly maxSubnegotiationBytes: number;
  readonly maxRefusalsPerOption: number;
  /** Subnegotiations abandoned for exceeding maxSubnegotiationBytes. */
  droppedSubnegotiations = 0;
  /** DO/WILL requests left unanswered because the peer kept repeating them. */
  ignoredRequests = 0;

  private state: State;
  private verb = 0;
  private subnegBytes = 0;
  /** The last data byte delivered was CR, so a NUL right after it is telnet's CR padding. */
  private lastWasCr = false;
  private readonly refusedDo = new Uint8Array(256);
  private readonly refusedWill = new Uint8Array(256);
  /** Pairs (verb, option) to send back at the end of the current decode call. */
  private readonly replies: number[] = [];

  constructor(opts: TelnetDecoderOptions) {
    const mode: unknown = opts?.mode;
    if (mode !== 'auto' && mode !== 'on' && mode !== 'off') {
      throw new TypeError(`TelnetDecoder: mode must be 'auto', 'on' or 'off', got ${String(mode)}`);
    }
    this.mode = mode;
    this.maxSubnegotiationBytes = positiveInteger(opts.maxSubnegotiationBytes, 'maxSubnegotiationBytes', 512);
    this.maxRefusalsPerOption = positiveInteger(opts.maxRefusalsPerOption, 'maxRefusalsPerOption', 8);
    this.state = mode === 'on' ? DATA : RAW;
  }

  /** True once bytes to this client must be IAC-escaped (mode on, or auto after the first command). */
  get active(): boolean {
    return this.state !== RAW && this.state !== RAW_IAC;
  }

  decode(
    chunk: Buffer,
    onData: (view: Buffer) => void,
    onReply: (bytes: Buffer) => void,
    onCommand?: (code: number) => void,
  ): void {
    const n = chunk.length;
    if (this.mode === 'off') {
      if (n > 0) onData(chunk);
      return;
    }
    let i = 0;
    let start = 0;
    while (i < n) {
      switch (this.state) {
        case RAW: {
          const k = chunk.indexOf(IAC, i);
          if (k === -1) {
            i = n;
            break;
          }
          if (k + 1 === n) {
            if (k > start) onData(chunk.subarray(start, k));
            this.state = RAW_IAC;
            i = n;
            start = n;
            break;
          }
          const next = chunk[k + 1]!;
          if (next >= SE && next <= DONT) {
            if (k > start) onData(chunk.subarray(start, k));
            this.state = GET_COMMAND;
            i = k + 1;
          } else {
            i = k + 1;
          }
          break;
        }
        case RAW_IAC: {
          const next = chunk[i]!;
          if (next >= SE && next <= DONT) {
            this.state = GET_COMMAND;
          } else {
            onData(HELD_IAC);
            this.state = RAW;
            start = i;
          }
          break;
        }
        case DATA: {
          for (; i < n; i++) {
            const b = chunk[i]!;
            if (b === IAC) break;
            if (b === NUL && this.lastWasCr) {
              if (i > start) onData(chunk.subarray(start, i));
              start = i + 1;
              this.lastWasCr = false;
              continue;
            }
            this.lastWasCr = b === CR;
          }
          if (i === n) break;
          if (i > start) onData(chunk.subarray(start, i));
          i++;
          this.state = GET_COMMAND;
          break;
        }
        case GET_COMMAND: {
          const b = chunk[i++]!;
          if (b === IAC) {
            onData(chunk.subarray(i - 1, i));
            this.lastWasCr = false;
            this.state = DATA;
            start = i;
          } else if (b >= WILL) {
            this.verb = b;
            this.state = GET_OPTION;
          } else if (b === SB) {
            this.subnegBytes = 0;
            this.state = SUBNEG;
          } else if (b >= SE) {
            this.state = DATA;
            start = i;
            onCommand?.(b);
          } else {
            // IAC before a non-command byte is a broken client: drop the IAC, keep the byte as data.
            i--;
            this.state = DATA;
            start = i;
          }
          break;
        }
        case GET_OPTION: {
          this.negotiate(this.verb, chunk[i++]!);
          this.state = DATA;
          start = i;
          break;
        }
        case SUBNEG: {
          const k = chunk.indexOf(IAC, i);
          const end = k === -1 ? n : k;
          const room = this.maxSubnegotiationBytes - this.subnegBytes;
          if (end - i > room) {
            // A client that never sends IAC SE must not swallow the session: past the bound, bytes are
            // data again (counted from the option byte, so the cut does not depend on chunking).
            i += room;
            this.abandonSubnegotiation();
            start = i;
          } else {
            this.subnegBytes += end - i;
            i = end;
            if (k !== -1) {
              i++;
              this.state = SUBNEG_IAC;
            }
          }
          break;
        }
        case SUBNEG_IAC: {
          const b = chunk[i]!;
          if (b === SE) {
            i++;
            this.state = DATA;
            start = i;
          } else if (b === IAC) {
            i++;
            if (this.subnegBytes === this.maxSubnegotiationBytes) {
              this.abandonSubnegotiation();
              onData(chunk.subarray(i - 1, i));
              start = i;
            } else {
              this.subnegBytes++;
              this.state = SUBNEG;
            }
          } else {
            // RFC 855 leaves this undefined; ending the subnegotiation and reading the command is what
            // keeps a truncated SB from eating the rest of the session.
            this.state = GET_COMMAND;
          }
          break;
        }
      }
    }
    if ((this.state === DATA || this.state === RAW) && n > start) onData(chunk.subarray(start, n));
    if (this.replies.length > 0) onReply(this.takeReplies());
  }

  private abandonSubnegotiation(): void {
    this.droppedSubnegotiations++;
    this.lastWasCr = false;
    this.state = DATA;
  }

  private negotiate(verb: number, option: number): void {
    // We never enable anything, so WONT/DONT change nothing and get no answer (RFC 1143).
    if (verb === DO) {
      if (this.mayRefuse(this.refusedDo, option)) this.replies.push(WONT, option);
    } else if (verb === WILL) {
      if (this.mayRefuse(this.refusedWill, option)) this.replies.push(DONT, option);
    }
  }

  private mayRefuse(counts: Uint8Array, option: number): boolean {
    // telnet sends DO TIMING-MARK with every Ctrl-C and hides our output until it is answered.
    if (option === OPT_TIMING_MARK) return true;
    const count = counts[option]!;
    if (count >= this.maxRefusalsPerOption) {
      this.ignoredRequests++;
      return false;
    }
    counts[option] = count + 1;
    return true;
  }

  private takeReplies(): Buffer {
    const pairs = this.replies;
    const out = Buffer.allocUnsafe((pairs.length / 2) * 3);
    let o = 0;
    for (let p = 0; p < pairs.length; p += 2) {
      out[o++] = IAC;
      out[o++] = pairs[p]!;
      out[o++] = pairs[p + 1]!;
    }
    pairs.length = 0;
    return out;
  }
}

/**
 * Doubles every 0xFF for a client whose decoder is `active`. Returns the same view when there is none
 * (the common case: no copy), else one new Buffer.
 */
export function escapeIac(view: Buffer): Buffer {
  let k = view.indexOf(IAC);
  if (k === -1) return view;
  let count = 0;
  for (let j = k; j !== -1; j = view.indexOf(IAC, j + 1)) count++;
  const out = Buffer.allocUnsafe(view.length + count);
  let from = 0;
  let o = 0;
  while (k !== -1) {
    o += view.copy(out, o, from, k + 1);
    out[o++] = IAC;
    from = k + 1;
    k = view.indexOf(IAC, from);
  }
  view.copy(out, o, from);
  return out;
}
