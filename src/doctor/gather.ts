/**
 * The I/O half of `serial-gateway doctor`: reads the machine (/etc/passwd and /etc/group, the device node,
 * /proc's open files and sockets, the LED paths, systemctl and journalctl) into the facts diagnose.ts judges.
 * Never throws for anything missing: an absent file or command is a fact too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatErrors, loadConfig } from '../config/load.js';
import { LED_NAMES, type GatewayConfig } from '../config/types.js';
import { type DeviceFacts, type Facts, type LedFacts, type ListenerFacts, type Proc, type ServiceUser, type UnitFacts, mayReadWrite } from './diagnose.js';

export const SERVICE_USER = 'serial-gateway';
const UNIT = 'serial-gateway';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

const rows = (text: string): string[][] => text.split('\n').filter((l) => l !== '').map((l) => l.split(':'));

/** The service user and its groups from /etc/passwd and /etc/group; the caller's own ids if it does not exist. */
export function serviceUser(name = SERVICE_USER, etc = '/etc'): ServiceUser {
  const pw = rows(readText(join(etc, 'passwd'))).find((r) => r[0] === name);
  if (pw === undefined) {
    const gids = process.getgroups?.() ?? [];
    const uid = process.getuid?.() ?? -1;
    const gid = process.getgid?.() ?? -1;
    return { name: uid === 0 ? 'root' : `uid ${uid}`, uid, gid, gids: [...new Set([gid, ...gids])], exists: false };
  }
  const uid = Number(pw[2]);
  const gid = Number(pw[3]);
  const gids = new Set([gid]);
  for (const g of rows(readText(join(etc, 'group')))) {
    if ((g[3] ?? '').split(',').includes(name)) gids.add(Number(g[2]));
  }
  return { name, uid, gid, gids: [...gids].sort((a, b) => a - b), exists: true };
}

function nameOf(file: string, id: number): string | undefined {
  return rows(readText(file)).find((r) => Number(r[2]) === id)?.[0];
}

/** The program's name and its first arguments that are not options: `node /opt/.../main.js`, `sleep 30`. */
export function shortCommand(argv: readonly string[]): string {
  const [program, ...args] = argv;
  if (program === undefined) return '';
  const name = program.slice(program.lastIndexOf('/') + 1);
  return [name, ...args.filter((a) => !a.startsWith('-')).slice(0, 2)].join(' ').slice(0, 100);
}

/** Every process's open files: link target ("/dev/pts/3", "socket:[1234]") -> processes. */
export function openFiles(proc = '/proc'): Map<string, Proc[]> {
  const map = new Map<string, Proc[]>();
  let pids: string[] = [];
  try {
    pids = readdirSync(proc).filter((p) => /^\d+$/.test(p));
  } catch {
    return map;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(proc, pid, 'fd'));
    } catch {
      continue; // gone, or not ours to see (doctor without root)
    }
    const command = shortCommand(readText(join(proc, pid, 'cmdline')).split('\0').filter(Boolean)) || `pid ${pid}`;
    const me: Proc = { pid: Number(pid), command };
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join(proc, pid, 'fd', fd));
      } catch {
        continue;
      }
      const list = map.get(target) ?? [];
      if (!list.some((p) => p.pid === me.pid)) list.push(me);
      map.set(target, list);
    }
  }
  return map;
}

function hexAddress(hex: string): string {
  if (hex.length === 8) {
    const n = Buffer.from(hex, 'hex');
    return `${n[3]}.${n[2]}.${n[1]}.${n[0]}`;
  }
  // IPv6: four 32-bit words, each in host (little-endian) order.
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = Buffer.concat(words.map((w) => Buffer.from(w, 'hex').reverse()));
  const full = (bytes.toString('hex').match(/.{4}/g) ?? []).join(':');
  // The URL parser writes an IPv6 address in its canonical short form (::, ::1, ::ffff:127.0.0.1 as hex).
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

/** Listening TCP and bound UDP sockets: port -> address and inode. */
export function sockets(kind: 'tcp' | 'udp', proc = '/proc'): { address: string; port: number; inode: string }[] {
  const out: { address: string; port: number; inode: string }[] = [];
  for (const file of [kind, `${kind}6`]) {
    for (const line of readText(join(proc, 'net', file)).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [addr, port] = f[1]!.split(':');
      const state = f[3];
      if (kind === 'tcp' && state !== '0A') continue; // LISTEN
      if (kind === 'udp' && state !== '07') continue; // unconnected (bound)
      out.push({ address: hexAddress(addr!), port: parseInt(port!, 16), inode: f[9]! });
    }
  }
  return out;
}

/** The driver of a character device major number, from /proc/devices ("188 ttyUSB"). */
export function charDriver(major: number, proc = '/proc'): string | undefined {
  const text = readText(join(proc, 'devices'));
  const chars = text.split(/\n\s*\n/)[0] ?? '';
  for (const line of chars.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)$/.exec(line);
    if (m && Number(m[1]) === major) return m[2];
  }
  return undefined;
}

