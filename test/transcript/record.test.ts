import t from 'tap';
import { RecordFlag } from '../../src/line/ring.js';
import { TranscriptRecorder } from '../../src/transcript/recorder.js';
import {
  formatRecord,
  isoTime,
  make,
  parseRecord,
  payloadBytes,
  renderRecord,
  visible,
  visibleText,
  type ClientRef,
  type TranscriptRecord,
} from '../../src/transcript/record.js';
import type { TranscriptWriter } from '../../src/transcript/writer.js';

const T = '2026-12-01T10:02:14.120Z';
const alice: ClientRef = { via: 'tcp', listener: 'class', address: '10.0.0.7', port: 51234 };
const v6: ClientRef = { via: 'udp', listener: 'udp', address: 'fe80::1', port: 5000 };

t.test('every kind of record is one line of JSON and parses back to itself', (t) => {
  const records: TranscriptRecord[] = [
    make.device(T, Buffer.from('6510500000')),
    make.device(T, Buffer.from('> '), 'partial'),
    make.device(T, Buffer.from('xxxx'), 'fragment', true),
    make.device(T, Buffer.from([0xff, 0x00, 0x41]), 'raw'),
    make.client(T, alice, Buffer.from('id')),
    make.client(T, v6, Buffer.from('a\r\nb\u2028')),
    make.connect(T, alice),
    make.disconnect(T, alice, { in: 3, out: 5, lost: 0 }),
    make.disconnect(T, v6, { why: 'lease ended' }),
    make.refused(T, alice, '1 clients are connected already (maxClients)'),
    make.notice(T, alice, 'line refused: the device queue is full'),
    make.device_state(T, true, 'no such file /dev/ttyUSB0'),
    make.device_state(T, false, '/dev/ttyUSB0'),
    make.reload(T, true),
    make.reload(T, false, 'c.yaml:3:1: bogus: unknown section'),
    make.lifecycle(T, 'start', 'device sim:labbox'),
    make.lifecycle(T, 'stop'),
    make.dropped(T, 42),
    make.instructor(T, 'local user ann (uid 1000)', 'said "the box restarts" to 3 client(s)'),
  ];
  const kinds = new Set<string>();
  for (const r of records) {
    const line = formatRecord(r);
    t.ok(line.endsWith('\n') && line.indexOf('\n') === line.length - 1, `one line: ${r.k}`);
    t.same(parseRecord(line.trimEnd()), r);
    kinds.add(r.k);
  }
  t.equal(kinds.size, 13, 'all thirteen kinds');
  t.end();
});

t.test('line bytes: valid UTF-8 as text, anything else as b64; both give the bytes back', (t) => {
  const utf8 = Buffer.from('สวัสดี \x1b[31m');
  const bin = Buffer.from([0x68, 0x69, 0xff, 0xfe, 0x0d]);
  const a = make.client(T, alice, utf8) as { text?: string; b64?: string };
  const b = make.client(T, alice, bin) as { text?: string; b64?: string };
  t.equal(a.text, 'สวัสดี \x1b[31m');
  t.equal(b.b64, bin.toString('base64'));
  t.same(payloadBytes(a), utf8);
  t.same(payloadBytes(b), bin);
  t.end();
});

t.test('what a person sees: control bytes, C1 and bytes outside UTF-8 as \\xNN (as monitors show them), never raw', (t) => {
  t.equal(visibleText('hello \x1b[2J\x07 \\ x'), 'hello \\x1b[2J\\x07 \\ x');
  t.equal(visibleText('a\tb\r\nc\x7f\u009b'), 'a\\x09b\\x0d\\x0ac\\x7f\\xc2\\x9b');
  t.equal(visibleText('สวัสดี é'), 'สวัสดี é', 'printable Unicode is left alone');
  t.equal(visible({ b64: Buffer.from([0x68, 0x1b, 0xff, 0x5c]).toString('base64') }), 'h\\x1b\\xff\\');
  for (const r of [make.client(T, alice, Buffer.from('\x1b]0;pwned\x07')), make.refused(T, alice, '\x1b[H'), make.notice(T, alice, '\x1bc')]) {
    t.notMatch(renderRecord(r), /[\x00-\x1f\x7f]/, `no control byte in: ${renderRecord(r)}`);
  }
  t.end();
});

