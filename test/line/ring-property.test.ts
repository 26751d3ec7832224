import t from 'tap';
import { LineRing, RecordFlag, type Delimiter } from '../../src/line/ring.js';
import { FakeClock } from '../support/fake-clock.js';
import { Random, seedFromEnv } from '../support/random.js';

/**
 * Property: whatever the chunking, the ring frames a stream exactly like a simple whole-stream reference
 * splitter, for every delimiter mode, while wrapping its (small) buffer many times.
 * Replay a failure with SEED=<printed seed> npm test.
 */

interface Piece {
  content: Buffer;
  term: Buffer;
  fragment: boolean;
}

const CR = 0x0d;
const LF = 0x0a;

function reference(stream: Buffer, delimiter: Delimiter, max: number): Piece[] {
  const out: Piece[] = [];
  const addLine = (content: Buffer, term: Buffer) => {
    let c = content;
    while (c.length > max) {
      out.push({ content: c.subarray(0, max), term: Buffer.alloc(0), fragment: true });
      c = c.subarray(max);
    }
    out.push({ content: c, term, fragment: false });
  };
  let start = 0;
  let i = 0;
  while (i < stream.length) {
    const b = stream[i]!;
    let termLen = 0;
    if (delimiter === 'lf' && b === LF) termLen = 1;
    else if (delimiter === 'cr' && b === CR) termLen = 1;
    else if (delimiter === 'crlf' && b === CR && stream[i + 1] === LF) termLen = 2;
    else if (delimiter === 'any' && (b === CR || b === LF)) termLen = b === CR && stream[i + 1] === LF ? 2 : 1;
    if (termLen > 0) {
      addLine(stream.subarray(start, i), stream.subarray(i, i + termLen));
      i += termLen;
      start = i;
    } else {
      i++;
    }
  }
  // The unterminated tail: whole fragments of it have been delivered; the rest is still pending.
  let tail = stream.subarray(start);
  while (tail.length > max + (delimiter === 'crlf' && tail[tail.length - 1] === CR ? 1 : 0)) {
    out.push({ content: tail.subarray(0, max), term: Buffer.alloc(0), fragment: true });
    tail = tail.subarray(max);
  }
  return out;
}

/** Random lines with random terminators and binary content, biased towards the bytes that matter. */
function makeStream(rnd: Random, size: number, max: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  const terms = ['\r\n', '\n', '\r', '\r\r\n', '\n\r', ''];
  while (total < size) {
    const kind = rnd.int(0, 9);
    const len = kind === 0 ? rnd.int(max, max * 3) : kind === 1 ? 0 : rnd.int(0, Math.min(200, max));
    const content = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) {
      const r = rnd.int(0, 19);
      content[i] = r === 0 ? CR : r === 1 ? LF : r === 2 ? 0x00 : r === 3 ? 0xff : rnd.int(0x20, 0x7e);
    }
    const term = Buffer.from(rnd.pick(terms), 'latin1');
    parts.push(content, term);
    total += content.length + term.length;
  }
  return Buffer.concat(parts);
}

function chunked(rnd: Random, stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  const style = rnd.int(0, 3);
  for (let i = 0; i < stream.length; ) {
    const n = style === 0 ? 1 : style === 1 ? rnd.int(1, 16) : style === 2 ? rnd.int(1, 8192) : rnd.int(1, 300);
    chunks.push(stream.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

const seed = seedFromEnv();
t.comment(`seed ${seed} (replay with SEED=${seed})`);
const rnd = new Random(seed);
const modes: Delimiter[] = ['crlf', 'lf', 'cr', 'any', 'none'];
const CASES = 2000;

t.test(`${CASES} random streams in random chunks frame like the reference, in every mode`, (t) => {
  let failures = 0;
  for (let c = 0; c < CASES && failures < 3; c++) {
    const delimiter = modes[c % modes.length]!;
    const max = rnd.pick([16, 17, 64, 255, 1024]);
    const capacity = 8 * max + rnd.int(0, 4096);
    const stream = makeStream(rnd, rnd.int(0, 6000), max);
    const got: Piece[] = [];
    const ring: LineRing = new LineRing({
      capacityBytes: capacity,
      maxLineBytes: max,
      delimiter,
      idleFlushMs: 0,
      clock: new FakeClock(),
      onRecord: (seq) => {
        const flags = ring.flags(seq);
        const piece = {
          content: Buffer.from(ring.content(seq)),
          term: Buffer.from(ring.terminator(seq)),
          fragment: (flags & RecordFlag.FRAGMENT) !== 0,
        };
        if (flags & RecordFlag.TERM_TAIL) {
          // The LF of a CR LF split across chunks belongs to the line before it.
          const prev = got[got.length - 1]!;
          prev.term = Buffer.concat([prev.term, piece.term]);
        } else {
          got.push(piece);
        }
      },
    });
    for (const chunk of chunked(rnd, stream)) ring.push(chunk);

    if (delimiter === 'none') {
      const joined = Buffer.concat(got.map((p) => p.content));
      if (!joined.equals(stream) || got.some((p) => p.content.length > max || p.term.length > 0)) {
        failures++;
        t.fail(`case ${c} (none): raw records do not reassemble the stream`);
      }
      continue;
    }
    const want = reference(stream, delimiter, max);
    const same =
      got.length === want.length &&
      got.every((p, i) => p.content.equals(want[i]!.content) && p.term.equals(want[i]!.term) && p.fragment === want[i]!.fragment);
    if (!same) {
      failures++;
      const firstDiff = got.findIndex(
        (p, i) => !want[i] || !p.content.equals(want[i]!.content) || !p.term.equals(want[i]!.term) || p.fragment !== want[i]!.fragment,
      );
      t.fail(`case ${c}: ${delimiter}, max ${max}, capacity ${capacity}: records differ from the reference`, {
        seed,
        gotCount: got.length,
        wantCount: want.length,
        firstDiff,
        got: got[firstDiff] && { c: got[firstDiff]!.content.toString('latin1'), t: got[firstDiff]!.term.toString('hex') },
        want: want[firstDiff] && { c: want[firstDiff]!.content.toString('latin1'), t: want[firstDiff]!.term.toString('hex') },
      });
    }
  }
  if (failures === 0) t.pass(`all ${CASES} cases framed exactly like the reference`);
  t.end();
});
