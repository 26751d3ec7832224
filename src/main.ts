#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { systemClock } from './core/clock.js';
import { createLog } from './core/log.js';
import { describeConfig, formatErrors, loadConfig } from './config/load.js';
import { locateConfig } from './config/locate.js';
import { Daemon } from './daemon.js';
import { diagnose, formatFinding, healthy } from './doctor/diagnose.js';
import { gather } from './doctor/gather.js';
import { runLedTest } from './led/led-test.js';
import { runLabBoxOnPort } from './serial/labbox-port.js';
import { listPorts } from './serial/targets.js';
import { createNotifier } from './status/notify.js';
import { TRANSCRIPT_HELP, runTranscriptCommand } from './transcript/read.js';
import { askDaemon } from './control/control-socket.js';
import { CONTROL_COMMANDS, CONTROL_HELP, formatReply, parseControlArgs } from './control/cli.js';

/** Exit codes (documented in the README and --help). */
export const EXIT = { OK: 0, INVALID: 1, USAGE: 2, UNAVAILABLE: 69, SOFTWARE: 70, NOPERM: 77, CONFIG: 78 } as const;

const HELP = `serial-gateway: bridge a serial lab box to TCP clients and UDP peers

usage:
  serial-gateway [--config FILE]        run the gateway (the daemon)
  serial-gateway --check-config [--config FILE]
                                        validate the config; exit 0 if valid, 1 with the errors if not
  serial-gateway --print-config [--config FILE]
                                        print the effective config and where each value came from
  serial-gateway --list-ports           list serial ports with USB vendor/product/serial (for serial.match)
  serial-gateway doctor [--config FILE] check the installed gateway: config, device and its permissions,
                                        who holds the port, listeners, LEDs, Node, the service and its
                                        journal; one line per finding with the fix; exit 0 healthy, 1 not
  serial-gateway --led-test [--config FILE]
                                        show which backend drives each LED, then run every LED through
                                        every pattern (for checking the wiring)
  serial-gateway labbox --port PATH [--id ID] [--name NAME]
                                        run the simulated lab box on a serial port (e.g. one end of a pty pair)
  serial-gateway transcript [--config FILE] [--since WHEN] [--until WHEN] [--client ADDRESS]
                           [--listener NAME] [--follow] [--json]
                                        print the class transcript (transcript.enabled) as a chat;
                                        serial-gateway transcript --help for more
  serial-gateway --version | --help

${CONTROL_HELP}
config: --config FILE, else $SERIAL_GATEWAY_CONFIG, else /etc/serial-gateway/config.yaml,
        else the bundled config/default.yaml
exit codes: 0 ok; 1 config invalid (--check-config) or a problem found (doctor); 2 bad usage; 70 internal error;
            78 the daemon could not start on its config (systemd does not restart on 78)
`;

interface Args {
  command: 'run' | 'check' | 'print' | 'list' | 'ledtest' | 'labbox' | 'doctor' | 'version' | 'help';
  config?: string;
  port?: string;
  id?: string;
  name?: string;
}

