/**
 * Plain log lines. Under journald ($JOURNAL_STREAM set) each line carries a syslog priority prefix (<3> error,
 * <4> warning, <6> info, <7> debug) and no timestamp, so `journalctl -p warning` filters and nothing is stamped
 * twice; elsewhere a timestamp and the level word lead.
 */
export type LogLevel = 'error' | 'warning' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { error: 3, warning: 4, info: 6, debug: 7 };

export interface Log {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  setLevel(level: LogLevel): void;
  enabled(level: LogLevel): boolean;
}

export interface LogSink {
  write(line: string): void;
}

export function createLog(opts: { level: LogLevel; journald: boolean; out?: LogSink; err?: LogSink; now?: () => Date }): Log {
  let threshold = RANK[opts.level];
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string): void => {
    const rank = RANK[level];
    if (rank > threshold) return;
    // journald gives each line of a stream its own entry and priority: every line carries the prefix, so the
    // details under "reload rejected" are at err too (seen under a real systemd).
    const line = opts.journald
      ? `<${rank}>${msg.replace(/\n/g, `\n<${rank}>  `)}\n`
      : `${now().toISOString()} ${level.padEnd(7)} ${msg.replace(/\n/g, '\n  ')}\n`;
    (rank <= RANK.warning ? err : out).write(line);
  };
  return {
    error: (m) => emit('error', m),
    warn: (m) => emit('warning', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    setLevel: (level) => {
      threshold = RANK[level];
    },
    enabled: (level) => RANK[level] <= threshold,
  };
}

/** A log that keeps nothing: for tests and tools that do not want output. */
export const silentLog: Log = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  setLevel() {},
  enabled: () => false,
};
