// @ts-check
/**
 * The page's one WebSocket to the gateway, kept up without stampeding a restarting Pi and without losing lines.
 *
 * - Reconnects only after a first successful open: a page that never got in (wrong password, refused address,
 *   listener gone) says so and waits for the user instead of retrying for ever.
 * - Backoff 0.5-1 s, 1-2 s, 2-4 s, then 4-8 s, each delay drawn at random within its step, so a class of 60
 *   tabs spreads out after a Pi restart instead of arriving in lockstep. `online` and the tab becoming visible
 *   retry at once.
 * - Resumes from the last ring position the server reported (`{"at":N}`) with `?since=N`: lines sent during a
 *   short drop arrive exactly once; the server's hello says how many the ring no longer had.
 * - Close codes (src/web/protocol.ts CloseCode) say whether to come back: 1000 (closed on purpose), 1003 (the
 *   page sent something the gateway does not take), 1008 (policy: not allowed) and 4404 (listener removed) stop; 1012 (the listener was reconfigured) comes back within a second; the rest back off.
 * - No client timers for liveness: the server pings and the browser answers by itself, even in a background tab.
 */

export const PROTOCOL = 'serial-gateway.1';
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;
const NO_RETRY = new Set([1000, 1003, 1008, 4404]);
const COME_BACK_NOW = 1012;

/**
 * @typedef {'connecting' | 'online' | 'reconnecting' | 'offline'} LinkState
 */

/**
 * @typedef {object} SocketHandlers
 * @property {(msg: Record<string, unknown>, resumed: boolean) => void} onMessage a JSON text frame (topics as keys);
 *   `resumed` is true for the messages of every connection after the first
 * @property {(bytes: Uint8Array) => void} onBytes a binary frame: device bytes
 * @property {(state: LinkState, detail: string) => void} onState
 * @property {() => void} [onDrop] the connection dropped (before any retry)
 */

export class GatewaySocket {
  /**
   * @param {string} path `/ws` or `/ws/monitor`
   * @param {SocketHandlers} handlers
   */
  constructor(path, handlers) {
    this.path = path;
    this.h = handlers;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.everOpened = false;
    this.connections = 0;
    this.attempt = 0;
    /** @type {number | null} the last ring position the server reported: where a resumed stream starts */
    this.at = null;
    /** @type {string | null} which daemon process that position belongs to (hello.boot) */
    this.boot = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {LinkState} */
    this.state = 'connecting';
    this.stopped = false;
    window.addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) this.retryNow();
    });
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.at === null ? '' : `?since=${this.at}${this.boot === null ? '' : `&boot=${encodeURIComponent(this.boot)}`}`;
    return `${scheme}//${location.host}${this.path}${since}`;
  }

  connect() {
    this.stopped = false;
    this.retryTimer = null;
    const ws = new WebSocket(this.url(), PROTOCOL);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      this.everOpened = true;
      this.connections++;
      this.setState('online', '');
    });
    ws.addEventListener('message', (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        this.h.onBytes(new Uint8Array(ev.data));
        return;
      }
      /** @type {unknown} */
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return; // not ours to show: a control frame the page cannot read is ignored
      }
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return;
      const m = /** @type {Record<string, unknown>} */ (msg);
      if (typeof m.at === 'number') this.at = m.at;
      if (m.hello !== null && typeof m.hello === 'object') {
        this.attempt = 0;
        const h = /** @type {Record<string, unknown>} */ (m.hello);
        if (typeof h.boot === 'string') this.boot = h.boot;
        if (typeof h.seq === 'number') this.at = h.seq;
      }
      this.h.onMessage(m, this.connections > 1);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (opened) this.h.onDrop?.();
      const why = ev.reason || closeText(ev.code);
      if (this.stopped) return this.setState('offline', why);
      if (!this.everOpened) return this.setState('offline', `could not connect${why ? `: ${why}` : ''}`);
      if (NO_RETRY.has(ev.code)) return this.setState('offline', why);
      const delay = ev.code === COME_BACK_NOW ? Math.random() * 1000 : this.nextDelay();
      this.setState('reconnecting', `${why ? `${why}; ` : ''}retrying in ${(delay / 1000).toFixed(1)} s`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /** @returns {number} ms: 0.5-1 s, then 1-2 s, 2-4 s, then 4-8 s each time, drawn at random within the step */
  nextDelay() {
    const floor = Math.min(MAX_DELAY_MS / 2, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt++;
    return floor + Math.random() * floor;
  }

  retryNow() {
    if (this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** The user asked to reconnect (after the page gave up). */
  manualRetry() {
    if (this.ws !== null) return;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.setState('connecting', '');
    this.connect();
  }

  /**
   * Sends one line (one text frame; the gateway adds the device's line ending).
   * @param {string} line
   * @returns {boolean} false when not connected: nothing was sent
   */
  send(line) {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(line);
    return true;
  }

  /**
   * @param {LinkState} state
   * @param {string} detail
   */
  setState(state, detail) {
    this.state = state;
    this.h.onState(state, detail);
  }
}

/** @param {number} code */
function closeText(code) {
  switch (code) {
    case 1001:
      return 'the gateway is stopping';
    case 1003:
      return 'the gateway refused what this page sent';
    case 1006:
      return 'connection lost';
    case 1008:
      return 'not allowed';
    case 1009:
      return 'line far too long';
    case 1012:
      return 'the gateway was reconfigured';
    case 1013:
      return 'too many clients';
    case 4404:
      return 'this listener was removed';
    default:
      return '';
  }
}

/**
 * `reconnected, 3 lines missed`: what a page says when its link came back (the scrollback stays).
 * @param {Record<string, unknown>} h the hello
 * @param {boolean} restarted the gateway restarted meanwhile (bootChanged)
 */
export function reconnectedText(h, restarted) {
  const lost = typeof h.lost === 'number' ? h.lost : 0;
  if (restarted) return 'reconnected: the gateway restarted; lines it had not sent before it stopped are lost';
  return lost > 0 ? `reconnected, ${lost} line${lost === 1 ? '' : 's'} missed` : 'reconnected, no lines missed';
}

let lastBoot = /** @type {string | null} */ (null);

/**
 * Whether this hello comes from another run of the gateway than the last one did (hello.boot changed): a
 * restart, after which `lost` cannot count what the old process never sent.
 * @param {Record<string, unknown>} h
 */
export function bootChanged(h) {
  const boot = typeof h.boot === 'string' ? h.boot : null;
  const changed = lastBoot !== null && boot !== lastBoot;
  lastBoot = boot;
  return changed;
}

/**
 * Shows the link state in a header badge and offers a Reconnect button once the page has given up.
 * @param {LinkState} state
 * @param {string} detail
 */
export function showLink(state, detail) {
  const badge = document.getElementById('link');
  const retry = document.getElementById('retry');
  if (badge !== null) {
    badge.dataset.state = state;
    badge.textContent = state;
    badge.title = detail;
  }
  if (retry !== null) retry.hidden = state !== 'offline';
}
