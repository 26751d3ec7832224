import t from 'tap';
import type { SerialConfig } from '../../src/config/types.js';
import { describeSettings, linkTargetFor, type PortInfo } from '../../src/serial/targets.js';
import { FakeClock } from '../support/fake-clock.js';

const base: SerialConfig = {
  path: '',
  match: { vendorId: '', productId: '', serialNumber: '' },
  baudRate: 115200,
  dataBits: 8,
  parity: 'none',
  stopBits: 1,
  flowControl: 'none',
  reconnectMinMs: 250,
  reconnectMaxMs: 5000,
  writeQueueBytes: 65536,
  dtrOnOpen: true,
  rtsOnOpen: true,
  reset: { method: 'none', ms: 100, pin: -1, activeLow: true, backend: 'auto', label: 'serialgw-reset' },
};
const labbox = { studentId: '1', name: 'x' };

t.test('serial.match finds the dongle by USB identity wherever it is plugged in', async (t) => {
  let ports: PortInfo[] = [
    { path: '/dev/ttyAMA0' },
    { path: '/dev/ttyUSB0', vendorId: '0403', productId: '6001', serialNumber: 'A1' },
    { path: '/dev/ttyUSB1', vendorId: '1a86', productId: '7523', serialNumber: 'B2' },
  ];
  const cfg = { ...base, match: { vendorId: '1A86', productId: '7523', serialNumber: '' } };
  const target = linkTargetFor(cfg, labbox, new FakeClock(), async () => ports);
  t.equal(target.describe, 'usb 1A86:7523');
  t.equal(await target.resolve(), '/dev/ttyUSB1', 'ids compare case-insensitively');
  ports = [{ path: '/dev/ttyUSB0', vendorId: '1a86', productId: '7523', serialNumber: 'B2' }];
  t.equal(await target.resolve(), '/dev/ttyUSB0', 're-plugged into another socket: found again');
  ports = [];
  t.equal(await target.resolve(), null, 'unplugged: not present (the link waits)');
  const bySerial = linkTargetFor({ ...base, match: { vendorId: '', productId: '', serialNumber: 'A1' } }, labbox, new FakeClock(), async () => [
    { path: '/dev/ttyUSB3', serialNumber: 'A1' },
  ]);
  t.equal(await bySerial.resolve(), '/dev/ttyUSB3');
});

t.test('an empty match finds the USB adapter, never one of the Pi\'s own UARTs', async (t) => {
  let ports: PortInfo[] = [{ path: '/dev/ttyAMA0' }, { path: '/dev/ttyS0' }];
  const target = linkTargetFor(base, labbox, new FakeClock(), async () => ports);
  t.equal(target.describe, 'usb *:*');
  t.equal(await target.resolve(), null, 'only built-in UARTs: not present (the link waits for a dongle)');
  ports = [...ports, { path: '/dev/ttyACM0', vendorId: '2341', productId: '0043' }];
  t.equal(await target.resolve(), '/dev/ttyACM0', 'a dongle plugged in is found');
});

t.test('settings read the way people write them', (t) => {
  t.equal(describeSettings(base), '115200 8N1');
  t.equal(describeSettings({ ...base, baudRate: 9600, dataBits: 7, parity: 'even', stopBits: 2, flowControl: 'rtscts' }), '9600 7E2 rtscts');
  t.end();
});
