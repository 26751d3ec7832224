/**
 * Run by deploy/install.sh with the installed program: reads the installed config and prints what the
 * script writes or shows (see announce.ts). Not part of the daemon.
 *
 *   node install-helper.js avahi|overlays|connect --config FILE [--hostname NAME] [--no-addresses]
 *   node install-helper.js all --out DIR --config FILE ...   (the three into DIR/avahi, DIR/overlays,
 *                                                             DIR/connect: one Node start-up, not three)
 *
 * --no-addresses: name the machine only (an install into an image, where this machine's addresses are not
 * the Pi's).
 *
 * Exit 0 with the text on stdout; 78 (EX_CONFIG) with the config's errors on stderr; 2 on bad usage.
 */
import { writeFileSync } from 'node:fs';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { formatErrors, loadConfig } from '../config/load.js';
import { avahiServiceFile, connectLines, gpioLedOverlays, type ListenersConfig } from './announce.js';

/** This machine's addresses a LAN client can use: not loopback, not IPv6 link-local. */
export function lanAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))) continue;
      out.push(a.address);
    }
  }
  return out;
}

function main(argv: string[]): number {
  const [what, ...rest] = argv;
  let file: string | undefined;
  let out: string | undefined;
  let host = osHostname();
  let addresses = true;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--config') file = rest[++i];
    else if (rest[i] === '--out') out = rest[++i];
    else if (rest[i] === '--hostname') host = rest[++i] ?? host;
    else if (rest[i] === '--no-addresses') addresses = false;
    else file = undefined;
  }
  if (file === undefined || !['avahi', 'overlays', 'connect', 'all'].includes(what ?? '') || (what === 'all') !== (out !== undefined)) {
    process.stderr.write('usage: install-helper avahi|overlays|connect|all --config FILE [--out DIR] [--hostname NAME] [--no-addresses]\n');
    return 2;
  }
  const loaded = loadConfig(file, {});
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return 78;
  }
  // A config with web listeners carries them in `web`; older configs have none.
  const listeners: ListenersConfig = loaded.config;
  const texts = {
    avahi: () => avahiServiceFile(listeners) ?? '',
    overlays: () => gpioLedOverlays(loaded.config).map((l) => `${l}\n`).join(''),
    connect: () => connectLines(listeners, host, addresses ? lanAddresses() : []).map((l) => `${l}\n`).join(''),
  };
  if (what === 'all') {
    for (const [name, text] of Object.entries(texts)) writeFileSync(join(out!, name), text());
  } else {
    process.stdout.write(texts[what as keyof typeof texts]());
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
