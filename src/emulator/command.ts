// `tes-heartbeat emulator`: the in-memory TES on a port until SIGTERM/SIGINT.
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { duration, helpText, integer, logSettings, nonEmpty, parseSettings } from '../config/settings.ts';
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
  token: {
    flag: 'token',
    help: 'bearer token every call must carry (or a run token it issued)',
    parse: nonEmpty,
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
        ...(values.token !== undefined && { token: values.token }),
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      process.stderr.write(
        `tes-heartbeat emulator: cannot listen on ${values.host}:${values.port}: ${typeof code === 'string' ? code : (error as Error).message}\n`,
      );
      return EXIT_INTERNAL;
    }
    log.info({ url: emulator.url, auth: values.token !== undefined }, 'emulator listening');
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
