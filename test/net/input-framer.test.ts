import t, { type Test } from 'tap';
import { InputFramer } from '../../src/net/input-framer.js';
import { TelnetDecoder, type TelnetMode } from '../../src/net/telnet.js';
import { recorded } from './fixtures/recorded.js';
import { Random } from '../support/random.js';

/** Events as text: `line:<hex>` or `overflow:<n>`, so sequences compare in one t.same. */
function frame(chunks: Buffer[], maxLineBytes = 64, framer = new InputFramer({ maxLineBytes })): string[] {
  const events: string[] = [];
  for (const chunk of chunks) {
    framer.push(
      chunk,
      (line) => events.push(`line:${line.toString('latin1')}`),
      (dropped) => events.push(`overflow:${dropped}`),
    );
  }
  return events;
}

const bytewise = (input: Buffer): Buffer[] => Array.from(input, (_, i) => input.subarray(i, i + 1));
const bin = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Whole, byte by byte and every two-way cut must give `expected`. */
function checkSplits(t: Test, input: Buffer, expected: string[], maxLineBytes = 64): void {
  t.same(frame([input], maxLineBytes), expected, 'whole');
  t.same(frame(bytewise(input), maxLineBytes), expected, 'byte by byte');
  for (let cut = 0; cut <= input.length; cut++) {
    const got = frame([input.subarray(0, cut), input.subarray(cut)], maxLineBytes);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.same(got, expected, `cut at ${cut}`);
      return;
    }
  }
  t.pass('every two-way cut agrees');
}

t.test('every terminator ends a line, which excludes it', (t) => {
  checkSplits(t, bin('a\nb\r\nc\r\0d\re'), ['line:a', 'line:b', 'line:c', 'line:d']);
  t.end();
});

t.test('empty lines are lines (a user pressing Enter)', (t) => {
  checkSplits(t, bin('\n\r\n\r\0\rx\n\n'), ['line:', 'line:', 'line:', 'line:', 'line:x', 'line:']);
  t.end();
});

t.test('CR CR LF is a line and an empty line; LF CR is two line ends too', (t) => {
  checkSplits(t, bin('a\r\r\nb\n\rc\n'), ['line:a', 'line:', 'line:b', 'line:', 'line:c']);
  t.end();
});

t.test('a line is delivered at its CR, before the next byte arrives', (t) => {
  const framer = new InputFramer({ maxLineBytes: 16 });
  t.same(frame([bin('id\r')], 16, framer), ['line:id']);
  t.same(frame([bin('\n')], 16, framer), [], 'the LF in the next chunk belongs to that CR');
  t.same(frame([bin('\r')], 16, framer), ['line:']);
  t.same(frame([Buffer.alloc(0)], 16, framer), [], 'an empty chunk does not forget the CR');
  t.same(frame([bin('\0x\n')], 16, framer), ['line:x'], 'nor does a NUL after it become data');
  t.end();
});

t.test('a line inside one chunk is a view of it; a spanning line uses one lazily made buffer', (t) => {
  const framer = new InputFramer({ maxLineBytes: 32 });
  const chunk = bin('abc\ndef');
  const lines: { text: string; buffer: ArrayBufferLike; offset: number }[] = [];
  const keep = (line: Buffer) => lines.push({ text: line.toString(), buffer: line.buffer, offset: line.byteOffset });
  framer.push(chunk, keep, () => t.fail('no overflow'));
  t.equal(lines[0]!.buffer, chunk.buffer, 'shares the chunk');
  t.equal(lines[0]!.offset, chunk.byteOffset);
  t.equal(framer.pending, 3);
  const next = bin('gh\nij');
  framer.push(next, keep, () => t.fail('no overflow'));
  t.equal(lines[1]!.text, 'defgh');
  t.not(lines[1]!.buffer, chunk.buffer, 'a spanning line is gathered in the framer');
  t.not(lines[1]!.buffer, next.buffer);
  framer.push(bin('k\n'), keep, () => t.fail('no overflow'));
  t.equal(lines[2]!.text, 'ijk');
  t.equal(lines[2]!.buffer, lines[1]!.buffer, 'the same buffer is reused, no new allocation');
  t.equal(framer.pending, 0);
  t.end();
});

