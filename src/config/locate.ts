/**
 * Which config file to load, and why, in the order a person expects: the command line, then the
 * environment, then the system-wide file an install puts in place, then the commented default that ships
 * with the program.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const SYSTEM_CONFIG = '/etc/serial-gateway/config.yaml';
export const CONFIG_ENV = 'SERIAL_GATEWAY_CONFIG';

/**
 * The config/default.yaml shipped beside the program. This module runs as dist/src/config/locate.js,
 * so the package root is three levels up.
 */
export const BUNDLED_CONFIG = resolve(__dirname, '..', '..', '..', 'config', 'default.yaml');

export interface LocatedConfig {
  file: string;
  /** One line for logs and --print-config: "--config", "$SERIAL_GATEWAY_CONFIG", ... */
  why: string;
}

/**
 * A file named explicitly (flag or environment) is returned even if missing, so loading it reports
 * that it does not exist instead of silently falling back to another file.
 */
export function locateConfig(
  argv: { config?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = existsSync,
): LocatedConfig {
  if (argv.config !== undefined && argv.config !== '') {
    return { file: argv.config, why: 'given with --config' };
  }
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { file: fromEnv, why: `given in $${CONFIG_ENV}` };
  }
  if (exists(SYSTEM_CONFIG)) {
    return { file: SYSTEM_CONFIG, why: `the system config (${SYSTEM_CONFIG} exists)` };
  }
  if (exists(BUNDLED_CONFIG)) {
    return { file: BUNDLED_CONFIG, why: `the bundled default (no --config, no $${CONFIG_ENV}, no ${SYSTEM_CONFIG})` };
  }
  return {
    file: BUNDLED_CONFIG,
    why: `nothing found: no --config, no $${CONFIG_ENV}, no ${SYSTEM_CONFIG}, and the bundled default is missing`,
  };
}
