// The cluster fleet's view of lost nodes (contract: Fleet mode, Scope → per cluster):
// a node whose `Ready` condition is `Unknown` has a kubelet that stopped reporting —
// its pods may still run, or not; a sidecar there would be as cut off as its kubelet
// and send nothing. So the fleet sends nothing for that node's pods (finals included)
// until the node reports again. Nodes through the shared list+watch (paged, 410 →
// relist); of each node only the name and the Ready status are kept.
import type { Clock } from '../clock.ts';
import type { KubeApi } from '../kube/api.ts';
import { listWatch, NODE_PAGE_SIZE } from '../kube/list-watch.ts';
import type { Node } from '../kube/types.ts';
import type { Logger } from '../log.ts';

export interface LostNodesOptions {
  api: KubeApi;
  clock: Clock;
  log: Logger;
  /** Bound on each LIST page and on opening each watch. */
  timeoutMs: number;
  /** A node turned lost (Ready Unknown) or found again (it reports, or it is gone from the cluster). */
  onChange(node: string, lost: boolean): void;
}

export class LostNodes {
  private readonly options: LostNodesOptions;
  private readonly lost = new Set<string>();

  constructor(options: LostNodesOptions) {
    this.options = options;
  }

  /** True while `node`'s kubelet has stopped reporting (unknown nodes are not lost). */
  isLost(node: string | undefined): boolean {
    return node !== undefined && this.lost.has(node);
  }

  /** Follows the nodes until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    const { api, clock, log, timeoutMs } = this.options;
    return listWatch<Node>({
      api,
      path: '/api/v1/nodes',
      timeoutMs,
      clock,
      log,
      signal,
      pageSize: NODE_PAGE_SIZE,
      trim: (node) =>
        ({ metadata: { name: node.metadata?.name }, status: { conditions: readyOnly(node) } }) as Node,
      onList: (nodes) => {
        const now = new Set(nodes.filter(isLost).map((node) => node.metadata?.name ?? ''));
        for (const name of [...this.lost]) if (!now.has(name)) this.set(name, false);
        for (const name of now) this.set(name, true);
        return undefined;
      },
      onEvent: (type, node) => {
        const name = node.metadata?.name;
        // A deleted node's pods are deleted too (pod GC): their runs end, not wait.
        if (name) this.set(name, type !== 'DELETED' && isLost(node));
        return undefined;
      },
    });
  }

  private set(node: string, lost: boolean): void {
    if (this.lost.has(node) === lost) return;
    if (lost) this.lost.add(node);
    else this.lost.delete(node);
    if (lost) this.options.log.warn({ node }, 'node lost (Ready Unknown): nothing is sent for its pods');
    else this.options.log.info({ node }, 'node reports again: its pods are heartbeated again');
    this.options.onChange(node, lost);
  }
}

/** The Ready condition's type and status, nothing else of the node's conditions. */
function readyOnly(node: Node): { type: string; status: string }[] {
  return (node.status?.conditions ?? [])
    .filter((condition) => condition.type === 'Ready')
    .map(({ type, status }) => ({ type, status }));
}

function isLost(node: Node): boolean {
  return readyOnly(node).some((condition) => condition.status === 'Unknown');
}
