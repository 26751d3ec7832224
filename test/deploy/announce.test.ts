import t from 'tap';
import { loadConfigText } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { avahiServiceFile, connectLines, gpioLedOverlays, reachableAs, type ListenersConfig } from '../../src/deploy/announce.js';

function config(yaml: string): GatewayConfig {
  const loaded = loadConfigText(yaml, 'test.yaml', {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.config;
}

t.test('a web listener is announced as _http._tcp and printed as a URL', async (t) => {
  // The config loader of this version has no `web:` list; the shape is what a config with one carries.
  const base = config('tcp:\n  - name: lab\n    host: "::"\n    port: 2323\nudp: []\n');
  const withWeb: ListenersConfig = { ...base, web: [{ name: 'page', host: '0.0.0.0', port: 8080 }, { name: 'admin', host: '127.0.0.1', port: 8081 }] };
  const xml = avahiServiceFile(withWeb) ?? '';
  t.match(xml, /<type>_http\._tcp<\/type>\s*<port>8080<\/port>/);
  t.notMatch(xml, /8081/, 'a loopback web listener is not announced');
  const lines = connectLines(withWeb, 'pi', ['192.168.1.20', '2001:db8::20']);
  t.ok(lines.includes('  http://pi.local:8080/'));
  t.ok(lines.includes('  http://192.168.1.20:8080/'));
  t.notOk(lines.includes('  http://[2001:db8::20]:8080/'), '0.0.0.0 is IPv4 only');
  t.ok(lines.includes('  nc 2001:db8::20 2323'), ':: is every address');
  t.ok(lines.includes('  http://127.0.0.1:8081/'));
});

t.test('nothing reachable from the LAN: no service file', async (t) => {
  const c = config('tcp:\n  - name: lab\n    host: 127.0.0.1\n    port: 2323\nudp: []\n');
  t.equal(avahiServiceFile(c), undefined);
  t.same(reachableAs('localhost', 'pi', ['10.0.0.2']), ['127.0.0.1']);
  t.same(reachableAs('10.0.0.2', 'pi', ['10.0.0.2', '10.0.0.3']), ['pi.local', '10.0.0.2']);
});

t.test('overlay lines only for enabled, wired LEDs the LED class can drive', async (t) => {
  const off = config('leds:\n  enabled: false\n  ready:\n    pin: 17\n');
  t.same(gpioLedOverlays(off), [], 'leds.enabled: false writes nothing');
  const on = config('leds:\n  enabled: true\n  ready:\n    pin: 17\n    label: my-ready\n  activity:\n    pin: 5\n    backend: sysfs\n');
  t.same(gpioLedOverlays(on), ['dtoverlay=gpio-led,gpio=17,label=my-ready,trigger=none']);
});
