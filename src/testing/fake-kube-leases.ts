// The Lease API of the fake Kubernetes API server (`coordination.k8s.io/v1`, namespaced
// `leases`): GET, POST and PUT answered as kube-apiserver answers them — optimistic
// concurrency on `metadata.resourceVersion` (a stale one: 409 Conflict, worded as
// apiserver's registry words it), 409 AlreadyExists on a second create, 404 NotFound,
// 422 Invalid from the Lease validation (pkg/apis/coordination/validation: a
// `leaseDurationSeconds` of 0 or less, negative `leaseTransitions`), a PUT without a
// resourceVersion refused (the Lease strategy allows no unconditional update) and a PUT
// of a missing Lease creating it (its strategy allows create-on-update).
// A resource group of the fake API server (FakeKubeApiServer.extend).
import type { FakeApiContext, FakeApiGroup, FakeApiRequest } from './fake-kube-api-server.ts';
import type { FakeReply } from './fake-kube-events.ts';
import { type Cause, decodeObject, invalidStatus, kubeStatus, MICRO_TIME } from './fake-kube-events.ts';

const LEASES_PATH = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/;

const GROUP = 'coordination.k8s.io';

export interface StoredLease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string; [key: string]: unknown };
  spec: Record<string, unknown>;
}

/** One accepted write, for tests that follow who held the lease when. */
export interface LeaseWrite {
  method: 'POST' | 'PUT';
  namespace: string;
  name: string;
  holderIdentity: string;
  resourceVersion: string;
  /** The server's wall clock (ms) when the write was accepted. */
  at: number;
}

export class FakeLeases implements FakeApiGroup {
  /** Every accepted write, in order. */
  readonly writes: LeaseWrite[] = [];
  private readonly leases = new Map<string, StoredLease>();
  private uids = 0;
  private readonly nextResourceVersion: () => string;

  /** `nextResourceVersion`: the server's counter, so versions stay unique across resources, as etcd's. */
  constructor(nextResourceVersion: () => string) {
    this.nextResourceVersion = nextResourceVersion;
  }

  serve(request: FakeApiRequest, context: FakeApiContext): FakeReply | undefined {
    const path = LEASES_PATH.exec(request.path);
    if (!path) return undefined;
    const name = path[2] === undefined ? undefined : decodeURIComponent(path[2]);
    return this.handle(request.method, decodeURIComponent(path[1] ?? ''), name, request.body, context.now());
  }

  /** A stored Lease (a copy), or undefined. */
  get(namespace: string, name: string): StoredLease | undefined {
    const lease = this.leases.get(`${namespace}/${name}`);
    return lease && structuredClone(lease);
  }

  /** Stores a Lease as another writer would (a holder from before, a renewal by a process the test plays). */
  set(namespace: string, name: string, spec: Record<string, unknown>, now = Date.now()): StoredLease {
    const previous = this.leases.get(`${namespace}/${name}`);
    const lease = this.store(namespace, name, { metadata: previous?.metadata ?? {}, spec }, now, 'PUT');
    return structuredClone(lease);
  }

