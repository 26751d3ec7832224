/**
 * A network namespace of a test's own, joined to the host by a veth pair: a client run inside it (`ip netns exec`)
 * connects from an address that is not loopback, like another machine on the LAN. Needs root and iproute2
 * (Linux); `netnsUnavailableReason()` says why it cannot be done here, for `t.test(..., { skip })`.
 *
 * Names carry the whole pid of the process that made them: the namespace `<tag><pid>-ns`, the veth ends
 * `<tag><pid>h` (host) and `<tag><pid>n` (inside). A run killed before its teardown (a tap timeout, a SIGKILL)
 * leaves them behind, with an address on the host end that a later run's `local-networks` would see and whose
 * /30 could clash with its own. So `createVethNamespace` first removes the leftovers of its tag whose process
 * is gone, and never those of a process still running (another run of the same test, in parallel).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Linux interface names hold at most 15 bytes (IFNAMSIZ 16 with the NUL). */
const IFNAME_MAX = 15;
/** pid_max is at most 2^22 (4194304) on Linux: 7 digits. */
const PID_DIGITS_MAX = 7;

export interface VethNames {
  ns: string;
  hostIf: string;
  nsIf: string;
}

export interface VethNamespace extends VethNames {
  hostAddr: string;
  nsAddr: string;
  /** Deletes the host end (which takes its peer) and the namespace; safe to call twice. */
  remove(): void;
}

export interface VethOptions {
  /** Says whose names these are: letters and dashes, at most 7, not ending in a digit. */
  tag: string;
  hostAddr: string;
  nsAddr: string;
  prefixLength?: number;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });

const quietly = (f: () => unknown): void => {
  try {
    f();
  } catch {
    // already gone
  }
};

function checkTag(tag: string): void {
  // A trailing digit would run into the pid; a longer tag would not leave room for a 7-digit pid and `h`.
  if (!/^[a-z][a-z-]*$/.test(tag) || tag.length + PID_DIGITS_MAX + 1 > IFNAME_MAX) {
    throw new TypeError(`netns tag ${JSON.stringify(tag)}: use lowercase letters and dashes, at most ${IFNAME_MAX - PID_DIGITS_MAX - 1}`);
  }
}

export function vethNames(tag: string, pid: number = process.pid): VethNames {
  checkTag(tag);
  return { ns: `${tag}${pid}-ns`, hostIf: `${tag}${pid}h`, nsIf: `${tag}${pid}n` };
}

function isRunning(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * Removes the namespaces and veth links named for `tag` whose process is no longer running; returns their
 * names. Those of this process and of every running one are kept. (A pid reused since by an unrelated process
 * keeps its leftovers until that one ends: the safe side.)
 */
export function removeStaleNamespaces(tag: string): string[] {
  checkTag(tag);
  const stale = (pid: number): boolean => pid !== process.pid && !isRunning(pid);
  const removed: string[] = [];
  const nsName = new RegExp(`^${tag}(\\d+)-ns$`);
  const linkName = new RegExp(`^${tag}(\\d+)[hn]$`);
  // Links first: a run killed between `link add` and `link set netns` left both ends on the host.
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    // "7: sg123h@if6: <BROADCAST,..." (or "@sg123n" while both ends are on the host)
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    const m = name === undefined ? null : linkName.exec(name);
    if (!m || !stale(Number(m[1]))) continue;
    quietly(() => ip('link', 'del', name!));
    removed.push(name!);
  }
  for (const line of ip('netns', 'list').split('\n')) {
    // "sg123-ns (id: 3)"
    const name = /^(\S+)/.exec(line)?.[1];
    const m = name === undefined ? null : nsName.exec(name);
    if (!m || !stale(Number(m[1]))) continue;
    quietly(() => ip('netns', 'del', name!));
    removed.push(name!);
  }
  return removed;
}

/**
 * A namespace named for this process, after removing the stale ones of the same tag. Throws (with ip's own
 * message) if it cannot be made, leaving nothing behind.
 */
export function createVethNamespace(o: VethOptions): VethNamespace {
  const names = vethNames(o.tag);
  const prefix = o.prefixLength ?? 30;
  removeStaleNamespaces(o.tag);
  const remove = (): void => {
    quietly(() => ip('link', 'del', names.hostIf));
    quietly(() => ip('netns', 'del', names.ns));
  };
  try {
    ip('netns', 'add', names.ns);
    ip('link', 'add', names.hostIf, 'type', 'veth', 'peer', 'name', names.nsIf);
    ip('link', 'set', names.nsIf, 'netns', names.ns);
    ip('addr', 'add', `${o.hostAddr}/${prefix}`, 'dev', names.hostIf);
    ip('link', 'set', names.hostIf, 'up');
    ip('-n', names.ns, 'addr', 'add', `${o.nsAddr}/${prefix}`, 'dev', names.nsIf);
    ip('-n', names.ns, 'link', 'set', names.nsIf, 'up');
    ip('-n', names.ns, 'link', 'set', 'lo', 'up');
  } catch (err) {
    remove();
    const e = err as { stderr?: string; message: string };
    throw new Error(`cannot set up network namespace ${names.ns}: ${(e.stderr || e.message).trim().split('\n')[0]}`);
  }
  return { ...names, hostAddr: o.hostAddr, nsAddr: o.nsAddr, remove };
}

let unavailable: string | null | undefined;

/** Why no network namespace can be made here, or undefined. Probes once per process. */
export function netnsUnavailableReason(): string | undefined {
  if (unavailable === undefined) unavailable = probe();
  return unavailable ?? undefined;
}

function probe(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to make a network namespace';
  try {
    ip('-V');
  } catch {
    return 'needs the ip command (apt-get install iproute2)';
  }
  const name = `sgprobe${process.pid}`;
  try {
    ip('netns', 'add', name);
    ip('netns', 'del', name);
  } catch (err) {
    return `cannot make a network namespace here: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0]}`;
  }
  return null;
}
