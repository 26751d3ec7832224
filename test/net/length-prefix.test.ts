import t, { type Test } from 'tap';
import { LengthPrefixDecoder, encodeLengthPrefix } from '../../src/net/length-prefix.js';

const bin = (text: string): Buffer => Buffer.from(text, 'latin1');
const bytewise = (input: Buffer): Buffer[] => Array.from(input, (_, i) => input.subarray(i, i + 1));

function decode(chunks: Buffer[], decoder = new LengthPrefixDecoder()): string[] {
  const events: string[] = [];
  for (const chunk of chunks) {
    decoder.push(
      chunk,
      (message) => events.push(`msg:${message.toString('latin1')}`),
      (reason) => events.push(`malformed:${reason}`),
    );
  }
  return events;
}

function checkSplits(t: Test, input: Buffer, expected: string[], digits = 3): void {
  const make = () => new LengthPrefixDecoder({ lengthDigits: digits });
  t.same(decode([input], make()), expected, 'whole');
  t.same(decode(bytewise(input), make()), expected, 'byte by byte');
  for (let cut = 0; cut <= input.length; cut++) {
    const got = decode([input.subarray(0, cut), input.subarray(cut)], make());
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.same(got, expected, `cut at ${cut}`);
      return;
    }
  }
  t.pass('every two-way cut agrees');
}

t.test('three digits then that many bytes is one message, split anywhere', (t) => {
  checkSplits(t, bin('005hello007, world000002\r\n'), ['msg:hello', 'msg:, world', 'msg:', 'msg:\r\n']);
  t.end();
});

t.test('other prefix widths', (t) => {
  checkSplits(t, bin('5hello0'), ['msg:hello', 'msg:'], 1);
  checkSplits(t, bin('00003abc'), ['msg:abc'], 5);
  t.end();
});

t.test('a message inside one chunk is a view of it; a spanning one is gathered', (t) => {
  const decoder = new LengthPrefixDecoder();
  const chunk = bin('003abc004de');
  const seen: { text: string; buffer: ArrayBufferLike }[] = [];
  const keep = (m: Buffer) => seen.push({ text: m.toString(), buffer: m.buffer });
  decoder.push(chunk, keep, () => t.fail('not malformed'));
  decoder.push(bin('fg'), keep, () => t.fail('not malformed'));
  t.same(seen.map((s) => s.text), ['abc', 'defg']);
  t.equal(seen[0]!.buffer, chunk.buffer);
  t.not(seen[1]!.buffer, chunk.buffer);
  t.end();
});

t.test('the largest message (999 bytes) passes; content bytes are not checked', (t) => {
  const content = Buffer.alloc(999, 0x39);
  content[0] = 0x0a;
  content[998] = 0xff;
  const input = Buffer.concat([bin('999'), content, bin('001x')]);
  const got: Buffer[] = [];
  const decoder = new LengthPrefixDecoder();
  for (const piece of [input.subarray(0, 500), input.subarray(500, 501), input.subarray(501)]) {
    decoder.push(piece, (m) => got.push(Buffer.from(m)), () => t.fail('not malformed'));
  }
  t.equal(got.length, 2);
  t.ok(got[0]!.equals(content));
  t.equal(got[1]!.toString(), 'x');
  t.end();
});

t.test('a non-digit in the prefix is malformed once, with a reason, and the rest is ignored', (t) => {
  checkSplits(t, bin('002hi0x5hello003abc'), [
    'msg:hi',
    "malformed:length prefix byte 2 of 3 is 'x' (0x78), not a decimal digit: each message must start with " +
      '3 ASCII digits giving its length (e.g. 005hello)',
  ]);
  const decoder = new LengthPrefixDecoder({ lengthDigits: 2 });
  t.same(decode([bin('\r\n')], decoder), [
    'malformed:length prefix byte 1 of 2 is 0x0d, not a decimal digit: each message must start with 2 ASCII ' +
      'digits giving its length (e.g. 05hello)',
  ]);
  t.equal(decoder.failed, true);
  t.same(decode([bin('03abc')], decoder), [], 'nothing after a failure');
  t.end();
});

t.test('encodeLengthPrefix gives [prefix, content] without copying', (t) => {
  const content = bin('hello');
  const parts = encodeLengthPrefix(content);
  t.equal(parts.length, 2);
  t.equal(parts[0]!.toString(), '005');
  t.equal(parts[1], content, 'the content itself');
  t.same(encodeLengthPrefix(Buffer.alloc(0), 2).map((p) => p.toString()), ['00', '']);
  t.same(encodeLengthPrefix(bin('abc'), 1).map((p) => p.toString()), ['3', 'abc']);
  t.end();
});

t.test('content over the maximum becomes several messages of views', (t) => {
  const content = Buffer.alloc(2500);
  for (let i = 0; i < content.length; i++) content[i] = i & 0xff;
  const parts = encodeLengthPrefix(content, 3);
  t.same(parts.filter((_, i) => i % 2 === 0).map((p) => p.toString()), ['999', '999', '502']);
  for (let i = 1; i < parts.length; i += 2) t.equal(parts[i]!.buffer, content.buffer, 'part is a view');
  const got: Buffer[] = [];
  const decoder = new LengthPrefixDecoder();
  for (const b of bytewise(Buffer.concat(parts))) decoder.push(b, (m) => got.push(Buffer.from(m)), () => t.fail());
  t.ok(Buffer.concat(got).equals(content), 'decodes back to the content');
  t.same(encodeLengthPrefix(bin('abcdefghijk'), 1).map((p) => p.toString()), ['9', 'abcdefghi', '2', 'jk']);
  t.end();
});

t.test('stop ends decoding after a message; the rest, pushed later, decodes on', (t) => {
  const decoder = new LengthPrefixDecoder();
  const chunk = bin('003one003two000005thr');
  const got: string[] = [];
  let room = 1;
  const take = (m: Buffer): void => {
    got.push(m.toString());
    room--;
  };
  const used = decoder.push(chunk, take, () => t.fail(), () => room <= 0);
  t.equal(used, 6, 'stopped right after the first message');
  t.same(got, ['one']);
  room = 2;
  const rest = chunk.subarray(used);
  const used2 = decoder.push(rest, take, () => t.fail(), () => room <= 0);
  t.equal(used2, 9, 'then after two more (an empty message counts)');
  room = 10;
  t.equal(decoder.push(rest.subarray(used2), take, () => t.fail(), () => room <= 0), 6, 'a message still incomplete consumes all');
  decoder.push(bin('ee'), take, () => t.fail());
  t.same(got, ['one', 'two', '', 'three'], 'nothing lost, nothing twice, in order');
  t.equal(new LengthPrefixDecoder().push(bin('x12'), () => t.fail(), () => {}, () => true), 3, 'malformed consumes everything');
  t.end();
});

t.test('programmer mistakes throw, naming the option', (t) => {
  t.throws(() => new LengthPrefixDecoder({ lengthDigits: 0 }), { name: 'TypeError', message: /lengthDigits/ });
  t.throws(() => new LengthPrefixDecoder({ lengthDigits: 10 }), /lengthDigits/);
  t.throws(() => encodeLengthPrefix(bin('x'), 2.5), /encodeLengthPrefix: lengthDigits/);
  t.equal(new LengthPrefixDecoder({ lengthDigits: 4 }).maxLength, 9999);
  t.end();
});
