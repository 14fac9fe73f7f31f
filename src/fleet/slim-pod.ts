// What the fleet keeps of each pod: only what the mapping, the hardware details, the
// end of a run and the marks read (contract: memory grows by at most 20 KB per run). A
// real pod is 5–40 KB of JSON, most of it managedFields, env, volumes, probes and
// images; Tekton OOMed caching whole pods (tektoncd/pipeline #3561).
import {
  CONTAINERS_ANNOTATION,
  FINAL_HEARTBEAT_ANNOTATION,
  NONCE_ANNOTATION,
  NONCE_SECRET_ANNOTATION,
  RUN_ID_ANNOTATION,
} from '../kube/annotations.ts';
import type { Container, ContainerStatus, Pod } from '../kube/types.ts';

const KEPT_ANNOTATIONS = [
  RUN_ID_ANNOTATION,
  NONCE_ANNOTATION,
  NONCE_SECRET_ANNOTATION,
  CONTAINERS_ANNOTATION,
  FINAL_HEARTBEAT_ANNOTATION,
];

/**
 * One copy of a string many pods carry (a namespace, a node, a container's name, a
 * condition's type, a start time to the second): each pod's JSON is parsed into fresh
 * strings, ~300 bytes per pod of copies in a 10,000-pod fleet. Bounded: when full it
 * starts over (strings already shared stay shared).
 */
const vocabulary = new Map<string, string>();
const VOCABULARY_MAX = 4096;

function shared<T extends string | undefined>(value: T): T {
  if (value === undefined) return value;
  const known = vocabulary.get(value);
  if (known !== undefined) return known as T;
  if (vocabulary.size >= VOCABULARY_MAX) vocabulary.clear();
  vocabulary.set(value, value);
  return value;
}

export function slimPod(pod: Pod): Pod {
  const { metadata = {}, spec, status } = pod;
  const annotations = pick(metadata.annotations ?? {}, KEPT_ANNOTATIONS);
  const owners = (metadata.ownerReferences ?? [])
    .filter((o) => o.kind === 'Job')
    .map(({ apiVersion, kind, name, uid, controller }) => ({
      apiVersion: shared(apiVersion),
      kind: shared(kind),
      name,
      uid,
      ...(controller ? { controller } : {}),
    }));
  return {
    metadata: defined({
      name: metadata.name,
      namespace: shared(metadata.namespace),
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      annotations: Object.keys(annotations).length > 0 ? annotations : undefined,
      ownerReferences: owners.length > 0 ? owners : undefined,
      finalizers: metadata.finalizers?.length ? metadata.finalizers : undefined,
      deletionTimestamp: metadata.deletionTimestamp,
      deletionGracePeriodSeconds: metadata.deletionGracePeriodSeconds,
    }),
    ...(spec && {
      spec: defined({
        nodeName: shared(spec.nodeName),
        restartPolicy: shared(spec.restartPolicy),
        containers: spec.containers.map(slimContainer),
        initContainers: spec.initContainers?.map(slimContainer),
      }) as Pod['spec'],
    }),
    ...(status && {
      status: defined({
        phase: shared(status.phase),
        reason: status.reason,
        message: status.message,
        qosClass: shared(status.qosClass),
        conditions: status.conditions
          ?.filter((c) => c.type === 'PodScheduled')
          .map(({ type, status: s, reason, message }) =>
            defined({ type: shared(type), status: shared(s), reason: shared(reason), message }),
          ),
        containerStatuses: status.containerStatuses?.map(slimStatus),
        initContainerStatuses: status.initContainerStatuses?.map(slimStatus),
      }),
    }),
  } as Pod;
}

function slimContainer(c: Container): Container {
  return defined({
    name: shared(c.name),
    restartPolicy: shared(c.restartPolicy),
    restartPolicyRules: c.restartPolicyRules,
    resources: c.resources && defined({ requests: c.resources.requests, limits: c.resources.limits }),
  }) as Container;
}

function slimStatus(s: ContainerStatus): ContainerStatus {
  return { name: shared(s.name), state: s.state } as ContainerStatus;
}

function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => record[k] !== undefined).map((k) => [k, record[k] as string]));
}

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
