import t from 'tap';
import { TestClient, freePort, startDaemon } from '../support/daemon.js';

/**
 * A monitor shows an instructor what students typed and what the box answered. Bytes a student chose must
 * reach the instructor's terminal as text, never as a control sequence (window title, clear screen, OSC 52
 * clipboard writes): checked on the built daemon with the simulated box, whose `echo` sends the bytes back as a
 * device line.
 */

function config(ports: { lab: number; watch: number; program: number }): string {
  return `serial:
  path: sim:labbox
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${ports.lab}
    telnet: 'off'
  - name: watch
    host: 127.0.0.1
    port: ${ports.watch}
    mode: monitor
  - name: program
    host: 127.0.0.1
    port: ${ports.program}
    mode: monitor
    controlBytes: raw
udp: []
`;
}

const hex = (b: number): string => `\\x${b.toString(16).padStart(2, '0')}`;

t.test('every C0/C1 control byte a student sends reaches the monitor as visible text; UTF-8 text unchanged', async (t) => {
  const ports = { lab: await freePort(), watch: await freePort(), program: await freePort() };
  const d = await startDaemon(t.testdir(), config(ports));
  t.teardown(() => d.stop());

  const watch = await TestClient.connect(ports.watch);
  const program = await TestClient.connect(ports.program);
  const student = await TestClient.connect(ports.lab);
  t.teardown(() => (watch.close(), program.close(), student.close()));
  await d.notify.waitFor((m) => /\blab 1\b/.test(m.STATUS ?? '') && /\bwatch 1\b/.test(m.STATUS ?? '') && /\bprogram 1\b/.test(m.STATUS ?? ''), 5000);

  // CR and LF end a line, so they cannot be inside one; every other C0 byte, DEL, C1 as bytes and in UTF-8.
  const controls = [...Array.from({ length: 0x20 }, (_, b) => b).filter((b) => b !== 0x0a && b !== 0x0d), 0x7f];
  const c1 = Array.from({ length: 0x20 }, (_, i) => 0x80 + i);
  const attack = Buffer.from('\x1b]0;pwned\x07\x1b[2Jecho hi', 'latin1');
  const text = Buffer.from(' สวัสดี 👋 ok', 'utf8');
  const payload = Buffer.concat([
    attack,
    Buffer.from(controls),
    Buffer.from(c1),
    Buffer.from(c1.flatMap((b) => [0xc2, b])),
    text,
  ]);
  student.send(Buffer.concat([Buffer.from('echo '), payload, Buffer.from('\n')]));

  const shown =
    '\\x1b]0;pwned\\x07\\x1b[2Jecho hi' +
    controls.map(hex).join('') +
    c1.map(hex).join('') +
    c1.map((b) => `\\xc2${hex(b)}`).join('');
  const expected = Buffer.concat([Buffer.from(shown, 'latin1'), text]);
  // The student's own line, tagged with its sender, and the device's echo of it: both shown, neither acted on.
  await watch.waitFor((b) => b.includes(Buffer.concat([Buffer.from('] echo '), expected, Buffer.from('\r\n')])));
  await watch.waitFor((b) => b.includes(Buffer.concat([Buffer.from('\r\n'), expected, Buffer.from('\r\n')])));
  const seen = watch.received;
  const forbidden = seen.findIndex((b, i) => (b < 0x20 && b !== 0x0d && b !== 0x0a) || b === 0x7f || (b === 0xc2 && seen[i + 1]! >= 0x80 && seen[i + 1]! < 0xa0));
  t.equal(forbidden, -1, 'the monitor received no control byte but the CR LF that end its lines');
  t.ok(seen.includes(text), 'Thai and emoji pass unchanged');

  // The opt-out, for a monitor read by a program: the same bytes, exactly.
  await program.waitFor((b) => b.includes(Buffer.concat([Buffer.from('\r\n'), payload, Buffer.from('\r\n')])));
  t.pass('controlBytes: raw passes the bytes on unchanged');

  // The students' shared port itself is a byte pipe: the echo reaches the sender unchanged.
  await student.waitFor((b) => b.includes(Buffer.concat([payload, Buffer.from('\r\n')])));
  t.pass('a shared listener still gets device bytes unchanged');
});
