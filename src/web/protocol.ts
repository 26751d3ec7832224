/**
 * The wire between the gateway and its pages (web/console.html at `/`, web/monitor.html at `/monitor`).
 * Types only, plus the few constants both sides must agree on; no I/O. The pages are plain JS and read this
 * file as their reference: a change here is a protocol change (bump SUBPROTOCOL when it is incompatible).
 *
 * HTTP routes of a `web:` listener (everything is served from memory; no URL anywhere points off the Pi):
 *   GET /               the student console (web/console.html)
 *   GET /monitor        the instructor dashboard (web/monitor.html); 404 unless `monitor: true`;
 *                       monitorAllow and monitorPassword (HTTP Basic, user name ignored) apply
 *   GET /assets/<file>  any other file of web/ (console.js, app.css, ...), by name; 404 otherwise
 *   GET /ws             upgrade: a student socket in the listener's mode (shared | request)
 *   GET /ws/monitor     upgrade: the read-only monitor socket (same checks as /monitor)
 *   GET /api/status     JSON `ApiStatus` (the snapshot systemd STATUS= is made from); same checks as /monitor
 *   GET /metrics        Prometheus text exposition; same checks as /monitor
 *   GET /transcript/<YYYY-MM-DD>.txt | .jsonl
 *                       that day's class transcript as a download (the chat `serial-gateway transcript` prints,
 *                       or the stored JSON Lines); same checks as /monitor, and only when the dashboard is
 *                       guarded (monitorPassword or monitorAllow set: 403 otherwise, saying so); 404 when the
 *                       transcript is off or holds nothing for that day
 * Headers on every answer: `Content-Security-Policy: default-src 'self'`, `X-Content-Type-Options: nosniff`,
 * `Cache-Control: no-cache` (assets also carry an ETag). Unknown paths: 404. Methods other than GET/HEAD: 405.
 * An upgrade whose Origin does not name the Host it was sent to: 403 (cross-site WebSocket hijacking).
 * An address outside `allow` gets 403 (so a student sees why), except that one in `monitorAllow` may open the
 * dashboard, its socket, /api/status, /metrics and the assets.
 *
 * WebSocket, subprotocol SUBPROTOCOL (`new WebSocket(url, 'serial-gateway.1')`):
 *
 * Server -> page
 *   binary frame  device bytes exactly as a TCP client of a `lines` listener gets them: whole lines with their
 *                 terminators (CRLF from most devices), several per frame, or a prompt without one. Decode
 *                 with one streaming TextDecoder; a line may be split across frames. Never HTML.
 *                 On /ws in request mode: only this socket's replies and untagged device output.
 *   text frame    one JSON object; its single top-level key says what it is (`ServerMessage`):
 *                 {hello} first, always; then {at}, {notice}, {device}, {clients} in any order; monitor
 *                 sockets also get {sent}, {status}, {flash}.
 *
 * Page -> server (on /ws)
 *   text frame    exactly one line for the device, without a terminator (the gateway adds the device's
 *                 delimiter). A pasted block is split by the page, one frame per line. A line holding CR or LF,
 *                 or longer than hello.maxLineBytes bytes (UTF-8), is refused with a {notice} and the same
 *                 text a TCP client gets; nothing of it reaches the device. A frame far over the limit
 *                 (maxLineBytes + 64) closes the socket with 1009.
 *   binary frame  not accepted: closed with 1003.
 *   On /ws/monitor any line is answered once with the read-only notice and never reaches the device,
 *   except an instructor action: a text frame holding one JSON object `MonitorAction` (it starts with `{`),
 *   answered on that socket with {reply}. `{"action":"send","line":"..."}` is the instructor's console: the
 *   line goes to the device (even while input is paused) and monitors see it with this socket's address.
 *
 * Resume: the page remembers the last {at} it received and its hello.boot, and reconnects to
 * `/ws?since=<at>&boot=<boot>`. The server restarts the stream at that record if the ring still holds it,
 * else at the oldest it holds, and says in hello.lost how many records were lost in between. A page whose
 * boot differs (the daemon restarted) gets everything the new daemon still holds. Lines arrive exactly once
 * either way; the page keeps its scrollback.
 *
 * Liveness: the server pings every PING_INTERVAL_MS and terminates a socket that missed two pongs (browsers
 * answer pings themselves: a page needs no timer of its own).
 */

/** The WebSocket subprotocol. Offered: the server picks it. Not offered (a script, wscat): still accepted. */
export const SUBPROTOCOL = 'serial-gateway.1';

