// Offline validation of Kubernetes objects, two ways:
// 1. the OpenAPI schemas compiled by kubernetes-models (types, required fields, enums,
//    formats) and, for cert-manager objects, @kubernetes-models/cert-manager;
// 2. unknown fields (which the API server drops or rejects, and which (1) lets pass: the
//    OpenAPI schemas have no additionalProperties: false), using the field lists of
//    @kubernetes/client-node's generated models (OpenAPI release-1.36).
// Both describe current Kubernetes; everything rendered here also uses only API versions and
// fields Kubernetes 1.29 serves (SERVED_IN_1_29 below, and the README's "Verified" section).
import * as clientNodeModels from '@kubernetes/client-node/dist/gen/models/all.js';
import type { K8sObject } from './helm-chart.ts';

interface ModelInstance {
  validate(): void;
}
type ModelClass = new (data: unknown) => ModelInstance;
type ModelModule = Record<string, unknown>;

/** apiVersion → the kubernetes-models module holding its kinds. */
const schemaModules: Record<string, () => Promise<ModelModule>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'batch/v1': () => import('kubernetes-models/batch/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
  'rbac.authorization.k8s.io/v1': () => import('kubernetes-models/rbac.authorization.k8s.io/v1'),
  'admissionregistration.k8s.io/v1': () => import('kubernetes-models/admissionregistration.k8s.io/v1'),
  'cert-manager.io/v1': () => import('@kubernetes-models/cert-manager/cert-manager.io/v1'),
};

/** The kinds this project renders, each served by Kubernetes 1.29 under this apiVersion. */
export const SERVED_IN_1_29: Record<string, string[]> = {
  v1: ['ConfigMap', 'Secret', 'Service', 'ServiceAccount', 'Pod'],
  'apps/v1': ['Deployment', 'DaemonSet'],
  'batch/v1': ['Job'],
  'policy/v1': ['PodDisruptionBudget'],
  'rbac.authorization.k8s.io/v1': ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'],
  'admissionregistration.k8s.io/v1': ['MutatingWebhookConfiguration'],
  'cert-manager.io/v1': ['Issuer', 'Certificate'],
};

interface SchemaError {
  instancePath?: string;
  message?: string;
}

async function schemaErrors(
  obj: K8sObject | { apiVersion: string; kind: string },
  data: unknown,
): Promise<string[]> {
  const load = schemaModules[obj.apiVersion];
  if (!load) return [`${obj.apiVersion}: no schema known for this apiVersion`];
  const model = (await load())[obj.kind] as ModelClass | undefined;
  if (!model) return [`${obj.apiVersion} ${obj.kind}: no schema known for this kind`];
  try {
    new model(data).validate();
    return [];
  } catch (error) {
    const details = (error as { errors?: SchemaError[] }).errors;
    if (!details) return [String(error)];
    return details.map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
  }
}

interface Attribute {
  baseName: string;
  type: string;
}
const models = clientNodeModels as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>;

/** Fields a client-node model type does not know, and values of the wrong JSON type. */
function strictErrors(value: unknown, type: string, at: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) out.push(`${at}: expected an array`);
    else for (const [i, item] of value.entries()) strictErrors(item, array[1] as string, `${at}[${i}]`, out);
  } else if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) out.push(`${at}: expected a map`);
    else for (const [k, v] of Object.entries(value)) strictErrors(v, map[1] as string, `${at}.${k}`, out);
  } else if (type === 'string' || type === 'Date') {
    if (typeof value !== 'string') out.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
  } else if (type === 'number' || type === 'boolean') {
    if (typeof value !== type) out.push(`${at}: expected a ${type}, got ${JSON.stringify(value)}`);
  } else if (type === 'IntOrString') {
    if (typeof value !== 'string' && typeof value !== 'number')
      out.push(`${at}: expected an int or a string`);
  } else if (type !== 'any' && type !== 'object') {
    const attributes = models[type]?.getAttributeTypeMap?.();
    if (!attributes) {
      out.push(`${at}: unknown model type ${type}`);
      return;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      out.push(`${at}: expected an object (${type})`);
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      const attribute = attributes.find((a) => a.baseName === key);
      if (!attribute) out.push(`${at}.${key}: unknown field (${type})`);
      else strictErrors(v, attribute.type, `${at}.${key}`, out);
    }
  }
}

