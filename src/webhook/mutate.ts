// Pure pod → JSON Patch, apart from HTTP (as vault-k8s splits handler.go from
// agent/): everything the webhook decides about one admission request is here,
// with no I/O, so it is tested as a table and reused by the chart's tests.
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node';
import { isRecord } from '../json.ts';
import {
  INJECT_LABEL,
  NONCE_ANNOTATION,
  NONCE_SECRET_ANNOTATION,
  NONCE_SECRET_KEY,
  RUN_ID_ANNOTATION,
} from '../kube/annotations.ts';
import { listenerConflict, listenerPort, withoutListener, withoutTakenPortName } from './ports.ts';
import { separateFromTasks } from './process-namespace.ts';
import { guaranteedResources, hasPodLevelResources, podQosClass } from './qos.ts';
import { OWN_TOKEN_WARNING, podHoldsOwnToken, withAgentToken, withAgentTokenVolume } from './token.ts';
import { warning } from './warning.ts';

export type SidecarMode = 'native' | 'regular';

export interface MutateOptions {
  /** The sidecar Container the chart renders (SIDECAR_TEMPLATE). */
  template: V1Container;
  mode: SidecarMode;
  /** AGENT_CONTAINER_NAME: the injected container's name, and how a pod already injected is recognised. */
  selfName: string;
  /** TASK_SERVICE_ACCOUNTS: accounts the chart binds to the agent's Role in task namespaces. */
  taskServiceAccounts: string[];
  /** SIDECAR_VOLUMES: pod volumes the sidecar's mounts need, added when the pod lacks them by name (rule I1). */
  volumes?: V1Volume[];
  /** SIDECAR_GUARANTEED_RESOURCES: the agent's requests = limits in a Guaranteed pod (rule I3); else the template's limits. */
  guaranteedResources?: Record<string, string> | undefined;
  /** SIDECAR_IMAGE_PULL_SECRETS: pull secrets for the agent's image, added to a pod that lacks them. */
  imagePullSecrets?: string[];
}

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** The `request` of an admission.k8s.io/v1 AdmissionReview, as far as the webhook reads it. */
export interface AdmissionRequestV1 {
  uid: string;
  kind?: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  operation: string;
  namespace?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export interface MutateResult {
  result: 'injected' | 'skipped' | 'error';
  patch?: JsonPatchOperation[];
  warnings: string[];
}

/** The downward-API sources of the env the webhook adds when the template lacks them. */
const DOWNWARD_ENV: readonly { name: string; fieldPath: string }[] = [
  // Single quotes only: the API server rejects double quotes in this path.
  { name: 'TES_RUN_ID', fieldPath: `metadata.annotations['${RUN_ID_ANNOTATION}']` },
  { name: 'TES_NONCE', fieldPath: `metadata.annotations['${NONCE_ANNOTATION}']` },
  { name: 'POD_NAME', fieldPath: 'metadata.name' },
  { name: 'POD_NAMESPACE', fieldPath: 'metadata.namespace' },
];

/** Where the agent's TES_NONCE comes from: nowhere, the pod's annotation, or a Secret (rule T2). */
export type NonceSource = { from: 'none' } | { from: 'annotation' } | { from: 'secret'; name: string };

/**
 * The container the webhook would inject (name forced to selfName, restartPolicy
 * Always in native mode / absent in regular mode, the four downward env added when
 * the template lacks them; TES_NONCE from the Secret when the pod names one).
 */
export function sidecarContainer(
  template: V1Container,
  mode: SidecarMode,
  selfName: string,
  nonce: NonceSource,
): V1Container {
  const container: V1Container = { ...structuredClone(template), name: selfName };
  // A regular container with restartPolicy is rejected; a native sidecar needs exactly Always.
  if (mode === 'native') container.restartPolicy = 'Always';
  else delete container.restartPolicy;
  let env: V1EnvVar[] = [...(container.env ?? [])];
  const present = new Set(env.map((e) => e.name));
  for (const { name, fieldPath } of DOWNWARD_ENV) {
    if (name === 'TES_NONCE' && nonce.from === 'secret') {
      // The pod's choice wins over the template's TES_NONCE: the chart's template reads the
      // annotation (so a snippet added by hand works), and keeping that entry would ignore
      // the Secret the pod asked for. Replaced where it stood, once.
      env = withEntry(env, {
        name,
        valueFrom: { secretKeyRef: { name: nonce.name, key: NONCE_SECRET_KEY, optional: false } },
      });
      continue;
    }
    // The agent treats an empty TES_NONCE as unset, but a pod without the
    // annotation should not carry a variable that can only be empty.
    if (present.has(name) || (name === 'TES_NONCE' && nonce.from === 'none')) continue;
    env.push({ name, valueFrom: { fieldRef: { fieldPath } } });
  }
  container.env = env;
  return container;
}

/** `env` with `entry` in place of every variable of its name (where the first stood), or appended. */
function withEntry(env: V1EnvVar[], entry: V1EnvVar): V1EnvVar[] {
  const at = env.findIndex((e) => e.name === entry.name);
  if (at < 0) return [...env, entry];
  const others = env.filter((e, i) => i < at || e.name !== entry.name);
  return [...others.slice(0, at), entry, ...others.slice(at)];
}

/** A Secret's name is a DNS-1123 subdomain; the API server refuses a secretKeyRef to anything else. */
function isSecretName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name);
}