t.test('rendered as a chat', (t) => {
  const at = (() => {
    const d = new Date(T);
    const two = (n: number) => String(n).padStart(2, '0');
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  })();
  t.equal(renderRecord(make.client(T, alice, Buffer.from('id'))), `${at} tcp:class 10.0.0.7:51234 > id`);
  t.equal(renderRecord(make.device(T, Buffer.from('6510500000'))), `${at} device < 6510500000`);
  t.equal(renderRecord(make.device(T, Buffer.from('> '), 'partial')), `${at} device < >  (no line end yet)`);
  t.equal(renderRecord(make.connect(T, v6)), `${at} udp:udp [fe80::1]:5000 connected`);
  t.equal(renderRecord(make.disconnect(T, alice, { in: 3, out: 5, lost: 2 })), `${at} tcp:class 10.0.0.7:51234 disconnected (3 in, 5 out, 2 missed)`);
  t.equal(renderRecord(make.refused(T, alice, 'not in the allow list')), `${at} tcp:class 10.0.0.7:51234 refused: not in the allow list`);
  t.equal(renderRecord(make.notice(T, alice, 'missed 3 lines')), `${at} tcp:class 10.0.0.7:51234 ! missed 3 lines`);
  t.equal(renderRecord(make.device_state(T, true, 'unplugged')), `${at} device away: unplugged`);
  t.equal(renderRecord(make.reload(T, false, 'bad')), `${at} gateway rejected a reload: bad`);
  t.equal(renderRecord(make.dropped(T, 1)), `${at} transcript: 1 record dropped here (the disk could not keep up)`);
  t.equal(
    renderRecord(make.instructor(T, 'dashboard 10.0.0.2:5151 (web web)', 'said "hi\u001b[2J" to 2 client(s)')),
    `${at} instructor: said "hi\\x1b[2J" to 2 client(s) (asked by dashboard 10.0.0.2:5151 (web web))`,
    "an instructor's action, control bytes shown, not executed",
  );
  t.end();
});

t.test('parseRecord refuses what is not a record: a torn line, garbage, unknown kinds, bad times', (t) => {
  const good = formatRecord(make.device(T, Buffer.from('x'))).trimEnd();
  for (const bad of [good.slice(0, -3), '', 'hello', '[1,2]', '{"t":"x","k":"device"}', '{"t":"2026-12-01T10:00:00Z","k":"nope"}', '{"k":"device"}']) {
    t.equal(parseRecord(bad), null, JSON.stringify(bad));
  }
  t.end();
});

t.test('the recorder: device records skip the LF tail of a split CR LF, mark partial/fragment/continuation; device state only on change', (t) => {
  const lines: string[] = [];
  const writer = {
    append: (l: string) => lines.push(l),
    // As the writer's (its own test checks it byte for byte): printable ASCII only, `"` and `\` escaped.
    appendJsonLine: (head: Uint8Array, body: Uint8Array) => {
      const text = Buffer.from(body).toString('latin1');
      if (/[^\x20-\x7e]/.test(text)) return false;
      lines.push(`${Buffer.from(head).toString('latin1')}${text.replace(/["\\]/g, (c) => `\\${c}`)}"}\n`);
      return true;
    },
  } as unknown as TranscriptWriter;
  let wall = Date.parse(T);
  const rec = new TranscriptRecorder(writer, () => wall);
  rec.deviceLine(Buffer.from('a'), 0);
  rec.deviceLine(Buffer.from(''), RecordFlag.TERM_TAIL);
  rec.deviceLine(Buffer.from('> '), RecordFlag.PARTIAL);
  rec.deviceLine(Buffer.from('rest'), RecordFlag.CONTINUATION);
  rec.deviceLine(Buffer.from('long'), RecordFlag.FRAGMENT);
  rec.deviceLine(Buffer.from('chunk'), RecordFlag.RAW);
  wall += 1500;
  rec.deviceState('OPENING', 'opening');
  rec.deviceState('OPEN', '/dev/ttyUSB0');
  rec.deviceState('OPEN', '/dev/ttyUSB0');
  rec.deviceState('WAITING', 'unplugged');
  rec.deviceState('FAILED', 'permission denied');
  rec.deviceState('OPEN', 'back');
  rec.clientLine(alice, Buffer.from('id'));
  rec.reloaded(true);
  const rs = lines.map((l) => parseRecord(l.trimEnd())!);
  t.same(
    rs.map((r) => [r.k, 'part' in r ? r.part : undefined, 'cont' in r ? r.cont : undefined]),
    [
      ['device', undefined, undefined],
      ['device', 'partial', undefined],
      ['device', undefined, true],
      ['device', 'fragment', undefined],
      ['device', 'raw', undefined],
      ['device-back', undefined, undefined],
      ['device-away', undefined, undefined],
      ['device-back', undefined, undefined],
      ['client', undefined, undefined],
      ['reload', undefined, undefined],
    ],
  );
  t.equal(rs[0]!.t, T, 'stamped with the injected wall clock');
  t.equal(lines[0], formatRecord(make.device(T, Buffer.from('a'))), 'the fast path writes the very bytes of the general one');
  lines.length = 0;
  for (const text of ['plain line 1', 'say "hi"', 'back\\slash', 'tab\there', 'é', '\x7f', '']) {
    rec.deviceLine(Buffer.from(text), 0);
    t.equal(lines.pop(), formatRecord(make.device(isoTime(wall), Buffer.from(text))), `same record either way: ${JSON.stringify(text)}`);
  }
  t.equal(rs[5]!.t, '2026-12-01T10:02:15.620Z');
  t.end();
});