/** Every problem with one object; empty when it is valid. */
export async function validateObject(obj: K8sObject): Promise<string[]> {
  const where = `${obj.kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? '?'}`;
  const errors = await schemaErrors(obj, obj);
  if (!SERVED_IN_1_29[obj.apiVersion]?.includes(obj.kind)) {
    errors.push(`${obj.apiVersion} ${obj.kind} is not in the list of kinds served by Kubernetes 1.29`);
  }
  if (obj.apiVersion !== 'cert-manager.io/v1') {
    const version = obj.apiVersion.split('/').at(-1) ?? '';
    const type = `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
    strictErrors(obj, type, '', errors);
  }
  return errors.map((e) => `${where}: ${e}`);
}

/** Problems with a bare container spec (the published sidecar snippet). */
export async function validateContainer(container: unknown): Promise<string[]> {
  const errors = await schemaErrors(
    { apiVersion: 'v1', kind: 'Pod' },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'snippet' },
      spec: { containers: [container] },
    },
  );
  strictErrors(container, 'V1Container', 'container', errors);
  return errors;
}

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked dynamically
type Any = any;

/** The pod spec inside a Pod, Job or Deployment, if any. */
export function podSpecOf(obj: K8sObject): Any {
  const o = obj as Any;
  if (obj.kind === 'Pod') return o.spec;
  return o.spec?.template?.spec;
}

const ANNOTATION_FIELD_PATH = /^metadata\.annotations\['[^'"]+'\]$/;

/**
 * What the schemas cannot say but the API server or the contract does: restartPolicy only on
 * init containers and only Always (a native sidecar); downward-API annotation paths in single
 * quotes; no subPath mounts (they never see a ConfigMap's or Secret's updates); every
 * container with cpu and memory requests and limits and a hardened securityContext.
 */
export function podInvariantErrors(obj: K8sObject): string[] {
  const spec = podSpecOf(obj);
  if (!spec) return [];
  const where = `${obj.kind} ${obj.metadata.name}`;
  const errors: string[] = [];
  const all: [string, Any][] = [
    ...(spec.initContainers ?? []).map((c: Any) => [`initContainers/${c.name}`, c] as [string, Any]),
    ...(spec.containers ?? []).map((c: Any) => [`containers/${c.name}`, c] as [string, Any]),
  ];
  for (const c of spec.containers ?? []) {
    if (c.restartPolicy !== undefined)
      errors.push(`${where}: containers/${c.name} has restartPolicy (init containers only)`);
  }
  for (const c of spec.initContainers ?? []) {
    if (c.restartPolicy !== undefined && c.restartPolicy !== 'Always') {
      errors.push(`${where}: initContainers/${c.name} restartPolicy must be Always`);
    }
  }
  const names = all.map(([, c]) => c.name);
  if (new Set(names).size !== names.length) errors.push(`${where}: container names are not unique`);
  for (const [at, c] of all) {
    for (const e of c.env ?? []) {
      const fieldPath = e.valueFrom?.fieldRef?.fieldPath as string | undefined;
      if (fieldPath?.startsWith('metadata.annotations') && !ANNOTATION_FIELD_PATH.test(fieldPath)) {
        errors.push(`${where}: ${at} env ${e.name}: ${fieldPath} (single quotes, exactly)`);
      }
    }
    for (const m of c.volumeMounts ?? []) {
      if (m.subPath !== undefined || m.subPathExpr !== undefined)
        errors.push(`${where}: ${at} mounts ${m.name} with subPath`);
    }
    for (const kind of ['requests', 'limits']) {
      for (const resource of ['cpu', 'memory']) {
        if (c.resources?.[kind]?.[resource] === undefined)
          errors.push(`${where}: ${at} has no ${resource} ${kind}`);
      }
    }
    const sc = { ...spec.securityContext, ...c.securityContext };
    if (sc.runAsNonRoot !== true) errors.push(`${where}: ${at} may run as root`);
    if (c.securityContext?.allowPrivilegeEscalation !== false)
      errors.push(`${where}: ${at} allows privilege escalation`);
    if (c.securityContext?.readOnlyRootFilesystem !== true)
      errors.push(`${where}: ${at} has a writable root filesystem`);
    if (!c.securityContext?.capabilities?.drop?.includes('ALL'))
      errors.push(`${where}: ${at} keeps capabilities`);
    if (sc.seccompProfile?.type !== 'RuntimeDefault')
      errors.push(`${where}: ${at} has no RuntimeDefault seccomp profile`);
  }
  return errors;
}
