// What the fleet does with one selected pod, from its annotations and containers
// (contract: Fleet mode, Which pods; the mark of The end of a run). Pure.
import {
  CONTAINERS_ANNOTATION,
  FINAL_HEARTBEAT_ANNOTATION,
  NONCE_ANNOTATION,
  NONCE_SECRET_ANNOTATION,
  RUN_ID_ANNOTATION,
} from '../kube/annotations.ts';
import type { Pod } from '../kube/types.ts';
import { commaList } from '../config/settings.ts';

export type PodPlan =
  /** It has an agent container: its sidecar reports it (never two reporters for one run). */
  | { kind: 'sidecar' }
  /** Its final heartbeat was sent (or given up) by some fleet: nothing more, ever. */
  | { kind: 'marked'; mark: string }
  /** It cannot be heartbeated: skipped, with one warning and one HeartbeatSkipped Event. */
  | { kind: 'unusable'; why: string }
  | {
      kind: 'run';
      runId: string;
      nonce?: string;
      /** The Secret to read the nonce from (FLEET_NONCE_SECRETS=on, rule T2). */
      nonceSecret?: string;
      containers?: string[];
    };

export function podPlan(pod: Pod, options: { selfName: string; nonceSecrets: boolean }): PodPlan {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  if (containers.some((c) => c.name === options.selfName)) return { kind: 'sidecar' };
  const annotations = pod.metadata?.annotations ?? {};
  const mark = annotations[FINAL_HEARTBEAT_ANNOTATION];
  if (mark !== undefined) return { kind: 'marked', mark };
  const runId = annotations[RUN_ID_ANNOTATION]?.trim();
  if (!runId) return { kind: 'unusable', why: `the pod has no ${RUN_ID_ANNOTATION} annotation` };
  const nonceSecret = annotations[NONCE_SECRET_ANNOTATION]?.trim();
  const nonce = annotations[NONCE_ANNOTATION];
  const listed = commaList(annotations[CONTAINERS_ANNOTATION] ?? '');
  const plan: PodPlan = { kind: 'run', runId, ...(listed.length > 0 ? { containers: listed } : {}) };
  // Rule T2: the Secret wins over the annotation, as in the webhook.
  if (nonceSecret) {
    if (options.nonceSecrets) return { ...plan, nonceSecret };
    if (!nonce)
      return {
        kind: 'unusable',
        why: `the pod's nonce is in the Secret its ${NONCE_SECRET_ANNOTATION} annotation names, and FLEET_NONCE_SECRETS is off`,
      };
  }
  return nonce ? { ...plan, nonce } : plan;
}

/** `<RFC 3339 time> sent|failed`, the value of the final-heartbeat mark. */
export function finalMark(at: number, result: 'sent' | 'failed'): string {
  return `${new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z')} ${result}`;
}
