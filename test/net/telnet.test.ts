import t, { type Test } from 'tap';
import {
  TelnetDecoder,
  escapeIac,
  type TelnetMode,
  type TelnetDecoderOptions,
  IP,
  AYT,
  BRK,
  NOP,
  GA,
  AO,
  EL,
  EC,
  DM,
} from '../../src/net/telnet.js';
import { recorded } from './fixtures/recorded.js';

interface Decoded {
  data: string;
  replies: string;
  commands: number[];
  replyCalls: number;
}

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Feeds chunks to one decoder and gathers what comes out (data joined: view boundaries are free). */
function run(mode: TelnetMode, chunks: Buffer[], decoder = new TelnetDecoder({ mode })): Decoded {
  const data: Buffer[] = [];
  const replies: Buffer[] = [];
  const commands: number[] = [];
  for (const chunk of chunks) {
    decoder.decode(
      chunk,
      (view) => {
        if (view.length === 0) throw new Error('empty data view');
        data.push(Buffer.from(view));
      },
      (reply) => replies.push(reply),
      (code) => commands.push(code),
    );
  }
  return {
    data: Buffer.concat(data).toString('hex'),
    replies: Buffer.concat(replies).toString('hex'),
    commands,
    replyCalls: replies.length,
  };
}

function bytewise(input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i++) out.push(input.subarray(i, i + 1));
  return out;
}

/** The same input whole, per given chunk, byte by byte and cut in two at every point must agree. */
function checkSplits(
  t: Test,
  mode: TelnetMode,
  chunks: Buffer[],
  expected: Omit<Decoded, 'replyCalls'>,
  options: Omit<TelnetDecoderOptions, 'mode'> = {},
): void {
  const whole = Buffer.concat(chunks);
  const feed = (parts: Buffer[]) => {
    const d = run(mode, parts, new TelnetDecoder({ ...options, mode }));
    return { data: d.data, replies: d.replies, commands: d.commands };
  };
  t.same(feed(chunks), expected, 'per recorded chunk');
  t.same(feed([whole]), expected, 'whole');
  t.same(feed(bytewise(whole)), expected, 'byte by byte');
  for (let cut = 1; cut < whole.length; cut++) {
    const got = feed([whole.subarray(0, cut), whole.subarray(cut)]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.same(got, expected, `cut at ${cut}`);
      return;
    }
  }
  t.pass('every two-way cut agrees');
}

t.test('recorded telnet clients decode to clean data and polite refusals', async (t) => {
  const cases: [string, TelnetMode, Omit<Decoded, 'replyCalls'>][] = [
    // telnet on an explicit port negotiates nothing: on and auto see plain data
    ['telnet-tty-id.hex', 'on', { data: '69640d0a', replies: '', commands: [] }],
    ['telnet-tty-id.hex', 'auto', { data: '69640d0a', replies: '', commands: [] }],
    // piped CR becomes CR NUL: on drops the NUL; auto has seen no command yet and passes it untouched
    ['telnet-pipe-id-crlf.hex', 'on', { data: '69640d0d0a', replies: '', commands: [] }],
    ['telnet-pipe-id-crlf.hex', 'auto', { data: '69640d000d0a', replies: '', commands: [] }],
    ['telnet-pipe-id-lf.hex', 'on', { data: '69640d0a', replies: '', commands: [] }],
    // character mode after negotiation: Enter is CR NUL; DO SGA is refused, WONT ECHO needs no answer
    ['telnet-tty-negotiated-id.hex', 'on', { data: '69640d', replies: 'fffc03', commands: [] }],
    ['telnet-tty-negotiated-id.hex', 'auto', { data: '69640d', replies: 'fffc03', commands: [] }],
    ['telnet-tty-negotiated-ctrlc.hex', 'on', { data: '616203', replies: 'fffc03', commands: [] }],
    // Ctrl-C in line mode: IAC IP and DO TIMING-MARK, which must be answered every time
    ['telnet-tty-ctrlc.hex', 'on', { data: '', replies: 'fffc06', commands: [IP] }],
    ['telnet-tty-ctrlc.hex', 'auto', { data: '', replies: 'fffc06', commands: [IP] }],
    ['telnet-tty-ctrlc-twice-id.hex', 'auto', { data: '69640d0a', replies: 'fffc06fffc06', commands: [IP, IP] }],
    // the client's DO ECHO answered a WILL ECHO from the recorder; this decoder offered nothing, so refuses
    ['telnet-server-will-echo.hex', 'on', { data: '69640d0a', replies: 'fffc01', commands: [] }],
    [
      'telnet-port23-ctrlc-id.hex',
      'auto',
      {
        data: '69640d0a',
        replies: 'fffc26fffe26fffc03fffe18fffe1ffffe20fffe21fffe22fffe27fffc05fffc06',
        commands: [IP],
      },
    ],
    [
      'telnet-port23-refused.hex',
      'on',
      {
        data: '69640d0a',
        replies: 'fffc26fffe26fffc03fffe18fffe1ffffe20fffe21fffe22fffe27fffc05fffc06',
        commands: [IP],
      },
    ],
    ['telnet-pipe-ctrlc.hex', 'on', { data: '6162030d0a', replies: '', commands: [] }],
    ['nc-id.hex', 'auto', { data: '69640a', replies: '', commands: [] }],
  ];
  for (const [file, mode, expected] of cases) {
    await t.test(`${file} in mode ${mode}`, async (t) => checkSplits(t, mode, recorded(file), expected));
  }
});

