import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t from 'tap';
import { describeConfig, formatErrors, loadConfig, loadConfigText } from '../../src/config/load.js';
import type { LoadResult } from '../../src/config/load.js';

// Compiled to <out>/test/config/, so the repo is three levels up whatever the output folder is called.
const repo = resolve(__dirname, '..', '..', '..');
const fixtures = join(repo, 'test', 'config', 'fixtures');
const defaultFile = join(repo, 'config', 'default.yaml');
const demoFile = join(repo, 'config', 'demo.yaml');

function messages(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected errors, the config loaded');
  return formatErrors(result.errors).split('\n');
}

function loaded(result: LoadResult) {
  if (!result.ok) throw new Error(`expected a config, got:\n${formatErrors(result.errors)}`);
  return result;
}

t.test('config/default.yaml loads clean, sets every key, and equals the built-in defaults', (t) => {
  const fromFile = loaded(loadConfig(defaultFile, {}));
  const builtIn = loaded(loadConfigText('', 'empty.yaml', {}));
  t.same(fromFile.config, builtIn.config, 'default.yaml documents the schema defaults exactly');
  const notInFile = Object.entries(fromFile.sources).filter(([, source]) => source !== 'file');
  t.same(notInFile, [], 'every key appears in default.yaml');
  t.equal(fromFile.config.serial.path, '/dev/ttyUSB0');
  t.same(
    fromFile.config.tcp.map((l) => [l.name, l.host, l.port]),
    [['lab', '0.0.0.0', 2323]],
  );
  t.same(
    fromFile.config.udp.map((l) => [l.name, l.host, l.port]),
    [['udp', '0.0.0.0', 2324]],
  );
  t.equal(fromFile.config.leds.ready.label, 'serialgw-ready');
  t.equal(fromFile.config.leds.error.label, 'serialgw-error');
  t.end();
});