t.test('an over-long line is dropped whole, reported once with its length, then framing resumes', (t) => {
  checkSplits(t, bin('12345\n123456\nok\n'), ['line:12345', 'overflow:6', 'line:ok'], 5);
  checkSplits(t, bin('1234567890\r\0ab\r\n'), ['overflow:10', 'line:ab'], 5);
  checkSplits(t, bin('x\r1234567\r\n\n'), ['line:x', 'overflow:7', 'line:'], 5);
  t.end();
});

t.test('memory stays bounded: a megabyte without terminator is counted, not kept', (t) => {
  const framer = new InputFramer({ maxLineBytes: 100 });
  const block = Buffer.alloc(1024, 0x61);
  const events: string[] = [];
  for (let k = 0; k < 1024; k++) {
    framer.push(block, () => events.push('line'), (n) => events.push(`overflow:${n}`));
    if (framer.pending > 100) t.fail(`pending ${framer.pending}`);
  }
  t.same(events, []);
  t.equal(framer.pending, 0, 'nothing held while discarding');
  t.same(frame([bin('\nnext\n')], 100, framer), ['overflow:1048576', 'line:next']);
  t.end();
});

t.test('end() delivers an unterminated last line, or its overflow', (t) => {
  const framer = new InputFramer({ maxLineBytes: 4 });
  const events: string[] = [];
  const onLine = (line: Buffer) => events.push(`line:${line.toString()}`);
  const onOverflow = (n: number) => events.push(`overflow:${n}`);
  framer.push(bin('a\nbc'), onLine, onOverflow);
  framer.end(onLine, onOverflow);
  framer.end(onLine, onOverflow);
  framer.push(bin('toolong'), onLine, onOverflow);
  framer.end(onLine, onOverflow);
  framer.push(bin('\r'), onLine, onOverflow);
  framer.end(onLine, onOverflow);
  framer.push(bin('\nz\n'), onLine, onOverflow);
  t.same(events, ['line:a', 'line:bc', 'overflow:7', 'line:', 'line:', 'line:z'], 'end() also forgets a pending CR');
  t.end();
});

t.test('recorded clients through TelnetDecoder give the line id', (t) => {
  const cases: [string, TelnetMode, string[]][] = [
    ['telnet-tty-id.hex', 'auto', ['line:id']],
    ['telnet-tty-id.hex', 'on', ['line:id']],
    ['telnet-tty-negotiated-id.hex', 'on', ['line:id']],
    ['telnet-tty-negotiated-id.hex', 'auto', ['line:id']],
    ['telnet-port23-ctrlc-id.hex', 'auto', ['line:id']],
    ['telnet-tty-ctrlc-twice-id.hex', 'on', ['line:id']],
    ['telnet-pipe-id-lf.hex', 'auto', ['line:id']],
    // printf 'id\r\n' through telnet is CR NUL CR LF: id and an empty line, decoded or raw
    ['telnet-pipe-id-crlf.hex', 'on', ['line:id', 'line:']],
    ['telnet-pipe-id-crlf.hex', 'auto', ['line:id', 'line:']],
    ['telnet-pipe-ctrlc.hex', 'off', ['line:ab\x03']],
    ['nc-id.hex', 'auto', ['line:id']],
  ];
  for (const [file, mode, expected] of cases) {
    const chunks = recorded(file);
    for (const split of [chunks, bytewise(Buffer.concat(chunks))]) {
      const decoder = new TelnetDecoder({ mode });
      const framer = new InputFramer({ maxLineBytes: 64 });
      const events: string[] = [];
      for (const chunk of split) {
        decoder.decode(
          chunk,
          (view) =>
            framer.push(
              view,
              (line) => events.push(`line:${line.toString('latin1')}`),
              (n) => events.push(`overflow:${n}`),
            ),
          () => {},
        );
      }
      t.same(events, expected, `${file} (${mode}, ${split.length} chunks)`);
    }
  }
  t.end();
});

t.test('programmer mistakes throw at construction', (t) => {
  t.throws(() => new InputFramer({ maxLineBytes: 0 }), { name: 'TypeError', message: /maxLineBytes/ });
  t.throws(() => new InputFramer({ maxLineBytes: 2.5 }), /maxLineBytes/);
  t.end();
});

// ---------------------------------------------------------------------------------------------- property

