// `tes-heartbeat agent`: settings, logger, signals, exit code. Signals are
// handled from the first moment (contract rule 1): one that arrives while the
// agent is still starting is remembered and turns into the final heartbeat.
import { EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { systemClock } from '../clock.ts';
import { agentSettings, loadAgentConfig } from '../config/agent.ts';
import { helpText } from '../config/settings.ts';
import { createLogger } from '../log.ts';

export async function run(argv: string[]): Promise<number> {
  let stop: (() => void) | undefined;
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
    const log = await createLogger({
      level: config.logLevel,
      format: config.logFormat,
      base: { runId: config.runId, podName: config.podName },
    });
    // Loaded after the settings are valid: a bad setting costs no module loading.
    const { Agent } = await import('./agent.ts');
    const agent = new Agent(config, { clock: systemClock, log });
    stop = () => agent.stop();
    if (signalled) agent.stop();
    log.info({ tesUrl: config.tesUrl.origin, namespace: config.namespace }, 'agent starting');
    await agent.run();
    log.info('agent finished');
    log.flush();
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
