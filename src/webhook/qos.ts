// Pod QoS as the kubelet computes it (rule I3), and Kubernetes quantities to
// compare requests with limits exactly (`1` = `1000m`, `1Gi` = `1073741824`).
// Pure.
import type { V1Container, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** Only these two decide the class (the kubelet's isSupportedQoSComputeResource). */
const QOS_RESOURCES = ['cpu', 'memory'] as const;

const DECIMAL_SUFFIXES: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/;
/** Quantities are held in nano-units (10^-9): exact for every value the API server keeps. */
const NANO = 9;

/** A quantity in nano-units, or undefined when `text` is not a Kubernetes quantity. */
export function parseQuantity(text: unknown): bigint | undefined {
  if (typeof text === 'number' && Number.isFinite(text)) return parseQuantity(String(text));
  if (typeof text !== 'string') return undefined;
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const [, sign, number = '', suffix = '', exponent] = match;
  const [whole = '', fraction = ''] = number.split('.');
  let value = BigInt(`${whole || '0'}${fraction}`);
  let scale = NANO - fraction.length; // value × 10^scale nano-units
  if (suffix in BINARY_SUFFIXES) value *= 2n ** BigInt(BINARY_SUFFIXES[suffix] as number);
  else scale += exponent !== undefined ? Number(exponent) : (DECIMAL_SUFFIXES[suffix] as number);
  // Below a nano-unit the API server rounds up; so do we.
  const result = scale >= 0 ? value * 10n ** BigInt(scale) : ceilDiv(value, 10n ** BigInt(-scale));
  return sign === '-' ? -result : result;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** True when both quantities parse and are equal as quantities. */
export function sameQuantity(a: unknown, b: unknown): boolean {
  const x = parseQuantity(a);
  return x !== undefined && x === parseQuantity(b);
}

/**
 * The pod's QoS class, as the kubelet's GetPodQOS computes it: over every container and
 * init container, cpu and memory only, positive quantities only; Guaranteed when each
 * container has both limits and the summed requests equal the summed limits; BestEffort
 * when nothing is requested or limited. Pod-level resources (spec.resources), when set,
 * decide instead.
 */
export function podQosClass(pod: V1Pod): QosClass {
  const spec = pod.spec;
  const podLevel = podLevelResources(pod);
  if (podLevel) return classOf([podLevel]);
  const containers: V1Container[] = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
  return classOf(containers.map((c) => c.resources ?? {}));
}

/** spec.resources (pod-level resources, Kubernetes 1.32+) when it sets cpu or memory. */
function podLevelResources(pod: V1Pod): V1ResourceRequirements | undefined {
  const resources = (pod.spec as { resources?: V1ResourceRequirements } | undefined)?.resources;
  return resources && QOS_RESOURCES.some((r) => resources.requests?.[r] ?? resources.limits?.[r])
    ? resources
    : undefined;
}

export function hasPodLevelResources(pod: V1Pod): boolean {
  return podLevelResources(pod) !== undefined;
}

function classOf(all: V1ResourceRequirements[]): QosClass {
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  let guaranteed = true;
  for (const resources of all) {
    for (const name of QOS_RESOURCES) {
      const request = parseQuantity(resources.requests?.[name]);
      if (request !== undefined && request > 0n) requests.set(name, (requests.get(name) ?? 0n) + request);
    }
    const found = new Set<string>();
    for (const name of QOS_RESOURCES) {
      const limit = parseQuantity(resources.limits?.[name]);
      if (limit !== undefined && limit > 0n) {
        found.add(name);
        limits.set(name, (limits.get(name) ?? 0n) + limit);
      }
    }
    if (found.size < QOS_RESOURCES.length) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) {
    for (const [name, request] of requests) {
      if (limits.get(name) !== request) guaranteed = false;
    }
  }
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}

/** `cpu=250m,memory=192Mi` (SIDECAR_GUARANTEED_RESOURCES) → a resource map, or why not. */
export function parseResourceList(text: string): Record<string, string> | string {
  const resources: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name = '', value = '', ...rest] = part.split('=').map((s) => s.trim());
    if (rest.length > 0 || !/^[a-z0-9.\-/]+$/.test(name)) return `'${part}' is not name=quantity`;
    if (resources[name] !== undefined) return `${name} is given twice`;
    const parsed = parseQuantity(value);
    if (parsed === undefined || parsed <= 0n) return `${name}: '${value}' is not a positive quantity`;
    resources[name] = value;
  }
  for (const name of QOS_RESOURCES) {
    if (resources[name] === undefined) return `needs both cpu and memory (e.g. cpu=250m,memory=192Mi)`;
  }
  return resources;
}

/**
 * The agent's resources in a Guaranteed pod: requests = limits, from `override` when
 * given (cpu and memory), else from the template's limits. Undefined when the template
 * has no cpu or memory limit to copy (the pod cannot stay Guaranteed then).
 */
export function guaranteedResources(
  template: V1ResourceRequirements | undefined,
  override: Record<string, string> | undefined,
): V1ResourceRequirements | undefined {
  const limits: Record<string, string> = { ...template?.limits, ...override };
  for (const name of QOS_RESOURCES) {
    const limit = parseQuantity(limits[name]);
    if (limit === undefined || limit <= 0n) return undefined;
  }
  return { ...template, requests: { ...limits }, limits };
}
