// @ts-check
/**
 * The instructor's dashboard at `/monitor` (read-only): every device line and every client line with its sender,
 * the connected clients, the device and the gateway's state, and the five status LEDs as the GPIO shows them.
 * Talks to `/ws/monitor` (see socket.js). Nothing typed here reaches the device.
 */
import { DeviceFeed, LogView, logFileName, visible } from './log-view.js';
import { GatewaySocket, bootChanged, reconnectedText, showLink } from './socket.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const view = new LogView($('log'), { withSender: true });
/** Device lines are named `device` in the sender column. */
const feed = new DeviceFeed(view, 'device');
const tsToggle = /** @type {HTMLInputElement} */ ($('timestamps'));
let listener = 'monitor';

/** @param {unknown} x @returns {x is Record<string, unknown>} */
function isObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}
/** @param {unknown} x @returns {string} */
const str = (x) => (typeof x === 'string' ? x : typeof x === 'number' ? String(x) : '');

const socket = new GatewaySocket('/ws/monitor', {
  onBytes(bytes) {
    feed.bytes(bytes);
  },
  onMessage(msg, resumed) {
    if (isObject(msg.hello)) {
      hello(msg.hello, resumed);
      feed.hello(msg.hello, resumed);
    }
    if (typeof msg.at === 'number') feed.at(msg.at);
    if (isObject(msg.sent)) clientLine(msg.sent);
    if (typeof msg.notice === 'string') {
      feed.endPartial();
      view.add('note', msg.notice, 'gateway');
    }
    if (Array.isArray(msg.clients)) showClients(msg.clients);
    if (isObject(msg.device)) showDevice(msg.device);
    if (isObject(msg.status)) showStatus(msg.status);
    if (msg.flash !== undefined) flash(msg.flash);
  },
  onDrop() {
    feed.endPartial();
  },
  onState(state, detail) {
    showLink(state, detail);
    if (state === 'reconnecting' && !dropShown) {
      dropShown = true;
      view.add('sys', `link down: ${detail}`, 'page');
    }
    if (state === 'offline') view.add('sys', detail || 'disconnected', 'page');
  },
});
let dropShown = false;
/** hello.actions: false on an unguarded dashboard, which does not hand out the transcript either. */
let guarded = true;

/**
 * @param {Record<string, unknown>} h
 * @param {boolean} resumed
 */
function hello(h, resumed) {
  dropShown = false;
  if (typeof h.listener === 'string') {
    listener = h.listener;
    const title = `serial-gateway · ${h.listener} · monitor`;
    $('title').textContent = title;
    document.title = title;
  }
  if (isObject(h.device)) showDevice(h.device);
  guarded = h.actions !== false;
  const restarted = bootChanged(h);
  if (resumed) view.add('sys', reconnectedText(h, restarted), 'page');
}

/** `web:lab 10.0.0.7:51234`: how the dashboard names a client. @param {Record<string, unknown>} c */
function senderOf(c) {
  const via = str(c.via);
  const name = str(c.listener);
  const peer = str(c.peer) || str(c.from) || str(c.address);
  return `${via}${name ? `${via ? ':' : ''}${name}` : ''} ${peer}`.trim();
}

/** @param {Record<string, unknown>} s */
function clientLine(s) {
  feed.endPartial();
  view.add('client', str(s.line), senderOf(s));
}

// ------------------------------------------------------------------ device, status, reload

/** @param {Record<string, unknown>} d */
function showDevice(d) {
  const badge = $('device');
  const state = str(d.state) || 'unknown';
  const detail = str(d.detail);
  badge.dataset.state = state;
  badge.textContent = state;
  badge.title = visible(detail);
  const settings = [str(d.path), str(d.settings)].filter((x) => x !== '').join(' ');
  if (settings !== '') $('settings').textContent = visible(settings);
}

/**
 * The gateway's state and counters (ApiStatus in src/web/protocol.ts), as a definition list.
 * @param {Record<string, unknown>} s
 */
