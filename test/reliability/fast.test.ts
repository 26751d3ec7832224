import t from 'tap';
import { skipReason, unaccounted } from './case.js';
import { loadCases } from './load-cases.js';

/** The fast scale of every reliability case, as part of `npm test`. The long versions: `npm run soak`. */
for (const c of loadCases()) {
  t.test(c.name, { skip: skipReason(c) ?? false }, async (t) => {
    const r = await c.run('fast', t.testdir());
    for (const check of r.checks) t.ok(check.ok, check.what);
    t.equal(unaccounted(r), 0, `lines: sent ${r.linesSent} = delivered ${r.linesDelivered} + dropped ${r.linesDropped}`);
    for (const n of r.notes) t.comment(n);
  });
}