/** Decides one admission request. Never throws: a pod it cannot patch is an `error` result with a warning. */
export function mutatePod(request: AdmissionRequestV1, options: MutateOptions): MutateResult {
  // Adding a container to a running pod is impossible, and reviews of UPDATE
  // would re-inject nothing useful: only CREATE is ever patched.
  if (request.operation !== 'CREATE') return { result: 'skipped', warnings: [] };
  const kind = request.kind;
  if (kind && (kind.group !== '' || kind.kind !== 'Pod')) {
    return fail(`object is a ${kind.group ? `${kind.group}/` : ''}${kind.kind}, not a Pod`);
  }
  const pod = asPod(request.object);
  if (typeof pod === 'string') return fail(pod);

  const labels = pod.metadata?.labels ?? {};
  if (labels[INJECT_LABEL] !== 'true') return { result: 'skipped', warnings: [] };
  // Reinvocation, or a pod that carries the agent by hand: leave it as it is.
  const spec = pod.spec;
  const named = (c: { name?: unknown }) => c.name === options.selfName;
  if (spec.containers.some(named) || (spec.initContainers ?? []).some(named)) {
    return { result: 'skipped', warnings: [] };
  }
  const annotations = pod.metadata?.annotations ?? {};
  const runId = annotations[RUN_ID_ANNOTATION];
  if (typeof runId !== 'string' || runId === '') {
    return {
      result: 'skipped',
      warnings: [
        warning(
          `tes-heartbeat: not injected: the pod is labelled ${INJECT_LABEL}=true but has no ${RUN_ID_ANNOTATION} annotation`,
        ),
      ],
    };
  }

  const nonce = nonceSource(annotations);
  if (typeof nonce === 'string') return fail(nonce);
  const warnings = serviceAccountWarnings(pod, request, options);
  if (nonce.from === 'secret' && (annotations[NONCE_ANNOTATION] ?? '') !== '') {
    warnings.push(
      warning(
        `tes-heartbeat: the agent reads its nonce from Secret '${nonce.name}'; remove the ${NONCE_ANNOTATION} annotation: it is readable by anyone who can read pods`,
      ),
    );
  }
  const fitted = fitToPod(
    withAgentToken(sidecarContainer(options.template, options.mode, options.selfName, nonce)),
    pod,
    options,
    warnings,
  );
  const separated = separateFromTasks(fitted, pod);
  warnings.push(...separated.warnings);
  const container = separated.container;
  const volumes = withAgentTokenVolume(options.volumes ?? []);
  const known = new Set([...(spec.volumes ?? []), ...volumes].map((v) => v.name));
  const missing = (container.volumeMounts ?? []).filter((m) => !known.has(m.name)).map((m) => m.name);
  if (missing.length > 0) {
    // The API server would refuse the patched pod, and with it the task: better no agent.
    return fail(
      `the sidecar mounts volume(s) ${missing.join(', ')} that neither the pod nor SIDECAR_VOLUMES has`,
    );
  }
  const patch: JsonPatchOperation[] = [
    ...containerOps(spec, options.mode, container),
    ...addMissing('/spec/volumes', spec.volumes, volumes),
    ...addMissing(
      '/spec/imagePullSecrets',
      spec.imagePullSecrets,
      (options.imagePullSecrets ?? []).map((name) => ({ name })),
    ),
  ];
  return { result: 'injected', patch, warnings };
}

/** The injected container adjusted to this pod: its listener port (rule I2) and its QoS class (rule I3). */
function fitToPod(
  container: V1Container,
  pod: PodWithSpec,
  options: MutateOptions,
  warnings: string[],
): V1Container {
  let fitted = container;
  const port = listenerPort(fitted);
  const conflict = port === undefined ? undefined : listenerConflict(pod, port);
  if (port !== undefined && conflict) {
    fitted = withoutListener(fitted, port);
    warnings.push(
      warning(
        `tes-heartbeat: ${conflict}: the agent runs without its health and metrics listener (HTTP_ADDR=off); the task keeps port ${port}`,
      ),
    );
  }
  fitted = withoutTakenPortName(fitted, pod);
  if (hasPodLevelResources(pod)) {
    // The pod's own budget decides its class and caps its containers (their limits may not
    // exceed it): the agent shares that budget rather than bring limits that could break it.
    const { resources: _, ...shared } = fitted;
    return shared;
  }
  // Decided on the pod as it came, without the agent: the agent must not change its class.
  if (podQosClass(pod) === 'Guaranteed') {
    const resources = guaranteedResources(fitted.resources, options.guaranteedResources);
    if (resources) fitted = { ...fitted, resources };
    else {
      warnings.push(
        warning(
          'tes-heartbeat: the pod is Guaranteed but the sidecar has no cpu and memory limits to request: the pod becomes Burstable',
        ),
      );
    }
  }
  return fitted;
}