function showStatus(s) {
  /** @type {[string, unknown][]} */
  const rows = [
    ['phase', s.phase],
    ['up', typeof s.uptimeS === 'number' ? duration(s.uptimeS) : undefined],
    ['version', s.version],
    ['clients', s.clients],
  ];
  if (Array.isArray(s.listeners)) {
    for (const l of s.listeners.filter(isObject)) rows.push([`  ${str(l.kind)}:${str(l.name)} :${str(l.port)}`, l.clients]);
  }
  if (isObject(s.counters)) {
    const c = s.counters;
    rows.push(
      ['lines from device', c.linesFromDevice],
      ['lines to device', c.linesToDevice],
      ['bytes from device', c.bytesFromDevice],
      ['dropped (slow clients)', c.dropped],
      ['lines refused', c.refused],
      ['connections refused', c.connectionsRefused],
      ['device reconnects', c.reconnects],
    );
  }
  if (isObject(s.ring) && typeof s.ring.bytes === 'number' && typeof s.ring.usedBytes === 'number' && s.ring.bytes > 0) {
    rows.push(['ring in use', `${Math.round((100 * s.ring.usedBytes) / s.ring.bytes)} % of ${(s.ring.bytes / 1048576).toFixed(1)} MiB`]);
  }
  rows.push(['degraded', s.degraded], ['status', s.statusLine]);
  const dl = $('counters');
  dl.replaceChildren();
  for (const [k, v] of rows) {
    if (!isPrimitive(v)) continue;
    const dt = document.createElement('dt');
    dt.textContent = visible(k);
    const dd = document.createElement('dd');
    dd.dataset.key = k.trim();
    dd.textContent = visible(typeof v === 'number' ? v.toLocaleString('en') : String(v));
    dl.append(dt, dd);
  }
  if (isObject(s.device)) showDevice(s.device);
  if (isObject(s.leds)) showLeds(s.leds);
  if (s.reload === null || isObject(s.reload)) showReload(s.reload);
  if (isObject(s.transcript)) showTranscript(s.transcript);
}

/**
 * The transcript's state, and today's file as a download once it exists (TranscriptStatus in src/web/protocol.ts).
 * @param {Record<string, unknown>} t
 */
function showTranscript(t) {
  const state = str(t.state) || 'off';
  const p = $('transcript');
  p.className = state === 'on' ? 'ok' : state === 'stopped' ? 'bad' : 'empty';
  p.dataset.state = state;
  const detail = str(t.detail);
  p.textContent = visible(state === 'on' ? 'on: every line is kept on the Pi' : state === 'stopped' ? `stopped: ${detail}` : 'off');
  const day = str(t.today);
  const links = $('transcript-links');
  // The day comes from the gateway; it is checked anyway, since it goes into a URL.
  links.hidden = !guarded || !/^\d{4}-\d{2}-\d{2}$/.test(day);
  if (!guarded && state !== 'off') p.textContent += ' (no download here: this dashboard has no monitorPassword or monitorAllow)';
  if (links.hidden) return;
  const txt = /** @type {HTMLAnchorElement} */ ($('transcript-txt'));
  const jsonl = /** @type {HTMLAnchorElement} */ ($('transcript-jsonl'));
  txt.href = `/transcript/${day}.txt`;
  txt.download = `transcript-${day}.txt`;
  jsonl.href = `/transcript/${day}.jsonl`;
  jsonl.download = `transcript-${day}.jsonl`;
}

