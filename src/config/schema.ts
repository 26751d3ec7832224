/**
 * Every config key: its default, its bounds and a one-line doc. This tree is plain data; load.ts walks it
 * to find unknown keys and wrong shapes, and `toConvictSchema` turns it into the schema convict validates.
 * Every limit has a maximum: config never allows an unbounded buffer, list or timer.
 * config/default.yaml must stay equal to these defaults (a test checks it).
 */
import type {
  BoolSpec,
  EnumSpec,
  IntSpec,
  LeafSpec,
  SectionListSpec,
  SectionSpec,
  StringCheck,
  StringListSpec,
  StringSpec,
} from './formats.js';
import { isLeaf } from './formats.js';
import { LED_NAMES } from './types.js';
import type { TcpListenerConfig, UdpListenerConfig, WebListenerConfig } from './types.js';

/**
 * A listener's schema has exactly the keys of its config type: a key added to one and not the other does not
 * compile (missing keys fail `satisfies`, extra ones its excess-property check), so the cast that joins the
 * loaded object to the type in load.ts cannot hide an undefined key.
 */
type ListenerSchema<T> = { [K in keyof T]-?: LeafSpec };

const MAX_LISTENERS = 64;
const MAX_ALLOW_ENTRIES = 1000;

function int(defaultValue: number | null, min: number, max: number, doc: string, unit?: string): IntSpec {
  const spec: IntSpec = { doc, default: defaultValue, format: 'sg-int', min, max };
  if (unit !== undefined) spec.unit = unit;
  if (defaultValue === null) spec.required = true;
  return spec;
}

function bool(defaultValue: boolean, doc: string): BoolSpec {
  return { doc, default: defaultValue, format: 'sg-bool' };
}

function oneOf(
  defaultValue: string | number,
  values: readonly (string | number)[],
  doc: string,
  refusals?: Record<string, string>,
): EnumSpec {
  const spec: EnumSpec = { doc, default: defaultValue, format: 'sg-enum', values };
  if (refusals !== undefined) spec.refusals = refusals;
  return spec;
}

function text(defaultValue: string | null, maxLength: number, doc: string, check?: StringCheck): StringSpec {
  const spec: StringSpec = { doc, default: defaultValue, format: 'sg-string', maxLength };
  if (check !== undefined) spec.check = check;
  if (defaultValue === null) spec.required = true;
  return spec;
}

function allowList(doc: string): StringListSpec {
  return {
    doc,
    default: [],
    format: 'sg-string-list',
    maxItems: MAX_ALLOW_ENTRIES,
    item: text('', 64, 'an address or network', 'cidr'),
  };
}

const replyMaxLines = (): IntSpec =>
  int(0, 0, 100000, 'request mode: a reply ends after this many lines (0 = no limit)', 'lines');
const replyQuietMs = (): IntSpec =>
  int(100, 1, 60000, 'request mode: a reply ends after the device is quiet this long', 'milliseconds');
const requestTimeoutMs = (): IntSpec =>
  int(2000, 1, 600000, 'request mode: give up waiting for the first reply line after this', 'milliseconds');

export const tcpListenerSchema = {
  name: text(null, 32, 'unique listener name', 'listenerName'),
  host: text('0.0.0.0', 64, 'address to listen on', 'host'),
  port: int(null, 1, 65535, 'TCP port to listen on'),
  mode: oneOf('shared', ['shared', 'request', 'monitor'], 'how clients share the device'),
  framing: oneOf('lines', ['lines', 'raw', 'length-prefixed'], 'how bytes are framed on this socket'),
  lengthDigits: int(3, 1, 9, 'length-prefixed framing: digits in the length prefix', 'digits'),
  telnet: oneOf('auto', ['auto', 'on', 'off'], 'telnet negotiation'),
  maxClients: int(64, 1, 10000, 'clients connected at once', 'clients'),
  maxClientsPerAddress: int(0, 0, 10000, 'clients from one address at once (0 = no limit)', 'clients'),
  allow: allowList('addresses or networks allowed to connect ([] = everyone)'),
  banner: text('', 4096, 'sent on connect; {listener} {port} {device} {settings} {clients}'),
  clientBufferBytes: int(262144, 1024, 16777216, 'output backlog per client before it lags', 'bytes'),
  notices: bool(true, "send '!' notice lines to clients"),
  idleTimeoutMs: int(0, 0, 86400000, 'close a silent client after this (0 = never)', 'milliseconds'),
  closeOn: text('', 256, 'a client line that closes the connection (empty = none)'),
  closeAfterReply: bool(false, 'request mode: close the connection after each reply'),
  historyLines: int(20, 0, 10000, 'device lines a new client is sent before live data (0 = none; default 0 on raw and length-prefixed framing, with notices: false or closeAfterReply)', 'lines'),
  historySeconds: int(600, 0, 604800, 'history holds no line older than this (0 = no age limit)', 'seconds'),
  controlBytes: oneOf('visible', ['visible', 'raw'], 'monitor mode: show control bytes as \\xNN (raw = pass them on, for a program)'),
  replyMaxLines: replyMaxLines(),
  replyQuietMs: replyQuietMs(),
  requestTimeoutMs: requestTimeoutMs(),
} satisfies ListenerSchema<TcpListenerConfig>;

