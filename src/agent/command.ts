// `tes-heartbeat agent`: settings, logger and the agent; signals, internal errors and the
// exit code are the long-running commands' one lifetime (src/cli/lifetime.ts): a signal
// while the agent is still starting turns into the final heartbeat (rule 1), and an
// internal error once it runs is logged while the loop goes on (rule 22).
import { EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { runCommand } from '../cli/lifetime.ts';
import { systemClock } from '../clock.ts';
import { agentSettings, loadAgentConfig } from '../config/agent.ts';
import { helpText } from '../config/settings.ts';
import { createLogger, logProcessWarnings } from '../log.ts';
import { Secrets } from '../secrets.ts';

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
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
    return {
      name: 'agent',
      log,
      startingFields: { tesUrl: config.tesUrl.origin, namespace: config.namespace },
      run: () => agent.start(),
      stop: () => agent.stop(),
    };
  });
}
