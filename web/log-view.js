// @ts-check
/**
 * The scrollback both pages share: device bytes framed into lines, shown as text, bounded, drawn once per frame.
 *
 * Device and client text is untrusted. It only ever reaches the page as text nodes (`textContent`, `append`), and
 * control characters are shown by name in a box of their own (ESC, NUL, U+202E), so markup shows as markup and an
 * escape sequence cannot recolour, clear or reorder anything. Invalid UTF-8 shows as U+FFFD. The saved log uses
 * the Unicode control pictures instead (␛, ␀).
 *
 * Bounds: the page holds at most `maxLines` lines (model and DOM); lines that arrive faster than the screen
 * refreshes are queued and drawn in one batch per animation frame (or every 250 ms while the tab is hidden,
 * where requestAnimationFrame does not run), and the queue itself never holds more than the view can show.
 */

export const MAX_LINES = 5000;
/**
 * Lines are drawn into blocks of this many (div.chunk): a flood appends to the last block and drops the oldest
 * block whole, so each frame lays out a block or two instead of every line the page holds (which kept the main
 * thread busy all the time at 1,000 lines/s).
 */
const CHUNK_LINES = 100;
const HIDDEN_FLUSH_MS = 250;
/** Within this many pixels of the bottom counts as "at the bottom": new lines then keep it in view. */
const STICKY_PX = 48;

// C0 controls except TAB, DEL, C1 controls, and the bidi overrides/isolates (which would let one line reorder
// the text of the lines around it on the instructor's screen).
const CONTROLS = '\\u0000-\\u0008\\u000a-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';
const CONTROL = new RegExp(`[${CONTROLS}]`, 'g');
const HAS_CONTROL = new RegExp(`[${CONTROLS}]`);
const SPLIT_CONTROLS = new RegExp(`([${CONTROLS}])`);
const C0_NAMES = 'NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US'.split(' ');

/**
 * The name a control character is shown by on screen (`ESC`, `NUL`, `U+202E`): drawn in a box of its own, so it
 * cannot be mistaken for the same letters typed, and it needs no glyph the student's fonts may lack.
 * @param {string} c one character
 */
export function controlName(c) {
  const code = c.charCodeAt(0);
  if (code < 0x20) return C0_NAMES[code] ?? '?';
  if (code === 0x7f) return 'DEL';
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Puts untrusted text into an element as text only: control characters become boxed names (span.cc).
 * @param {HTMLElement} el
 * @param {string} text
 */
export function setText(el, text) {
  if (!HAS_CONTROL.test(text)) {
    el.textContent = text;
    return;
  }
  el.textContent = '';
  const parts = text.split(SPLIT_CONTROLS);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (i % 2 === 0) {
      if (part !== '') el.append(part);
    } else {
      const cc = document.createElement('span');
      cc.className = 'cc';
      cc.textContent = controlName(part);
      el.append(cc);
    }
  }
}

/**
 * @param {string} text
 * @returns {string} the text with every control character replaced by a visible stand-in
 */
export function visible(text) {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return `\u27e8U+${code.toString(16).toUpperCase().padStart(4, '0')}\u27e9`;
  });
}

/**
 * Frames a byte stream into lines ending at CR, LF or CR LF (the LF of a CR LF is not a second line), across
 * frame boundaries. The unterminated rest is available as `partial` (a device prompt such as "> ").
 */
export class LineDecoder {
  constructor() {
    /** @type {Uint8Array[]} */
    this.parts = [];
    this.sawCR = false;
    this.decoder = new TextDecoder('utf-8', { fatal: false });
  }

  /**
   * @param {Uint8Array} bytes
   * @returns {string[]} the lines completed by these bytes
   */
  push(bytes) {
    /** @type {string[]} */
    const lines = [];
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b !== 0x0a && b !== 0x0d) continue;
      if (b === 0x0a && this.sawCR && i === start && this.parts.length === 0) {
        // The LF of a CR LF whose CR ended the previous line.
        this.sawCR = false;
        start = i + 1;
        continue;
      }
      this.parts.push(bytes.subarray(start, i));
      lines.push(this.take());
      this.sawCR = b === 0x0d;
      start = i + 1;
    }
    if (start < bytes.length) {
      this.parts.push(bytes.slice(start));
      this.sawCR = false;
    }
    return lines;
  }

  /** @returns {string | null} the bytes after the last line end, decoded, or null when there are none */
  get partial() {
    if (this.parts.length === 0) return null;
    return this.decoder.decode(concat(this.parts));
  }

  /** @returns {string | null} the unterminated rest as a line of its own, forgetting it (on a dropped link) */
  flush() {
    const rest = this.partial;
    this.parts = [];
    this.sawCR = false;
    return rest;
  }

  /** @returns {string} */
  take() {
    const text = this.decoder.decode(concat(this.parts));
    this.parts = [];
    return text;
  }
}

