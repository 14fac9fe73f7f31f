// The fleet's pods: one list/watch per namespace of FLEET_NAMESPACES, or one over the
// whole cluster when it is empty, selected on the API server's side (labelSelector
// FLEET_SELECTOR; per node also fieldSelector spec.nodeName). Resumes and re-lists as
// the sidecar's watch does (kube/list-watch.ts, rules 10 and 21). Holds each pod slimmed
// (slim-pod.ts) and tells the fleet what changed: a pod seen, a DELETED event (which,
// from a label-selected watch, may only mean the pod left the selection), a pod missing
// from a re-list.
import type { Clock } from '../clock.ts';
import type { KubeApi } from '../kube/api.ts';
import { listWatch } from '../kube/list-watch.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { slimPod } from './slim-pod.ts';

export interface PodSourceHandler {
  /** A pod listed, added or modified (slimmed). */
  seen(pod: Pod): void;
  /** A DELETED event: its object is the pod's last state; whether it is gone is for the caller to find out. */
  deleted(last: Pod): void;
  /** Missing from a re-list: gone while the watch was down (its last snapshot). */
  vanished(last: Pod): void;
}

export interface PodSourceOptions {
  api: KubeApi;
  clock: Clock;
  log: Logger;
  signal: AbortSignal;
  /** Empty: the whole cluster. */
  namespaces: string[];
  selector: string;
  nodeName?: string | undefined;
  /** Bound on each LIST and on opening each watch. */
  timeoutMs: number;
  handler: PodSourceHandler;
  /** Each watch re-established (tes_kube_watch_restarts_total). */
  onRestart(): void;
  /** LIST page size: a cluster-wide first list of thousands of pods is never one read. */
  pageSize?: number;
  watchTimeoutSeconds?: number;
}

/** The key of a pod in the fleet: its uid (a pod recreated under the same name is another run). */
export function podKey(pod: Pod): string {
  const m = pod.metadata ?? {};
  return m.uid ?? `${m.namespace}/${m.name}`;
}

export class PodSource {
  private readonly o: PodSourceOptions;
  private readonly scopes: (string | undefined)[];
  /** Per scope, the pods as last seen, by key. */
  private readonly known = new Map<string | undefined, Map<string, Pod>>();
  private readonly listed = new Set<string | undefined>();
  private syncedResolve!: () => void;
  /** Resolves once every scope's first list was applied. */
  readonly synced = new Promise<void>((resolve) => {
    this.syncedResolve = resolve;
  });

  constructor(options: PodSourceOptions) {
    this.o = options;
    this.scopes = options.namespaces.length > 0 ? options.namespaces : [undefined];
  }

  /** The pod as last seen, or undefined. */
  get(pod: Pod): Pod | undefined {
    return this.known.get(this.scopeOf(pod))?.get(podKey(pod));
  }

  /** Every pod as last seen. */
  *pods(): Iterable<Pod> {
    for (const pods of this.known.values()) yield* pods.values();
  }

  /** Runs until the signal aborts. */
  run(): Promise<unknown> {
    return Promise.all(this.scopes.map((scope) => this.watch(scope)));
  }

  /**
   * One pod's handling failing (a bug) must not stop the others': list-watch would replay
   * the event for ever and hold back every pod of the namespace. Logged, and the watch goes on
   * (rule 22); the pod's next change is handled afresh.
   */
  private safely(pod: Pod, handle: () => void): void {
    try {
      handle();
    } catch (error) {
      this.o.log.error(
        { err: error, namespace: pod.metadata?.namespace, pod: pod.metadata?.name },
        'internal error handling a pod; the fleet goes on',
      );
    }
  }

  private scopeOf(pod: Pod): string | undefined {
    return this.o.namespaces.length > 0 ? pod.metadata?.namespace : undefined;
  }

  private watch(scope: string | undefined): Promise<void> {
    const { o } = this;
    const known = new Map<string, Pod>();
    this.known.set(scope, known);
    const selectors: Record<string, string> = { labelSelector: o.selector };
    if (o.nodeName) selectors.fieldSelector = `spec.nodeName=${o.nodeName}`;
    return listWatch<Pod>({
      api: o.api,
      path: scope === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(scope)}/pods`,
      selectors,
      timeoutMs: o.timeoutMs,
      clock: o.clock,
      log: o.log,
      signal: o.signal,
      onRestart: o.onRestart,
      pageSize: o.pageSize ?? 500,
      trim: slimPod,
      ...(o.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {}),
      onList: (items) => {
        const now = new Map(items.map((pod) => [podKey(pod), pod]));
        for (const [key, last] of known) {
          if (now.has(key)) continue;
          known.delete(key);
          this.safely(last, () => o.handler.vanished(last));
        }
        for (const [key, pod] of now) {
          if (known.get(key)?.metadata?.resourceVersion === pod.metadata?.resourceVersion && known.has(key))
            continue;
          known.set(key, pod);
          this.safely(pod, () => o.handler.seen(pod));
        }
        if (!this.listed.has(scope)) {
          this.listed.add(scope);
          if (this.listed.size === this.scopes.length) this.syncedResolve();
        }
        return undefined;
      },
      onEvent: (type, object) => {
        const pod = slimPod(object);
        const key = podKey(pod);
        if (type === 'DELETED') {
          known.delete(key);
          this.safely(pod, () => o.handler.deleted(pod));
        } else {
          known.set(key, pod);
          this.safely(pod, () => o.handler.seen(pod));
        }
        return undefined;
      },
    });
  }
}
