/**
 * `serial-gateway doctor`: from facts gathered about the machine (gather.ts), the findings an instructor
 * needs when "it doesn't work", each with what to do. Pure: facts in, findings out.
 */
import { LED_NAMES, type GatewayConfig, type LedBackend, type LedName } from '../config/types.js';

export interface Proc {
  pid: number;
  command: string;
}

export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
  /** Every group the user is in, by id (primary included). */
  gids: number[];
  /** False when the user does not exist: the facts are then about the user running doctor. */
  exists: boolean;
}

export interface DeviceFacts {
  path: string;
  present: boolean;
  /** Where the path leads (a /dev/labbox or by-id link resolved). */
  resolved?: string;
  uid?: number;
  gid?: number;
  mode?: number;
  owner?: string;
  group?: string;
  /** Processes with the device open. */
  holders: Proc[];
  /** The character device's driver as /proc/devices names it (ttyUSB, ttyACM, pts, ...). */
  driver?: string;
}

export interface BoundSocket {
  address: string;
  port: number;
  holders: Proc[];
}

export interface ListenerFacts {
  kind: 'tcp' | 'udp' | 'web';
  name: string;
  host: string;
  port: number;
  /** Sockets listening (TCP) or bound (UDP) on the port, any address. */
  bound: BoundSocket[];
}

export interface LedFacts {
  name: LedName;
  pin: number;
  backend: LedBackend;
  label: string;
  /** /sys/class/leds/<label> exists; and its brightness file is writable by the service user. */
  ledclass: { present: boolean; writable: boolean };
  /** /dev/gpiochip* that the service user can open. */
  gpiochips: string[];
  /** /sys/class/gpio/export exists (the legacy interface). */
  sysfsGpio: boolean;
}

export interface UnitFacts {
  /** systemd is running on this machine. */
  systemd: boolean;
  loadState: string;
  activeState: string;
  subState: string;
  unitFileState: string;
  statusText: string;
  mainPid: number;
  nRestarts: number;
  execMainStatus: number;
  /** The last lines the unit logged at priority err or worse. */
  errors: string[];
}

export interface Facts {
  nodeVersion: string;
  configFile: string;
  /** The loaded config, or the loader's errors (formatted). */
  config: { ok: true; value: GatewayConfig } | { ok: false; errors: string };
  user: ServiceUser;
  device?: DeviceFacts;
  listeners: ListenerFacts[];
  leds: LedFacts[];
  unit: UnitFacts;
}

export type Severity = 'ok' | 'info' | 'warn' | 'fail';

export interface Finding {
  severity: Severity;
  topic: string;
  text: string;
  /** What to do; set on every warn and fail. */
  fix?: string;
}

export const MIN_NODE_MAJOR = 20;
/** The drivers systemd/serial-gateway.service's DeviceAllow= names, and pts, which DevicePolicy=closed allows. */
export const ALLOWED_DRIVERS: readonly string[] = ['ttyUSB', 'ttyACM', 'ttyAMA', 'ttyS', 'gpiochip', 'pts'];
const UNIT = 'serial-gateway';

const ok = (topic: string, text: string): Finding => ({ severity: 'ok', topic, text });
const info = (topic: string, text: string): Finding => ({ severity: 'info', topic, text });
const warn = (topic: string, text: string, fix: string): Finding => ({ severity: 'warn', topic, text, fix });
const fail = (topic: string, text: string, fix: string): Finding => ({ severity: 'fail', topic, text, fix });

const procs = (list: readonly Proc[]): string => list.map((p) => `${p.command} (pid ${p.pid})`).join(', ');

/** A process is the gateway if it is the unit's main process or runs its program (not as doctor). */
export function isGateway(p: Proc, mainPid: number): boolean {
  return p.pid === mainPid || (/\/dist\/src\/main\.js( |$)/.test(p.command) && !/ doctor( |$)/.test(p.command));
}

export function diagnose(f: Facts): Finding[] {
  const out: Finding[] = [];
  out.push(...checkNode(f.nodeVersion));
  if (!f.config.ok) {
    out.push(fail('config', `${f.configFile} is invalid: ${f.config.errors.replace(/\n/g, '; ')}`, `edit ${f.configFile}, check it with serial-gateway --check-config, then: sudo systemctl restart ${UNIT}`));
  } else {
    out.push(ok('config', `${f.configFile} is valid`));
    out.push(...checkDevice(f.config.value, f.device, f.user, f.unit));
    out.push(...checkListeners(f.listeners, f.unit));
    out.push(...checkLeds(f.config.value, f.leds, f.user));
  }
  out.push(...checkUnit(f.unit));
  return out;
}

