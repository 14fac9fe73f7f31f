// The pure core of the agent: the pod (plus node and Job facts) in, the body of
// one heartbeat out, following the contract's "Mapping the pod into the
// heartbeat" and heartbeat rules 3 and 7. No I/O, no clock, no logging: the
// loop decides what to warn about from what these functions return.
import type {
  Container,
  ContainerRestartRule,
  ContainerStatus,
  ContainerState as KubeContainerState,
  Node,
  Pod,
} from '../kube/types.ts';
import type {
  ContainerState,
  ContainerStateRunning,
  ContainerStateTerminated,
  ContainerStateWaiting,
  HeartbeatTaskRunRequest,
} from '../tes/types.gen.ts';
import { hardwareDetails } from './hardware.ts';

export interface MappingOptions {
  /** POD_NAME: used when the pod was never read. */
  podName: string;
  /** TES_NONCE: omitted from the body when undefined or ''. */
  nonce?: string;
  /** AGENT_CONTAINER_NAME: never reported. */
  selfName: string;
  /** WATCH_CONTAINERS; undefined means every regular container (spec.containers) except selfName. */
  watchContainers?: string[];
  /** HARDWARE_DETAILS: auto → true, off → false. */
  hardwareDetails: boolean;
}

export interface PodFacts {
  pod?: Pod;
  node?: Node;
  jobRetryCount: number;
}

/** A reported container: its name and exactly one of waiting/running/terminated. */
export interface ReportedContainer {
  name: string;
  state: ContainerState;
}

interface SpecEntry {
  container: Container;
  init: boolean;
}

/** Which containers are reported, and what to tell the operator about WATCH_CONTAINERS. */
export interface WatchedContainers {
  /** The names reported, in the pod spec's order. */
  names: string[];
  /** Configured names the pod's spec does not have (init containers count). */
  missing: string[];
  /**
   * Rule 19: WATCH_CONTAINERS named none of the pod's containers, so `names` is the
   * default set — a typo must not leave the task unreported and a regular sidecar
   * (and its Job) running forever.
   */
  fellBack: boolean;
}

export function watchedContainers(pod: Pod, options: MappingOptions): WatchedContainers {
  const defaults = (pod.spec?.containers ?? [])
    .map((c) => c.name)
    .filter((name) => name !== options.selfName);
  if (options.watchContainers === undefined) return { names: defaults, missing: [], fellBack: false };
  // Without a spec (a status fragment) nothing can be judged: report nothing, blame no name.
  if (!pod.spec) return { names: [], missing: [], fellBack: false };
  const wanted = new Set(options.watchContainers.filter((name) => name !== '' && name !== options.selfName));
  // Init containers count as part of the spec: a user may name one explicitly.
  const inSpec = specContainers(pod).map((entry) => entry.container.name);
  const names = inSpec.filter((name) => wanted.has(name));
  const missing = [...wanted].filter((name) => !inSpec.includes(name));
  if (names.length === 0) return { names: defaults, missing, fellBack: true };
  return { names, missing, fellBack: false };
}

/** The body of one heartbeat. Without a pod: podName, nonce, jobRetryCount only (contract rule 1). */
export function heartbeatBody(
  facts: PodFacts,
  options: MappingOptions,
  lastHeartbeat: boolean,
): HeartbeatTaskRunRequest {
  const { pod } = facts;
  const body: HeartbeatTaskRunRequest = {};
  if (lastHeartbeat) body.lastHeartbeat = true;
  body.podName = text(pod?.metadata?.name) ?? options.podName;
  const uid = text(pod?.metadata?.uid);
  if (uid !== undefined) body.podUID = uid;
  if (pod && options.hardwareDetails) {
    body.podHardwareDetails = hardwareDetails(pod, facts.node, watchedContainers(pod, options).names);
  }
  body.jobRetryCount = facts.jobRetryCount;
  if (options.nonce) body.nonce = options.nonce;
  if (pod) body.containerStatus = reportedContainers(pod, options);
  return body;
}

/** One entry per watched container, in the pod spec's order. */
export function reportedContainers(pod: Pod, options: MappingOptions): ReportedContainer[] {
  const statuses = allStatuses(pod);
  return watchedContainers(pod, options).names.map((name) => ({
    name,
    state: mapState(statuses.find((s) => s.name === name)?.state) ?? notStarted(pod),
  }));
}

/**
 * A key that changes exactly when a reported container changes state kind
 * (waiting/running/terminated), reason or exit code (contract rule 3) — not on
 * messages, restart counts, readiness or other churn.
 */
export function stateSignature(pod: Pod, options: MappingOptions): string {
  const keys = reportedContainers(pod, options).map(({ name, state }) => {
    if (state.terminated)
      return [name, 'terminated', state.terminated.reason ?? '', state.terminated.exitCode ?? ''];
    if (state.running) return [name, 'running'];
    return [name, 'waiting', state.waiting?.reason ?? ''];
  });
  return JSON.stringify(keys);
}