  /** Answers one request on the Lease paths; `text` is the request body. */
  private handle(
    method: string,
    namespace: string,
    name: string | undefined,
    text: string,
    now: number,
  ): FakeReply {
    if (method === 'GET') {
      if (!name) return this.list(namespace);
      const lease = this.leases.get(`${namespace}/${name}`);
      return lease ? { code: 200, body: lease } : notFound(name);
    }
    // POST to the collection, PUT to a named Lease: nothing else.
    if ((method !== 'POST' && method !== 'PUT') || (method === 'POST') !== (name === undefined)) {
      return kubeStatus(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    const decoded = decodeObject(text, { apiVersion: `${GROUP}/v1`, kind: 'Lease', namespace });
    if ('reply' in decoded) return decoded.reply;
    const lease = decoded.object;
    const metadata = (lease.metadata ?? {}) as Record<string, unknown>;
    const spec = (lease.spec ?? {}) as Record<string, unknown>;
    for (const field of ['acquireTime', 'renewTime']) {
      const value = spec[field];
      if (value !== undefined && value !== null && !MICRO_TIME.test(String(value))) {
        return kubeStatus(
          400,
          'BadRequest',
          `Lease in version "v1" cannot be handled as a Lease: parsing time "${String(value)}"`,
        );
      }
    }
    const objectName = typeof metadata.name === 'string' ? metadata.name : '';
    if (method === 'PUT' && objectName !== name) {
      return kubeStatus(
        400,
        'BadRequest',
        `the name of the object (${objectName}) does not match the name on the URL (${name})`,
      );
    }
    const invalid = validate(objectName, spec);
    if (invalid) return invalid;

    const key = `${namespace}/${objectName}`;
    const existing = this.leases.get(key);
    if (method === 'POST') {
      if (existing) {
        return kubeStatus(409, 'AlreadyExists', `leases.${GROUP} "${objectName}" already exists`, {
          name: objectName,
          group: GROUP,
          kind: 'leases',
        });
      }
      return { code: 201, body: this.store(namespace, objectName, { metadata, spec }, now, 'POST') };
    }
    if (!existing) {
      return { code: 201, body: this.store(namespace, objectName, { metadata, spec }, now, 'PUT') };
    }
    const version = metadata.resourceVersion;
    if (version === undefined || version === '') {
      return invalidStatus({ group: GROUP, kind: 'Lease', name: objectName }, [
        {
          reason: 'FieldValueInvalid',
          field: 'metadata.resourceVersion',
          message: 'Invalid value: 0: must be specified for an update',
        },
      ]);
    }
    if (version !== existing.metadata.resourceVersion) {
      return kubeStatus(
        409,
        'Conflict',
        `Operation cannot be fulfilled on leases.${GROUP} "${objectName}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: objectName, group: GROUP, kind: 'leases' },
      );
    }
    return { code: 200, body: this.store(namespace, objectName, { metadata, spec }, now, 'PUT') };
  }

  private list(namespace: string): FakeReply {
    const items = [...this.leases.values()].filter((lease) => lease.metadata.namespace === namespace);
    return {
      code: 200,
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: 'LeaseList',
        metadata: { resourceVersion: this.nextResourceVersion() },
        items,
      },
    };
  }

  private store(
    namespace: string,
    name: string,
    from: { metadata: Record<string, unknown>; spec: Record<string, unknown> },
    now: number,
    method: 'POST' | 'PUT',
  ): StoredLease {
    const key = `${namespace}/${name}`;
    const previous = this.leases.get(key);
    const lease: StoredLease = {
      apiVersion: `${GROUP}/v1`,
      kind: 'Lease',
      metadata: {
        ...from.metadata,
        name,
        namespace,
        uid: previous?.metadata.uid ?? `00000000-0000-4000-a000-${String(++this.uids).padStart(12, '0')}`,
        creationTimestamp:
          previous?.metadata.creationTimestamp ?? new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        resourceVersion: this.nextResourceVersion(),
      },
      spec: structuredClone(from.spec),
    };
    this.leases.set(key, lease);
    this.writes.push({
      method,
      namespace,
      name,
      holderIdentity: typeof lease.spec.holderIdentity === 'string' ? lease.spec.holderIdentity : '',
      resourceVersion: lease.metadata.resourceVersion,
      at: now,
    });
    return structuredClone(lease);
  }
}

function validate(name: string, spec: Record<string, unknown>): FakeReply | undefined {
  const causes: Cause[] = [];
  if (!name) {
    causes.push({
      reason: 'FieldValueRequired',
      field: 'metadata.name',
      message: 'Required value: name or generateName is required',
    });
  }
  const duration = spec.leaseDurationSeconds;
  if (duration !== undefined && duration !== null && !(Number(duration) > 0)) {
    causes.push({
      reason: 'FieldValueInvalid',
      field: 'spec.leaseDurationSeconds',
      message: `Invalid value: ${String(duration)}: must be greater than 0`,
    });
  }
  const transitions = spec.leaseTransitions;
  if (transitions !== undefined && transitions !== null && Number(transitions) < 0) {
    causes.push({
      reason: 'FieldValueInvalid',
      field: 'spec.leaseTransitions',
      message: `Invalid value: ${String(transitions)}: must be greater than or equal to 0`,
    });
  }
  return causes.length > 0 ? invalidStatus({ group: GROUP, kind: 'Lease', name }, causes) : undefined;
}

function notFound(name: string): FakeReply {
  return kubeStatus(404, 'NotFound', `leases.${GROUP} "${name}" not found`, {
    name,
    group: GROUP,
    kind: 'leases',
  });
}
