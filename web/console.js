// @ts-check
/**
 * The student console at `/`: the device's output, one line to type, history, paste, save, timestamps.
 * Talks to `/ws` (see socket.js); every text the device or another person produced is shown as text only.
 */
import { DeviceFeed, LogView, logFileName, visible } from './log-view.js';
import { GatewaySocket, bootChanged, reconnectedText, showLink } from './socket.js';

const HISTORY_KEY = 'serial-gateway.history';
const HISTORY_MAX = 100;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const logEl = $('log');
const input = /** @type {HTMLInputElement} */ ($('line'));
const form = /** @type {HTMLFormElement} */ ($('send'));
const tsToggle = /** @type {HTMLInputElement} */ ($('timestamps'));

const view = new LogView(logEl);
const feed = new DeviceFeed(view);
let listener = 'serial';
/** hello.maxLineBytes: a longer line stays in the input instead of being refused by the gateway. */
let maxLineBytes = Infinity;
const utf8 = new TextEncoder();

// ------------------------------------------------------------------ what the gateway says

const socket = new GatewaySocket('/ws', {
  onBytes(bytes) {
    feed.bytes(bytes);
  },
  onMessage(msg, resumed) {
    if (isObject(msg.hello)) {
      hello(msg.hello, resumed);
      feed.hello(msg.hello, resumed);
    }
    if (typeof msg.at === 'number') feed.at(msg.at);
    if (typeof msg.notice === 'string') {
      // A notice may follow a device prompt: end that line first so the notice stands on its own.
      feed.endPartial();
      view.add('note', msg.notice);
    }
    if (isObject(msg.device)) showDevice(msg.device);
    if (typeof msg.clients === 'number') $('clients').textContent = String(msg.clients);
  },
  onDrop() {
    feed.endPartial();
  },
  onState(state, detail) {
    showLink(state, detail);
    if (state === 'reconnecting' && socket.connections > 0 && !droppedShown) {
      droppedShown = true;
      view.add('sys', `link down: ${detail}`);
    }
    if (state === 'offline') view.add('sys', detail || 'disconnected');
  },
});
let droppedShown = false;

/**
 * @param {Record<string, unknown>} h
 * @param {boolean} resumed
 */
function hello(h, resumed) {
  droppedShown = false;
  if (typeof h.listener === 'string') {
    listener = h.listener;
    const title = typeof h.title === 'string' && h.title !== '' ? h.title : `serial-gateway · ${h.listener}`;
    $('title').textContent = title;
    document.title = title;
  }
  if (typeof h.mode === 'string') $('mode').textContent = h.mode;
  if (typeof h.maxLineBytes === 'number' && h.maxLineBytes > 0) maxLineBytes = h.maxLineBytes;
  if (typeof h.clients === 'number') $('clients').textContent = String(h.clients);
  if (isObject(h.device)) showDevice(h.device);
  const restarted = bootChanged(h);
  if (resumed) {
    view.add('sys', reconnectedText(h, restarted));
  } else if (typeof h.banner === 'string' && h.banner !== '') {
    view.add('note', h.banner);
  }
}

/** @param {Record<string, unknown>} d */
function showDevice(d) {
  const badge = $('device');
  const state = typeof d.state === 'string' ? d.state : 'unknown';
  badge.dataset.state = state;
  badge.textContent = state;
  badge.title = typeof d.detail === 'string' ? visible(d.detail) : '';
  const settings = [d.path, d.settings].filter((x) => typeof x === 'string' && x !== '').join(' ');
  if (settings !== '') $('settings').textContent = visible(settings);
}

/** @param {unknown} x @returns {x is Record<string, unknown>} */
function isObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

// ------------------------------------------------------------------ what the student types

/** @type {string[]} */
let history = [];
try {
  const saved = JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]');
  if (Array.isArray(saved)) history = saved.filter((x) => typeof x === 'string').slice(-HISTORY_MAX);
} catch {
  history = [];
}
/** Where Up/Down is in the history; history.length means "the line being typed". */
let cursor = history.length;
let draft = '';

/** @param {string} line @returns {boolean} */
function sendLine(line) {
  const bytes = utf8.encode(line).length;
  if (bytes > maxLineBytes) {
    view.add('sys', `line too long (${bytes} bytes, the limit is ${maxLineBytes}): not sent`);
    return false;
  }
  if (!socket.send(line)) {
    view.add('sys', `not connected: "${line}" was not sent`);
    return false;
  }
  feed.endPartial();
  view.add('me', line);
  if (line !== '' && history[history.length - 1] !== line) {
    history.push(line);
    if (history.length > HISTORY_MAX) history.splice(0, history.length - HISTORY_MAX);
    try {
      sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
    } catch {
      // Storage full or disabled: history still works for this page.
    }
  }
  cursor = history.length;
  draft = '';
  return true;
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (sendLine(input.value)) input.value = '';
  input.focus();
});

input.addEventListener('keydown', (ev) => {
  if (ev.key !== 'ArrowUp' && ev.key !== 'ArrowDown') return;
  if (ev.isComposing) return;
  ev.preventDefault();
  if (cursor === history.length) draft = input.value;
  cursor = ev.key === 'ArrowUp' ? Math.max(0, cursor - 1) : Math.min(history.length, cursor + 1);
  input.value = cursor === history.length ? draft : (history[cursor] ?? '');
  input.setSelectionRange(input.value.length, input.value.length);
});

// A pasted block of several lines becomes those lines, in order, one frame each (an <input> would otherwise
// glue them into one). Text around the cursor joins the first and last pasted line.
input.addEventListener('paste', (ev) => {
  const text = ev.clipboardData?.getData('text/plain') ?? '';
  if (!/[\r\n]/.test(text)) return;
  ev.preventDefault();
  const before = input.value.slice(0, input.selectionStart ?? input.value.length);
  const after = input.value.slice(input.selectionEnd ?? input.value.length);
  const lines = (before + text + after).split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  input.value = '';
  for (let i = 0; i < lines.length; i++) {
    if (sendLine(lines[i] ?? '')) continue;
    // Not sent (not connected, or too long): that line goes back into the input; the rest are named.
    input.value = lines[i] ?? '';
    const rest = lines.length - i - 1;
    if (rest > 0) view.add('sys', `${rest} more pasted line${rest === 1 ? '' : 's'} not sent`);
    break;
  }
});

tsToggle.addEventListener('change', () => view.showTimestamps(tsToggle.checked));
$('save').addEventListener('click', () => view.save(logFileName(listener)));
$('retry').addEventListener('click', () => socket.manualRetry());

// For tests and the curious: the page's own counters (read-only).
Object.defineProperty(window, 'serialGateway', { value: Object.freeze({ view, socket }) });

socket.connect();
input.focus();
