/**
 * `serial-gateway reset | pause [--for 10m] | resume | say TEXT | kick ADDRESS[:PORT] [--ban 5m] [--reason TEXT]
 * | clear-queue | clients`: one request to the running daemon over its control socket, one answer printed.
 * Arguments are checked here first (the daemon checks them again): a bad one is a usage error and nothing
 * is sent.
 */
import type { ActionReply, ActionRequest } from './instructor.js';
import { checkText, MAX_REASON_CHARS, MAX_SAY_CHARS, parseDuration, parseTarget } from './targets.js';

export const CONTROL_COMMANDS = ['reset', 'pause', 'resume', 'say', 'kick', 'clear-queue', 'clients'] as const;

export const CONTROL_HELP = `instructor actions (sent to the running daemon over its control socket, control.socket):
  serial-gateway reset [--config FILE]            reset the box the way serial.reset says
  serial-gateway pause [--for 10m] [--config FILE]
                                                  make every listener read-only (until resume, or for a while)
  serial-gateway resume [--config FILE]           let students' lines through again
  serial-gateway say TEXT... [--config FILE]      '! instructor: TEXT' to every client of every listener
  serial-gateway kick ADDRESS[:PORT] [--ban 5m] [--reason TEXT] [--config FILE]
                                                  remove a client (every client of ADDRESS without :PORT)
  serial-gateway clear-queue [--config FILE]      drop the client lines still waiting for the device
  serial-gateway clients [--config FILE]          who is connected
  exit codes: 0 done; 1 the daemon refused (the reason is printed); 2 bad usage; 69 no daemon answers
              on the control socket; 77 not allowed (root, the service user or its group only)
`;

export interface ControlArgs {
  request: ActionRequest;
  config?: string;
}

/** The arguments after the command word; a string is the usage error. */
export function parseControlArgs(command: string, argv: string[]): ControlArgs | string {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const allowed: Record<string, string[]> = { pause: ['--for'], kick: ['--ban', '--reason'] };
    if (flag !== '--config' && !(allowed[command] ?? []).includes(flag)) return `${command}: unknown option ${JSON.stringify(flag)}`;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) return `${command}: ${flag} needs a value`;
    flags[flag] = value;
  }
  const config = flags['--config'];
  const base = config !== undefined ? { config } : {};
  const none = (): string | null => (positional.length > 0 ? `${command} takes no arguments (got ${JSON.stringify(positional.join(' '))})` : null);
  switch (command) {
    case 'reset':
    case 'resume':
    case 'clear-queue':
    case 'clients':
      return none() ?? { ...base, request: { action: command } };
    case 'pause': {
      const bad = none();
      if (bad) return bad;
      const f = flags['--for'];
      if (f === undefined) return { ...base, request: { action: 'pause' } };
      const d = parseDuration(f);
      if (typeof d === 'string') return `pause --for: ${d}`;
      return { ...base, request: { action: 'pause', for: f } };
    }
    case 'say': {
      const text = positional.join(' ');
      const bad = checkText(text, MAX_SAY_CHARS, 'say: the text');
      return bad ?? { ...base, request: { action: 'say', text } };
    }
    case 'kick': {
      if (positional.length !== 1) return 'kick needs one ADDRESS[:PORT] (see `serial-gateway clients`)';
      const t = parseTarget(positional[0]!);
      if (typeof t === 'string') return `kick: ${t}`;
      const ban = flags['--ban'];
      if (ban !== undefined) {
        const d = parseDuration(ban);
        if (typeof d === 'string') return `kick --ban: ${d}`;
      }
      const reason = flags['--reason'];
      if (reason !== undefined) {
        const bad = checkText(reason, MAX_REASON_CHARS, 'kick --reason', true);
        if (bad) return bad;
      }
      return {
        ...base,
        request: { action: 'kick', target: positional[0]!, ...(ban !== undefined ? { ban } : {}), ...(reason !== undefined ? { reason } : {}) },
      };
    }
    default:
      return `unknown command ${command}`;
  }
}

/** The answer as a person reads it. */
export function formatReply(reply: ActionReply): string {
  if (!reply.clients) return reply.text;
  if (reply.clients.length === 0) return 'no clients connected';
  const rows = [['ID', 'LISTENER', 'VIA', 'ADDRESS', 'MODE'], ...reply.clients.map((c) => [String(c.id), c.listener, c.via, c.peer, c.mode])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