function containerOps(
  spec: PodWithSpec['spec'],
  mode: SidecarMode,
  container: V1Container,
): JsonPatchOperation[] {
  if (mode === 'regular') return [{ op: 'add', path: '/spec/containers/-', value: container }];
  // `add /spec/initContainers/0` fails on a pod without the array.
  if (spec.initContainers === undefined)
    return [{ op: 'add', path: '/spec/initContainers', value: [container] }];
  // First, so that it runs before the task's own init containers.
  return [{ op: 'add', path: '/spec/initContainers/0', value: container }];
}

/**
 * Adds each entry the pod's list lacks by name (the API server refuses duplicate names),
 * creating the list when the pod has none (`add …/-` fails on a missing array).
 */
function addMissing<T extends { name?: string | undefined }>(
  path: string,
  present: readonly T[] | undefined,
  wanted: readonly T[],
): JsonPatchOperation[] {
  const names = new Set((present ?? []).map((entry) => entry.name));
  const absent = wanted.filter((entry) => !names.has(entry.name));
  if (absent.length === 0) return [];
  if (present === undefined) return [{ op: 'add', path, value: absent }];
  return absent.map((value) => ({ op: 'add', path: `${path}/-`, value }));
}

function serviceAccountWarnings(
  pod: PodWithSpec,
  request: AdmissionRequestV1,
  options: MutateOptions,
): string[] {
  const warnings: string[] = [];
  const account = pod.spec.serviceAccountName || pod.spec.serviceAccount || 'default';
  if (!options.taskServiceAccounts.includes(account)) {
    const namespace = request.namespace ?? pod.metadata?.namespace;
    warnings.push(
      warning(
        `tes-heartbeat: service account '${account}'${namespace ? ` in namespace '${namespace}'` : ''} is not bound by the chart (taskServiceAccounts): the agent will get 403 reading its pod`,
      ),
    );
  }
  // The agent brings its own token (rule T1): what matters is a token the task holds.
  if (podHoldsOwnToken(pod)) warnings.push(warning(OWN_TOKEN_WARNING));
  return warnings;
}

/** Where TES_NONCE comes from for this pod, or why its nonce-secret annotation is unusable. */
function nonceSource(annotations: Record<string, string>): NonceSource | string {
  const secret = annotations[NONCE_SECRET_ANNOTATION];
  if (secret !== undefined) {
    // A bad name would make the API server refuse the patched pod, and with it the task.
    if (typeof secret !== 'string' || !isSecretName(secret)) {
      return `the ${NONCE_SECRET_ANNOTATION} annotation '${String(secret)}' is not a Secret name`;
    }
    return { from: 'secret', name: secret };
  }
  return typeof annotations[NONCE_ANNOTATION] === 'string' ? { from: 'annotation' } : { from: 'none' };
}

type PodWithSpec = V1Pod & { spec: NonNullable<V1Pod['spec']> };

/** The object as a pod with a containers array, or why it is not one. */
function asPod(object: unknown): PodWithSpec | string {
  if (!isRecord(object)) return 'the review carries no pod object';
  const { metadata, spec } = object;
  if (metadata !== undefined && !isRecord(metadata)) return 'the pod metadata is not an object';
  for (const field of ['labels', 'annotations'] as const) {
    const map = metadata?.[field];
    if (map !== undefined && map !== null && !isRecord(map)) return `metadata.${field} is not an object`;
  }
  if (!isRecord(spec)) return 'the pod has no spec';
  if (!Array.isArray(spec.containers) || !spec.containers.every(isRecord)) {
    return 'spec.containers is not a list of containers';
  }
  const lists = { initContainers: 'containers', volumes: 'volumes', imagePullSecrets: 'references' } as const;
  const normalized: Record<string, unknown> = { ...spec };
  for (const [field, what] of Object.entries(lists)) {
    const list = spec[field];
    // JSON null is no array: treat it as absent, as the API server would.
    if (list === null) delete normalized[field];
    else if (list !== undefined && !(Array.isArray(list) && list.every(isRecord))) {
      return `spec.${field} is not a list of ${what}`;
    }
  }
  for (const container of [...spec.containers, ...((normalized.initContainers as unknown[]) ?? [])]) {
    const ports = (container as Record<string, unknown>).ports;
    if (ports !== undefined && ports !== null && !(Array.isArray(ports) && ports.every(isRecord))) {
      return "a container's ports is not a list of ports";
    }
  }
  return { ...object, spec: normalized } as unknown as PodWithSpec;
}

function fail(reason: string): MutateResult {
  return { result: 'error', warnings: [warning(`tes-heartbeat: not injected: ${reason}`)] };
}