t.test('replies come once per decode call, after the data', (t) => {
  const chunks = recorded('telnet-port23-id.hex');
  const decoder = new TelnetDecoder({ mode: 'on' });
  const order: string[] = [];
  decoder.decode(
    Buffer.concat(chunks),
    (view) => order.push(`data ${view.toString('hex')}`),
    (reply) => order.push(`reply ${reply.length}`),
  );
  t.same(order, ['data 69640d0a', 'reply 30']);
  t.end();
});

t.test('mode off passes every byte untouched and never answers', (t) => {
  const input = hex('fffd01 6964 ff ff 0d00 fff4');
  const decoder = new TelnetDecoder({ mode: 'off' });
  const views: Buffer[] = [];
  decoder.decode(input, (v) => views.push(v), () => t.fail('no reply in mode off'));
  t.equal(views.length, 1);
  t.equal(views[0], input, 'the chunk itself, no copy');
  t.equal(decoder.active, false);
  t.end();
});

t.test('auto passes raw bytes, 0xFF included, until IAC + command byte', (t) => {
  t.same(run('auto', [hex('41ff42 ffff 43')]), { data: '41ff42ffff43', replies: '', commands: [], replyCalls: 0 });
  // a 0xFF at a chunk's end is held until the next byte decides
  t.same(run('auto', [hex('41ff'), hex('42')]).data, '41ff42');
  checkSplits(t, 'auto', [hex('41ff42 fffd01 ff')], { data: '41ff42', replies: 'fffc01', commands: [] });
  const decoder = new TelnetDecoder({ mode: 'auto' });
  t.equal(decoder.active, false);
  const got = run('auto', [hex('41ff'), hex('fd01 ffff 42')], decoder);
  t.same(got, { data: '41ff42', replies: 'fffc01', commands: [], replyCalls: 1 }, 'IAC IAC is one 0xFF once switched');
  t.equal(decoder.active, true, 'stays switched');
  t.same(run('auto', [hex('ff')], decoder).data, '', 'a lone 0xFF now waits as IAC');
  t.end();
});

t.test('auto: a held 0xFF followed by a non-command is emitted before the next byte', (t) => {
  const decoder = new TelnetDecoder({ mode: 'auto' });
  const order: string[] = [];
  const sink = (v: Buffer) => order.push(v.toString('hex'));
  decoder.decode(hex('61ff'), sink, () => {});
  t.same(order, ['61']);
  decoder.decode(hex('ff62'), sink, () => {});
  t.same(order.join(''), '61ffff62');
  t.equal(decoder.active, false);
  t.end();
});

t.test('every two-byte command is dropped and reported', (t) => {
  const codes = [NOP, DM, BRK, IP, AO, AYT, EC, EL, GA];
  const input = Buffer.concat(codes.map((c) => Buffer.from([0x61, 0xff, c])));
  checkSplits(t, 'on', [input], { data: '616161616161616161', replies: '', commands: codes });
  t.same(run('on', [hex('61 fff0 62')]), { data: '6162', replies: '', commands: [0xf0], replyCalls: 0 }, 'stray SE');
  t.end();
});

t.test('negotiation: DO -> WONT, WILL -> DONT, WONT/DONT unanswered', (t) => {
  checkSplits(t, 'on', [hex('fffd18 fffb1f fffc01 fffe03 41')], { data: '41', replies: 'fffc18fffe1f', commands: [] });
  t.end();
});

t.test('a peer repeating a request is answered a bounded number of times, TIMING-MARK always', (t) => {
  const decoder = new TelnetDecoder({ mode: 'on', maxRefusalsPerOption: 3 });
  const doEcho = hex('fffd01');
  let replies = '';
  for (let k = 0; k < 10; k++) decoder.decode(doEcho, () => {}, (r) => (replies += r.toString('hex')));
  t.equal(replies, 'fffc01'.repeat(3));
  t.equal(decoder.ignoredRequests, 7);
  replies = '';
  for (let k = 0; k < 10; k++) decoder.decode(hex('fffd06'), () => {}, (r) => (replies += r.toString('hex')));
  t.equal(replies, 'fffc06'.repeat(10), 'every Ctrl-C gets its TIMING-MARK answer');
  replies = '';
  for (let k = 0; k < 5; k++) decoder.decode(hex('fffb01'), () => {}, (r) => (replies += r.toString('hex')));
  t.equal(replies, 'fffe01'.repeat(3), 'WILL counted apart from DO');
  t.end();
});

