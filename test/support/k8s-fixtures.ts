// Pod and node documents captured in the shape `kubectl get -o json` serves:
// raw JSON, timestamps as strings, zero times as null — what the agent's watch sees.
import { readFileSync } from 'node:fs';
import type { Node, Pod } from '../../src/kube/types.ts';

const dir = new URL('../fixtures/', import.meta.url);

export const POD_FIXTURES = [
  'pending-unschedulable',
  'container-creating',
  'pod-initializing',
  'image-pull-backoff',
  'err-image-pull',
  'create-container-config-error',
  'crash-loop-backoff',
  'oom-killed',
  'sigterm-exit',
  'completed',
  'evicted',
  'running-native-agent',
  'istio-native-sidecar',
  // Real captures (test/fixtures/pods/README.md says where each came from).
  'kind-1.33-list-item',
  'kubeadm-init-crash-loop',
  'resize-status-fragment',
] as const;

export type PodFixture = (typeof POD_FIXTURES)[number];

/** A fresh copy each call: tests may mutate it. */
export function loadPod(name: PodFixture): Pod {
  return JSON.parse(readFileSync(new URL(`pods/${name}.json`, dir), 'utf8')) as Pod;
}

export function loadNode(name: 'eks-gpu' | 'gke-t4' | 'kubeadm-controlplane-1.31'): Node {
  return JSON.parse(readFileSync(new URL(`nodes/${name}.json`, dir), 'utf8')) as Node;
}

const TIME_KEYS = new Set(['startedAt', 'finishedAt', 'lastTransitionTime', 'lastProbeTime', 'startTime']);

/** The pod as client-node's ObjectSerializer would hand it over: timestamps as Date objects. */
export function withDates<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withDates) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      TIME_KEYS.has(k) && typeof v === 'string' ? new Date(v) : withDates(v),
    ]),
  ) as T;
}
