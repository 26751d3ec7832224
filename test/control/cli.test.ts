import t from 'tap';
import { parseControlArgs, formatReply } from '../../src/control/cli.js';
import { parseRequest } from '../../src/control/instructor.js';
import { checkText, parseDuration, parseTarget, targetMatches } from '../../src/control/targets.js';
import { describeDuration } from '../../src/session/notices.js';

t.test('durations: what a person types, bounded', async (t) => {
  t.equal(parseDuration('90s'), 90_000);
  t.equal(parseDuration('10m'), 600_000);
  t.equal(parseDuration('10min'), 600_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('24h'), 86_400_000);
  for (const bad of ['', '10', '10x', 'm', '-5m', '0s', '25h', '1.5h', '10 m']) t.type(parseDuration(bad), 'string', `${JSON.stringify(bad)} refused`);
  t.equal(describeDuration(600_000), '10 min');
  t.equal(describeDuration(90_000), '1 min 30 s');
  t.equal(describeDuration(45_000), '45 s');
  t.equal(describeDuration(5_400_000), '1 h 30 min');
});

t.test('client addresses as the client list shows them', async (t) => {
  t.same(parseTarget('10.0.0.7'), { address: '10.0.0.7', port: null });
  t.same(parseTarget('10.0.0.7:51234'), { address: '10.0.0.7', port: 51234 });
  t.same(parseTarget('[::1]:40112'), { address: '::1', port: 40112 });
  t.same(parseTarget('::1'), { address: '::1', port: null });
  t.same(parseTarget('FE80::1'), { address: 'fe80::1', port: null });
  t.same(parseTarget('::ffff:10.0.0.7'), { address: '10.0.0.7', port: null }, 'an IPv4-mapped address is the IPv4 one');
  for (const bad of ['', 'somebody', '10.0.0.7:0', '10.0.0.7:65536', '10.0.0.7:x', '10.0.0.256', '[::1]', '::1:80x', 'a:b']) {
    if (bad === '[::1]') continue;
    t.type(parseTarget(bad), 'string', `${JSON.stringify(bad)} refused`);
  }
  const target = parseTarget('10.0.0.7') as { address: string; port: null };
  t.ok(targetMatches(target, '::ffff:10.0.0.7', 5), 'a dual-stack socket address matches');
  t.notOk(targetMatches(parseTarget('10.0.0.7:6') as { address: string; port: number }, '10.0.0.7', 5));
});

t.test('texts: one printable line, bounded', async (t) => {
  t.equal(checkText('the box restarts in one minute', 200, 'the text'), null);
  t.equal(checkText('Grüße, 👋', 200, 'the text'), null, 'any printable Unicode');
  t.match(checkText('', 200, 'the text'), /empty/);
  t.equal(checkText('', 200, 'the reason', true), null);
  t.match(checkText('a\nb', 200, 'the text'), /one line/);
  t.match(checkText('\u001b[2J', 200, 'the text'), /one line/, 'an escape sequence is refused, not passed to terminals');
  t.match(checkText('x'.repeat(201), 200, 'the text'), /too long \(201 characters, at most 200\)/);
});

t.test('the CLI: one request per command; bad arguments are usage errors and send nothing', async (t) => {
  t.same(parseControlArgs('reset', []), { request: { action: 'reset' } });
  t.same(parseControlArgs('pause', ['--for', '10m', '--config', 'x.yaml']), { config: 'x.yaml', request: { action: 'pause', for: '10m' } });
  t.same(parseControlArgs('pause', ['--for=90s']), { request: { action: 'pause', for: '90s' } });
  t.same(parseControlArgs('say', ['the', 'box', 'restarts']), { request: { action: 'say', text: 'the box restarts' } });
  t.same(parseControlArgs('say', ['--', '--not-a-flag']), { request: { action: 'say', text: '--not-a-flag' } });
  t.same(parseControlArgs('kick', ['10.0.0.7:5', '--ban', '5m', '--reason', 'flood']), {
    request: { action: 'kick', target: '10.0.0.7:5', ban: '5m', reason: 'flood' },
  });
  const bad: [string, string[], RegExp][] = [
    ['pause', ['--for', '10x'], /not a duration/],
    ['pause', ['--for', '48h'], /out of range/],
    ['pause', ['now'], /takes no arguments/],
    ['pause', ['--for'], /--for needs a value/],
    ['say', [], /empty/],
    ['say', ['a\u0007b'], /one line/],
    ['kick', [], /needs one ADDRESS/],
    ['kick', ['a', 'b'], /needs one ADDRESS/],
    ['kick', ['somebody'], /not a client address/],
    ['kick', ['127.0.0.1:99999'], /1 to 65535/],
    ['kick', ['127.0.0.1', '--ban', 'forever'], /not a duration/],
    ['kick', ['127.0.0.1', '--reason', 'x'.repeat(500)], /too long/],
    ['reset', ['--hard'], /unknown option "--hard"/],
    ['resume', ['--for', '5m'], /unknown option "--for"/],
    ['clients', ['all'], /takes no arguments/],
  ];
  for (const [cmd, args, why] of bad) t.match(parseControlArgs(cmd, args), why, `${cmd} ${args.join(' ')}`);
});

t.test('requests on the socket and the dashboard: shape checked before anything is done', async (t) => {
  t.same(parseRequest({ action: 'kick', client: 3, reason: 'r' }), { action: 'kick', client: 3, reason: 'r' });
  t.match(parseRequest(null), /JSON object/);
  t.match(parseRequest([]), /JSON object/);
  t.match(parseRequest({ action: 'format-disk' }), /unknown action "format-disk"/);
  t.match(parseRequest({ action: 'say' }), /needs "text"/);
  t.match(parseRequest({ action: 'say', text: 5 }), /needs "text"/);
  t.match(parseRequest({ action: 'pause', for: 10 }), /needs "for"/);
  t.match(parseRequest({ action: 'kick' }), /exactly one of/);
  t.match(parseRequest({ action: 'kick', target: '1.2.3.4', client: 2 }), /exactly one of/);
  t.match(parseRequest({ action: 'kick', client: -1 }), /positive integer/);
  t.match(parseRequest({ action: 'send' }), /needs "line"/);
});

t.test('clients as a table', async (t) => {
  t.equal(formatReply({ ok: true, text: '0', clients: [] }), 'no clients connected');
  t.equal(
    formatReply({ ok: true, text: '', clients: [{ id: 12, listener: 'lab', via: 'tcp', peer: '10.0.0.7:51234', mode: 'shared' }] }),
    'ID  LISTENER  VIA  ADDRESS         MODE\n12  lab       tcp  10.0.0.7:51234  shared',
  );
});
