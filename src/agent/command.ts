// `tes-heartbeat agent`: settings, logger, signals, exit code. Signals are
// handled from the first moment (contract rule 1): one that arrives while the
// agent is still starting is remembered and turns into the final heartbeat.
// Once the agent runs, an internal error anywhere (an unhandled rejection, an
// exception in a callback) is logged and the loop goes on (rule 22): a sidecar
// that crashes loses its final heartbeat, and exit 1 would fail the task pod.
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { systemClock } from '../clock.ts';
import { agentSettings, loadAgentConfig } from '../config/agent.ts';
import { helpText } from '../config/settings.ts';
import { createLogger, logProcessWarnings } from '../log.ts';
import { Secrets } from '../secrets.ts';

/** After the agent finished, anything still open (a socket to a TES that never answers) gets this long. */
const EXIT_BACKSTOP_MS = 1_000;

export async function run(argv: string[]): Promise<number> {
  let stop: (() => void) | undefined;
  let onInternalError: ((error: unknown) => void) | undefined;
  let signalled = false;
  const onSignal = () => {
    signalled = true;
    stop?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const loaded = loadAgentConfig(argv, process.env);
    if (loaded.kind === 'help') {
      process.stdout.write(helpText('usage: tes-heartbeat agent [flags]', agentSettings));
      return EXIT_OK;
    }
    if (loaded.kind === 'invalid') return reportInvalid('agent', loaded.problems);
    const { config } = loaded;
    // Rule 11: scrubbed from every line; the bearer adds token-file contents and jwts.
    const secrets = new Secrets([config.token, config.nonce]);
    const log = await createLogger({
      level: config.logLevel,
      format: config.logFormat,
      base: { runId: config.runId, podName: config.podName },
      secrets,
    });
    logProcessWarnings(log);
    // Loaded after the settings are valid: a bad setting costs no module loading.
    const { Agent } = await import('./agent.ts');
    const agent = new Agent(config, { clock: systemClock, log, secrets });
    onInternalError = (error) => log.error({ err: error }, 'internal error; the agent goes on');
    process.on('uncaughtException', onInternalError);
    process.on('unhandledRejection', onInternalError);
    stop = () => agent.stop();
    if (signalled) agent.stop();
    log.info({ tesUrl: config.tesUrl.origin, namespace: config.namespace }, 'agent starting');
    try {
      await agent.start();
    } catch (error) {
      // Through the logger, so the stack and any TES text in it are scrubbed (rule 11).
      log.error({ err: error }, 'internal error: the agent stops');
      log.flush();
      return EXIT_INTERNAL;
    } finally {
      // A backstop, not a policy, hence a plain timer: whatever is still open must not
      // keep a finished sidecar, and with it a Job, alive (rules 15 and 22).
      setTimeout(() => process.exit(), EXIT_BACKSTOP_MS).unref();
    }
    log.info('agent finished');
    log.flush();
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (onInternalError) {
      process.off('uncaughtException', onInternalError);
      process.off('unhandledRejection', onInternalError);
    }
  }
}
