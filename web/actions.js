// @ts-check
/**
 * The instructor's actions on the dashboard (/monitor): reset the box, pause and resume students' input,
 * a notice to everyone, a line of the instructor's own to the device, remove a client (a button on each row
 * of the client list), clear the device queue. Each is one JSON text frame on the dashboard's monitor socket
 * (MonitorAction in src/web/protocol.ts), answered with {reply}; the pause, bans and resets come as
 * {instructor}. Loaded after monitor.js and rides on its socket (window.serialGateway.socket): one
 * connection per dashboard. Everything shown is set with textContent: nothing a client sent becomes markup.
 */

const gw = /** @type {{ socket: { send(line: string): boolean, h: { onMessage(msg: Record<string, unknown>, resumed: boolean): void } } }} */ (
  /** @type {unknown} */ (Reflect.get(window, 'serialGateway'))
);
const box = /** @type {HTMLElement} */ (document.getElementById('actions'));
const title = document.getElementById('actions-title');
let nextId = 1;
/** False on an unguarded dashboard (hello.actions): every control is off. */
let enabled = true;

/** @param {string} tag @param {Record<string, string>} [attrs] @param {string} [text] */
function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

/** @param {Record<string, unknown>} request */
function act(request) {
  const id = nextId++;
  if (!gw.socket.send(JSON.stringify({ ...request, id }))) show(false, 'not connected: nothing was done');
  else show(null, `${String(request.action)}…`);
}

const result = el('p', { id: 'action-result', class: 'action-result', role: 'status', 'aria-live': 'polite' });
const state = el('p', { id: 'action-state', class: 'action-state' });

/** @param {boolean | null} ok @param {string} text */
function show(ok, text) {
  result.textContent = text;
  result.dataset.ok = ok === null ? '' : String(ok);
}

/** @param {HTMLElement[]} children */
function row(...children) {
  const r = el('div', { class: 'action-row' });
  r.append(...children);
  return r;
}

const reset = el('button', { type: 'button', id: 'act-reset' }, 'Reset box');
reset.addEventListener('click', () => act({ action: 'reset' }));

const pauseFor = /** @type {HTMLSelectElement} */ (el('select', { id: 'act-pause-for', 'aria-label': 'pause for' }));
for (const [value, label] of [['', 'until resumed'], ['5m', '5 min'], ['10m', '10 min'], ['30m', '30 min']]) pauseFor.append(el('option', { value: value ?? '' }, label));
const pause = el('button', { type: 'button', id: 'act-pause' }, 'Pause input');
pause.addEventListener('click', () => act(pauseFor.value ? { action: 'pause', for: pauseFor.value } : { action: 'pause' }));
const resume = el('button', { type: 'button', id: 'act-resume' }, 'Resume');
resume.addEventListener('click', () => act({ action: 'resume' }));
const clear = el('button', { type: 'button', id: 'act-clear' }, 'Clear queue');
clear.title = 'drop the client lines still waiting for the device';
clear.addEventListener('click', () => act({ action: 'clear-queue' }));

/** A text box with a button; Enter sends too. @param {string} id @param {string} placeholder @param {string} label @param {(text: string) => void} go */
function textAction(id, placeholder, label, go) {
  const input = /** @type {HTMLInputElement} */ (el('input', { id, type: 'text', placeholder, 'aria-label': placeholder, autocomplete: 'off' }));
  const button = el('button', { type: 'button', id: `${id}-go` }, label);
  const send = () => {
    if (input.value.trim() === '') return;
    go(input.value);
    input.value = '';
  };
  button.addEventListener('click', send);
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') send();
  });
  return row(input, button);
}

const say = textAction('act-say', 'a notice to every client', 'Tell everyone', (text) => act({ action: 'say', text }));
const send = textAction('act-send', 'a line to the device (passes a pause)', 'Send', (line) => act({ action: 'send', line }));