function checkNode(version: string): Finding[] {
  const major = Number(version.replace(/^v/, '').split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return [ok('node', `Node ${version}`)];
  return [fail('node', `Node ${version} is too old (${MIN_NODE_MAJOR} or newer needed)`, 'install Node 22 (see the README section "Installing Node"), then run deploy/install.sh again')];
}

/** Whether `user` may read and write a file with this owner, group and mode (root may always). */
export function mayReadWrite(user: ServiceUser, uid: number, gid: number, mode: number): boolean {
  if (user.uid === 0) return true;
  if (user.uid === uid) return (mode & 0o600) === 0o600;
  if (user.gids.includes(gid)) return (mode & 0o060) === 0o060;
  return (mode & 0o006) === 0o006;
}

function checkDevice(config: GatewayConfig, d: DeviceFacts | undefined, user: ServiceUser, unit: UnitFacts): Finding[] {
  const path = config.serial.path;
  if (path.startsWith('sim:')) return [info('device', `${path}: the built-in simulator, no serial device is used`)];
  if (d === undefined) return [info('device', 'serial.path is empty: the port is found by serial.match (serial-gateway --list-ports shows the candidates)')];
  if (!d.present) {
    return [fail('device', `${d.path} is not present`, `plug in the lab box's USB serial adapter, or set serial.path to one that serial-gateway --list-ports shows, then: sudo systemctl reload ${UNIT}`)];
  }
  const out: Finding[] = [];
  const where = d.resolved && d.resolved !== d.path ? `${d.path} -> ${d.resolved}` : d.path;
  const mode = (d.mode ?? 0) & 0o777;
  const owner = `${d.owner ?? d.uid}:${d.group ?? d.gid} ${mode.toString(8).padStart(4, '0')}`;
  const who = user.exists ? `the service user ${user.name}` : `${user.name} (the user ${UNIT} does not exist: not installed?)`;
  if (mayReadWrite(user, d.uid ?? -1, d.gid ?? -1, mode)) {
    out.push(ok('device', `${where} present, ${owner}, ${who} may open it`));
  } else {
    const group = d.group ?? String(d.gid);
    out.push(
      fail(
        'device',
        `${where} is ${owner}: ${who} may not open it`,
        (mode & 0o060) === 0o060
          ? `sudo usermod --append --groups ${group} ${user.name} && sudo systemctl restart ${UNIT}`
          : `give the device to a group the service is in (the udev rule in /etc/udev/rules.d/99-${UNIT}.rules sets GROUP="dialout", MODE="0660"; check its vendor/product IDs)`,
      ),
    );
  }
  if (d.driver !== undefined && !ALLOWED_DRIVERS.includes(d.driver)) {
    out.push(
      fail(
        'device',
        `${d.path} is a ${d.driver} device, which the unit does not allow (DevicePolicy=closed: ${ALLOWED_DRIVERS.join(', ')}); opening it fails with "Operation not permitted"`,
        `sudo systemctl edit ${UNIT}, add [Service] and DeviceAllow=char-${d.driver} rw, then: sudo systemctl restart ${UNIT}`,
      ),
    );
  }
  const others = d.holders.filter((p) => !isGateway(p, unit.mainPid));
  if (others.length > 0) {
    out.push(fail('device', `${d.path} is also open in ${procs(others)}: the lab box would get two readers`, `stop ${others.map((p) => p.command.split(' ')[0]).join(', ')} (ModemManager: sudo systemctl disable --now ModemManager; a terminal program: close it)`));
  } else if (d.holders.length > 0) {
    out.push(ok('device', `${d.path} is open in the gateway only (${procs(d.holders)})`));
  }
  return out;
}

function checkListeners(listeners: readonly ListenerFacts[], unit: UnitFacts): Finding[] {
  const out: Finding[] = [];
  for (const l of listeners) {
    const topic = `${l.kind} ${l.name}`;
    const on = l.bound.filter((b) => b.port === l.port);
    const ours = on.filter((b) => b.holders.length === 0 || b.holders.some((p) => isGateway(p, unit.mainPid)));
    const theirs = on.filter((b) => b.holders.length > 0 && !b.holders.some((p) => isGateway(p, unit.mainPid)));
    if (theirs.length > 0) {
      out.push(fail(topic, `port ${l.port} is taken by ${theirs.map((b) => `${procs(b.holders)} on ${b.address}`).join('; ')}`, `stop that program, or give ${topic} another port in the config, then: sudo systemctl reload ${UNIT}`));
    } else if (ours.length > 0) {
      out.push(ok(topic, `${l.kind === 'udp' ? 'bound' : 'listening'} on ${ours.map((b) => `${b.address}:${b.port}`).join(', ')} (config: ${l.host})`));
    } else if (unit.activeState === 'active') {
      out.push(fail(topic, `nothing is ${l.kind === 'udp' ? 'bound' : 'listening'} on port ${l.port} although the service runs`, `see: journalctl -u ${UNIT} -e (a reload that could not bind keeps the old listeners)`));
    } else if (unit.systemd) {
      out.push(warn(topic, `nothing on port ${l.port}: the service is not running`, `sudo systemctl start ${UNIT}`));
    } else {
      out.push(warn(topic, `nothing on port ${l.port}: no gateway is running`, 'start it: serial-gateway --config FILE'));
    }
  }
  return out;
}

function checkLeds(config: GatewayConfig, leds: readonly LedFacts[], user: ServiceUser): Finding[] {
  const wired = LED_NAMES.filter((n) => config.leds[n].pin >= 0);
  if (!config.leds.enabled) {
    if (wired.length === 0) return [info('leds', 'off (leds.enabled: false, no pins set)')];
    return [warn('leds', `pins are set for ${wired.join(', ')} but leds.enabled is false, so they stay dark`, `set leds.enabled: true in the config, then: sudo systemctl reload ${UNIT}`)];
  }
  if (wired.length === 0) return [warn('leds', 'leds.enabled is true but no LED has a pin', 'set leds.<name>.pin to the BCM GPIO number of each wired LED')];
  const out: Finding[] = [];
  for (const led of leds) {
    if (led.pin < 0) continue;
    const topic = `led ${led.name}`;
    const ways: string[] = [];
    const want = (b: LedBackend): boolean => led.backend === 'auto' || led.backend === b;
    if (want('ledclass') && led.ledclass.present && led.ledclass.writable) ways.push(`ledclass /sys/class/leds/${led.label}`);
    if (want('gpiochip') && led.gpiochips.length > 0) ways.push(`gpiochip ${led.gpiochips.join(' ')}`);
    if (want('sysfs') && led.sysfsGpio) ways.push('sysfs /sys/class/gpio');
    if (led.backend === 'none') {
      out.push(info(topic, `BCM ${led.pin}: backend none in the config`));
    } else if (ways.length > 0) {
      out.push(ok(topic, `BCM ${led.pin}: ${ways[0]}${ways.length > 1 ? ` (also possible: ${ways.slice(1).join(', ')})` : ''}`));
    } else if (want('ledclass') && led.ledclass.present) {
      out.push(fail(topic, `BCM ${led.pin}: /sys/class/leds/${led.label}/brightness is not writable by ${user.name}`, `the udev rule gives it to group gpio: sudo udevadm trigger --subsystem-match=leds, and check ${user.name} is in gpio`));
    } else {
      out.push(fail(topic, `BCM ${led.pin}: no way to drive it (no /sys/class/leds/${led.label}, no usable /dev/gpiochip*, no /sys/class/gpio)`, 'sudo deploy/install.sh --leds writes its dtoverlay line; then reboot'));
    }
  }
  return out;
}

function checkUnit(u: UnitFacts): Finding[] {
  if (!u.systemd) return [info('service', 'systemd is not running here: the service state cannot be read')];
  if (u.loadState !== 'loaded') return [fail('service', `${UNIT}.service is not installed (${u.loadState})`, 'sudo deploy/install.sh')];
  const out: Finding[] = [];
  const state = `${u.activeState} (${u.subState}), ${u.unitFileState}`;
  if (u.activeState === 'active') {
    out.push(ok('service', `${state}, pid ${u.mainPid}${u.nRestarts > 0 ? `, restarted ${u.nRestarts} times` : ''}; ${u.statusText}`));
  } else if (u.activeState === 'failed' && u.execMainStatus === 78) {
    out.push(fail('service', `${state}: it exited 78, its config was invalid at start`, `fix the config (serial-gateway --check-config), then: sudo systemctl restart ${UNIT}`));
  } else {
    out.push(fail('service', `${state}${u.execMainStatus ? `, last exit status ${u.execMainStatus}` : ''}`, `sudo systemctl start ${UNIT}; if it stops again: journalctl -u ${UNIT} -e`));
  }
  if (u.activeState === 'active' && u.unitFileState !== 'enabled') {
    out.push(warn('service', 'running but not enabled: it will not start at the next boot', `sudo systemctl enable ${UNIT}`));
  }
  if (u.activeState === 'active' && /last reload rejected/.test(u.statusText)) {
    out.push(fail('service', 'the last reload was rejected: the previous config is still running', `fix the config (serial-gateway --check-config), then: sudo systemctl reload ${UNIT}`));
  }
  for (const line of u.errors) out.push(info('journal', `err: ${line}`));
  return out;
}

const LABEL: Record<Severity, string> = { ok: 'OK  ', info: 'INFO', warn: 'WARN', fail: 'FAIL' };

/** One line per finding, the fix after it. */
export function formatFinding(f: Finding): string {
  return `${LABEL[f.severity]} ${f.topic}: ${f.text}${f.fix ? ` -> fix: ${f.fix}` : ''}`;
}

export const healthy = (findings: readonly Finding[]): boolean => findings.every((f) => f.severity !== 'fail');