t.test('subnegotiation is skipped, IAC IAC inside it included', (t) => {
  checkSplits(t, 'on', [hex('41 fffa18 00 787465726d ffff 00 fff0 42')], { data: '4142', replies: '', commands: [] });
  t.end();
});

t.test('an IAC inside a subnegotiation before a command ends it and runs the command', (t) => {
  checkSplits(t, 'on', [hex('fffa18 0061 fffd01 42')], { data: '42', replies: 'fffc01', commands: [] });
  t.end();
});

t.test('an endless subnegotiation is abandoned at the bound, never buffered', (t) => {
  const decoder = new TelnetDecoder({ mode: 'on', maxSubnegotiationBytes: 16 });
  const body = Buffer.alloc(40, 0x61);
  const got = run('on', [hex('fffa18'), body.subarray(0, 10), body.subarray(10)], decoder);
  // the option byte and 15 'a' fill the 16 bytes; the other 25 'a' are data again
  t.equal(got.data, Buffer.alloc(25, 0x61).toString('hex'), 'bytes after the bound are data again');
  t.equal(decoder.droppedSubnegotiations, 1);
  const again = run('on', [hex('fffa18'), Buffer.alloc(15, 0x62), hex('fff0 43')], decoder);
  t.equal(again.data, '43', 'exactly at the bound is still a subnegotiation');
  t.equal(decoder.droppedSubnegotiations, 1);
  const over = hex('fffa18' + '62'.repeat(16) + 'fff0 43');
  checkSplits(t, 'on', [over], { data: '6243', replies: '', commands: [0xf0] }, { maxSubnegotiationBytes: 16 });
  const escapedAtBound = hex('fffa18' + '62'.repeat(15) + 'ffff 44');
  checkSplits(t, 'on', [escapedAtBound], { data: 'ff44', replies: '', commands: [] }, { maxSubnegotiationBytes: 16 });
  t.end();
});

t.test('CR NUL becomes CR, also across chunks; CR LF and lone NUL stay', (t) => {
  checkSplits(t, 'on', [hex('610d00 620d0a 00 63 0d ff f1 00')], {
    data: '610d620d0a00630d',
    replies: '',
    commands: [NOP],
  });
  t.end();
});

t.test('IAC before a non-command byte keeps the byte', (t) => {
  checkSplits(t, 'on', [hex('61 ff41 62')], { data: '614162', replies: '', commands: [] });
  t.end();
});

t.test('data views are views of the input chunk, never copies', (t) => {
  const chunk = hex('6162 fff1 6364 ffff 65');
  const decoder = new TelnetDecoder({ mode: 'on' });
  const views: Buffer[] = [];
  decoder.decode(chunk, (v) => views.push(v), () => {});
  t.same(views.map((v) => v.toString('hex')), ['6162', '6364', 'ff', '65']);
  for (const v of views) t.equal(v.buffer, chunk.buffer, 'shares the chunk memory');
  t.equal(views[2]!.byteOffset, chunk.byteOffset + 7, 'IAC IAC is the second 0xFF itself');
  t.end();
});

t.test('escapeIac doubles 0xFF and copies nothing when there is none', (t) => {
  const plain = Buffer.from('uid=0(root)\r\n');
  t.equal(escapeIac(plain), plain, 'same view back');
  t.equal(escapeIac(hex('61ff62')).toString('hex'), '61ffff62');
  t.equal(escapeIac(hex('ff')).toString('hex'), 'ffff');
  t.equal(escapeIac(hex('ffff00ff')).toString('hex'), 'ffffffff00ffff');
  const view = hex('00ff01ff').subarray(1, 3);
  t.equal(escapeIac(view).toString('hex'), 'ffff01', 'respects a view offset');
  // what escapeIac writes, the decoder reads back unchanged
  const all = Buffer.alloc(256);
  for (let b = 0; b < 256; b++) all[b] = b;
  const back = run('on', bytewise(escapeIac(all)));
  t.equal(back.replies, '');
  t.equal(back.commands.length, 0);
  t.equal(back.data, all.toString('hex').replace('0d00', '0d'), 'round trip (CR NUL is the one telnet rewrite)');
  t.end();
});

t.test('programmer mistakes throw at construction, naming the option', (t) => {
  t.throws(() => new TelnetDecoder({ mode: 'yes' as TelnetMode }), { name: 'TypeError', message: /mode must be/ });
  t.throws(() => new TelnetDecoder({ mode: 'on', maxSubnegotiationBytes: 0 }), /maxSubnegotiationBytes/);
  t.throws(() => new TelnetDecoder({ mode: 'on', maxRefusalsPerOption: 1.5 }), /maxRefusalsPerOption/);
  t.end();
});