export const ROUTES = {
  console: '/',
  monitor: '/monitor',
  assets: '/assets/',
  ws: '/ws',
  wsMonitor: '/ws/monitor',
  status: '/api/status',
  metrics: '/metrics',
  transcript: '/transcript/',
} as const;

/** Close codes, and what the page does on each. */
export const CloseCode = {
  /** Closed on purpose (idle timeout, closeOn, closeAfterReply): do not reconnect by itself. */
  DONE: 1000,
  /** The gateway is stopping: reconnect with backoff (it is probably restarting). */
  GOING_AWAY: 1001,
  /** A binary frame from the page: do not reconnect (a bug in the page). */
  UNSUPPORTED: 1003,
  /** Refused by policy (read the reason): do not reconnect. */
  POLICY: 1008,
  /** A frame over maxLineBytes + 64 (sent by ws itself): reconnect. */
  TOO_BIG: 1009,
  /** A reload changed this listener: reconnect now (with a little jitter). */
  RECONFIGURED: 1012,
  /** maxClients or maxClientsPerAddress reached (the reason is the TCP busy text): retry later, with backoff. */
  BUSY: 1013,
  /** A reload removed this listener: do not reconnect. */
  REMOVED: 4404,
} as const;
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export const PING_INTERVAL_MS = 20_000;

/** How the device looks to a page: `away` while it is absent, unplugged or being reopened. */
export type WebDeviceState = 'open' | 'away' | 'failed' | 'stopped';

export interface WebDevice {
  state: WebDeviceState;
  /** `/dev/ttyUSB0`, `sim:labbox`. */
  path: string;
  /** `115200 8N1`. */
  settings: string;
  /** Why it is in this state, as the log says it (`unplugged`, `permission denied: ...`). */
  detail: string;
}

export interface Hello {
  v: 1;
  /** The listener's name (config `name`). */
  listener: string;
  /** `monitor` on /ws/monitor. */
  mode: 'shared' | 'request' | 'monitor';
  /** Config `title` (the page title; '' = the page's own default). */
  title: string;
  /** Config `banner`, placeholders expanded; '' = none. */
  banner: string;
  device: WebDevice;
  /** Clients connected to this listener, this one included. */
  clients: number;
  /** The record this stream starts at (what {at} will count from). */
  seq: number;
  /** Records lost between ?since and seq (0 when not resuming, or when nothing was lost). */
  lost: number;
  /** True when ?since was honoured (same boot). */
  resumed: boolean;
  /** Identifies this daemon process: a page that reconnects to a different boot knows the ring restarted. */
  boot: string;
  /** The longest line (UTF-8 bytes, no terminator) the device accepts. */
  maxLineBytes: number;
  /**
   * History on connect (config historyLines): the stream starts with `lines` recent device lines, the oldest
   * `ageMs` old, which are records [from, to). They are device bytes like any others; the page shows them
   * dimmed until an {at} >= to, and the {notice}s `history: N lines from the last M min` and `live` frame them.
   * Null when there is none (none configured or held, or a resumed stream).
   */
  history: { from: number; to: number; lines: number; ageMs: number } | null;
  /**
   * Monitor sockets only: whether this dashboard takes instructor actions (and offers the transcript). False
   * when it is unguarded (neither monitorPassword nor a monitorAllow of its own): the page shows why.
   */
  actions?: boolean;
}

/** One connected client, as the monitor lists it. */
export interface ClientInfo {
  /** Stable while the client is connected. */
  id: number;
  listener: string;
  via: 'tcp' | 'udp' | 'web';
  /** `10.0.0.7:51234`, `[::1]:40112` for IPv6. */
  peer: string;
  /** The listener's mode for this client (a web monitor socket is `monitor`). */
  mode: 'shared' | 'request' | 'monitor';
  /** Unix ms when it connected (UDP: its first datagram of the current lease). */
  since: number;
  /** Lines it sent to the device. */
  linesIn: number;
  /** Device lines sent to it. */
  linesOut: number;
  /** Device lines it missed (too slow, or a reconnect gap). */
  lost: number;
}

/** A line a client sent to the device, as monitors see it. */
export interface SentLine {
  via: 'tcp' | 'udp' | 'web';
  listener: string;
  peer: string;
  /** The line as text: invalid UTF-8 as U+FFFD; control characters kept (the page shows them as symbols). */
  line: string;
  /** Unix ms when the device took it. */
  ts: number;
}

export type LedName = 'ready' | 'serial' | 'clients' | 'activity' | 'error';
/** The pattern machine's own type (src/status/led-patterns.ts); each cycle starts with the LED on. */
export type LedPattern =
  | { kind: 'off' }
  | { kind: 'on' }
  | { kind: 'blink'; onMs: number; offMs: number }
  | { kind: 'double'; onMs: number; gapMs: number; pauseMs: number };

