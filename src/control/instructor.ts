/**
 * The instructor's actions (issue 16), one core for both ways in: the local control socket (the CLI) and
 * the dashboard's monitor socket. Each request is checked whole before anything changes (bad arguments
 * change nothing), done, logged with who asked, and answered with one sentence. Nothing here survives a
 * restart: pauses and bans live in this object only.
 *
 * The classroom (the daemon) does the I/O: telling clients, closing them, pulsing the reset line.
 */
import type { Clock, Disposer } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { describeDuration, notices } from '../session/notices.js';
import type { ActionRequest, InstructorStatus } from '../web/protocol.js';
import { checkText, MAX_REASON_CHARS, MAX_SAY_CHARS, parseDuration, parseTarget, normalizeAddress, type ClientTarget } from './targets.js';

/** One request: the type lives with the wire protocol, which the dashboard shares with the control socket. */
export type { ActionRequest };

export const ACTIONS = ['reset', 'pause', 'resume', 'say', 'kick', 'clear-queue', 'clients', 'send'] as const;

/** One connected client as `clients` lists it. */
export interface ClientRow {
  id: number;
  listener: string;
  via: 'tcp' | 'udp' | 'web';
  peer: string;
  mode: string;
}

export interface ActionReply {
  ok: boolean;
  /** What was done, or why nothing was. */
  text: string;
  clients?: ClientRow[];
}

/** What the dashboard shows of the instructor's state (sent to monitors on every change). */
export type InstructorState = InstructorStatus;

export interface Classroom {
  /** Tells every client of every listener; returns how many were told. */
  broadcast(text: string): number;
  /** Ends the clients `pick` chooses, each told it was removed and why; returns how many. */
  remove(pick: (c: ClientRow) => boolean, reason: string): number;
  clients(): ClientRow[];
  /** Pulses the reset line; resolves with what was done, rejects with why not. */
  reset(): Promise<string>;
  /** Drops the client lines waiting for the device, each sender told; returns the total. */
  clearQueue(): number;
  /** Sets or lifts the pause of students' input. */
  setPause(p: { until: number | null; by: string } | null): void;
  /** The instructor's state changed (the dashboard redraws). */
  changed(state: InstructorState): void;
  /** An action was done (for the transcript, when one is recording). */
  record?(text: string, who: string): void;
}

/** A dashboard's line for the device: the one action that needs its session. */
export type SendLine = (line: string) => 'queued' | 'full' | 'closed';

export class Instructor {
  private paused: { until: number | null; by: string } | null = null;
  private pauseTimer: Disposer | null = null;
  private readonly bans = new Map<string, number>();
  private resets = 0;
  private resetting = false;

  constructor(
    private readonly room: Classroom,
    private readonly clock: Clock,
    private readonly log: Log,
    /** Unix ms (bans and pauses are shown with wall times). */
    private readonly wallNow: () => number = Date.now,
  ) {}

  get state(): InstructorState {
    const now = this.wallNow();
    return {
      paused: this.paused,
      bans: [...this.bans].filter(([, until]) => until > now).map(([address, until]) => ({ address, until })),
      resets: this.resets,
    };
  }

  /** For the listeners' accept: is this address barred by a kick --ban? */
  barred(address: string): boolean {
    const a = normalizeAddress(address);
    const until = this.bans.get(a);
    if (until === undefined) return false;
    if (until > this.wallNow()) return true;
    this.bans.delete(a);
    return false;
  }

  /** Checks and runs one request; `who` is how the log names the asker. Never throws. */
  async handle(raw: unknown, who: string, send?: SendLine): Promise<ActionReply> {
    const req = parseRequest(raw);
    if (typeof req === 'string') return { ok: false, text: req };
    try {
      return await this.run(req, who, send);
    } catch (err) {
      return { ok: false, text: err instanceof Error ? err.message : String(err) };
    }
  }

  dispose(): void {
    this.pauseTimer?.();
    this.pauseTimer = null;
  }

