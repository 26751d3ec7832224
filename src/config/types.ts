/**
 * The validated configuration: what `loadConfig` hands to the daemon once every key has passed its
 * checks. Every field is present (defaults filled in) and within its documented bounds; the cross-key
 * rules in load.ts also hold (unique listener names, no port clash, ring big enough, ...).
 * Sizes are in bytes, times in milliseconds unless the name says otherwise.
 */

export type DataBits = 5 | 6 | 7 | 8;
export type Parity = 'none' | 'even' | 'odd' | 'mark' | 'space';
export type StopBits = 1 | 1.5 | 2;
export type FlowControl = 'none' | 'rtscts' | 'xonxoff';
/** How device bytes are cut into lines; `any` ends a line at CR, LF or CRLF; `none` never cuts. */
export type LineDelimiter = 'crlf' | 'lf' | 'cr' | 'any' | 'none';
/** What is appended to every client line sent to the device. */
export type OutputDelimiter = 'crlf' | 'lf' | 'cr' | 'none';
export type TcpMode = 'shared' | 'request' | 'monitor';
export type UdpMode = 'shared' | 'request';
export type ControlBytes = 'visible' | 'raw';
export type Framing = 'lines' | 'raw' | 'length-prefixed';
export type TelnetMode = 'auto' | 'on' | 'off';
export type LogLevel = 'error' | 'warning' | 'info' | 'debug';
export type LedBackend = 'auto' | 'ledclass' | 'gpiochip' | 'sysfs' | 'none';
export type LedName = 'ready' | 'serial' | 'clients' | 'activity' | 'error';

export const LED_NAMES: readonly LedName[] = ['ready', 'serial', 'clients', 'activity', 'error'];

/** USB ids as `SerialPort.list()` reports them (4 hex digits); '' matches anything. */
export interface SerialMatchConfig {
  vendorId: string;
  productId: string;
  serialNumber: string;
}

export interface SerialConfig {
  /** '/dev/ttyUSB0', 'sim:labbox' for the built-in simulator, or '' to pick the port by `match`. */
  path: string;
  match: SerialMatchConfig;
  baudRate: number;
  dataBits: DataBits;
  parity: Parity;
  stopBits: StopBits;
  flowControl: FlowControl;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  writeQueueBytes: number;
  /** Leave DTR / RTS asserted once the port is open (false: lowered right after open, and not dropped at close). */
  dtrOnOpen: boolean;
  rtsOnOpen: boolean;
  /** How the instructor's `reset` resets the box. */
  reset: ResetConfig;
}

export type ResetMethod = 'none' | 'dtr' | 'rts' | 'break' | 'gpio';

export interface ResetConfig {
  method: ResetMethod;
  /** How long the line is pulsed (DTR/RTS away from its level at open, the break held, the GPIO line active). */
  ms: number;
  /** gpio: the BCM line, its polarity, backend and label, as for an LED. */
  pin: number;
  activeLow: boolean;
  backend: LedBackend;
  label: string;
}

/** The instructor's control socket. */
export interface ControlConfig {
  /** A unix socket path; relative to the config file's directory; '' = no control socket. */
  socket: string;
}

export interface LinesConfig {
  delimiter: LineDelimiter;
  outputDelimiter: OutputDelimiter;
  maxLineBytes: number;
  /** 0 = never flush a partial line on silence. */
  idleFlushMs: number;
  ringBytes: number;
}

/** The simulator's answers. */
export interface LabBoxConfig {
  studentId: string;
  name: string;
}

