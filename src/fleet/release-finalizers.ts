// `tes-heartbeat fleet --release-finalizers`: the chart's delete hook. A fleet that is
// uninstalled never comes back to release the pods it holds, so this one-shot removes
// the fleet's finalizer from every pod selected by FLEET_SELECTOR in FLEET_NAMESPACES
// (marking those without a mark `<time> failed`: no final heartbeat will come), then
// exits 0 — 1 when the API could not be reached after retries (2, bad settings, is the
// command's).
import { EXIT_INTERNAL, EXIT_OK } from '../cli/exit.ts';
import type { Clock } from '../clock.ts';
import type { FleetConfig } from '../config/fleet.ts';
import { type KubeApi, KubeError } from '../kube/api.ts';
import { FINAL_HEARTBEAT_ANNOTATION, FINAL_HEARTBEAT_FINALIZER } from '../kube/annotations.ts';
import { readUntilAnswered } from '../kube/read-retry.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { PodMarks } from './marks.ts';
import { finalMark } from './pod-plan.ts';

/** How long the hook keeps trying to reach the API server before exit 1. */
const GIVE_UP_MS = 60_000;

export async function releaseFinalizers(
  config: FleetConfig,
  deps: { api: KubeApi; clock: Clock; log: Logger },
): Promise<number> {
  const { api, clock, log } = deps;
  const stop = new AbortController();
  clock.sleep(GIVE_UP_MS, stop.signal).then(
    () => stop.abort(new Error('the API server could not be reached')),
    () => undefined,
  );
  const marks = new PodMarks({ api, clock, timeoutMs: config.timeoutMs });
  const scopes = config.namespaces.length > 0 ? config.namespaces : [undefined];
  let released = 0;
  try {
    for (const namespace of scopes) {
      const path =
        namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
      const list = await readUntilAnswered(
        (call) => api.list<Pod>(path, { labelSelector: config.selector }, call),
        {
          clock,
          signal: stop.signal,
          timeoutMs: config.timeoutMs,
        },
      );
      if (list instanceof KubeError) throw list;
      for (const pod of list.items) {
        if (!pod.metadata?.finalizers?.includes(FINAL_HEARTBEAT_FINALIZER)) continue;
        const mark =
          pod.metadata.annotations?.[FINAL_HEARTBEAT_ANNOTATION] ?? finalMark(clock.now(), 'failed');
        const result = await marks.mark(pod, mark, stop.signal);
        if (result === 'written') released++;
        log.info({ namespace: pod.metadata.namespace, pod: pod.metadata.name, result }, 'finalizer released');
      }
    }
    log.info({ released }, 'every selected pod is free of the fleet finalizer');
    return EXIT_OK;
  } catch (error) {
    log.error({ err: error, released }, 'could not release the fleet finalizer from every pod');
    return EXIT_INTERNAL;
  } finally {
    stop.abort();
  }
}