  private async run(req: ActionRequest, who: string, send?: SendLine): Promise<ActionReply> {
    switch (req.action) {
      case 'clients':
        return { ok: true, text: `${this.room.clients().length} client(s) connected`, clients: this.room.clients() };
      case 'reset': {
        if (this.resetting) return { ok: false, text: 'a reset is already under way' };
        this.resetting = true;
        let how: string;
        try {
          how = await this.room.reset();
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          this.log.warn(`instructor: reset refused (asked by ${who}): ${why}`);
          return { ok: false, text: `reset refused: ${why}` };
        } finally {
          this.resetting = false;
        }
        this.resets++;
        const told = this.room.broadcast(notices.boxReset());
        return this.done(`box reset (${how}); ${told} client(s) told`, who);
      }
      case 'pause': {
        let ms: number | null = null;
        if (req.for !== undefined) {
          const d = parseDuration(req.for);
          if (typeof d === 'string') return { ok: false, text: d };
          ms = d;
        }
        this.pauseTimer?.();
        this.pauseTimer = null;
        this.paused = { until: ms === null ? null : this.wallNow() + ms, by: who };
        this.room.setPause(this.paused);
        if (ms !== null) this.pauseTimer = this.clock.setTimeout(() => this.lift('the pause ran out', 'its timer'), ms);
        const told = this.room.broadcast(notices.paused(ms));
        return this.done(`input paused ${ms === null ? 'until resumed' : `for ${describeDuration(ms)}`}; ${told} client(s) told`, who);
      }
      case 'resume':
        if (!this.paused) return { ok: false, text: 'input is not paused' };
        return this.done(this.lift('input resumed', who), who);
      case 'say': {
        const bad = checkText(req.text, MAX_SAY_CHARS, 'the text');
        if (bad) return { ok: false, text: bad };
        const told = this.room.broadcast(notices.instructor(req.text.trim()));
        return this.done(`said ${JSON.stringify(req.text.trim())} to ${told} client(s)`, who);
      }
      case 'kick': {
        const reason = (req.reason ?? '').trim();
        const badReason = checkText(reason, MAX_REASON_CHARS, 'the reason', true);
        if (badReason) return { ok: false, text: badReason };
        let banMs: number | null = null;
        if (req.ban !== undefined) {
          const d = parseDuration(req.ban);
          if (typeof d === 'string') return { ok: false, text: d };
          banMs = d;
        }
        let target: ClientTarget | null = null;
        let pick: (c: ClientRow) => boolean;
        if (req.client !== undefined) {
          const row = this.room.clients().find((c) => c.id === req.client);
          if (!row) return { ok: false, text: `no client with id ${req.client} (it may have left)` };
          const parsed = parseTarget(row.peer);
          if (typeof parsed === 'string') return { ok: false, text: `client ${req.client}: ${parsed}` };
          target = parsed;
          pick = (c) => c.id === req.client;
        } else {
          const t = parseTarget(req.target ?? '');
          if (typeof t === 'string') return { ok: false, text: t };
          target = t;
          pick = (c) => {
            const p = parseTarget(c.peer);
            return typeof p !== 'string' && p.address === t.address && (t.port === null || t.port === p.port);
          };
        }
        const n = this.room.remove(pick, reason);
        const from = req.target ?? (req.client !== undefined ? `${target.address} (client ${req.client})` : target.address);
        if (n === 0 && banMs === null) return { ok: false, text: `no client connected from ${from}` };
        let text = `removed ${n} client(s) from ${from}${reason ? ` (${reason})` : ''}`;
        if (banMs !== null) {
          this.bans.set(target.address, this.wallNow() + banMs);
          text += `; ${target.address} barred for ${describeDuration(banMs)}`;
        }
        return this.done(text, who);
      }
      case 'clear-queue': {
        const n = this.room.clearQueue();
        return this.done(`dropped ${n} line(s) waiting for the device`, who);
      }
      case 'send': {
        if (!send) return { ok: false, text: 'send works from the dashboard only' };
        const bad = checkText(req.line, 1 << 20, 'the line', true);
        if (bad) return { ok: false, text: bad };
        const r = send(req.line);
        if (r !== 'queued') return { ok: false, text: r === 'full' ? 'line refused: the device queue is full' : 'this dashboard is closing' };
        // Journaled like every action (the transcript also has it as this dashboard's client line).
        this.log.info(`instructor: sent ${JSON.stringify(req.line)} to the device (asked by ${who})`);
        return { ok: true, text: 'sent' };
      }
    }
  }

  private lift(text: string, who: string): string {
    this.pauseTimer?.();
    this.pauseTimer = null;
    this.paused = null;
    this.room.setPause(null);
    const told = this.room.broadcast(notices.resumed());
    if (who === 'its timer') this.done(`${text}: input resumed; ${told} client(s) told`, who);
    return `${text}; ${told} client(s) told`;
  }

  private done(text: string, who: string): ActionReply {
    this.log.info(`instructor: ${text} (asked by ${who})`);
    this.room.record?.(text, who);
    this.room.changed(this.state);
    return { ok: true, text };
  }
}

/** Checks a request's shape and types; a sentence when it is wrong (nothing is done then). */
export function parseRequest(raw: unknown): ActionRequest | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'a request is a JSON object with an "action"';
  const r = raw as Record<string, unknown>;
  const action = r.action;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    return `unknown action ${JSON.stringify(action)} (one of ${ACTIONS.join(', ')})`;
  }
  const str = (key: string, required: boolean): string | undefined | null => {
    const v = r[key];
    if (v === undefined) return required ? null : undefined;
    return typeof v === 'string' ? v : null;
  };
  const need = (key: string): string => `${action} needs "${key}" as a string`;
  switch (action) {
    case 'pause': {
      const f = str('for', false);
      if (f === null) return need('for');
      return f === undefined ? { action } : { action, for: f };
    }
    case 'say': {
      const text = str('text', true);
      return typeof text === 'string' ? { action, text } : need('text');
    }
    case 'send': {
      const line = str('line', true);
      return typeof line === 'string' ? { action, line } : need('line');
    }
    case 'kick': {
      const target = str('target', false);
      const ban = str('ban', false);
      const reason = str('reason', false);
      if (target === null || ban === null || reason === null) return 'kick takes "target", "ban" and "reason" as strings';
      const client = r.client;
      if (client !== undefined && !(typeof client === 'number' && Number.isInteger(client) && client > 0)) return 'kick takes "client" as a positive integer';
      if ((target === undefined) === (client === undefined)) return 'kick needs exactly one of "target" (ADDRESS[:PORT]) or "client" (an id from the client list)';
      return {
        action,
        ...(target !== undefined ? { target } : {}),
        ...(client !== undefined ? { client: client as number } : {}),
        ...(ban !== undefined ? { ban } : {}),
        ...(reason !== undefined ? { reason } : {}),
      };
    }
    default:
      return { action } as ActionRequest;
  }
}
