// `tes-heartbeat fleet`: settings, logger, Kubernetes client and the fleet; signals,
// internal errors and the exit code are the long-running commands' one lifetime
// (src/cli/lifetime.ts): thousands of runs must not end over one bad callback (rule 22).
import { EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { runCommand } from '../cli/lifetime.ts';
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

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
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
    return {
      name: 'fleet',
      log,
      startingFields: {
        tesUrl: config.tesUrl.origin,
        scope: config.nodeName ? 'node' : 'cluster',
        node: config.nodeName ?? null,
        namespaces: config.namespaces.length > 0 ? config.namespaces : 'all',
        selector: config.selector,
      },
      run: () => {
        gate?.start();
        // The lease is released only after the finals due at SIGTERM are done.
        return fleet.start().finally(() => gate?.stop());
      },
      stop: () => fleet.stop(),
    };
  });
}
