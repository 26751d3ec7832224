import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { netnsUnavailableReason, vethNames } from '../support/netns.js';
import { NETNS_TAG, setUpNamespace } from './cases/10-access.js';

/**
 * Case 10's network namespace is named for its process, and a run killed before its teardown (a tap timeout)
 * does not leave it behind for good: the next run removes it first.
 */

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const namespaces = (): string[] => ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '');
const links = (): string[] => ip('-o', 'link', 'show').split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '').filter((n) => n !== '');

t.test("case 10 removes a killed run's namespace, and its own at the end", { skip: netnsUnavailableReason() ?? false }, async (t) => {
  let dead: number;
  do dead = spawnSync('true').pid!;
  while (existsSync(`/proc/${dead}`));
  const stale = vethNames(NETNS_TAG, dead);
  t.teardown(() => {
    for (const args of [['link', 'del', stale.hostIf], ['netns', 'del', stale.ns]]) {
      try {
        ip(...args);
      } catch {
        // removed, as it should be
      }
    }
  });
  ip('netns', 'add', stale.ns);
  ip('link', 'add', stale.hostIf, 'type', 'veth', 'peer', 'name', stale.nsIf);
  ip('link', 'set', stale.nsIf, 'netns', stale.ns);

  const ns = setUpNamespace();
  t.teardown(() => ns.cleanUp());
  t.ok(ns.ok, ns.why || 'set up');
  t.equal(ns.name, vethNames(NETNS_TAG).ns, 'named with the whole pid');
  t.notOk(namespaces().includes(stale.ns) || links().includes(stale.hostIf), `the namespace and link of dead pid ${dead} are gone`);
  t.ok(namespaces().includes(ns.name), 'its own is there');
  ns.cleanUp();
  t.notOk(namespaces().includes(ns.name) || links().includes(vethNames(NETNS_TAG).hostIf), 'and gone after cleanUp');
});