/** @param {number} seconds */
function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** @param {unknown} v @returns {v is string | number | boolean} */
function isPrimitive(v) {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** The last reload's result (ApiStatus.reload; null before the first). @param {Record<string, unknown> | null} r */
function showReload(r) {
  const p = $('reload');
  if (r === null) {
    p.className = 'empty';
    p.dataset.ok = '';
    p.textContent = 'none since start';
    return;
  }
  const ok = r.ok === true;
  const when = typeof r.at === 'number' ? new Date(r.at).toLocaleTimeString() : '';
  const error = str(r.error);
  p.className = ok ? 'ok' : 'bad';
  p.dataset.ok = String(ok);
  p.textContent = visible(`${ok ? 'applied' : 'rejected, the previous config still runs'}${when ? ` (${when})` : ''}${error ? `: ${error}` : ''}`);
}

// ------------------------------------------------------------------ clients table

/** @type {Record<string, unknown>[]} */
let clients = [];

/** @param {unknown[]} list */
function showClients(list) {
  clients = list.filter(isObject);
  drawClients();
}

function drawClients() {
  const body = /** @type {HTMLTableSectionElement} */ (document.querySelector('#clients tbody'));
  $('client-count').textContent = `(${clients.length})`;
  const rows = clients.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.via = str(c.via);
    tr.dataset.id = str(c.id);
    const cell = (/** @type {string} */ text, /** @type {string} */ cls = '') => {
      const td = document.createElement('td');
      if (cls) td.className = cls;
      td.textContent = visible(text);
      tr.append(td);
      return td;
    };
    cell(str(c.listener));
    cell(str(c.via));
    cell(str(c.peer) || str(c.address), 'addr').title = str(c.peer) || str(c.address);
    cell(str(c.mode));
    const since = typeof c.since === 'number' || typeof c.since === 'string' ? new Date(c.since) : null;
    const td = cell(since ? ago(since) : '');
    if (since) td.title = since.toLocaleString();
    cell(str(c.linesIn), 'num');
    cell(str(c.linesOut), 'num');
    cell(str(c.lost), 'num');
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 8;
    td.className = 'empty';
    td.textContent = 'no clients';
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

/** @param {Date} d */
function ago(d) {
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
// "since" ages while nobody joins or leaves.
setInterval(() => {
  if (!document.hidden && clients.length > 0) drawClients();
}, 10_000);

// ------------------------------------------------------------------ LEDs

/**
 * The lit/dark steps of one cycle, as src/status/led-patterns.ts defines them (each cycle starts lit).
 * @param {Record<string, unknown>} p
 * @returns {number[] | null}
 */
function stepsOf(p) {
  const n = (/** @type {unknown} */ x) => (typeof x === 'number' && x > 0 ? x : 0);
  if (p.kind === 'blink') return [n(p.onMs), n(p.offMs)];
  if (p.kind === 'double') return [n(p.onMs), n(p.gapMs), n(p.onMs), n(p.pauseMs)];
  return null;
}

/** The same words as the daemon's logs and --led-test. @param {Record<string, unknown>} p */
export function describePattern(p) {
  if (p.kind === 'blink') return `blink ${str(p.onMs)}/${str(p.offMs)}`;
  if (p.kind === 'double') return `double ${str(p.onMs)}/${str(p.gapMs)}/${str(p.pauseMs)}`;
  return str(p.kind) || 'off';
}

const DIM = { opacity: 0.18, boxShadow: 'none' };
const LIT = { opacity: 1 };

/** @param {Record<string, unknown>} leds */
function showLeds(leds) {
  for (const [name, pattern] of Object.entries(leds)) {
    if (!isObject(pattern)) continue;
    const el = /** @type {HTMLElement | null} */ (document.querySelector(`.led[data-led="${CSS.escape(name)}"]`));
    if (el === null) continue;
    const desc = describePattern(pattern);
    // The same pattern again changes nothing (no restart, no flicker), as on the GPIO.
    if (el.dataset.pattern === desc && el.dataset.kind === str(pattern.kind)) continue;
    el.dataset.pattern = desc;
    el.dataset.kind = str(pattern.kind);
    el.className = `led pat-${str(pattern.kind)}`;
    const label = el.parentElement?.querySelector('.pat-text');
    if (label) label.textContent = desc;
    el.title = `${name}: ${desc}`;
    for (const a of el.getAnimations()) a.cancel();
    const steps = stepsOf(pattern);
    if (steps === null) continue;
    el.classList.add('lit');
    const period = steps.reduce((a, b) => a + b, 0);
    if (period <= 0) continue;
    /** @type {Keyframe[]} */
    const frames = [];
    let t = 0;
    steps.forEach((ms, i) => {
      frames.push({ offset: t / period, easing: 'step-end', ...(i % 2 === 0 ? LIT : DIM) });
      t += ms;
    });
    frames.push({ offset: 1, ...DIM });
    el.animate(frames, { duration: period, iterations: Infinity, id: 'pattern' });
  }
}

const FLASHES = /** @type {Record<string, { led: string, ms: number }>} */ ({
  // The gateway rate-limits these; the lengths are the GPIO's (ACTIVITY_FLASH, REFUSED_FLASH).
  activity: { led: 'activity', ms: 30 },
  refused: { led: 'clients', ms: 200 },
});

/** A momentary inversion of one LED. @param {unknown} f */
function flash(f) {
  const spec = typeof f === 'string' ? FLASHES[f] : isObject(f) ? { led: str(f.led), ms: Number(f.ms) || 100 } : undefined;
  if (spec === undefined || document.hidden) return;
  const el = /** @type {HTMLElement | null} */ (document.querySelector(`.led[data-led="${CSS.escape(spec.led)}"]`));
  if (el === null) return;
  const lit = el.dataset.kind === 'on';
  const frame = lit ? { ...DIM, backgroundColor: '#444' } : { ...LIT, backgroundColor: 'var(--lit)', boxShadow: '0 0 0.5rem var(--lit)' };
  el.animate([frame, frame], { duration: Math.max(spec.ms, 60), id: 'flash' });
}

// ------------------------------------------------------------------ controls

tsToggle.addEventListener('change', () => view.showTimestamps(tsToggle.checked));
$('save').addEventListener('click', () => view.save(logFileName(`${listener}-monitor`)));
$('retry').addEventListener('click', () => socket.manualRetry());
Object.defineProperty(window, 'serialGateway', { value: Object.freeze({ view, socket }) });
drawClients();
socket.connect();