export interface TcpListenerConfig {
  name: string;
  host: string;
  port: number;
  mode: TcpMode;
  framing: Framing;
  lengthDigits: number;
  telnet: TelnetMode;
  maxClients: number;
  /** 0 = no per-address limit. */
  maxClientsPerAddress: number;
  /** CIDR strings (`10.0.0.0/8`, `::1`); empty = everyone. */
  allow: string[];
  /** Placeholders: {listener} {port} {device} {settings} {clients}. */
  banner: string;
  clientBufferBytes: number;
  notices: boolean;
  /** 0 = never. */
  idleTimeoutMs: number;
  closeOn: string;
  /** Only ever true on a `request` listener. */
  closeAfterReply: boolean;
  /**
   * Device lines a new client is sent before live data, between `! history: ...` and `! live` (0 = none).
   * When the file does not set it: 20 for `lines` framing with notices, 0 otherwise (unmarked history would
   * look like live output to a program) and with closeAfterReply (one question, its answer alone).
   */
  historyLines: number;
  /** History holds no line framed longer ago than this (0 = no age limit). */
  historySeconds: number;
  /**
   * Monitor listeners: `visible` shows every control byte (and every byte outside well-formed UTF-8) from clients
   * and the device as `\xNN`, so nobody can act on the instructor's terminal; `raw` passes them on.
   */
  controlBytes: ControlBytes;
  /** 0 = no limit. */
  replyMaxLines: number;
  replyQuietMs: number;
  requestTimeoutMs: number;
}

export interface UdpListenerConfig {
  name: string;
  host: string;
  port: number;
  mode: UdpMode;
  leaseSeconds: number;
  maxPeers: number;
  allow: string[];
  /**
   * Sources that need not prove they receive at their address: CIDRs, `loopback`, `local-networks` (the networks
   * this machine has addresses on, resolved at start and on reload). Empty = every source must prove itself.
   */
  trusted: string[];
  replyMaxLines: number;
  replyQuietMs: number;
  requestTimeoutMs: number;
}

export interface WebListenerConfig {
  name: string;
  host: string;
  port: number;
  /** The student console's mode; the dashboard is /monitor. */
  mode: UdpMode;
  maxClients: number;
  /** 0 = no per-address limit. */
  maxClientsPerAddress: number;
  allow: string[];
  title: string;
  banner: string;
  clientBufferBytes: number;
  notices: boolean;
  /** 0 = never. */
  idleTimeoutMs: number;
  /** Device lines a new tab is shown, dimmed, before live data (0 = none). */
  historyLines: number;
  historySeconds: number;
  replyMaxLines: number;
  replyQuietMs: number;
  requestTimeoutMs: number;
  /**
   * DNS names the pages may be asked for by (the Host header), besides IP addresses, localhost, this machine's
   * name and NAME.local: a request for any other name is refused (DNS rebinding).
   */
  hostNames: string[];
  /** Serve /monitor and /ws/monitor. */
  monitor: boolean;
  /** [] = the same as `allow`. */
  monitorAllow: string[];
  /** '' = no password. */
  monitorPassword: string;
}

export interface LogConfig {
  level: LogLevel;
}

export interface LedConfig {
  /** -1 = not wired. */
  pin: number;
  activeLow: boolean;
  backend: LedBackend;
  /** Kernel LED class name / GPIO consumer label; default 'serialgw-<ledname>'. */
  label: string;
}

export interface LedsConfig {
  enabled: boolean;
  sysRoot: string;
  devRoot: string;
  ready: LedConfig;
  serial: LedConfig;
  clients: LedConfig;
  activity: LedConfig;
  error: LedConfig;
}

export interface ShutdownConfig {
  /** How long SIGTERM waits to write queued device lines. */
  drainMs: number;
}

export interface TranscriptConfig {
  enabled: boolean;
  /** Absolute; the unit's StateDirectory=serial-gateway makes /var/lib/serial-gateway. */
  dir: string;
  maxBytes: number;
  maxFileBytes: number;
  /** Today's file and those of the keepDays - 1 days before it are kept. */
  keepDays: number;
  bufferBytes: number;
  flushMs: number;
}

export interface GatewayConfig {
  serial: SerialConfig;
  lines: LinesConfig;
  labbox: LabBoxConfig;
  tcp: TcpListenerConfig[];
  udp: UdpListenerConfig[];
  web: WebListenerConfig[];
  log: LogConfig;
  leds: LedsConfig;
  shutdown: ShutdownConfig;
  transcript: TranscriptConfig;
  control: ControlConfig;
}