export interface ListenerStatus {
  name: string;
  kind: 'tcp' | 'udp' | 'web';
  host: string;
  port: number;
  mode: string;
  /** TCP clients, UDP peers holding a lease, web sockets (students and monitors). */
  clients: number;
}

/** GET /api/status, and {status} on monitor sockets. */
export interface ApiStatus {
  version: string;
  /** Seconds since the daemon started. */
  uptimeS: number;
  phase: 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped';
  device: WebDevice;
  listeners: ListenerStatus[];
  /** All clients of all listeners. */
  clients: number;
  counters: {
    /** Device lines framed. */
    linesFromDevice: number;
    /** Client lines written to the device. */
    linesToDevice: number;
    bytesFromDevice: number;
    /** Device lines some client missed (too slow), summed over clients. */
    dropped: number;
    /** Client lines refused (device queue full). */
    refused: number;
    /** Connections refused (allow list, maxClients). */
    connectionsRefused: number;
    /** Times the device came back after being away. */
    reconnects: number;
  };
  ring: { bytes: number; usedBytes: number; oldestSeq: number; endSeq: number };
  /** The last reload: null before the first. */
  reload: { ok: boolean; at: number; error: string } | null;
  /** Lines are being dropped or refused (the error LED). */
  degraded: boolean;
  /** The text of systemd STATUS=. */
  statusLine: string;
  leds: Record<LedName, LedPattern>;
  transcript: TranscriptStatus;
}

/** The class transcript, for the dashboard's mark and its download links. */
export interface TranscriptStatus {
  /** off: not enabled; on: being written; stopped: a disk fault stopped it (`detail` says why). */
  state: 'off' | 'on' | 'stopped';
  detail: string;
  /** Today's local day (YYYY-MM-DD) once today's file exists: `/transcript/<today>.txt` will answer. Else null. */
  today: string | null;
}

/**
 * One instructor action, as JSON on the local control socket and on the dashboard's monitor socket: one type
 * for both, so the two ways in cannot drift apart.
 */
export type ActionRequest =
  | { action: 'reset' }
  /** `for`: `10m`, `90s`, `1h` (absent: until resumed). */
  | { action: 'pause'; for?: string }
  | { action: 'resume' }
  | { action: 'say'; text: string }
  /** `target` ADDRESS[:PORT], or `client`: an id from the client list; `ban` a duration; `reason` told to the client. */
  | { action: 'kick'; target?: string; client?: number; ban?: string; reason?: string }
  | { action: 'clear-queue' }
  | { action: 'clients' }
  /** The dashboard only: a line from the instructor's console to the device (passes a pause). */
  | { action: 'send'; line: string };

/** Page -> server on /ws/monitor: an action, with an `id` the answer echoes. */
export type MonitorAction = { id?: number } & ActionRequest;

/** The answer to one MonitorAction (`id` echoed when it was given). */
export interface ActionResult {
  id?: number;
  ok: boolean;
  /** What was done, or why nothing was. */
  text: string;
}

/** The instructor's state as the dashboard shows it; none of it survives a restart. */
export interface InstructorStatus {
  /** null: students' input flows. `until`: unix ms, null = until resumed; `by`: who paused. */
  paused: { until: number | null; by: string } | null;
  /** Addresses barred by kick --ban, until unix ms. */
  bans: { address: string; until: number }[];
  /** Resets since start. */
  resets: number;
}

/** Every text frame the server sends: exactly one of these keys. */
export type ServerMessage =
  | { hello: Hello }
  /** The stream has delivered every record before this seq (after each binary frame; also in request mode,
   * where filtered records count as passed). The value to send back as ?since. */
  | { at: number }
  /** A gateway notice, same wording as the TCP `! ` lines, without the `! `. Show apart from device text. */
  | { notice: string }
  /** The device changed state. */
  | { device: WebDevice }
  /** Student sockets: the number of clients of this listener. Monitor sockets: the full list. */
  | { clients: number | ClientInfo[] }
  /** Monitor only: a client line the device took. */
  | { sent: SentLine }
  /** Monitor only: the status snapshot, on change and at most once a second. */
  | { status: ApiStatus }
  /** Monitor only: a momentary LED flash (at most 10 a second). */
  | { flash: 'activity' | 'refused' }
  /** Monitor only: the answer to one of this socket's actions. */
  | { reply: ActionResult }
  /** Monitor only: the instructor's state (pause, bans, resets), on connect and on every change. */
  | { instructor: InstructorStatus };
