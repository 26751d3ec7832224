/**
 * Plays a serial device inside the real-systemd scenario: a pty pair whose slave end is reached through
 * LINK and owned root:dialout 0660, as udev leaves a USB serial adapter; it writes `tick` lines until
 * SIGTERM. Run there as `node play-device.js LINK`.
 */
import { chmodSync, chownSync, readFileSync } from 'node:fs';
import { PtyPair } from '../support/pty.js';

const link = process.argv[2];
if (link === undefined) {
  process.stderr.write('usage: play-device.js LINK\n');
  process.exit(2);
}
const dialout = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('dialout:'))?.split(':')[2];
const pty = PtyPair.open(link);
chownSync(pty.slavePath, 0, Number(dialout ?? 20));
chmodSync(pty.slavePath, 0o660);
process.stdout.write(`device ${link} -> ${pty.slavePath}\n`);
const timer = setInterval(() => void pty.write('tick\r\n').catch(() => {}), 500);
process.once('SIGTERM', () => {
  clearInterval(timer);
  pty.close();
  process.exit(0);
});
