// Puts the webhook together: the HTTPS admission endpoint, certificate and
// template reloads, the sidecar mode (fixed, or `auto` from the node watch),
// health and metrics, and the shutdown order.
import { readFile } from 'node:fs/promises';
import type { V1Container, V1Volume } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { Values } from '../config/settings.ts';
import { type Listener, type Readiness, startListener } from '../http/listener.ts';
import type { Logger } from '../log.ts';
import { pollFiles } from './files.ts';
import { createAdmissionHandler } from './handler.ts';
import { createWebhookMetrics } from './metrics.ts';
import type { MutateOptions, SidecarMode } from './mutate.ts';
import type { KubeApi } from '../kube/api.ts';
import type { NodeTracker } from './nodes.ts';
import { readKeyPair, WebhookServer } from './server.ts';
import type { webhookSpec } from './settings.ts';
import { parseTemplate, parseVolumes } from './template.ts';

export type WebhookConfig = Values<typeof webhookSpec>;

export interface WebhookDeps {
  clock: Clock;
  logger: Logger;
  /** How often mounted files are checked; the contract allows 5 s for a change. */
  pollIntervalMs?: number;
  /** For `auto` mode; by default loaded from KUBECONFIG / in-cluster config. */
  kubeApi?: KubeApi;
  /** Process metrics on /metrics (off in tests that build many webhooks). */
  processMetrics?: boolean;
  /** `auto` mode's node list: the bound on each request and the page size (tests shrink them). */
  nodeList?: { requestTimeoutMs?: number; pageSize?: number };
}

export interface RunningWebhook {
  /** The admission endpoint's port. */
  readonly port: number;
  /** The health listener's port, when it runs. */
  readonly healthPort: number | undefined;
  readiness(): Readiness;
  mode(): SidecarMode;
  /** Graceful stop: see WebhookServer.close. */
  stop(graceMs?: number): Promise<void>;
}

const DEFAULT_POLL_MS = 1_000;
/** The contract's 8 s to exit, less a margin for the rest of the shutdown. */
export const DEFAULT_GRACE_MS = 7_000;