t.test('every key of default.yaml has a comment', (t) => {
  const lines = readFileSync(defaultFile, 'utf8').split('\n');
  const bare = lines.filter((line) => /^\s*(- )?[A-Za-z]+:/.test(line) && !/ # \S/.test(line));
  t.same(bare, [], 'key lines without a comment');
  t.end();
});

t.test('config/demo.yaml loads clean with the simulator and four listeners', (t) => {
  const { config, sources } = loaded(loadConfig(demoFile, {}));
  t.equal(config.serial.path, 'sim:labbox');
  t.same(
    config.tcp.map((l) => [l.name, l.host, l.port, l.mode, l.telnet, l.closeAfterReply]),
    [
      ['lab', '127.0.0.1', 2323, 'shared', 'auto', false],
      ['class', '127.0.0.1', 2325, 'request', 'auto', false],
      ['monitor', '127.0.0.1', 2326, 'monitor', 'auto', false],
    ],
  );
  t.same(
    config.udp.map((l) => [l.name, l.host, l.port, l.mode]),
    [['udp', '127.0.0.1', 2324, 'shared']],
  );
  t.equal(config.log.level, 'info');
  t.equal(config.tcp[0]?.banner, 'serial-gateway {listener}: {device} {settings}, {clients} connected');
  t.equal(sources['serial.path'], 'file');
  t.equal(sources['serial.baudRate'], 'default');
  t.equal(sources['tcp[1].closeAfterReply'], 'file');
  t.equal(sources['tcp[1].framing'], 'default');
  t.same(
    config.web.map((l) => [l.name, l.host, l.port, l.mode, l.monitor, l.monitorPassword]),
    [['web', '127.0.0.1', 8080, 'request', true, '']],
    'and one web listener on this machine only',
  );
  t.end();
});

t.test('web listeners: defaults, checks with place and hint, and port clashes with tcp', (t) => {
  const ok = loaded(loadConfigText('web:\n  - name: w\n    port: 8080\n', 'c.yaml', {}));
  const w = ok.config.web[0]!;
  t.same(
    [w.host, w.mode, w.maxClients, w.clientBufferBytes, w.monitor, w.monitorAllow, w.monitorPassword, w.title],
    ['0.0.0.0', 'shared', 64, 262144, true, [], '', 'serial-gateway'],
    'defaults filled in',
  );
  t.same(loaded(loadConfigText('', 'c.yaml', {})).config.web, [], 'no web listener unless configured');
  t.same(messages(loadConfigText('web:\n  - name: w\n    port: 8080\n    mode: monitor\n', 'c.yaml', {})), [
    'c.yaml:4:5: web[0].mode: must be one of shared, request; found "monitor" (a web listener serves the read-only view at /monitor (monitor: true); mode is for /)',
  ]);
  t.same(messages(loadConfigText('web:\n  - name: w\n    port: 8080\n    monitorPasword: x\n', 'c.yaml', {})), [
    'c.yaml:4:5: web[0].monitorPasword: unknown key; did you mean "web[0].monitorPassword"?',
  ]);
  t.same(messages(loadConfigText('tcp:\n  - name: lab\n    port: 8080\nweb:\n  - name: w\n    port: 8080\n', 'c.yaml', {})), [
    'c.yaml:6:5: web[0].port: port 8080 on 0.0.0.0 is already used by tcp[0] (lab on 0.0.0.0); a web listener is a TCP port too',
  ]);
  t.same(messages(loadConfigText('tcp: []\nweb:\n  - name: w\n    port: 8080\n    allow: [10.0.0.0/33]\n', 'c.yaml', {})).length, 1, 'allow entries are checked like tcp ones');
  t.end();
});

// Each broken file, and exactly what a person reads about it.
const broken: [string, string[]][] = [
  ['typo-key.yaml', ['typo-key.yaml:3:3: serial.baudrate: unknown key; did you mean "serial.baudRate"?']],
  [
    'wrong-type.yaml',
    [
      'wrong-type.yaml:2:3: serial.dataBits: must be one of 5, 6, 7, 8; found "eight"',
      'wrong-type.yaml:4:3: lines.maxLineBytes: must be an integer from 16 to 1048576 (bytes); found a list',
    ],
  ],
  ['bad-port.yaml', ['bad-port.yaml:3:5: tcp[0].port: must be an integer from 1 to 65535; found 70000']],
  [
    'port-12abc.yaml',
    [
      'port-12abc.yaml:3:5: tcp[0].port: must be an integer from 1 to 65535; found "12abc"',
      'port-12abc.yaml:5:5: tcp[1].port: must be an integer from 1 to 65535; found the string "2325" (write the number without quotes)',
      'port-12abc.yaml:7:5: tcp[2].port: must be an integer from 1 to 65535; found 1.5',
    ],
  ],
  [
    'bool-yes.yaml',
    [
      'bool-yes.yaml:4:5: tcp[0].notices: must be true or false; found "yes"',
      'bool-yes.yaml:6:3: leds.enabled: must be true or false; found 1',
    ],
  ],
  [
    'bad-cidr.yaml',
    [
      'bad-cidr.yaml:6:9: tcp[0].allow[1]: must be an IPv4 or IPv6 address with an optional /prefix (like 192.168.1.0/24 or fd00::/8); found "10.0.0.0/33" (an IPv4 prefix is at most /32)',
      'bad-cidr.yaml:8:9: tcp[0].allow[3]: must be an IPv4 or IPv6 address with an optional /prefix (like 192.168.1.0/24 or fd00::/8); found "300.1.2.3"',
    ],
  ],
  [
    'yaml-syntax.yaml',
    ['yaml-syntax.yaml:4:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ],
  [
    'dup-port.yaml',
    ['dup-port.yaml:10:5: tcp[2].port: tcp port 2323 on 0.0.0.0 is already used by tcp[0] (lab on 127.0.0.1); 0.0.0.0 and :: listen on every address'],
  ],
  [
    'dup-name.yaml',
    ['dup-name.yaml:5:5: udp[0].name: "lab" is already the name of tcp[0]; listener names must be unique across tcp, udp and web'],
  ],
  [
    'scalar-section.yaml',
    ['scalar-section.yaml:1:1: serial: expected a section (a mapping with keys path, match, baudRate, dataBits, parity, stopBits, flowControl, reconnectMinMs, reconnectMaxMs, writeQueueBytes, dtrOnOpen, rtsOnOpen, reset); found "/dev/ttyUSB0"; did you mean "serial.path: /dev/ttyUSB0"?'],
  ],
  [
    'unknown-in-item.yaml',
    [
      'unknown-in-item.yaml:6:5: tcp[1].mdoe: unknown key; did you mean "tcp[1].mode"?',
      'unknown-in-item.yaml:7:5: tcp[1].colour: unknown key; the keys of tcp[1] are name, host, port, mode, framing, lengthDigits, telnet, maxClients, maxClientsPerAddress, allow, banner, clientBufferBytes, notices, idleTimeoutMs, closeOn, closeAfterReply, historyLines, historySeconds, controlBytes, replyMaxLines, replyQuietMs, requestTimeoutMs',
    ],
  ],
  ['reconnect.yaml', ['reconnect.yaml:3:3: serial.reconnectMaxMs: must be at least serial.reconnectMinMs (1000); found 500']],
  [
    'close-after-reply.yaml',
    ["close-after-reply.yaml:4:5: tcp[0].closeAfterReply: only works with mode: request; this listener's mode is shared (set mode: request or remove closeAfterReply)"],
  ],
  [
    'control-bytes-shared.yaml',
    ["control-bytes-shared.yaml:4:5: tcp[0].controlBytes: only applies to mode: monitor (other modes always pass device bytes on unchanged); this listener's mode is shared (remove controlBytes)"],
  ],
  [
    'udp-monitor.yaml',
    ['udp-monitor.yaml:4:5: udp[0].mode: must be one of shared, request; found "monitor" (monitor mode exists only on tcp listeners)'],
  ],
  [
    'ring-small.yaml',
    [
      'ring-small.yaml:3:3: lines.ringBytes: must be at least 8 times lines.maxLineBytes (65536), so 524288; found 262144 (raise lines.ringBytes or lower lines.maxLineBytes)',
      'ring-small.yaml:3:3: lines.ringBytes: must be at least 4 times the largest clientBufferBytes (tcp[0].clientBufferBytes = 1048576), so 4194304; found 262144 (raise lines.ringBytes or lower tcp[0].clientBufferBytes)',
    ],
  ],
  ['shraed.yaml', ['shraed.yaml:6:5: tcp[1].mode: must be one of shared, request, monitor; found "shraed"; did you mean "shared"?']],
  [
    'usb-ids.yaml',
    [
      'usb-ids.yaml:4:5: serial.match.vendorId: must be a USB id of 4 hex digits in quotes, like "0403", or "" for any; found the number 403 (YAML reads unquoted digits as a number: put the value in quotes)',
      'usb-ids.yaml:7:3: labbox.studentId: must be text; found the number 6510500000 (YAML reads unquoted digits as a number: put the value in quotes)',
    ],
  ],
];

for (const [name, expected] of broken) {
  t.test(`broken: ${name}`, (t) => {
    const file = join(fixtures, name);
    const lines = messages(loadConfig(file, {}));
    // Messages name the file as it was given; compare with the fixture's bare name.
    t.same(
      lines.map((line) => line.split(file).join(name)),
      expected,
    );
    for (const line of lines) t.ok(line.startsWith(`${file}:`), 'starts with the file name');
    t.end();
  });
}

t.test('the file is named as given, relative or absolute, and a missing file is one error', (t) => {
  const dir = t.testdir({ 'config.yaml': 'serial:\n  parity: evn\n' });
  t.same(messages(loadConfig(join(dir, 'config.yaml'), {})), [
    `${join(dir, 'config.yaml')}:2:3: serial.parity: must be one of none, even, odd, mark, space; found "evn"; did you mean "even"?`,
  ]);
  t.same(messages(loadConfig(join(dir, 'nope.yaml'), {})), [
    `${join(dir, 'nope.yaml')}: cannot read the config file: it does not exist (give another with --config FILE)`,
  ]);
  t.same(messages(loadConfig(dir, {})), [`${dir}: cannot read the config file: it is a directory`]);
  t.end();
});

t.test('shapes convict cannot handle become plain errors', (t) => {
  const cases: [string, string][] = [
    ['log: debug', 'c.yaml:1:1: log: expected a section (a mapping with keys level); found "debug"; did you mean "log.level: debug"?'],
    ['serial:\n  baudRate: {fast: true}', 'c.yaml:2:3: serial.baudRate: must be an integer from 50 to 4000000 (bits per second); found a section (a mapping)'],
    ['tcp: {name: a, port: 1}', 'c.yaml:1:1: tcp: must be a list of listener sections; found a section (a mapping) (start each listener with "- ")'],
    ['tcp:', 'c.yaml:1:1: tcp: must be a list of listener sections; found nothing (write "tcp: []" for no tcp listeners, or remove the key for the default)'],
    ['tcp: [2323]', 'c.yaml:1:7: tcp[0]: expected a listener section (a mapping with name:, port:, ...); found 2323'],
    ['tcp:\n  - name: lab', 'c.yaml:2:5: tcp[0].port: must be an integer from 1 to 65535; found nothing (this key is required)'],
    ['tcp:\n  - port: 2323\n    name: Lab', 'c.yaml:3:5: tcp[0].name: must be 1 to 32 characters from a-z, 0-9, _ and -; found "Lab"'],
    ['serial:\n  baudRate:', 'c.yaml:2:3: serial.baudRate: must be an integer from 50 to 4000000 (bits per second); found nothing (an empty value): give a value or remove the key to get the default'],
    ['- serial', 'c.yaml: the file must be a mapping of sections (serial:, lines:, tcp:, ...); found a list'],
    ['seral:\n  path: /dev/ttyACM0', 'c.yaml:1:1: seral: unknown key; did you mean "serial"?'],
    ['port: 2323', 'c.yaml:1:1: port: unknown key here; "port" is a key of tcp[N], udp[N], web[N]'],
    ['bogus: 1', 'c.yaml:1:1: bogus: unknown section; the sections are serial, lines, labbox, tcp, udp, web, log, leds, control, shutdown, transcript'],
    ['serial:\n  path: /dev/a\n  path: /dev/b', 'c.yaml:3:3: invalid YAML: Map keys must be unique'],
    ['serial:\n\tpath: /dev/a', 'c.yaml:2:1: invalid YAML: Tabs are not allowed as indentation'],
    ['serial:\n  path: !!binary aGk=', 'c.yaml:2:3: serial.path: must be a device path like /dev/ttyUSB0, \'sim:labbox\' for the simulator, or \'\' to find the port by serial.match; found binary data'],
    ['"a\\nb": 1', 'c.yaml:1:1: "a\\nb": unknown section; the sections are serial, lines, labbox, tcp, udp, web, log, leds, control, shutdown, transcript'],
  ];
  for (const [text, expected] of cases) {
    t.same(messages(loadConfigText(text, 'c.yaml', {})), [expected], JSON.stringify(text));
  }
  t.end();
});

t.test('empty sections mean defaults; values round out their listener', (t) => {
  const { config, sources } = loaded(
    loadConfigText('serial:\nleds:\ntcp:\n  - name: a\n    port: 1\n    allow: ["::1", 10.0.0.0/8]\n', 'c.yaml', {}),
  );
  t.equal(config.serial.baudRate, 115200);
  t.same(config.tcp, [
    {
      name: 'a', host: '0.0.0.0', port: 1, mode: 'shared', framing: 'lines', lengthDigits: 3, telnet: 'auto',
      maxClients: 64, maxClientsPerAddress: 0, allow: ['::1', '10.0.0.0/8'], banner: '', clientBufferBytes: 262144,
      notices: true, idleTimeoutMs: 0, closeOn: '', closeAfterReply: false, historyLines: 20, historySeconds: 600, controlBytes: 'visible', replyMaxLines: 0, replyQuietMs: 100,
      requestTimeoutMs: 2000,
    },
  ]);
  t.equal(sources['tcp'], 'file');
  t.equal(sources['tcp[0].allow'], 'file');
  t.equal(sources['udp'], 'default');
  t.equal(sources['udp[0].port'], 'default');
  t.end();
});

t.test('port clashes: same host, wildcard, localhost; udp may reuse a tcp port', (t) => {
  const clash = (hostA: string, hostB: string) =>
    loadConfigText(
      `tcp:\n  - {name: a, host: "${hostA}", port: 3000}\n  - {name: b, host: "${hostB}", port: 3000}\nudp: [{name: u, port: 3000}]\n`,
      'c.yaml',
      {},
    ).ok === false;
  t.equal(clash('127.0.0.1', '127.0.0.1'), true);
  t.equal(clash('::1', '0:0:0:0:0:0:0:1'), true, 'equal IPv6 addresses written differently');
  t.equal(clash('127.0.0.1', '::'), true, ':: covers every address');
  t.equal(clash('localhost', '127.0.0.1'), true);
  t.equal(clash('127.0.0.1', '127.0.0.2'), false);
  t.equal(clash('127.0.0.1', '::1'), false);
  t.same(
    messages(loadConfigText('udp:\n  - {name: a, port: 5}\n  - {name: b, port: 5}\n', 'c.yaml', {})),
    ['c.yaml:3:15: udp[1].port: udp port 5 on 0.0.0.0 is already used by udp[0] (a on 0.0.0.0); 0.0.0.0 and :: listen on every address'],
  );
  t.end();
});

t.test('cross-key checks wait until every value is valid', (t) => {
  // A bad value and a duplicate name: only the value is reported; the duplicate comes up once it is fixed.
  const lines = messages(
    loadConfigText('tcp:\n  - {name: a, port: 1, mode: x}\n  - {name: a, port: 2}\n', 'c.yaml', {}),
  );
  t.same(lines, ['c.yaml:2:24: tcp[0].mode: must be one of shared, request, monitor; found "x"']);
  t.end();
});

t.test('environment overrides apply after the file, are validated, and are reported as sources', (t) => {
  const env = {
    SERIAL_GATEWAY_SERIAL_PATH: '/dev/ttyACM0',
    SERIAL_GATEWAY_BAUD_RATE: '9600',
    SERIAL_GATEWAY_LOG_LEVEL: 'debug',
    SERIAL_GATEWAY_TCP_PORT: '4000',
  };
  const { config, sources } = loaded(loadConfig(demoFile, env));
  t.equal(config.serial.path, '/dev/ttyACM0');
  t.equal(config.serial.baudRate, 9600);
  t.equal(config.log.level, 'debug');
  t.equal(config.tcp[0]?.port, 4000);
  t.equal(config.tcp[1]?.port, 2325, 'only the first listener moves');
  t.equal(sources['serial.path'], 'env:SERIAL_GATEWAY_SERIAL_PATH');
  t.equal(sources['serial.baudRate'], 'env:SERIAL_GATEWAY_BAUD_RATE');
  t.equal(sources['log.level'], 'env:SERIAL_GATEWAY_LOG_LEVEL');
  t.equal(sources['tcp[0].port'], 'env:SERIAL_GATEWAY_TCP_PORT');
  t.equal(sources['tcp[0].name'], 'file');

  t.equal(loaded(loadConfigText('', 'c.yaml', { SERIAL_GATEWAY_TCP_PORT: '2400' })).config.tcp[0]?.port, 2400,
    'the default listener when the file has none');
  t.equal(loaded(loadConfigText('', 'c.yaml', { SERIAL_GATEWAY_BAUD_RATE: '' })).config.serial.baudRate, 115200,
    'an empty variable is not set');

  t.same(messages(loadConfigText('', 'c.yaml', { SERIAL_GATEWAY_BAUD_RATE: '96oo', SERIAL_GATEWAY_LOG_LEVEL: 'DEBUG' })), [
    '$SERIAL_GATEWAY_BAUD_RATE: serial.baudRate: must be an integer from 50 to 4000000 (bits per second); found "96oo"',
    '$SERIAL_GATEWAY_LOG_LEVEL: log.level: must be one of error, warning, info, debug; found "DEBUG"; did you mean "debug"?',
  ]);
  t.same(messages(loadConfig(demoFile, { SERIAL_GATEWAY_TCP_PORT: '2325' })), [
    `${demoFile}:23:5: tcp[1].port: tcp port 2325 on 127.0.0.1 is already used by tcp[0] (lab on 127.0.0.1, port from $SERIAL_GATEWAY_TCP_PORT); both listen on the same address`,
  ]);
  t.same(messages(loadConfigText('tcp: []', 'c.yaml', { SERIAL_GATEWAY_TCP_PORT: '1' })), [
    '$SERIAL_GATEWAY_TCP_PORT: tcp[0].port: there is no tcp listener to set the port of (the tcp list is empty)',
  ]);
  t.same(messages(loadConfigText('', 'c.yaml', { SERIAL_GATEWAY_TCP_PORT: '0' })), [
    '$SERIAL_GATEWAY_TCP_PORT: tcp[0].port: must be an integer from 1 to 65535; found 0',
  ]);
  t.end();
});

t.test('describeConfig prints YAML that loads back to the same config, naming each source', (t) => {
  const { config, sources } = loaded(loadConfig(demoFile, { SERIAL_GATEWAY_BAUD_RATE: '9600' }));
  const text = describeConfig(config, sources, demoFile);
  t.match(text, /^# serial-gateway: effective configuration \(config file: .*demo\.yaml\)$/m);
  t.match(text, /^ {2}baudRate: 9600 # from \$SERIAL_GATEWAY_BAUD_RATE$/m);
  t.match(text, /^ {2}path: sim:labbox # from the config file$/m);
  t.match(text, /^ {2}parity: none$/m, 'defaults carry no comment');
  t.match(text, /^tcp: # from the config file$/m);
  t.match(text, /^ {4}trusted: # others must prove their address: a cookie first, and at most 3x their bytes until they send it back$/m, 'says how UDP treats unproven sources');
  const again = loaded(loadConfigText(text, 'printed.yaml', {}));
  t.same(again.config, config);
  t.end();
});

t.test('describeConfig does not print a monitor password', (t) => {
  const { config, sources } = loaded(loadConfigText('web:\n  - name: w\n    port: 8080\n    monitorPassword: topsecret\n', 'c.yaml', {}));
  const text = describeConfig(config, sources);
  t.notMatch(text, 'topsecret');
  t.match(text, /^ {4}monitorPassword: \(hidden\) # from the config file; set, not shown$/m);
  t.end();
});

t.test('convict never prints, and loading twice gives the same answer', (t) => {
  const original = console.log;
  const printed: unknown[] = [];
  console.log = (...args: unknown[]) => printed.push(args);
  try {
    const first = formatErrors((loadConfig(join(fixtures, "unknown-in-item.yaml"), {}) as unknown as { errors: never[] }).errors);
    const second = formatErrors((loadConfig(join(fixtures, "unknown-in-item.yaml"), {}) as unknown as { errors: never[] }).errors);
    t.equal(first, second);
    loaded(loadConfig(defaultFile, {}));
  } finally {
    console.log = original;
  }
  t.same(printed, []);
  t.end();
});

t.test('formatErrors lists errors in file order and caps a flood', (t) => {
  const many = Array.from({ length: 45 }, (_, i) => `k${i}: 1`).join('\n');
  const lines = messages(loadConfigText(many, 'c.yaml', {}));
  t.equal(lines.length, 41);
  t.match(lines[0], /^c\.yaml:1:1: k0: unknown section/);
  t.equal(lines[40], '... and 5 more errors');
  t.end();
});