/**
 * Contract rule 7: pod phase Succeeded/Failed, or every watched container
 * terminated and not going to restart. A pod with no watched containers is
 * complete only when its phase says so.
 */
export function isTaskComplete(pod: Pod, options: MappingOptions): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return true;
  const { names } = watchedContainers(pod, options);
  if (names.length === 0) return false;
  const specs = specContainers(pod);
  const statuses = allStatuses(pod);
  return names.every((name) => {
    const terminated = statuses.find((s) => s.name === name)?.state?.terminated;
    const entry = specs.find((e) => e.container.name === name);
    return terminated != null && entry !== undefined && !willRestart(entry, pod, terminated.exitCode);
  });
}

function specContainers(pod: Pod): SpecEntry[] {
  return [
    ...(pod.spec?.initContainers ?? []).map((container) => ({ container, init: true })),
    ...(pod.spec?.containers ?? []).map((container) => ({ container, init: false })),
  ];
}

function allStatuses(pod: Pod): ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

/** Whether the kubelet will start a container again after it exited with `exitCode`. */
function willRestart({ container, init }: SpecEntry, pod: Pod, exitCode: unknown): boolean {
  const code = typeof exitCode === 'number' ? exitCode : undefined;
  // Container restart rules (Kubernetes 1.34+): the first matching rule decides.
  const rule = (container.restartPolicyRules ?? []).find(
    (r) => code !== undefined && matchesExitCode(r, code),
  );
  if (rule) return rule.action === 'Restart';
  const podPolicy = pod.spec?.restartPolicy ?? 'Always';
  // A container's own policy wins (a native sidecar's Always: it restarts until
  // the regular containers are done); init containers otherwise run to success,
  // so a pod policy of Always acts as OnFailure for them.
  const policy = container.restartPolicy ?? (init && podPolicy === 'Always' ? 'OnFailure' : podPolicy);
  if (policy === 'Never') return false;
  if (policy === 'OnFailure') return code !== 0;
  return true;
}

function matchesExitCode(rule: ContainerRestartRule, code: number): boolean {
  const listed = (rule.exitCodes?.values ?? []).includes(code);
  if (rule.exitCodes?.operator === 'In') return listed;
  if (rule.exitCodes?.operator === 'NotIn') return !listed;
  return false;
}

/** The TES state for a Kubernetes one; undefined when it names no state (`{}` or absent). */
function mapState(state: KubeContainerState | undefined): ContainerState | undefined {
  const { terminated, running, waiting } = state ?? {};
  // Kubernetes sets exactly one; should a bad snapshot carry more, the most final wins.
  if (terminated) {
    return {
      terminated: compact<ContainerStateTerminated>({
        exitCode: int32(terminated.exitCode),
        signal: int32(terminated.signal),
        reason: text(terminated.reason),
        message: text(terminated.message),
        startedAt: timestamp(terminated.startedAt),
        finishedAt: timestamp(terminated.finishedAt),
        containerID: text(terminated.containerID),
      }),
    };
  }
  if (running)
    return { running: compact<ContainerStateRunning>({ startedAt: timestamp(running.startedAt) }) };
  if (waiting) {
    return {
      waiting: compact<ContainerStateWaiting>({
        reason: text(waiting.reason),
        message: text(waiting.message),
      }),
    };
  }
  return undefined;
}

/** A watched container with no state yet: why the pod is not running it. */
function notStarted(pod: Pod): ContainerState {
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') {
    return {
      waiting: compact<ContainerStateWaiting>({
        reason: text(scheduled.reason) ?? 'Pending',
        message: text(scheduled.message),
      }),
    };
  }
  // A pod the kubelet evicted or rejected before the container started (Evicted,
  // OutOfcpu, NodeAffinity, DeadlineExceeded…) has no container status but says why itself.
  return {
    waiting: compact<ContainerStateWaiting>({
      reason: text(pod.status?.reason) ?? 'Pending',
      message: text(pod.status?.message),
    }),
  };
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * RFC 3339 in UTC at Kubernetes' second precision (`2026-11-20T09:14:02Z`), from
 * a Date (client-node's deserialised objects) or a string (the raw watch JSON).
 * Kubernetes serves a zero time as null: that, and anything unparsable, is absent.
 */
export function timestamp(value: unknown): string | undefined {
  let ms: number;
  if (value instanceof Date) {
    ms = value.getTime();
  } else if (typeof value === 'string') {
    const parts = RFC3339.exec(value);
    if (!parts) return undefined;
    ms = Date.parse(`${parts[1]}T${parts[2]}${parts[3]?.toUpperCase()}`);
  } else {
    return undefined;
  }
  if (!Number.isFinite(ms)) return undefined;
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString();
  return /^\d{4}-/.test(iso) ? iso.replace(/\.\d{3}Z$/, 'Z') : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function int32(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31
    ? value
    : undefined;
}

/** `fields` without its undefined values: the body must not carry undefined keys. */
function compact<T extends object>(fields: { [K in keyof T]-?: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}
