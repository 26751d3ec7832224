import t from 'tap';
import { firstUnsafeByte, makeVisible } from '../../src/net/visible.js';

const show = (bytes: number[] | Buffer): string => makeVisible(Buffer.from(bytes)).toString('latin1');
const hex = (b: number): string => `\\x${b.toString(16).padStart(2, '0')}`;

t.test('every C0 control byte and DEL is shown as \\xNN', async (t) => {
  for (let b = 0; b < 0x20; b++) t.equal(show([0x41, b, 0x42]), `A${hex(b)}B`, `0x${b.toString(16)}`);
  t.equal(show([0x7f]), '\\x7f', 'DEL');
});

t.test('C1 controls: as single bytes and encoded as UTF-8 (C2 80 to C2 9F)', async (t) => {
  for (let b = 0x80; b < 0xa0; b++) {
    t.equal(show([b]), hex(b), `single byte 0x${b.toString(16)}`);
    t.equal(show([0xc2, b]), `\\xc2${hex(b)}`, `U+00${b.toString(16)} in UTF-8`);
  }
  t.equal(show([0xc2, 0xa0]), '\xc2\xa0', 'U+00A0 (no-break space) is text, not a control');
});

t.test('the terminal escape a student sent in the issue becomes plain text', async (t) => {
  const attack = Buffer.from('\x1b]0;pwned\x07\x1b[2Jecho hi', 'latin1');
  t.equal(makeVisible(attack).toString(), '\\x1b]0;pwned\\x07\\x1b[2Jecho hi');
  const osc52 = Buffer.from('\x1b]52;c;ZXZpbA==\x1b\\', 'latin1');
  t.equal(makeVisible(osc52).toString(), '\\x1b]52;c;ZXZpbA==\\x1b\\');
});

t.test('ordinary UTF-8 passes unchanged, as the same buffer (no copy)', async (t) => {
  for (const text of ['hello world', 'สวัสดีครับ', '👋🏽 héllo ✓', 'tab\\x09 is literal text here', '~!@#$%^&*()_+{}|:"<>?']) {
    const buf = Buffer.from(text, 'utf8');
    t.equal(makeVisible(buf), buf, text);
    t.equal(firstUnsafeByte(buf), -1);
  }
});

t.test('bytes outside well-formed UTF-8 are shown, the well-formed ones around them kept', async (t) => {
  const cases: [number[], string][] = [
    [[0xff], '\\xff'],
    [[0xfe, 0x41], '\\xfeA'],
    [[0xc3, 0x28], '\\xc3('], // a lead byte without its continuation
    [[0xc0, 0xaf], '\\xc0\\xaf'], // overlong '/'
    [[0xe0, 0x80, 0xaf], '\\xe0\\x80\\xaf'], // overlong
    [[0xed, 0xa0, 0x80], '\\xed\\xa0\\x80'], // a UTF-16 surrogate
    [[0xf4, 0x90, 0x80, 0x80], '\\xf4\\x90\\x80\\x80'], // past U+10FFFF
    [[0xe0, 0xb8], '\\xe0\\xb8'], // a Thai letter cut short at the end
    [[0xe0, 0xb8, 0xaa, 0x1b], '\xe0\xb8\xaa\\x1b'], // ส then ESC
  ];
  for (const [bytes, want] of cases) t.equal(show(bytes), want, Buffer.from(bytes).toString('hex'));
});

t.test('nothing that leaves makeVisible can act on a terminal (random bytes)', async (t) => {
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 8) & 0xff;
  for (let n = 0; n < 500; n++) {
    const input = Buffer.from(Array.from({ length: 1 + (rnd() % 40) }, rnd));
    const out = makeVisible(input);
    t.equal(firstUnsafeByte(out), -1);
    if (firstUnsafeByte(input) < 0) t.equal(out, input);
  }
});
