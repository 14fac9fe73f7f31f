// `tes-heartbeat webhook`: settings → the running webhook → SIGTERM → exit 0.
import { systemClock } from '../clock.ts';
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { helpText, parseSettings } from '../config/settings.ts';
import { createLogger, logProcessWarnings } from '../log.ts';
import { WEBHOOK_USAGE, webhookSpec } from './settings.ts';
import { KubeconfigError, startWebhook } from './webhook.ts';

export async function run(argv: string[]): Promise<number> {
  // Signals first: a SIGTERM during start-up still ends in a clean exit 0.
  const stop = Promise.withResolvers<string>();
  const onSignal = (signal: string) => stop.resolve(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const parsed = parseSettings(webhookSpec, argv, process.env);
    if (parsed.kind === 'help') {
      process.stdout.write(helpText(WEBHOOK_USAGE, webhookSpec));
      return EXIT_OK;
    }
    if (parsed.kind === 'invalid') return reportInvalid('webhook', parsed.problems);
    if (parsed.positionals.length > 0) {
      return reportInvalid('webhook', [`unexpected argument '${parsed.positionals[0]}'`]);
    }
    const config = parsed.values;
    const logger = await createLogger({
      level: config.logLevel ?? 'info',
      format: config.logFormat ?? 'json',
    });
    logProcessWarnings(logger);
    let webhook: Awaited<ReturnType<typeof startWebhook>>;
    try {
      webhook = await startWebhook(config, { clock: systemClock, logger });
    } catch (error) {
      if (error instanceof KubeconfigError) {
        return reportInvalid('webhook', [`KUBECONFIG (--kubeconfig): ${error.message}`]);
      }
      logger.error({ err: error }, 'webhook not started');
      logger.flush();
      return EXIT_INTERNAL;
    }
    const signal = await stop.promise;
    logger.info({ signal }, 'shutting down');
    await webhook.stop();
    logger.flush();
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