export const udpListenerSchema = {
  name: text(null, 32, 'unique listener name', 'listenerName'),
  host: text('0.0.0.0', 64, 'address to listen on', 'host'),
  port: int(null, 1, 65535, 'UDP port to listen on'),
  mode: oneOf('shared', ['shared', 'request'], 'how peers share the device', {
    monitor: 'monitor mode exists only on tcp listeners',
  }),
  leaseSeconds: int(60, 1, 86400, 'a peer keeps receiving lines this long after its last datagram', 'seconds'),
  maxPeers: int(256, 1, 100000, 'peers holding a lease at once', 'peers'),
  allow: allowList('addresses or networks allowed to send ([] = everyone)'),
  trusted: {
    doc: 'sources that need not prove their address; others get a cookie and at most 3x their bytes until they send it back',
    default: ['loopback', 'local-networks'],
    format: 'sg-string-list',
    maxItems: MAX_ALLOW_ENTRIES,
    item: text('', 64, 'loopback, local-networks, or an address or network', 'trusted'),
  },
  replyMaxLines: replyMaxLines(),
  replyQuietMs: replyQuietMs(),
  requestTimeoutMs: requestTimeoutMs(),
} satisfies ListenerSchema<UdpListenerConfig>;

export const webListenerSchema = {
  name: text(null, 32, 'unique listener name', 'listenerName'),
  host: text('0.0.0.0', 64, 'address to listen on', 'host'),
  port: int(null, 1, 65535, 'TCP port of the web pages and their WebSockets'),
  mode: oneOf('shared', ['shared', 'request'], 'what the student console at / gives each browser tab', {
    monitor: 'a web listener serves the read-only view at /monitor (monitor: true); mode is for /',
  }),
  maxClients: int(64, 1, 10000, 'browser tabs connected at once (monitors included)', 'clients'),
  maxClientsPerAddress: int(0, 0, 10000, 'browser tabs from one address at once (0 = no limit)', 'clients'),
  allow: allowList('addresses or networks allowed to open the pages ([] = everyone)'),
  title: text('serial-gateway', 128, 'the page title'),
  banner: text('', 4096, 'shown on connect; {listener} {port} {device} {settings} {clients}'),
  clientBufferBytes: int(262144, 1024, 16777216, 'output backlog per browser before it lags', 'bytes'),
  notices: bool(true, 'show gateway notices (lag, drops, device state) in the page'),
  idleTimeoutMs: int(0, 0, 86400000, 'close a tab that sent no line this long (0 = never)', 'milliseconds'),
  historyLines: int(20, 0, 10000, 'device lines a new tab is shown (dimmed) before live data (0 = none)', 'lines'),
  historySeconds: int(600, 0, 604800, 'history holds no line older than this (0 = no age limit)', 'seconds'),
  replyMaxLines: replyMaxLines(),
  replyQuietMs: replyQuietMs(),
  requestTimeoutMs: requestTimeoutMs(),
  hostNames: {
    doc: 'DNS names the pages are opened by, besides IP addresses, localhost, this machine\'s name and NAME.local',
    default: [],
    format: 'sg-string-list',
    maxItems: 32,
    item: text('', 253, 'a host name', 'hostName'),
  },
  monitor: bool(true, 'serve the instructor dashboard at /monitor'),
  monitorAllow: allowList('addresses or networks allowed to open /monitor, /api/status and /metrics ([] = as allow)'),
  monitorPassword: text('', 256, "HTTP Basic password for /monitor, /api/status and /metrics ('' = none)"),
} satisfies ListenerSchema<WebListenerConfig>;

function listeners(item: SectionSpec, defaults: object[], doc: string): SectionListSpec {
  return { doc, default: defaults, format: 'sg-section-list', maxItems: MAX_LISTENERS, item, itemNoun: 'listener' };
}

function led(name: string): SectionSpec {
  return {
    pin: int(-1, -1, 1023, 'GPIO line (BCM number) driving this LED (-1 = not wired)'),
    activeLow: bool(false, 'the LED lights when the line is low'),
    backend: oneOf('auto', ['auto', 'ledclass', 'gpiochip', 'sysfs', 'none'], 'how the LED is driven'),
    label: text(`serialgw-${name}`, 64, 'kernel LED class name / GPIO consumer label', 'ledLabel'),
  };
}

