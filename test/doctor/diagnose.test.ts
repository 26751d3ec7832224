import t from 'tap';
import { loadConfigText } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ALLOWED_DRIVERS, type Facts, type Finding, diagnose, formatFinding, healthy, mayReadWrite } from '../../src/doctor/diagnose.js';

function config(yaml: string): GatewayConfig {
  const loaded = loadConfigText(yaml, 'test.yaml', {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.config;
}

const GATEWAY = { pid: 500, command: '/usr/bin/node --max-semi-space-size=1 /opt/serial-gateway/dist/src/main.js --config /etc/serial-gateway/config.yaml' };
const USER = { name: 'serial-gateway', uid: 999, gid: 994, gids: [20, 994, 995], exists: true };

/** A Pi where everything is right: the device is root:dialout 0660, the gateway has it and its ports. */
function healthyFacts(): Facts {
  const cfg = config('serial:\n  path: /dev/labbox\ntcp:\n  - name: lab\n    host: 0.0.0.0\n    port: 2323\nudp:\n  - name: udp\n    host: 0.0.0.0\n    port: 2324\n');
  return {
    nodeVersion: 'v22.11.0',
    configFile: '/etc/serial-gateway/config.yaml',
    config: { ok: true, value: cfg },
    user: USER,
    device: { path: '/dev/labbox', present: true, resolved: '/dev/ttyUSB0', uid: 0, gid: 20, mode: 0o20660, owner: 'root', group: 'dialout', holders: [GATEWAY] },
    listeners: [
      { kind: 'tcp', name: 'lab', host: '0.0.0.0', port: 2323, bound: [{ address: '0.0.0.0', port: 2323, holders: [GATEWAY] }] },
      { kind: 'udp', name: 'udp', host: '0.0.0.0', port: 2324, bound: [{ address: '0.0.0.0', port: 2324, holders: [GATEWAY] }] },
    ],
    leds: [],
    unit: {
      systemd: true,
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      unitFileState: 'enabled',
      statusText: 'device open /dev/labbox 115200 8N1; clients: lab 0',
      mainPid: 500,
      nRestarts: 0,
      execMainStatus: 0,
      errors: [],
    },
  };
}

const fails = (f: Finding[]): string[] => f.filter((x) => x.severity === 'fail').map(formatFinding);

t.test('a healthy gateway: every line OK or INFO, exit status healthy', async (t) => {
  const findings = diagnose(healthyFacts());
  t.same(fails(findings), []);
  t.ok(healthy(findings));
  const text = findings.map(formatFinding).join('\n');
  t.match(text, /^OK {3}device: \/dev\/labbox -> \/dev\/ttyUSB0 present, root:dialout 0660, the service user serial-gateway may open it$/m);
  t.match(text, /^OK {3}tcp lab: listening on 0\.0\.0\.0:2323/m);
  t.match(text, /^OK {3}udp udp: bound on 0\.0\.0\.0:2324/m);
  t.match(text, /^OK {3}service: active \(running\), enabled, pid 500/m);
  t.match(text, /^OK {3}node: Node v22\.11\.0$/m);
});

t.test('each fault is one FAIL line that names the fix', async (t) => {
  const cases: [string, (f: Facts) => void, RegExp][] = [
    ['device absent', (f) => (f.device = { path: '/dev/labbox', present: false, holders: [] }), /device: \/dev\/labbox is not present -> fix: plug in/],
    ['user not in dialout', (f) => (f.user = { ...USER, gids: [994] }), /may not open it -> fix: sudo usermod --append --groups dialout serial-gateway/],
    ['device 0600 root', (f) => (f.device = { ...f.device!, gid: 0, group: 'root', mode: 0o600 }), /root:root 0600: .* -> fix: give the device to a group/],
    ['another reader', (f) => f.device!.holders.push({ pid: 77, command: 'minicom -D /dev/ttyUSB0' }), /also open in minicom -D \/dev\/ttyUSB0 \(pid 77\).* -> fix: stop minicom/],
    ['port taken', (f) => (f.listeners[0]!.bound = [{ address: '0.0.0.0', port: 2323, holders: [{ pid: 88, command: 'python3 -m http.server 2323' }] }]), /tcp lab: port 2323 is taken by python3 .* -> fix: stop that program, or give tcp lab another port/],
    ['not listening while running', (f) => (f.listeners[1]!.bound = []), /udp udp: nothing is bound on port 2324 although the service runs -> fix: see: journalctl/],
    ['old node', (f) => (f.nodeVersion = 'v18.19.0'), /node: Node v18\.19\.0 is too old .* -> fix: install Node 22/],
    ['config invalid', (f) => (f.config = { ok: false, errors: 'serial.baudRate: must be a number' }), /config: .* is invalid: serial\.baudRate: must be a number -> fix: edit/],
    ['exit 78', (f) => Object.assign(f.unit, { activeState: 'failed', subState: 'failed', execMainStatus: 78 }), /service: failed \(failed\), enabled: it exited 78/],
    ['not installed', (f) => Object.assign(f.unit, { loadState: 'not-found' }), /service: serial-gateway\.service is not installed \(not-found\) -> fix: sudo deploy\/install\.sh/],
    ['reload rejected', (f) => (f.unit.statusText += '; last reload rejected: serial: bad'), /the last reload was rejected.* -> fix: fix the config/],
  ];
  for (const [name, change, expected] of cases) {
    const facts = healthyFacts();
    change(facts);
    const findings = diagnose(facts);
    const failed = fails(findings);
    t.equal(failed.length, 1, `${name}: one FAIL`, { failed });
    t.match(failed[0] ?? '', expected, name);
    t.notOk(healthy(findings), `${name}: unhealthy`);
  }
});

t.test('LEDs: pins with leds.enabled false warn; a wired LED needs a backend the user can drive', async (t) => {
  const facts = healthyFacts();
  facts.config = { ok: true, value: config('leds:\n  enabled: false\n  ready:\n    pin: 17\n') };
  facts.device = undefined;
  facts.listeners = [];
  const off = diagnose(facts).map(formatFinding).join('\n');
  t.match(off, /^WARN leds: pins are set for ready but leds\.enabled is false.* -> fix: set leds\.enabled: true/m);

  const cfg = config('leds:\n  enabled: true\n  ready:\n    pin: 17\n  error:\n    pin: 27\n  serial:\n    pin: 22\n    backend: sysfs\n');
  facts.config = { ok: true, value: cfg };
  const led = (name: 'ready' | 'error' | 'serial', pin: number, ledclass: { present: boolean; writable: boolean }, backend = 'auto' as const) =>
    ({ name, pin, backend, label: `serialgw-${name}`, ledclass, gpiochips: [], sysfsGpio: false }) as Facts['leds'][number];
  facts.leds = [
    led('ready', 17, { present: true, writable: true }),
    led('error', 27, { present: true, writable: false }),
    { ...led('serial', 22, { present: true, writable: true }), backend: 'sysfs' },
  ];
  const text = diagnose(facts).map(formatFinding).join('\n');
  t.match(text, /^OK {3}led ready: BCM 17: ledclass \/sys\/class\/leds\/serialgw-ready$/m);
  t.match(text, /^FAIL led error: BCM 27: \/sys\/class\/leds\/serialgw-error\/brightness is not writable by serial-gateway -> fix: /m);
  t.match(text, /^FAIL led serial: BCM 22: no way to drive it .* -> fix: sudo deploy\/install\.sh --leds/m, 'backend sysfs ignores the ledclass entry');
});

t.test('file access as the kernel decides it: owner, then group, then others', async (t) => {
  const user = { ...USER, gids: [20, 994] };
  t.ok(mayReadWrite(user, 0, 20, 0o660));
  t.notOk(mayReadWrite(user, 0, 21, 0o660));
  t.notOk(mayReadWrite(user, 999, 20, 0o066), 'the owner class applies to the owner even when the group would allow');
  t.ok(mayReadWrite(user, 0, 0, 0o666));
  t.ok(mayReadWrite({ ...user, uid: 0 }, 5, 5, 0o600), 'root');
});

t.test("doctor's list of allowed drivers is the unit's DeviceAllow= list (plus pts, which DevicePolicy=closed allows)", async (t) => {
  const unit = readFileSync(join(resolve(__dirname, '../../..'), 'systemd', 'serial-gateway.service'), 'utf8');
  const allowed = [...unit.matchAll(/^DeviceAllow=char-(\S+) rw$/gm)].map((m) => m[1]);
  t.same([...allowed, 'pts'].sort(), [...ALLOWED_DRIVERS].sort());
});