const reason = /** @type {HTMLInputElement} */ (el('input', { id: 'act-reason', type: 'text', placeholder: 'reason for removing (told to the client)', 'aria-label': 'reason for removing', autocomplete: 'off' }));
const ban = /** @type {HTMLSelectElement} */ (el('select', { id: 'act-ban', 'aria-label': 'bar the address for' }));
for (const [value, label] of [['', 'no ban'], ['5m', 'bar 5 min'], ['15m', 'bar 15 min']]) ban.append(el('option', { value: value ?? '' }, label));

box.append(row(reset, pause, pauseFor, resume, clear), say, send, row(reason, ban), state, result);
if (title) title.hidden = false;

// A Remove button on each row of monitor.js's client list (rows carry data-id); rows are redrawn often.
const tbody = document.querySelector('#clients tbody');
const headRow = document.querySelector('#clients thead tr');
headRow?.append(el('th', {}, ''));
function addButtons() {
  if (!tbody) return;
  for (const tr of tbody.querySelectorAll('tr')) {
    if (!(tr instanceof HTMLElement) || tr.querySelector('button.kick')) continue;
    const id = Number(tr.dataset.id);
    if (!Number.isInteger(id) || id <= 0) continue;
    const b = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: 'kick', title: 'remove this client (with the reason and ban above)' }, 'Remove'));
    b.disabled = !enabled;
    b.addEventListener('click', () => act({ action: 'kick', client: id, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}), ...(ban.value ? { ban: ban.value } : {}) }));
    const td = el('td');
    td.append(b);
    tr.append(td);
  }
}
if (tbody) new MutationObserver(addButtons).observe(tbody, { childList: true });
addButtons();

/**
 * An unguarded dashboard (no monitorPassword, no monitorAllow of its own) takes no action: the gateway would
 * refuse each one, so the controls are switched off and the page says why.
 * @param {boolean} on
 */
function enable(on) {
  enabled = on;
  for (const c of box.querySelectorAll('button, input, select')) if (c instanceof HTMLButtonElement || c instanceof HTMLInputElement || c instanceof HTMLSelectElement) c.disabled = !on;
  for (const b of document.querySelectorAll('#clients button.kick')) if (b instanceof HTMLButtonElement) b.disabled = !on;
  box.dataset.enabled = String(on);
  if (!on) show(false, 'Actions are off on this dashboard: anyone who can open it could use them. Set monitorPassword (or a monitorAllow list of its own) on this web listener, then reload the gateway.');
}

/** @param {unknown} s */
function showState(s) {
  if (s === null || typeof s !== 'object') return;
  const st = /** @type {{ paused?: { until: number | null, by: string } | null, bans?: { address: string, until: number }[], resets?: number }} */ (s);
  const parts = [];
  if (st.paused) {
    const until = st.paused.until === null ? 'until resumed' : `until ${new Date(st.paused.until).toLocaleTimeString()}`;
    parts.push(`input paused ${until} (by ${st.paused.by})`);
  } else {
    parts.push('input flows');
  }
  if (st.bans && st.bans.length > 0) parts.push(`barred: ${st.bans.map((b) => `${b.address} until ${new Date(b.until).toLocaleTimeString()}`).join(', ')}`);
  if (typeof st.resets === 'number' && st.resets > 0) parts.push(`${st.resets} reset${st.resets === 1 ? '' : 's'}`);
  state.textContent = parts.join(' · ');
  state.dataset.paused = String(Boolean(st.paused));
}

const onMessage = gw.socket.h.onMessage;
/** @param {Record<string, unknown>} msg @param {boolean} resumed */
gw.socket.h.onMessage = (msg, resumed) => {
  onMessage(msg, resumed);
  if (msg.hello !== null && typeof msg.hello === 'object') enable(/** @type {{ actions?: unknown }} */ (msg.hello).actions !== false);
  if (msg.reply !== null && typeof msg.reply === 'object') {
    const r = /** @type {{ ok?: unknown, text?: unknown }} */ (msg.reply);
    show(r.ok === true, typeof r.text === 'string' ? r.text : '');
  }
  if ('instructor' in msg) showState(msg.instructor);
};
