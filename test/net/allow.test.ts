import t from 'tap';
import { BlockList, createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { AllowList, parseCidr, validateCidr } from '../../src/net/allow.js';

t.test('valid ranges parse', (t) => {
  for (const text of [
    '10.0.0.0/8',
    '192.168.1.7',
    '192.168.1.7/32',
    '0.0.0.0/0',
    '::1/128',
    '::1',
    '::/0',
    'fe80::/10',
    '2001:db8::/32',
    '2001:DB8:0:0:0:0:0:1/128',
    '::ffff:10.0.0.0/104',
    '64:ff9b::192.0.2.0/120',
  ]) {
    t.equal(validateCidr(text), null, text);
  }
  const cidr = parseCidr('10.0.0.0/8');
  t.ok(!(cidr instanceof Error) && cidr.family === 'ipv4' && cidr.prefix === 104);
  t.end();
});

t.test('bad ranges say which text and what is wrong', (t) => {
  const cases: [string, string][] = [
    ['', 'bad address range "": it is empty'],
    [' 10.0.0.0/8', 'bad address range " 10.0.0.0/8": it has spaces around it'],
    ['10.0.0.0/33', 'bad address range "10.0.0.0/33": prefix /33 is too long for an IPv4 address (0 to 32)'],
    ['::/129', 'bad address range "::/129": prefix /129 is too long for an IPv6 address (0 to 128)'],
    ['10.0.0.0/', 'bad address range "10.0.0.0/": the prefix length after "/" must be a number from 0 to 32, got ""'],
    ['10.0.0.0/8/8', 'bad address range "10.0.0.0/8/8": the prefix length after "/" must be a number from 0 to 32, got "8/8"'],
    ['10.0.0/8', 'bad address range "10.0.0/8": an IPv4 address has 4 dot-separated numbers, "10.0.0" has 3'],
    ['10.0.0.256', 'bad address range "10.0.0.256": "256" in "10.0.0.256" is over 255'],
    ['10.0.0.010', 'bad address range "10.0.0.010": "010" in "10.0.0.010" has a leading zero (octal or decimal is ambiguous); write 10'],
    ['10..0.1', 'bad address range "10..0.1": "" in "10..0.1" is not a number from 0 to 255'],
    ['localhost', 'bad address range "localhost": "localhost" is not an IPv4 or IPv6 address (names are not accepted here)'],
    ['192.168.1.7/24', 'bad address range "192.168.1.7/24": it has bits set after the first 24; the range is 192.168.1.0/24'],
    ['fe80::1/10', 'bad address range "fe80::1/10": it has bits set after the first 10; the range is fe80::/10'],
    ['2001:db8:1::/16', 'bad address range "2001:db8:1::/16": it has bits set after the first 16; the range is 2001::/16'],
    ['1:2:3:4:5:6:7:9/127', 'bad address range "1:2:3:4:5:6:7:9/127": it has bits set after the first 127; the range is 1:2:3:4:5:6:7:8/127'],
    ['1::2::3', 'bad address range "1::2::3": "1::2::3" uses "::" more than once'],
    ['1:2:3:4:5:6:7', 'bad address range "1:2:3:4:5:6:7": "1:2:3:4:5:6:7" has 7 of 8 IPv6 groups (use "::" for zeros)'],
    ['1:2:3:4::5:6:7:8', 'bad address range "1:2:3:4::5:6:7:8": "1:2:3:4::5:6:7:8" has too many IPv6 groups for "::"'],
    ['fe80::g', 'bad address range "fe80::g": "g" in "fe80::g" is not an IPv6 group of 1 to 4 hex digits'],
    ['fe80::12345', 'bad address range "fe80::12345": "12345" in "fe80::12345" is not an IPv6 group of 1 to 4 hex digits'],
    ['fe80::1%eth0', 'bad address range "fe80::1%eth0": a zone ("%eth0") cannot be part of an allowed range'],
  ];
  for (const [text, message] of cases) {
    t.equal(validateCidr(text), message, JSON.stringify(text));
    const parsed = parseCidr(text);
    t.ok(parsed instanceof Error, 'parseCidr returns the Error, never throws');
  }
  t.end();
});

t.test('matching: IPv4, IPv6, mapped IPv4 from dual-stack sockets, zones', (t) => {
  const list = new AllowList(['10.0.0.0/8', '192.168.1.7', '::1/128', 'fe80::/10', '2001:db8::/32']);
  const cases: [string, boolean][] = [
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['::FFFF:a01:203', true],
    ['11.0.0.1', false],
    ['::ffff:11.0.0.1', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['::1', true],
    ['::2', false],
    ['fe80::1%eth0', true],
    ['febf:ffff::1', true],
    ['fec0::1', false],
    ['2001:db8:ffff::7', true],
    ['2001:db9::1', false],
    ['127.0.0.1', false],
    ['', false],
    ['not an address', false],
  ];
  for (const [address, allowed] of cases) t.equal(list.allows(address), allowed, address);
  t.equal(list.allows(undefined), false, 'a socket with no address yet');
  t.end();
});

t.test('an empty list allows everyone', (t) => {
  const list = new AllowList([]);
  for (const a of ['10.0.0.1', '::1', 'garbage', undefined]) t.equal(list.allows(a), true, String(a));
  t.end();
});

t.test('::/0 allows every address; 0.0.0.0/0 every IPv4 one', (t) => {
  const any6 = new AllowList(['::/0']);
  const any4 = new AllowList(['0.0.0.0/0']);
  t.equal(any6.allows('203.0.113.9'), true);
  t.equal(any6.allows('2001:db8::1'), true);
  t.equal(any4.allows('203.0.113.9'), true);
  t.equal(any4.allows('::ffff:203.0.113.9'), true);
  t.equal(any4.allows('2001:db8::1'), false);
  t.end();
});

t.test('a bad entry is a programmer mistake at construction (config validates first)', (t) => {
  t.throws(() => new AllowList(['10.0.0.0/8', '10.0.0.1/8']), {
    name: 'TypeError',
    message: 'AllowList: bad address range "10.0.0.1/8": it has bits set after the first 8; the range is 10.0.0.0/8',
  });
  t.throws(() => new AllowList('10.0.0.0/8' as unknown as string[]), /array of strings/);
  t.end();
});

t.test('agrees with node:net BlockList on random addresses and ranges', (t) => {
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const v4 = () => [random(256), random(256), random(256), random(256)];
  const v6 = () => Array.from({ length: 8 }, () => (random(4) === 0 ? 0 : random(65536)));
  const mask = (bytes: number[], bitsPer: number, prefix: number) =>
    bytes.map((b, i) => {
      const keep = Math.max(0, Math.min(bitsPer, prefix - i * bitsPer));
      return keep === 0 ? 0 : b & (((1 << bitsPer) - 1) ^ ((1 << (bitsPer - keep)) - 1));
    });
  let checked = 0;
  for (let round = 0; round < 300; round++) {
    const ipv6 = random(2) === 0;
    const prefix = ipv6 ? random(129) : random(33);
    const base = ipv6 ? v6() : v4();
    const network = mask(base, ipv6 ? 16 : 8, prefix);
    const text = ipv6 ? network.map((g) => g.toString(16)).join(':') : network.join('.');
    const list = new AllowList([`${text}/${prefix}`]);
    const blocks = new BlockList();
    blocks.addSubnet(text, prefix, ipv6 ? 'ipv6' : 'ipv4');
    for (let k = 0; k < 20; k++) {
      // half the probes share the network's leading bits, so both answers occur
      const probe = random(2) === 0 ? (ipv6 ? v6() : v4()) : base.map((b, i) => (i < 2 ? b : random(ipv6 ? 65536 : 256)));
      const address = ipv6 ? probe.map((g) => g.toString(16)).join(':') : probe.join('.');
      const family = ipv6 ? 'ipv6' : 'ipv4';
      if (list.allows(address) !== blocks.check(address, family)) {
        t.fail(`${text}/${prefix} vs ${address}: ours ${list.allows(address)}`);
      }
      if (!ipv6 && list.allows(`::ffff:${address}`) !== blocks.check(`::ffff:${address}`, 'ipv6')) {
        t.fail(`${text}/${prefix} vs mapped ${address}`);
      }
      checked++;
    }
  }
  t.equal(checked, 6000);
  t.end();
});

/** The address a real client on 127.0.0.1 or ::1 shows to a server bound at `host`. */
async function remoteAddressSeen(host: string, from: string): Promise<string | undefined> {
  const server = createServer();
  const seen = new Promise<string | undefined>((resolve) => {
    server.once('connection', (socket: Socket) => {
      resolve(socket.remoteAddress);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const client = connect((server.address() as AddressInfo).port, from);
  client.on('error', () => {});
  const address = await seen;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address;
}

t.test('real sockets: the addresses Node reports are matched as configured', async (t) => {
  const v4 = await remoteAddressSeen('127.0.0.1', '127.0.0.1');
  const mapped = await remoteAddressSeen('::ffff:127.0.0.1', '127.0.0.1');
  t.equal(v4, '127.0.0.1');
  t.equal(mapped, '::ffff:127.0.0.1', 'a dual-stack socket reports IPv4 clients as mapped IPv6');
  const loopback4 = new AllowList(['127.0.0.0/8']);
  const elsewhere = new AllowList(['10.0.0.0/8', '::1']);
  t.equal(loopback4.allows(v4), true);
  t.equal(loopback4.allows(mapped), true);
  t.equal(elsewhere.allows(v4), false);
  t.equal(elsewhere.allows(mapped), false);
  let v6: string | undefined;
  try {
    v6 = await remoteAddressSeen('::1', '::1');
  } catch {
    v6 = undefined;
  }
  if (v6 === undefined) {
    t.comment('::1 is not available on this machine: IPv6 part not run');
  } else {
    t.equal(v6, '::1');
    t.equal(elsewhere.allows(v6), true);
    t.equal(loopback4.allows(v6), false);
  }
});
