import t from 'tap';
import { didYouMean, editDistance, formatErrors } from '../../src/config/errors.js';
import { canonicalHost, cidrProblem, isIpAddress, isWildcardHost, parseIPv6 } from '../../src/config/formats.js';

t.test('CIDR: IPv4 and IPv6, optional prefix, with a reason when wrong', (t) => {
  for (const good of ['10.0.0.0/8', '192.168.1.5', '0.0.0.0/0', '::1', '::', 'fd00::/8', '2001:db8::1/128',
    '::ffff:192.168.1.1', '1:2:3:4:5:6:7:8', 'fe80::1:2/64']) {
    t.equal(cidrProblem(good), null, good);
  }
  const bad: [string, string][] = [
    ['10.0.0.0/33', 'an IPv4 prefix is at most /32'],
    ['fd00::/129', 'an IPv6 prefix is at most /128'],
    ['10.0.0.0/', 'the prefix after / must be a number from 0 to 32'],
    ['10.0.0.0/08', 'the prefix after / must be a number from 0 to 32'],
    ['300.1.2.3', ''],
    ['10.0.0', ''],
    ['010.0.0.1', ''],
    ['1:2:3:4:5:6:7:8:9', ''],
    ['1::2::3', ''],
    ['1:2:3:4:5:6:7::8', ''],
    ['gggg::', ''],
    ['', ''],
    [' 10.0.0.1', 'remove the spaces'],
    ['example.com/24', ''],
  ];
  for (const [text, reason] of bad) t.equal(cidrProblem(text), reason, JSON.stringify(text));
  t.end();
});

t.test('IP helpers', (t) => {
  t.same(parseIPv6('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
  t.equal(canonicalHost('0:0:0:0:0:0:0:1'), canonicalHost('::1'));
  t.equal(isWildcardHost('::'), true);
  t.equal(isWildcardHost('0.0.0.0'), true);
  t.equal(isWildcardHost('::1'), false);
  t.equal(isIpAddress('localhost'), false);
  t.end();
});

t.test('did you mean: case first, then the nearest within a third of the length', (t) => {
  t.equal(didYouMean('baudrate', ['path', 'baudRate', 'parity']), 'baudRate');
  t.equal(didYouMean('mdoe', ['mode', 'name']), 'mode');
  t.equal(didYouMean('prot', ['port', 'host']), 'port');
  t.equal(didYouMean('colour', ['mode', 'name', 'host']), undefined);
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(editDistance('ab', 'ba'), 1);
  t.end();
});

t.test('formatErrors: one line each, newlines in a message flattened', (t) => {
  t.equal(
    formatErrors([
      { file: 'c.yaml', path: 'a', message: 'two\nlines', line: 3 },
      { file: 'c.yaml', path: '', message: 'first', line: 1, column: 2 },
      { file: 'c.yaml', path: 'b', message: 'env', env: 'X' },
    ]),
    'c.yaml:1:2: first\nc.yaml:3: a: two lines\n$X: b: env',
  );
  t.end();
});
