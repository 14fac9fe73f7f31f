// `tes-heartbeat emulator`: the in-memory TES on a port until SIGTERM/SIGINT.
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { readFileSync } from 'node:fs';
import { trimCredential } from '../config/credential.ts';
import {
  duration,
  helpText,
  integer,
  logSettings,
  nonEmpty,
  Problem,
  parseSettings,
} from '../config/settings.ts';
import { createLogger, logProcessWarnings } from '../log.ts';
import { startEmulator } from './server.ts';

const spec = {
  host: { flag: 'host', help: 'address to listen on', default: '127.0.0.1', parse: nonEmpty },
  port: {
    flag: 'port',
    help: 'port to listen on (0 picks a free one)',
    default: '8080',
    parse: integer({ min: 0, max: 65535 }),
  },
  // Rule T7: in a cluster the token comes from the environment or a mounted file; a
  // command-line flag is for local use only (`ps` shows every process's arguments).
  token: {
    env: 'EMULATOR_TOKEN',
    flag: 'token',
    help: 'bearer token every call must carry (or a run token it issued); the flag is visible in ps',
    parse: emulatorToken,
  },
  tokenFile: {
    env: 'EMULATOR_TOKEN_FILE',
    flag: 'token-file',
    help: 'the bearer token read from this file at start (a mounted Secret)',
    parse: (raw: string) => {
      if (raw === '') return new Problem('must not be empty');
      try {
        return emulatorToken(readFileSync(raw, 'utf8'));
      } catch (error) {
        return new Problem(`cannot read ${raw}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    },
  },
  heartbeatTimeout: {
    flag: 'heartbeat-timeout',
    help: 'a Running run without a heartbeat for this long becomes TimedOut',
    default: '90s',
    parse: duration({ positive: true }),
  },
  ...logSettings,
};

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSettings(spec, argv, process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(helpText('usage: tes-heartbeat emulator [flags]', spec));
    return EXIT_OK;
  }
  if (parsed.kind === 'invalid') return reportInvalid('emulator', parsed.problems);
  if (parsed.positionals.length > 0)
    return reportInvalid('emulator', [`unexpected argument '${parsed.positionals[0]}'`]);
  const { values } = parsed;
  if (values.token !== undefined && values.tokenFile !== undefined)
    return reportInvalid('emulator', [
      'EMULATOR_TOKEN (--token) and EMULATOR_TOKEN_FILE (--token-file): set one, not both',
    ]);
  const token = values.token ?? values.tokenFile;

  const log = await createLogger({ level: values.logLevel, format: values.logFormat });
  logProcessWarnings(log);
  // Handlers first: a signal during start-up still ends in a clean exit 0.
  const stop = Promise.withResolvers<string>();
  const onSignal = (signal: string) => stop.resolve(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    let emulator: Awaited<ReturnType<typeof startEmulator>>;
    try {
      emulator = await startEmulator({
        host: values.host,
        port: values.port,
        heartbeatTimeoutMs: values.heartbeatTimeout,
        log,
        ...(token !== undefined && { token }),
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      process.stderr.write(
        `tes-heartbeat emulator: cannot listen on ${values.host}:${values.port}: ${typeof code === 'string' ? code : (error as Error).message}\n`,
      );
      return EXIT_INTERNAL;
    }
    log.info({ url: emulator.url, auth: token !== undefined }, 'emulator listening');
    const signal = await stop.promise;
    log.info({ signal }, 'shutting down');
    await emulator.close();
    log.info('emulator stopped');
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    log.flush();
  }
}

/**
 * Trimmed (a Secret file often ends in a newline); never empty — an empty Secret must not
 * turn authentication off unnoticed; one word of visible ASCII, as a bearer header
 * carries it and the page's prompt takes it.
 */
function emulatorToken(raw: string): string | Problem {
  const token = trimCredential(raw);
  if (token === '') return new Problem('must not be empty');
  return /^[\x21-\x7e]+$/.test(token)
    ? token
    : new Problem('must be printable ASCII without spaces (a bearer token is one word)');
}