/** The obvious splitter over the whole input, for comparison. */
function reference(input: Buffer, max: number): string[] {
  const events: string[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i];
    if (b !== 0x0a && b !== 0x0d) continue;
    const length = i - start;
    events.push(length > max ? `overflow:${length}` : `line:${input.toString('latin1', start, i)}`);
    if (b === 0x0d && (input[i + 1] === 0x0a || input[i + 1] === 0x00)) i++;
    start = i + 1;
  }
  return events;
}

t.test('random lines, terminators and chunk sizes agree with a reference splitter', (t) => {
  const seed = process.env.CODEC_SEED ? Number(process.env.CODEC_SEED) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
  t.comment(`seed ${seed} (replay: CODEC_SEED=${seed})`);
  const rng = new Random(seed);
  const random = (): number => rng.next();
  const int = (n: number) => Math.floor(random() * n);
  const terminators = ['\n', '\r\n', '\r\0', '\r'];
  const cases = 3000;
  let failures = 0;
  for (let c = 0; c < cases && failures === 0; c++) {
    const max = 1 + int(random() < 0.5 ? 16 : 600);
    const parts: Buffer[] = [];
    const lineCount = int(30);
    for (let l = 0; l < lineCount; l++) {
      const length = random() < 0.1 ? 0 : int(random() < 0.8 ? max + 2 : max * 3);
      const line = Buffer.allocUnsafe(length);
      // bytes from the whole range but no terminator, so lines are where the generator put them
      for (let k = 0; k < length; k++) {
        let b = int(random() < 0.7 ? 95 : 256) + (random() < 0.7 ? 32 : 0);
        if (b > 255 || b === 0x0a || b === 0x0d) b = 0x41;
        line[k] = b;
      }
      parts.push(line, Buffer.from(terminators[int(4)]!, 'latin1'));
      // sometimes stray NUL or LF after a terminator, the awkward neighbours
      if (random() < 0.1) parts.push(Buffer.from(random() < 0.5 ? '\0' : '\n', 'latin1'));
    }
    if (random() < 0.3) parts.push(Buffer.from('tail', 'latin1'));
    const input = Buffer.concat(parts);
    const chunks: Buffer[] = [];
    const chunkMax = random() < 0.5 ? 1 + int(8) : 1 + int(8192);
    for (let i = 0; i < input.length; ) {
      const size = 1 + int(chunkMax);
      chunks.push(input.subarray(i, i + size));
      i += size;
    }
    const got = frame(chunks, max);
    const want = reference(input, max);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      failures++;
      t.same(got, want, `case ${c}: max ${max}, ${input.length} bytes in ${chunks.length} chunks (seed ${seed})`);
    }
  }
  t.equal(failures, 0, `${cases} cases`);
  t.end();
});

t.test('a stop hook ends framing right after a line; pushing the rest later gives the same lines', (t) => {
  const input = bin('a\r\nbb\rc\r\0\n\nlong-line-over-the-limit\nd\r');
  const want = frame([input], 8);
  for (let cut = 0; cut <= input.length; cut++) {
    const framer = new InputFramer({ maxLineBytes: 8 });
    const events: string[] = [];
    let stops = 0;
    let badStops = 0;
    for (const chunk of [input.subarray(0, cut), input.subarray(cut)]) {
      let rest = chunk;
      for (;;) {
        // stop after every line, as a paused client would be
        let delivered = false;
        const used = framer.push(
          rest,
          (line) => ((delivered = true), events.push(`line:${line.toString('latin1')}`)),
          (dropped) => ((delivered = true), events.push(`overflow:${dropped}`)),
          () => delivered,
        );
        if (used === rest.length) break;
        if (!delivered) badStops++;
        stops++;
        rest = rest.subarray(used);
      }
    }
    if (JSON.stringify(events) !== JSON.stringify(want)) {
      t.same(events, want, `cut at ${cut}`);
      return t.end();
    }
    if (badStops > 0) {
      t.fail(`cut at ${cut}: stopped ${badStops} times without a line`);
      return t.end();
    }
    if (cut === 0) t.ok(stops >= 5, `it did stop mid-chunk (${stops} times)`);
  }
  t.pass('every cut, stopping after each line, agrees with framing it whole');
  t.end();
});
