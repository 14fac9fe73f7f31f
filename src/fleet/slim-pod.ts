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

export function slimPod(pod: Pod): Pod {
  const { metadata = {}, spec, status } = pod;
  const annotations = pick(metadata.annotations ?? {}, KEPT_ANNOTATIONS);
  const owners = (metadata.ownerReferences ?? [])
    .filter((o) => o.kind === 'Job')
    .map(({ apiVersion, kind, name, uid, controller }) => ({
      apiVersion,
      kind,
      name,
      uid,
      ...(controller ? { controller } : {}),
    }));
  return {
    metadata: defined({
      name: metadata.name,
      namespace: metadata.namespace,
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
        nodeName: spec.nodeName,
        restartPolicy: spec.restartPolicy,
        containers: spec.containers.map(slimContainer),
        initContainers: spec.initContainers?.map(slimContainer),
      }) as Pod['spec'],
    }),
    ...(status && {
      status: defined({
        phase: status.phase,
        reason: status.reason,
        message: status.message,
        qosClass: status.qosClass,
        conditions: status.conditions
          ?.filter((c) => c.type === 'PodScheduled')
          .map(({ type, status: s, reason, message }) => defined({ type, status: s, reason, message })),
        containerStatuses: status.containerStatuses?.map(slimStatus),
        initContainerStatuses: status.initContainerStatuses?.map(slimStatus),
      }),
    }),
  } as Pod;
}

function slimContainer(c: Container): Container {
  return defined({
    name: c.name,
    restartPolicy: c.restartPolicy,
    restartPolicyRules: c.restartPolicyRules,
    resources: c.resources && defined({ requests: c.resources.requests, limits: c.resources.limits }),
  }) as Container;
}

function slimStatus(s: ContainerStatus): ContainerStatus {
  return { name: s.name, state: s.state } as ContainerStatus;
}

function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => record[k] !== undefined).map((k) => [k, record[k] as string]));
}

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
