import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/**
 * A real browser for the page tests and the page benchmark: Debian's chromium driven by playwright-core, which
 * never downloads a browser of its own. Both are optional here (chromium from apt, playwright-core a dev
 * dependency), so callers ask browserUnavailableReason() first and skip, saying why.
 */

/** The chromium to drive: $SERIAL_GATEWAY_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.SERIAL_GATEWAY_CHROMIUM ?? '/usr/bin/chromium';

/** Why no browser can be launched on this machine, with how to get one; undefined when one can. */
export function browserUnavailableReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed (a dev dependency: npm ci)';
  }
  return undefined;
}

/** A headless chromium; call only once browserUnavailableReason() is undefined. The caller closes it. */
export function launchChromium(): Promise<Browser> {
  // Required here, not imported: an import would fail the whole file where playwright-core is missing, instead
  // of letting it skip.
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  // --no-sandbox: CI runs as root; --disable-dev-shm-usage: Debian's launcher fails to decide it on this kind
  // of machine (its shm check breaks on a doubly listed mount).
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