/**
 * @param {Uint8Array[]} parts
 * @returns {Uint8Array}
 */
function concat(parts) {
  if (parts.length === 1 && parts[0]) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * @typedef {'dev' | 'me' | 'note' | 'sys' | 'client'} LineKind
 * dev: a device line · me: this tab's own line, echoed · note: a notice from the gateway · sys: the page's own
 * message (reconnected...) · client: another client's line (dashboard)
 */

/**
 * @typedef {object} Entry
 * @property {number} ts arrival time (ms since the epoch)
 * @property {LineKind} kind
 * @property {string} text as received (shown through setText, saved through visible)
 * @property {string} [who] the sender (dashboard)
 * @property {boolean} [past] a device line sent as history on connect (drawn dimmed)
 */

const PREFIX = /** @type {Record<LineKind, string>} */ ({ dev: '', me: '> ', note: '! ', sys: '-- ', client: '' });

/** @param {number} ms */
export function clock(ms) {
  const d = new Date(ms);
  const p = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** @param {number} ms */
function dateAndClock(ms) {
  const d = new Date(ms);
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${clock(ms)}`;
}

export class LogView {
  /**
   * @param {HTMLElement} container
   * @param {{ maxLines?: number, withSender?: boolean }} [opts]
   */
  constructor(container, opts = {}) {
    this.el = container;
    this.maxLines = opts.maxLines ?? MAX_LINES;
    this.withSender = opts.withSender === true;
    /** @type {Entry[]} every line the page holds, oldest first (at most maxLines, trimmed in batches) */
    this.entries = [];
    /** @type {Entry[]} added since the last draw */
    this.pending = [];
    /** @type {string | null} the device's unterminated line, drawn after the last line */
    this.partialText = null;
    this.partialDirty = false;
    /** @type {HTMLElement | null} */
    this.partialEl = null;
    /** Line rows in the DOM (all chunks). */
    this.domLines = 0;
    this.scheduled = false;
    /** Lines added since the page loaded, by kind (counters that the bound on the view does not reset). */
    this.counts = { dev: 0, me: 0, note: 0, sys: 0, client: 0 };
    /** @type {number | null} hello.history.to: device lines before an {at} reaches it are history */
    this.pastEnd = null;
    this.draw = this.draw.bind(this);
  }

  /**
   * The stream starts with history (hello.history, between the `history: ...` and `live` notices): device lines
   * are drawn dimmed until `reached(at)` passes `to`.
   * @param {unknown} history hello.history (null or absent: none; a resumed stream has none either)
   */
  historyUntil(history) {
    const to = history !== null && typeof history === 'object' ? /** @type {Record<string, unknown>} */ (history).to : null;
    this.pastEnd = typeof to === 'number' ? to : null;
  }

  /** @param {number} at an {at}: every record before it has been delivered */
  reached(at) {
    if (this.pastEnd !== null && at >= this.pastEnd) this.pastEnd = null;
  }

  /**
   * @param {LineKind} kind
   * @param {string} text as received: shown as text, control characters made visible
   * @param {string} [who]
   */
  add(kind, text, who) {
    /** @type {Entry} */
    const entry = { ts: Date.now(), kind, text };
    if (who !== undefined) entry.who = who;
    if (this.pastEnd !== null && kind === 'dev') entry.past = true;
    this.entries.push(entry);
    if (this.entries.length > this.maxLines * 1.25) this.entries.splice(0, this.entries.length - this.maxLines);
    this.pending.push(entry);
    // Only the newest maxLines can ever be on screen: a hidden tab's queue stays bounded too.
    if (this.pending.length > this.maxLines * 2) this.pending.splice(0, this.pending.length - this.maxLines);
    this.counts[kind]++;
    this.schedule();
  }

  /** @param {string | null} text the device's line so far, or null */
  setPartial(text) {
    if (text === this.partialText) return;
    this.partialText = text;
    this.partialDirty = true;
    this.schedule();
  }

  /** @param {boolean} on */
  showTimestamps(on) {
    this.el.classList.toggle('show-ts', on);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    if (document.hidden) setTimeout(this.draw, HIDDEN_FLUSH_MS);
    else requestAnimationFrame(this.draw);
  }

  draw() {
    this.scheduled = false;
    const el = this.el;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < STICKY_PX;
    let batch = this.pending;
    this.pending = [];
    if (batch.length > this.maxLines) batch = batch.slice(batch.length - this.maxLines);
    if (batch.length > 0) {
      let i = 0;
      while (i < batch.length) {
        let chunk = this.partialEl !== null ? this.partialEl.previousElementSibling : el.lastElementChild;
        if (chunk === null || chunk.childElementCount >= CHUNK_LINES) {
          chunk = document.createElement('div');
          chunk.className = 'chunk';
          el.insertBefore(chunk, this.partialEl);
        }
        const frag = document.createDocumentFragment();
        const room = CHUNK_LINES - chunk.childElementCount;
        for (const end = Math.min(batch.length, i + room); i < end; i++) frag.append(this.row(/** @type {Entry} */ (batch[i])));
        this.domLines += frag.childElementCount;
        chunk.append(frag);
      }
      // The oldest lines go: whole chunks while that keeps the bound, then single lines from the first chunk.
      let first = el.firstElementChild;
      while (this.domLines > this.maxLines && first !== null && first !== this.partialEl) {
        const excess = this.domLines - this.maxLines;
        if (first.childElementCount <= excess) {
          this.domLines -= first.childElementCount;
          const next = first.nextElementSibling;
          first.remove();
          first = next;
        } else {
          for (let k = 0; k < excess; k++) first.firstElementChild?.remove();
          this.domLines -= excess;
        }
      }
    }
    if (this.partialDirty) {
      this.partialDirty = false;
      if (this.partialText === null) {
        this.partialEl?.remove();
        this.partialEl = null;
      } else {
        if (this.partialEl === null) {
          this.partialEl = this.row({ ts: Date.now(), kind: 'dev', text: '' });
          this.partialEl.classList.add('partial');
        }
        const tx = /** @type {HTMLElement | null} */ (this.partialEl.lastElementChild);
        if (tx !== null) setText(tx, this.partialText);
        el.append(this.partialEl);
      }
    }
    if (atBottom) el.scrollTop = el.scrollHeight;
  }

  /**
   * @param {Entry} e
   * @returns {HTMLElement}
   */
  row(e) {
    const div = document.createElement('div');
    div.className = e.past === true ? `ln ${e.kind} past` : `ln ${e.kind}`;
    const ts = document.createElement('span');
    ts.className = 'ts';
    ts.textContent = clock(e.ts);
    div.append(ts);
    if (this.withSender) {
      const who = document.createElement('span');
      who.className = 'who';
      setText(who, e.who ?? '');
      who.title = visible(e.who ?? '');
      div.append(who);
    }
    const tx = document.createElement('span');
    tx.className = 'tx';
    setText(tx, e.text);
    div.append(tx);
    return div;
  }

  /** @returns {string} what the page holds, one line each, with date and time */
  asText() {
    const lines = this.entries.slice(-this.maxLines).map((e) => {
      const who = this.withSender ? `${visible(e.who ?? '').padEnd(24)} ` : '';
      return `${dateAndClock(e.ts)}  ${who}${PREFIX[e.kind]}${visible(e.text)}`;
    });
    if (this.partialText !== null) lines.push(`${dateAndClock(Date.now())}  ${this.withSender ? `${'device'.padEnd(24)} ` : ''}${visible(this.partialText)}`);
    return lines.join('\n') + '\n';
  }

  /** Offers the scrollback as a text file download. @param {string} name */
  save(name) {
    const url = URL.createObjectURL(new Blob([this.asText()], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}

/**
 * The device's stream into a view, as both pages take it: bytes framed into lines, the unterminated rest shown as
 * the open line; history (hello.history) dimmed until an {at} passes its end, and a prompt the history ended on
 * closed there, as a TCP client sees it closed before `! live`.
 */
export class DeviceFeed {
  /**
   * @param {LogView} view
   * @param {string} [who] the sender the view names device lines with (the dashboard's `device`)
   */
  constructor(view, who) {
    this.view = view;
    this.who = who;
    this.decoder = new LineDecoder();
  }

  /** @param {Uint8Array} bytes a binary frame */
  bytes(bytes) {
    for (const line of this.decoder.push(bytes)) this.view.add('dev', line, this.who);
    this.view.setPartial(this.decoder.partial);
  }

  /** @param {Record<string, unknown>} hello @param {boolean} resumed */
  hello(hello, resumed) {
    this.view.historyUntil(resumed ? null : hello.history);
  }

  /** @param {number} at an {at} */
  at(at) {
    if (this.view.pastEnd !== null && at >= this.view.pastEnd) this.endPartial();
    this.view.reached(at);
  }

  /** Ends the open line (a notice or a dropped link comes next: it must not look glued to it). */
  endPartial() {
    const rest = this.decoder.flush();
    if (rest !== null && rest !== '') this.view.add('dev', rest, this.who);
    this.view.setPartial(null);
  }
}

/** @param {string} listener */
export function logFileName(listener) {
  const d = new Date();
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  const safe = listener.replace(/[^A-Za-z0-9_.-]+/g, '_') || 'serial';
  return `${safe}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.log`;
}
