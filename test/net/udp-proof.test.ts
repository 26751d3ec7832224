import t from 'tap';
import { networkOf } from '../../src/net/allow.js';
import { AMPLIFICATION, COOKIE_LIFETIME_MS, CookieJar, SendBudget, cookieNotice, resolveTrusted, wireOverhead } from '../../src/net/udp-proof.js';

const secret = Buffer.alloc(32, 7);

t.test('a cookie is good for its address and port, until it expires', async (t) => {
  let now = 1_800_000_000_000;
  const jar = new CookieJar(secret, () => now);
  const cookie = jar.mint('203.0.113.9', 5555);
  t.match(cookie, /^sg-[0-9a-z]+-[A-Za-z0-9_-]{16}$/);
  t.equal(jar.check(Buffer.from(cookie), '203.0.113.9', 5555), 'valid');
  t.equal(jar.check(Buffer.from(cookieNotice(cookie)), '203.0.113.9', 5555), 'valid', 'the whole notice line pasted back');
  t.equal(jar.check(Buffer.from(`${cookie}\n`), '203.0.113.9', 5555), 'valid', 'typed into nc -u');
  t.equal(jar.check(Buffer.from(cookie), '203.0.113.9', 5556), 'forged', 'another port');
  t.equal(jar.check(Buffer.from(cookie), '203.0.113.10', 5555), 'forged', 'another address');
  t.equal(new CookieJar(Buffer.alloc(32, 8), () => now).check(Buffer.from(cookie), '203.0.113.9', 5555), 'forged', 'another secret (a restart)');
  const tampered = cookie.slice(0, -1) + (cookie.endsWith('A') ? 'B' : 'A');
  t.equal(jar.check(Buffer.from(tampered), '203.0.113.9', 5555), 'forged', 'one character changed');
  const later = cookie.replace(/^sg-[0-9a-z]+-/, `sg-${Math.ceil(now / 1000 + 86400).toString(36)}-`);
  t.equal(jar.check(Buffer.from(later), '203.0.113.9', 5555), 'forged', 'an expiry moved forward');
  now += COOKIE_LIFETIME_MS - 1000;
  t.equal(jar.check(Buffer.from(cookie), '203.0.113.9', 5555), 'valid', 'still good just before it expires');
  now += 2000;
  t.equal(jar.check(Buffer.from(cookie), '203.0.113.9', 5555), 'expired');
  t.equal(jar.check(Buffer.from('id'), '203.0.113.9', 5555), 'none');
  t.equal(jar.check(Buffer.from('sg-nothing'), '203.0.113.9', 5555), 'none');
  t.throws(() => new CookieJar(Buffer.alloc(8), () => now), /at least 16 bytes/);
});

t.test('the cookie notice fits what an empty IPv4 datagram buys', async (t) => {
  const jar = new CookieJar(secret, () => Date.now());
  const notice = Buffer.from(cookieNotice(jar.mint('255.255.255.255', 65535)));
  const budget = new SendBudget(wireOverhead('255.255.255.255'));
  budget.received(0);
  t.ok(budget.mayReceive(notice.length), `${notice.length} bytes + 28 <= 3 x 28`);
  budget.sent(notice.length);
  t.notOk(budget.mayReceive(0), 'and nothing more');
  t.ok(budget.ratio <= AMPLIFICATION);
});

t.test('the budget keeps what is sent within 3x what was received, headers counted', async (t) => {
  t.equal(wireOverhead('10.0.0.7'), 28);
  t.equal(wireOverhead('::ffff:10.0.0.7'), 28, 'an IPv4-mapped address travels as IPv4');
  t.equal(wireOverhead('2001:db8::1'), 48);
  const b = new SendBudget(28);
  t.notOk(b.mayReceive(0), 'nothing before anything was received');
  b.received(100); // 128 on the wire: 384 may go out
  t.ok(b.mayReceive(384 - 28));
  t.notOk(b.mayReceive(384 - 27));
  b.sent(200);
  t.ok(b.mayReceive(384 - 228 - 28));
  t.notOk(b.mayReceive(384 - 228 - 27));
});

t.test('trusted words resolve to ranges', async (t) => {
  t.same(resolveTrusted(['loopback'], ['192.168.1.0/24']), ['127.0.0.0/8', '::1/128']);
  t.same(resolveTrusted(['local-networks', '10.0.0.0/8'], ['192.168.1.0/24', '127.0.0.0/8']), ['192.168.1.0/24', '127.0.0.0/8', '10.0.0.0/8']);
  t.same(resolveTrusted(['loopback', 'local-networks'], ['127.0.0.0/8', '::1/128']), ['127.0.0.0/8', '::1/128'], 'no duplicates');
  t.same(resolveTrusted([], ['192.168.1.0/24']), []);
});

t.test('networkOf: an interface address becomes its network', async (t) => {
  t.equal(networkOf('192.168.1.7/24'), '192.168.1.0/24');
  t.equal(networkOf('10.1.2.3/8'), '10.0.0.0/8');
  t.equal(networkOf('127.0.0.1/8'), '127.0.0.0/8');
  t.equal(networkOf('::1/128'), '::1/128');
  t.equal(networkOf('fe80::1c2:3ff:fe04:506/64'), 'fe80::/64');
  t.equal(networkOf('2001:db8:1:2::5/56'), '2001:db8:1::/56');
  t.equal(networkOf('nonsense'), null);
  t.equal(networkOf('10.0.0.1/40'), null);
});