export async function startWebhook(config: WebhookConfig, deps: WebhookDeps): Promise<RunningWebhook> {
  const { clock, logger } = deps;
  const stopping = new AbortController();
  const metrics = createWebhookMetrics({ processMetrics: deps.processMetrics ?? true });
  const pollIntervalMs = deps.pollIntervalMs ?? DEFAULT_POLL_MS;

  let template: V1Container = config.template.container;
  let volumes: V1Volume[] = config.volumes?.volumes ?? [];
  let tracker: NodeTracker | undefined;
  let ownKubeApi: KubeApi | undefined;
  const fixedMode = config.sidecarMode === 'auto' ? undefined : config.sidecarMode;
  const currentMode = (): SidecarMode => fixedMode ?? tracker?.mode ?? 'regular';
  metrics.setMode(currentMode());

  const mutateOptions = (): MutateOptions => ({
    template,
    mode: currentMode(),
    selfName: config.self,
    taskServiceAccounts: config.taskServiceAccounts ?? [],
    volumes,
    guaranteedResources: config.guaranteedResources,
    imagePullSecrets: config.imagePullSecrets ?? [],
  });

  const server = new WebhookServer({
    clock,
    // After start-up a server error (EMFILE on accept) costs one connection, never the process.
    onError: (error) => logger.error({ err: error }, 'admission server error; still serving'),
    handler: createAdmissionHandler({ mutateOptions, metrics, logger, closing: () => server.closing }),
  });

  // Certificate: loaded now if it is there, else looked for at every poll.
  let lastCertProblem = '';
  const loadCertificate = async (): Promise<boolean> => {
    try {
      server.setCertificate(await readKeyPair(config.tlsCert, config.tlsKey));
      logger.info({ cert: config.tlsCert }, 'TLS certificate loaded');
      lastCertProblem = '';
      return true;
    } catch (error) {
      const message = (error as Error).message;
      // Once per distinct problem, not once a second.
      if (message !== lastCertProblem) logger.warn({ err: error }, 'TLS certificate not usable; not ready');
      lastCertProblem = message;
      return false;
    }
  };
  if (!fixedMode) {
    // Only `auto` needs the Kubernetes API: client-node is loaded only then.
    const { NodeTracker } = await import('./nodes.ts');
    if (!deps.kubeApi) ownKubeApi = await loadKubeApi(config.kubeconfig);
    const api = deps.kubeApi ?? (ownKubeApi as KubeApi);
    tracker = new NodeTracker({
      api,
      clock,
      logger,
      onMode: (mode) => metrics.setMode(mode),
      ...deps.nodeList,
    });
  }
  const certLoaded = await loadCertificate();

  const address = await server.listen(config.addr.host, config.addr.port);
  logger.info(
    { address: `${address.address}:${address.port}`, mode: config.sidecarMode },
    'webhook listening',
  );

  const background: Promise<void>[] = [];
  const pollOptions = { clock, intervalMs: pollIntervalMs, signal: stopping.signal };
  background.push(
    pollFiles([config.tlsCert, config.tlsKey], loadCertificate, { ...pollOptions, pending: !certLoaded }),
  );
  background.push(
    pollFiles(
      [config.template.file],
      async () => {
        try {
          template = parseTemplate(config.template.file, await readFile(config.template.file, 'utf8'));
          logger.info({ file: config.template.file }, 'sidecar template reloaded');
        } catch (error) {
          logger.error({ err: error }, 'sidecar template not reloaded; the previous one stays in use');
        }
        return true;
      },
      pollOptions,
    ),
  );

  const volumesFile = config.volumes?.file;
  if (volumesFile) {
    background.push(
      pollFiles(
        [volumesFile],
        async () => {
          try {
            volumes = parseVolumes(volumesFile, await readFile(volumesFile, 'utf8'));
            logger.info({ file: volumesFile, volumes: volumes.length }, 'sidecar volumes reloaded');
          } catch (error) {
            logger.error({ err: error }, 'sidecar volumes not reloaded; the previous ones stay in use');
          }
          return true;
        },
        pollOptions,
      ),
    );
  }

  if (tracker) background.push(tracker.run(stopping.signal));

  // The certificate alone (rule I4): until the nodes are known `auto` injects regular
  // sidecars, which work everywhere; a webhook that waited for a node list a big cluster
  // cannot deliver would, under failurePolicy Ignore, start every pod without the agent.
  const readiness = (): Readiness => {
    if (server.closing) return { ready: false, reason: 'shutting down' };
    if (!server.hasCertificate) return { ready: false, reason: 'TLS certificate not loaded' };
    return { ready: true };
  };

  let listener: Listener | undefined;
  if (config.httpAddr !== undefined && config.httpAddr !== 'off') {
    listener = await startListener({
      host: config.httpAddr.host,
      port: config.httpAddr.port,
      log: logger,
      healthy: () => true,
      readiness,
      metrics: async () => ({
        contentType: metrics.registry.contentType,
        body: await metrics.registry.metrics(),
      }),
    });
  }

  return {
    port: address.port,
    healthPort: listener?.port,
    readiness,
    mode: currentMode,
    async stop(graceMs = DEFAULT_GRACE_MS) {
      await server.close(graceMs);
      stopping.abort();
      await Promise.all(background);
      await ownKubeApi?.close();
      await listener?.close();
      logger.info('webhook stopped');
    },
  };
}

export class KubeconfigError extends Error {
  readonly code = 'KUBECONFIG_UNUSABLE';
}

async function loadKubeApi(kubeconfig: string | undefined): Promise<KubeApi> {
  const { KubeApi } = await import('../kube/api.ts');
  try {
    return KubeApi.load({ kubeconfig });
  } catch (error) {
    throw new KubeconfigError(`cannot load the kubeconfig: ${(error as Error).message}`, { cause: error });
  }
}
