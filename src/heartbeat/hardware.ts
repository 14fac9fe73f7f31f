// podHardwareDetails: what the pod and its node say about the hardware the task
// runs on, as compact JSON. The TES field is free-form but we promise at most
// 4 KiB, so an oversized document loses whole parts, least important first,
// rather than being cut into invalid JSON.
import type { Container, Node, Pod } from '../kube/types.ts';

export const HARDWARE_DETAILS_MAX_BYTES = 4096;

type Quantities = Record<string, string>;

interface ContainerResources {
  name: string;
  requests?: Quantities;
  limits?: Quantities;
}

interface NodeDetails {
  instanceType?: string;
  zone?: string;
  region?: string;
  accelerator?: string;
  architecture?: string;
  operatingSystem?: string;
  osImage?: string;
  kernelVersion?: string;
  containerRuntimeVersion?: string;
  kubeletVersion?: string;
  capacity?: Quantities;
  allocatable?: Quantities;
}

interface Details {
  nodeName?: string;
  qosClass?: string;
  containers?: ContainerResources[];
  /** How many watched containers were left out to respect the size limit. */
  containersOmitted?: number;
  node?: NodeDetails;
}

/** Compact JSON of at most 4096 UTF-8 bytes: the pod's part, and the node's when given. */
export function hardwareDetails(pod: Pod, node: Node | undefined, names: string[]): string {
  for (const candidate of reductions(fullDetails(pod, node, names))) {
    const json = JSON.stringify(candidate);
    if (Buffer.byteLength(json, 'utf8') <= HARDWARE_DETAILS_MAX_BYTES) return json;
  }
  return '{}';
}

function fullDetails(pod: Pod, node: Node | undefined, names: string[]): Details {
  const details: Details = {};
  setText(details, 'nodeName', pod.spec?.nodeName);
  setText(details, 'qosClass', pod.status?.qosClass);
  const specs = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  details.containers = names.map((name) => containerResources(name, specs));
  if (node) details.node = nodeDetails(node);
  return details;
}

function containerResources(name: string, specs: Container[]): ContainerResources {
  const resources = specs.find((c) => c.name === name)?.resources;
  const entry: ContainerResources = { name };
  const requests = quantities(resources?.requests);
  const limits = quantities(resources?.limits);
  if (requests) entry.requests = requests;
  if (limits) entry.limits = limits;
  return entry;
}

function nodeDetails(node: Node): NodeDetails {
  const labels = node.metadata?.labels ?? {};
  const label = (...keys: string[]) =>
    keys.map((k) => labels[k]).find((v) => typeof v === 'string' && v !== '');
  const info = node.status?.nodeInfo;
  const details: NodeDetails = {};
  setText(
    details,
    'instanceType',
    label('node.kubernetes.io/instance-type', 'beta.kubernetes.io/instance-type'),
  );
  setText(details, 'zone', label('topology.kubernetes.io/zone', 'failure-domain.beta.kubernetes.io/zone'));
  setText(
    details,
    'region',
    label('topology.kubernetes.io/region', 'failure-domain.beta.kubernetes.io/region'),
  );
  // The GPU model, where the platform labels it (GKE, NVIDIA GPU feature discovery, EKS accelerators).
  setText(
    details,
    'accelerator',
    label('cloud.google.com/gke-accelerator', 'nvidia.com/gpu.product', 'k8s.amazonaws.com/accelerator'),
  );
  setText(details, 'architecture', info?.architecture);
  setText(details, 'operatingSystem', info?.operatingSystem);
  setText(details, 'osImage', info?.osImage);
  setText(details, 'kernelVersion', info?.kernelVersion);
  setText(details, 'containerRuntimeVersion', info?.containerRuntimeVersion);
  setText(details, 'kubeletVersion', info?.kubeletVersion);
  const capacity = quantities(node.status?.capacity);
  const allocatable = quantities(node.status?.allocatable);
  if (capacity) details.capacity = capacity;
  if (allocatable) details.allocatable = allocatable;
  return details;
}

/**
 * The full document, then ever smaller ones, least important part first:
 * allocatable (close to capacity), containers from the end of the list,
 * capacity, the node's software versions, the node, the containers' count.
 */
function* reductions(full: Details): Generator<Details> {
  yield full;
  const { allocatable: _allocatable, ...withoutAllocatable } = full.node ?? {};
  const trimmed: Details = full.node ? { ...full, node: withoutAllocatable } : full;
  if (full.node?.allocatable) yield trimmed;
  const containers = full.containers ?? [];
  for (let keep = containers.length - 1; keep >= 0; keep--) {
    yield { ...trimmed, containers: containers.slice(0, keep), containersOmitted: containers.length - keep };
  }
  const base: Details = { ...trimmed, containers: [] };
  if (containers.length > 0) base.containersOmitted = containers.length;
  if (base.node) {
    const { capacity: _capacity, ...withoutCapacity } = base.node;
    yield { ...base, node: withoutCapacity };
    const { instanceType, zone, region, accelerator, architecture, operatingSystem } = withoutCapacity;
    yield {
      ...base,
      node: dropUndefined({ instanceType, zone, region, accelerator, architecture, operatingSystem }),
    };
  }
  const { node: _node, ...withoutNode } = base;
  yield withoutNode;
  yield dropUndefined({ nodeName: full.nodeName, qosClass: full.qosClass });
}

function quantities(value: unknown): Quantities | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function setText<T extends object, K extends keyof T>(target: T, key: K, value: unknown): void {
  if (typeof value === 'string' && value !== '') target[key] = value as T[K];
}

function dropUndefined<T extends object>(value: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
