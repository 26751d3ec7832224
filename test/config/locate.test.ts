import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t from 'tap';
import { BUNDLED_CONFIG, locateConfig, SYSTEM_CONFIG } from '../../src/config/locate.js';

const repo = resolve(__dirname, '..', '..', '..');

t.test('the bundled default is the repo config/default.yaml', (t) => {
  // locate.js is compiled three folders below the repo root, like this test.
  t.equal(BUNDLED_CONFIG, join(repo, 'config', 'default.yaml'));
  t.equal(existsSync(BUNDLED_CONFIG), true);
  t.end();
});

t.test('order: --config, $SERIAL_GATEWAY_CONFIG, /etc file, bundled default', (t) => {
  const everything = () => true;
  const env = { SERIAL_GATEWAY_CONFIG: '/srv/env.yaml' };
  t.same(locateConfig({ config: 'mine.yaml' }, env, everything), { file: 'mine.yaml', why: 'given with --config' });
  t.same(locateConfig({}, env, everything), { file: '/srv/env.yaml', why: 'given in $SERIAL_GATEWAY_CONFIG' });
  t.same(locateConfig({ config: '' }, { SERIAL_GATEWAY_CONFIG: '' }, everything).file, SYSTEM_CONFIG);
  const onlyBundled = (p: string) => p === BUNDLED_CONFIG;
  const found = locateConfig({}, {}, onlyBundled);
  t.equal(found.file, BUNDLED_CONFIG);
  t.match(found.why, /bundled default/);
  const nothing = locateConfig({}, {}, () => false);
  t.equal(nothing.file, BUNDLED_CONFIG, 'loading it then reports the missing file');
  t.match(nothing.why, /bundled default is missing/);
  t.end();
});

t.test('a named file is returned even when missing, never replaced by a fallback', (t) => {
  const seen: string[] = [];
  const exists = (p: string) => {
    seen.push(p);
    return false;
  };
  t.equal(locateConfig({ config: '/nope.yaml' }, {}, exists).file, '/nope.yaml');
  t.equal(locateConfig({}, { SERIAL_GATEWAY_CONFIG: '/nope2.yaml' }, exists).file, '/nope2.yaml');
  t.same(seen, []);
  t.end();
});
