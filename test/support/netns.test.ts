import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createVethNamespace, netnsUnavailableReason, removeStaleNamespaces, vethNames } from './netns.js';

/**
 * Leftovers of a run killed before its teardown are removed at the next start, and only those: a namespace
 * whose pid is still running (this process, another run in parallel) or that carries another tag is kept.
 * Real namespaces and veth pairs, under a tag no other test uses.
 */

const TAG = 'sgtest';
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const namespaces = (): string[] => ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '');
const links = (): string[] => ip('-o', 'link', 'show').split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '').filter((n) => n !== '');

/** What a killed run leaves: its namespace, with its veth pair (one end inside, one on the host). */
function leftovers(tag: string, pid: number): void {
  const n = vethNames(tag, pid);
  ip('netns', 'add', n.ns);
  ip('link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', n.nsIf);
  ip('link', 'set', n.nsIf, 'netns', n.ns);
}

function removeQuietly(tag: string, pid: number): void {
  const n = vethNames(tag, pid);
  for (const args of [['link', 'del', n.hostIf], ['netns', 'del', n.ns]]) {
    try {
      ip(...args);
    } catch {
      // not there
    }
  }
}

/** A pid that was just running and is not any more. */
function deadPid(): number {
  for (;;) {
    const pid = spawnSync('true').pid!;
    if (!existsSync(`/proc/${pid}`)) return pid;
  }
}

t.test('names carry the whole pid, and a tag that leaves no room for it is refused', async (t) => {
  t.same(vethNames('sg', 4194304), { ns: 'sg4194304-ns', hostIf: 'sg4194304h', nsIf: 'sg4194304n' });
  t.throws(() => vethNames('sgwrelxy'), TypeError, 'a 15-byte interface name has no room for an 8-letter tag');
  t.throws(() => vethNames('sg1'), TypeError, 'a tag ending in a digit would run into the pid');
});

t.test('stale namespaces of its tag are removed; live ones and other tags are kept', { skip: netnsUnavailableReason() ?? false }, async (t) => {
  const dead = deadPid();
  const live = spawn('sleep', ['60'], { stdio: 'ignore' });
  const livePid = live.pid!;
  const made: [string, number][] = [
    [TAG, dead],
    [TAG, process.pid],
    [TAG, livePid],
    ['sgtesx', dead],
  ];
  t.teardown(() => {
    live.kill();
    for (const [tag, pid] of made) removeQuietly(tag, pid);
  });
  for (const [tag, pid] of made) leftovers(tag, pid);
  // Killed between `link add` and `link set netns`: both ends still on the host, no namespace.
  const dead2 = deadPid();
  made.push([TAG, dead2]);
  const half = vethNames(TAG, dead2);
  ip('link', 'add', half.hostIf, 'type', 'veth', 'peer', 'name', half.nsIf);

  const removed = removeStaleNamespaces(TAG);

  const ns = namespaces();
  const ls = links();
  t.notOk(ns.includes(vethNames(TAG, dead).ns), `the namespace of dead pid ${dead} is gone`);
  t.notOk(ls.includes(vethNames(TAG, dead).hostIf), 'and its veth pair');
  t.notOk(ls.includes(half.hostIf) || ls.includes(half.nsIf), `a veth pair of dead pid ${dead2} left without a namespace is gone`);
  t.ok(ns.includes(vethNames(TAG, process.pid).ns) && ls.includes(vethNames(TAG, process.pid).hostIf), "this process's own namespace and link are kept");
  t.ok(ns.includes(vethNames(TAG, livePid).ns) && ls.includes(vethNames(TAG, livePid).hostIf), `those of a running process (pid ${livePid}) are kept`);
  t.ok(ns.includes(vethNames('sgtesx', dead).ns) && ls.includes(vethNames('sgtesx', dead).hostIf), 'those of another tag are kept, though their pid is gone');
  t.ok(removed.includes(vethNames(TAG, dead).ns) && removed.includes(half.hostIf), `says what it removed: ${removed.join(', ')}`);
});

t.test('createVethNamespace: removes the stale ones first, then makes its own; remove() leaves nothing', { skip: netnsUnavailableReason() ?? false }, async (t) => {
  const dead = deadPid();
  t.teardown(() => {
    removeQuietly(TAG, dead);
    removeQuietly(TAG, process.pid);
  });
  leftovers(TAG, dead);
  const v = createVethNamespace({ tag: TAG, hostAddr: '10.252.7.1', nsAddr: '10.252.7.2' });
  t.equal(v.ns, `${TAG}${process.pid}-ns`);
  t.notOk(namespaces().includes(vethNames(TAG, dead).ns), 'the stale one is gone');
  t.match(ip('-n', v.ns, '-o', 'addr', 'show', 'dev', v.nsIf), /inet 10\.252\.7\.2\/30/, 'the inside end has its address');
  t.match(ip('-o', 'addr', 'show', 'dev', v.hostIf), /inet 10\.252\.7\.1\/30/, 'the host end has its address');
  v.remove();
  v.remove();
  t.notOk(namespaces().includes(v.ns) || links().includes(v.hostIf), 'removed (twice: no throw)');
});