function device(config: GatewayConfig, files: Map<string, Proc[]>): DeviceFacts | undefined {
  const path = config.serial.path;
  if (path === '' || path.startsWith('sim:')) return undefined;
  try {
    const st = statSync(path);
    const resolved = realpathSync(path);
    return {
      path,
      present: true,
      resolved,
      uid: st.uid,
      gid: st.gid,
      mode: st.mode,
      owner: nameOf('/etc/passwd', st.uid),
      group: nameOf('/etc/group', st.gid),
      holders: files.get(resolved) ?? [],
      driver: st.isCharacterDevice() ? charDriver(Number(st.rdev) >> 8 & 0xfff) : undefined,
    };
  } catch {
    return { path, present: false, holders: [] };
  }
}

function listeners(config: GatewayConfig, files: Map<string, Proc[]>, proc: string): ListenerFacts[] {
  const tcp = sockets('tcp', proc);
  const udp = sockets('udp', proc);
  const bound = (list: typeof tcp, port: number) =>
    list.filter((s) => s.port === port).map((s) => ({ address: s.address, port: s.port, holders: files.get(`socket:[${s.inode}]`) ?? [] }));
  // A config with web listeners carries them in `web` (another kind of TCP listener).
  const web = (config as GatewayConfig & { web?: { name: string; host: string; port: number }[] }).web ?? [];
  return [
    ...config.tcp.map((l) => ({ kind: 'tcp' as const, name: l.name, host: l.host, port: l.port, bound: bound(tcp, l.port) })),
    ...config.udp.map((l) => ({ kind: 'udp' as const, name: l.name, host: l.host, port: l.port, bound: bound(udp, l.port) })),
    ...web.map((l) => ({ kind: 'web' as const, name: l.name, host: l.host, port: l.port, bound: bound(tcp, l.port) })),
  ];
}

function leds(config: GatewayConfig, user: ServiceUser): LedFacts[] {
  const { sysRoot, devRoot } = config.leds;
  const usable = (path: string): boolean => {
    try {
      const st = statSync(path);
      return mayReadWrite(user, st.uid, st.gid, st.mode);
    } catch {
      return false;
    }
  };
  let chips: string[] = [];
  try {
    chips = readdirSync(devRoot).filter((n) => /^gpiochip\d+$/.test(n)).map((n) => join(devRoot, n)).filter(usable);
  } catch {
    chips = [];
  }
  return LED_NAMES.map((name) => {
    const led = config.leds[name];
    const dir = join(sysRoot, 'class', 'leds', led.label);
    return {
      name,
      pin: led.pin,
      backend: led.backend,
      label: led.label,
      ledclass: { present: existsSync(dir), writable: usable(join(dir, 'brightness')) },
      gpiochips: chips,
      sysfsGpio: existsSync(join(sysRoot, 'class', 'gpio', 'export')),
    };
  });
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0' } });
  } catch {
    return undefined;
  }
}

export function unitFacts(): UnitFacts {
  const systemd = existsSync('/run/systemd/system');
  const props = new Map<string, string>();
  const shown = systemd ? run('systemctl', ['show', UNIT, '-p', 'LoadState,ActiveState,SubState,UnitFileState,StatusText,MainPID,NRestarts,ExecMainStatus']) : undefined;
  for (const line of (shown ?? '').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) props.set(line.slice(0, i), line.slice(i + 1));
  }
  const journal = systemd ? run('journalctl', ['--no-pager', '-o', 'cat', '-u', UNIT, '-p', 'err', '-n', '5']) : undefined;
  return {
    systemd: systemd && shown !== undefined,
    loadState: props.get('LoadState') ?? 'unknown',
    activeState: props.get('ActiveState') ?? 'unknown',
    subState: props.get('SubState') ?? 'unknown',
    unitFileState: props.get('UnitFileState') ?? 'unknown',
    statusText: props.get('StatusText') ?? '',
    mainPid: Number(props.get('MainPID') ?? 0),
    nRestarts: Number(props.get('NRestarts') ?? 0),
    execMainStatus: Number(props.get('ExecMainStatus') ?? 0),
    errors: (journal ?? '').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('-- ')),
  };
}

export function gather(configFile: string, opts: { unit?: () => UnitFacts; proc?: string } = {}): Facts {
  const proc = opts.proc ?? '/proc';
  const loaded = loadConfig(configFile, process.env);
  const user = serviceUser();
  const unit = (opts.unit ?? unitFacts)();
  const base = { nodeVersion: process.version, configFile, user, unit };
  if (!loaded.ok) return { ...base, config: { ok: false, errors: formatErrors(loaded.errors) }, listeners: [], leds: [] };
  const files = openFiles(proc);
  return {
    ...base,
    config: { ok: true, value: loaded.config },
    device: device(loaded.config, files),
    listeners: listeners(loaded.config, files, proc),
    leds: leds(loaded.config, user),
  };
}