export const gatewaySchema: SectionSpec = {
  serial: {
    path: text('/dev/ttyUSB0', 4096, "device path, 'sim:labbox', or '' to use match", 'serialPath'),
    match: {
      vendorId: text('', 4, 'USB vendor id, 4 hex digits', 'hexId'),
      productId: text('', 4, 'USB product id, 4 hex digits', 'hexId'),
      serialNumber: text('', 256, 'USB serial number'),
    },
    baudRate: int(115200, 50, 4000000, 'line speed', 'bits per second'),
    dataBits: oneOf(8, [5, 6, 7, 8], 'data bits per character'),
    parity: oneOf('none', ['none', 'even', 'odd', 'mark', 'space'], 'parity'),
    stopBits: oneOf(1, [1, 1.5, 2], 'stop bits'),
    flowControl: oneOf('none', ['none', 'rtscts', 'xonxoff'], 'flow control'),
    reconnectMinMs: int(250, 10, 60000, 'first reconnect delay', 'milliseconds'),
    reconnectMaxMs: int(5000, 10, 600000, 'longest reconnect delay', 'milliseconds'),
    writeQueueBytes: int(65536, 1024, 16777216, 'bytes queued for the device before clients wait', 'bytes'),
    dtrOnOpen: bool(true, 'leave DTR asserted after opening the port (false: a board that resets on DTR is not reset by opening)'),
    rtsOnOpen: bool(true, 'leave RTS asserted after opening the port'),
    reset: {
      method: oneOf('none', ['none', 'dtr', 'rts', 'break', 'gpio'], "how the instructor's reset resets the box"),
      ms: int(100, 1, 10000, 'how long the reset pulse lasts', 'milliseconds'),
      pin: int(-1, -1, 1023, 'method gpio: the GPIO line (BCM number) wired to the reset pin or relay'),
      activeLow: bool(true, 'method gpio: the reset is active when the line is low'),
      backend: oneOf('auto', ['auto', 'ledclass', 'gpiochip', 'sysfs'], 'method gpio: how the line is driven'),
      label: text('serialgw-reset', 64, 'method gpio: LED class name / GPIO consumer label', 'ledLabel'),
    },
  },
  lines: {
    delimiter: oneOf('crlf', ['crlf', 'lf', 'cr', 'any', 'none'], 'what ends a device line'),
    outputDelimiter: oneOf('crlf', ['crlf', 'lf', 'cr', 'none'], 'appended to every client line sent to the device'),
    maxLineBytes: int(4096, 16, 1048576, 'longest device line before it is cut', 'bytes'),
    idleFlushMs: int(200, 0, 60000, 'flush a partial line after this much silence (0 = never)', 'milliseconds'),
    ringBytes: int(1048576, 65536, 268435456, 'device bytes kept for clients', 'bytes'),
  },
  labbox: {
    studentId: text('6510500000', 256, "the simulator's student id"),
    name: text('Lab Box', 256, "the simulator's name"),
  },
  tcp: listeners(tcpListenerSchema, [{ name: 'lab', host: '0.0.0.0', port: 2323 }], 'TCP listeners'),
  udp: listeners(udpListenerSchema, [{ name: 'udp', port: 2324 }], 'UDP listeners'),
  web: listeners(webListenerSchema, [], 'web listeners (browser console and dashboard)'),
  log: {
    level: oneOf('info', ['error', 'warning', 'info', 'debug'], 'least severe message logged'),
  },
  leds: {
    enabled: bool(false, 'drive status LEDs'),
    sysRoot: text('/sys', 4096, 'where sysfs is mounted', 'absPath'),
    devRoot: text('/dev', 4096, 'where device nodes live', 'absPath'),
    ...Object.fromEntries(LED_NAMES.map((name) => [name, led(name)])),
  },
  control: {
    socket: text('/run/serial-gateway/control.sock', 4096, "the instructor's local control socket (relative: to the config file's directory; '' = none)"),
  },
  shutdown: {
    drainMs: int(2000, 0, 60000, 'how long SIGTERM waits to write queued device lines', 'milliseconds'),
  },
  transcript: {
    enabled: bool(false, 'keep a transcript of the class on disk (what every client sent, what the device said)'),
    dir: text('/var/lib/serial-gateway/transcript', 4096, 'directory of the transcript files', 'absPath'),
    maxBytes: int(268435456, 65536, 1099511627776, 'all transcript files together; the oldest go first', 'bytes'),
    maxFileBytes: int(16777216, 4096, 1073741824, 'a file past this goes on in a new one', 'bytes'),
    keepDays: int(14, 1, 3650, 'files of older days are deleted', 'days'),
    bufferBytes: int(1048576, 65536, 67108864, 'records waiting for the disk; past this they are dropped and counted', 'bytes'),
    flushMs: int(200, 10, 10000, 'records are written in batches at most this far apart', 'milliseconds'),
  },
};

/** A leaf as convict sees it: the spec plus its own key path, which the sg-* formats report. */
type ConvictLeaf = LeafSpec & { keyPath: string };
type ConvictSection = { [key: string]: ConvictLeaf | ConvictSection };

/** The convict schema for a section; key paths are relative to the section (listener items use `mode`). */
export function toConvictSchema(section: SectionSpec, prefix = ''): ConvictSection {
  const out: ConvictSection = {};
  for (const [key, node] of Object.entries(section)) {
    const keyPath = prefix === '' ? key : `${prefix}.${key}`;
    out[key] = isLeaf(node) ? { ...node, keyPath } : toConvictSchema(node, keyPath);
  }
  return out;
}
