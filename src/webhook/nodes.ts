// `auto` mode's view of the cluster: the API server's version and every node's
// kubelet version. Nodes through the shared list+watch (src/kube/list-watch.ts:
// 410 → relist, backoff reset by events; nodes upgrade in place as MODIFIED),
// listed in pages (rule I4): on a 5,000-node cluster one consistent read of every
// node can outlast any timeout, and one response of every full Node (images
// included) is tens of megabytes;
// the version read at start and refreshed now and then (the control plane
// upgrades in place too).
import type { Clock } from '../clock.ts';
import type { KubeApi } from '../kube/api.ts';
import type { Node } from '../kube/types.ts';
import { kubeBackoffMs } from '../kube/backoff.ts';
import { listWatch, NODE_PAGE_SIZE } from '../kube/list-watch.ts';
import type { Logger } from '../log.ts';
import { chooseMode } from './mode.ts';
import type { SidecarMode } from './mutate.ts';

export interface NodeTrackerOptions {
  api: KubeApi;
  clock: Clock;
  logger: Logger;
  /** Called whenever the chosen mode changes (and once when it is first known). */
  onMode(mode: SidecarMode): void;
  /** Bound on each version read, list, and watch opening. */
  requestTimeoutMs?: number;
  /** How often the API server's version is read again. */
  versionRefreshMs?: number;
  /** Nodes per LIST page (default NODE_PAGE_SIZE). */
  pageSize?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_VERSION_REFRESH_MS = 10 * 60_000;

export class NodeTracker {
  private readonly options: NodeTrackerOptions;
  private readonly kubelets = new Map<string, string>();
  private serverVersion: string | undefined;
  private listed = false;
  private current: SidecarMode | undefined;

  constructor(options: NodeTrackerOptions) {
    this.options = options;
  }

  /** True once the API server's version and the node list have been read. */
  get isSynced(): boolean {
    return this.serverVersion !== undefined && this.listed;
  }

  /** The mode for pods admitted now: regular until synced (it works on every version). */
  get mode(): SidecarMode {
    return this.current ?? 'regular';
  }

  /** Keeps the view current until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { api, clock, logger } = this.options;
    await Promise.all([
      this.followVersion(signal),
      listWatch<Node>({
        api,
        path: '/api/v1/nodes',
        timeoutMs: this.options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
        clock,
        log: logger,
        signal,
        pageSize: this.options.pageSize ?? NODE_PAGE_SIZE,
        // Only the name and the kubelet version matter until the last page is in.
        trim: (node) =>
          ({
            metadata: { name: node.metadata?.name },
            status: { nodeInfo: { kubeletVersion: node.status?.nodeInfo?.kubeletVersion } },
          }) as Node,
        onList: (nodes) => {
          this.kubelets.clear();
          for (const node of nodes) this.setNode(node);
          if (!this.listed) logger.info({ nodes: nodes.length }, 'node list synced');
          this.listed = true;
          this.update();
          return undefined;
        },
        onEvent: (type, node) => {
          const name = node.metadata?.name;
          if (name && type === 'DELETED') this.kubelets.delete(name);
          else this.setNode(node);
          this.update();
          return undefined;
        },
      }),
    ]);
  }

  private async followVersion(signal: AbortSignal): Promise<void> {
    const { api, clock, logger } = this.options;
    let failures = 0;
    while (!signal.aborted) {
      let delayMs: number;
      try {
        const version = await api.getVersion({
          timeoutMs: this.options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
          signal,
        });
        // gitVersion, not `minor`, which can read "31+".
        this.serverVersion = typeof version.gitVersion === 'string' ? version.gitVersion : '';
        failures = 0;
        this.update();
        delayMs = this.options.versionRefreshMs ?? DEFAULT_VERSION_REFRESH_MS;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        delayMs = kubeBackoffMs(failures, clock.random());
        logger.warn(
          { err: (error as Error).message, retryInMs: delayMs },
          'reading the API server version failed',
        );
      }
      await clock.sleep(delayMs, signal).catch(() => {});
    }
  }

  private setNode(node: Node): void {
    const name = node.metadata?.name;
    if (name) this.kubelets.set(name, node.status?.nodeInfo?.kubeletVersion ?? '');
  }

  private update(): void {
    if (!this.isSynced) return;
    const mode = chooseMode(this.serverVersion, this.kubelets.values());
    if (mode === this.current) return;
    const previous = this.current;
    this.current = mode;
    const older = [...this.kubelets].filter(([, v]) => chooseMode(this.serverVersion, [v]) === 'regular');
    this.options.logger.info(
      {
        mode,
        previous,
        serverVersion: this.serverVersion,
        olderNodes: older.slice(0, 10).map(([name, version]) => `${name}=${version}`),
      },
      'sidecar mode chosen',
    );
    this.options.onMode(mode);
  }
}
