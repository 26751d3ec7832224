/**
 * What the benchmark reads about a bridge process from /proc (Linux): CPU time, memory, and whether its
 * listener is up. Every peer is measured the same way, whatever language it is written in.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat times: 100 on every Linux architecture Node runs on. */
const CLK_TCK = 100;

/** user + sys CPU seconds of the whole process (all threads), or NaN once it has gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 (utime) and 15 (stime) of stat(5); after the name, field 3 is index 0.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

export interface Memory {
  /** Resident set now, bytes. */
  rss: number;
  /** Highest resident set so far (VmHWM), bytes. */
  peak: number;
}

/** Resident memory of a process, or NaNs once it has gone. */
export function memory(pid: number): Memory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : Number.NaN;
    };
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

const TCP_LISTEN = '0A';
const TCP_ESTABLISHED = '01';

function tcpRows(): string[][] {
  return readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
}

function localPort(row: string[]): number {
  const addr = row[1] ?? '';
  return parseInt(addr.slice(addr.indexOf(':') + 1), 16);
}

/** True once some IPv4 socket listens on `port` (the state `connect()` succeeds in, without connecting). */
export function isListening(port: number): boolean {
  return tcpRows().some((r) => r[3] === TCP_LISTEN && localPort(r) === port);
}

/**
 * Connections on `port` that the kernel has completed but the server has not accept()ed yet (for a listening
 * socket, /proc/net/tcp's rx_queue is its accept queue), or -1 if nothing listens there.
 */
export function acceptQueue(port: number): number {
  const row = tcpRows().find((r) => r[3] === TCP_LISTEN && localPort(r) === port);
  if (!row) return -1;
  const queues = row[4] ?? '0:0';
  return parseInt(queues.slice(queues.indexOf(':') + 1), 16);
}

/** Server-side connections on `port` that are still established: the clients a bridge has not closed. */
export function establishedOn(port: number): number {
  return tcpRows().filter((r) => r[3] === TCP_ESTABLISHED && localPort(r) === port).length;
}

/**
 * Samples a process's RSS every `everyMs` until stopped; `stop()` gives the highest sample and the last.
 * Timers only: the sampler costs nothing between samples.
 */
export function sampleMemory(pid: number, everyMs = 100): { stop(): { max: number; last: number } } {
  let max = 0;
  let last = Number.NaN;
  const take = (): void => {
    last = memory(pid).rss;
    if (last > max) max = last;
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { max, last };
    },
  };
}
