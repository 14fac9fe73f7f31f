// `tes-heartbeat fleet`: settings, logger, signals, exit code — as the agent's command.
// Signals are handled from the first moment; an internal error once running is logged
// and the fleet goes on (rule 22): thousands of runs must not end over one bad callback.
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { systemClock } from '../clock.ts';
import { fleetSettings, loadFleetConfig } from '../config/fleet.ts';
import { helpText } from '../config/settings.ts';
import type { KubeApi } from '../kube/api.ts';
import { createLogger, logProcessWarnings } from '../log.ts';
import { Secrets } from '../secrets.ts';

/**
 * One-off Kubernetes calls (Job, node and Secret reads, deletion checks, marks, Events) in
 * flight at once: each is a connection to the API server while it runs, and a first list
 * of a thousand pods would otherwise open a thousand (measured: ~100 MB of TLS buffers
 * that the process keeps). Sixteen read 1,000 Jobs in well under a second.
 */
const KUBE_CALLS_IN_FLIGHT = 16;
/** After the fleet finished, anything still open gets this long. */
const EXIT_BACKSTOP_MS = 1_000;

export async function run(argv: string[]): Promise<number> {
  let stop: (() => void) | undefined;
  let signalled = false;
  let onInternalError: ((error: unknown) => void) | undefined;
  const onSignal = () => {
    signalled = true;
    stop?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const loaded = loadFleetConfig(argv, process.env);
    if (loaded.kind === 'help') {
      process.stdout.write(helpText('usage: tes-heartbeat fleet [flags]', fleetSettings));
      return EXIT_OK;
    }
    if (loaded.kind === 'invalid') return reportInvalid('fleet', loaded.problems);
    const { config } = loaded;
    // Loaded after the settings are valid: a bad setting or --help costs no module loading.
    const { KubeApi, KubeError } = await import('../kube/api.ts');
    let kube: KubeApi;
    try {
      kube = KubeApi.load({
        ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
        maxConcurrentCalls: KUBE_CALLS_IN_FLIGHT,
      });
    } catch (error) {
      return reportInvalid('fleet', [error instanceof KubeError ? error.message : String(error)]);
    }
    // Rule 11: the fleet's own token is kept for good; each run adds its nonce and jwts.
    const secrets = new Secrets([config.token]);
    const log = await createLogger({
      level: config.logLevel,
      format: config.logFormat,
      secrets,
      nullUnlessBound: ['runId', 'podName'],
    });
    logProcessWarnings(log);
    if (config.releaseFinalizers) {
      const { releaseFinalizers } = await import('./release-finalizers.ts');
      return await releaseFinalizers(config, { api: kube, clock: systemClock, log });
    }
    const { Fleet } = await import('./fleet.ts');
    // Per cluster: only the Lease's holder sends (cluster-gate.ts), on a client of its own.
    const gate = config.nodeName
      ? undefined
      : new (await import('./cluster-gate.ts')).ClusterGate({
          config,
          clock: systemClock,
          log,
          api: KubeApi.load(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
        });
    const fleet = new Fleet(config, { clock: systemClock, log, secrets, kube, ...(gate ? { gate } : {}) });
    onInternalError = (error) => log.error({ err: error }, 'internal error; the fleet goes on');
    process.on('uncaughtException', onInternalError);
    process.on('unhandledRejection', onInternalError);
    stop = () => fleet.stop();
    if (signalled) fleet.stop();
    log.info(
      {
        tesUrl: config.tesUrl.origin,
        scope: config.nodeName ? 'node' : 'cluster',
        node: config.nodeName ?? null,
        namespaces: config.namespaces.length > 0 ? config.namespaces : 'all',
        selector: config.selector,
      },
      'fleet starting',
    );
    try {
      gate?.start();
      // The lease is released only after the finals due at SIGTERM are done.
      await fleet.start().finally(() => gate?.stop());
    } catch (error) {
      log.error({ err: error }, 'internal error: the fleet stops');
      log.flush();
      return EXIT_INTERNAL;
    } finally {
      setTimeout(() => process.exit(), EXIT_BACKSTOP_MS).unref();
    }
    log.info('fleet finished');
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