function parseArgs(argv: string[]): Args | string {
  const args: Args = { command: 'run' };
  const take = (i: number, flag: string): string | undefined => {
    const v = argv[i + 1];
    return v === undefined || v.startsWith('--') ? undefined : v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => {
      if (inline !== undefined) return inline;
      const v = take(i, flag);
      if (v !== undefined) i++;
      return v;
    };
    switch (flag) {
      case '--config': {
        const v = value();
        if (v === undefined) return '--config needs a FILE';
        args.config = v;
        break;
      }
      case '--check-config':
        args.command = 'check';
        break;
      case '--print-config':
        args.command = 'print';
        break;
      case '--list-ports':
        args.command = 'list';
        break;
      case '--led-test':
        args.command = 'ledtest';
        break;
      case 'labbox':
        args.command = 'labbox';
        break;
      case 'doctor':
        args.command = 'doctor';
        break;
      case '--port': {
        const v = value();
        if (v === undefined) return '--port needs a PATH';
        args.port = v;
        break;
      }
      case '--id': {
        const v = value();
        if (v === undefined) return '--id needs a value';
        args.id = v;
        break;
      }
      case '--name': {
        const v = value();
        if (v === undefined) return '--name needs a value';
        args.name = v;
        break;
      }
      case '--version':
      case '-V':
        args.command = 'version';
        break;
      case '--help':
      case '-h':
        args.command = 'help';
        break;
      default:
        return `unknown argument ${JSON.stringify(a)}`;
    }
  }
  if (args.command === 'labbox' && !args.port) return 'labbox needs --port PATH';
  return args;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** An instructor action: one request to the running daemon's control socket. */
async function control(command: string, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = parseControlArgs(command, argv);
  if (typeof args === 'string') {
    process.stderr.write(`serial-gateway: ${args}\n\n${CONTROL_HELP}`);
    return EXIT.USAGE;
  }
  const located = locateConfig({ config: args.config }, env);
  const loaded = loadConfig(located.file, env);
  if (!loaded.ok) {
    process.stderr.write(`serial-gateway: the config is invalid:\n${formatErrors(loaded.errors)}\n`);
    return EXIT.CONFIG;
  }
  const path = Daemon.controlSocketPath(loaded.config, located.file);
  if (path === '') {
    process.stderr.write(`serial-gateway: ${located.file} has no control socket (control.socket is ''): use the dashboard\n`);
    return EXIT.UNAVAILABLE;
  }
  try {
    const reply = await askDaemon(path, args.request);
    if (!reply.ok) {
      process.stderr.write(`serial-gateway: ${reply.text}\n`);
      return reply.text.startsWith('refused: local user') ? EXIT.NOPERM : EXIT.INVALID;
    }
    process.stdout.write(`${formatReply(reply)}\n`);
    return EXIT.OK;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      process.stderr.write(`serial-gateway: permission denied on ${path}: only root, the service user and its group may control the gateway\n`);
      return EXIT.NOPERM;
    }
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      process.stderr.write(`serial-gateway: no gateway is running with ${located.file} (nothing answers on ${path})\n`);
      return EXIT.UNAVAILABLE;
    }
    process.stderr.write(`serial-gateway: ${path}: ${(err as Error).message}\n`);
    return EXIT.UNAVAILABLE;
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'transcript') return transcriptCommand(argv.slice(1));
  if ((CONTROL_COMMANDS as readonly string[]).includes(argv[0] ?? '')) return control(argv[0]!, argv.slice(1), process.env);
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`serial-gateway: ${parsed}\n\n${HELP}`);
    return EXIT.USAGE;
  }
  const env = process.env;
  switch (parsed.command) {
    case 'help':
      process.stdout.write(HELP);
      return EXIT.OK;
    case 'version':
      process.stdout.write(`serial-gateway ${version()}\n`);
      return EXIT.OK;
    case 'list': {
      try {
        const ports = await listPorts();
        if (ports.length === 0) process.stdout.write('no serial ports found\n');
        for (const p of ports) {
          process.stdout.write(
            `${p.path}\tvendorId=${p.vendorId ?? '-'} productId=${p.productId ?? '-'} serialNumber=${p.serialNumber ?? '-'}${p.manufacturer ? ` (${p.manufacturer})` : ''}\n`,
          );
        }
        return EXIT.OK;
      } catch (err) {
        process.stderr.write(`serial-gateway: ${(err as Error).message}\n`);
        return EXIT.SOFTWARE;
      }
    }
    case 'labbox': {
      const box = await runLabBoxOnPort(parsed.port!, {
        studentId: parsed.id ?? '6510500000',
        name: parsed.name ?? 'Lab Box',
        onError: (err) => process.stderr.write(`labbox: ${err.message}\n`),
      });
      process.stdout.write(`labbox: answering on ${parsed.port}\n`);
      const stop = (): void => void box.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const err = await box.closed;
      if (err) process.stderr.write(`labbox: port gone: ${err.message}\n`);
      return EXIT.OK;
    }
    default:
      break;
  }

  const located = locateConfig({ config: parsed.config }, env);
  if (parsed.command === 'doctor') {
    const findings = diagnose(gather(located.file));
    for (const f of findings) process.stdout.write(`${formatFinding(f)}\n`);
    const failed = findings.filter((f) => f.severity === 'fail').length;
    process.stdout.write(healthy(findings) ? 'doctor: healthy\n' : `doctor: ${failed} problem${failed === 1 ? '' : 's'}\n`);
    return healthy(findings) ? EXIT.OK : EXIT.INVALID;
  }
  const loaded = loadConfig(located.file, env);
  if (parsed.command === 'check') {
    if (loaded.ok) {
      process.stdout.write(`${located.file}: ok\n`);
      return EXIT.OK;
    }
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    return EXIT.INVALID;
  }
  if (!loaded.ok) {
    const text = `serial-gateway: cannot start, the config is invalid:\n${formatErrors(loaded.errors)}`;
    // Under systemd, at priority err (journalctl -p err), every line: unprefixed stderr is logged as info.
    process.stderr.write(env.JOURNAL_STREAM ? `${text.replace(/^/gm, '<3>')}\n` : `${text}\n`);
    return EXIT.CONFIG;
  }
  if (parsed.command === 'ledtest') {
    const log = createLog({ level: loaded.config.log.level, journald: false });
    await runLedTest(loaded.config.leds, systemClock, log, (line) => process.stdout.write(`${line}\n`));
    return EXIT.OK;
  }
  if (parsed.command === 'print') {
    process.stdout.write(`# config file: ${located.file} (${located.why})\n`);
    process.stdout.write(describeConfig(loaded.config, loaded.sources, located.file));
    return EXIT.OK;
  }

  const log = createLog({ level: loaded.config.log.level, journald: Boolean(env.JOURNAL_STREAM) });
  log.info(`config: ${located.file} (${located.why})`);
  // Past a file size limit (RLIMIT_FSIZE) the kernel sends SIGXFSZ, whose default kills the process: handled,
  // the write fails with EFBIG instead, and only the transcript stops.
  process.on('SIGXFSZ', () => {});
  const notifier = createNotifier(env, (m) => log.warn(m));
  const daemon = new Daemon({ file: located.file, config: loaded.config, clock: systemClock, log, notifier, env, hostname: hostname() });
  try {
    await daemon.start();
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    await daemon.stop().catch(() => {});
    return EXIT.CONFIG;
  }
  let reloading: Promise<unknown> = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() => daemon.reload()).catch((err: Error) => log.error(`reload failed: ${err.stack ?? err.message}`));
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info(`${signal}: shutting down`);
      void reloading.then(() => daemon.stop()).then(resolve, (err: Error) => {
        log.error(`stop failed: ${err.message}`);
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return EXIT.OK;
}

async function transcriptCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(TRANSCRIPT_HELP);
    return EXIT.OK;
  }
  const stopped = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  // A reader piped into head(1) stops reading: end quietly.
  process.stdout.on('error', () => process.exit(EXIT.OK));
  const out = process.stdout;
  const code = await runTranscriptCommand(argv, process.env, {
    out: (s) => out.write(s),
    err: (s) => process.stderr.write(s),
    now: Date.now,
    stopped,
    pause: () => (out.writableNeedDrain ? new Promise((resolve) => out.once('drain', () => resolve())) : Promise.resolve()),
  });
  // main() exits the process once this returns: let what is written reach the pipe first.
  await new Promise<void>((resolve) => out.write('', () => resolve()));
  return code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Sockets are closed by now; exit without waiting for stray timers of libraries.
      setImmediate(() => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(`serial-gateway: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(EXIT.SOFTWARE);
    },
  );
}
