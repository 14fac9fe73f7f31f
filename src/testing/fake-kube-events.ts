// The Events API of the fake Kubernetes API server (`POST /apis/events.k8s.io/v1/
// namespaces/<ns>/events`), checked as kube-apiserver checks a new events.k8s.io/v1
// Event (pkg/apis/core/validation/events.go, ValidateEventCreate): 422 with one cause
// per missing or invalid field, 400 for an eventTime that is not a MicroTime (a decode
// error there), and a switch that answers 403 as RBAC would without `events create`.
// A resource group of the fake API server (FakeKubeApiServer.extend).
import type { FakeApiContext, FakeApiGroup, FakeApiRequest } from './fake-kube-api-server.ts';

/** An answer of the fake API server: a status code and a JSON body. */
export interface FakeReply {
  code: number;
  body: unknown;
}

export interface Cause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid';
  message: string;
  field: string;
}

export const EVENTS_COLLECTION = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/;

// MicroTime's layout, RFC3339Micro: exactly six fractional digits (Events, Leases).
export const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
// validation.IsQualifiedName: an optional DNS-subdomain prefix and a name of at most 63.
export const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const LIMIT = { reportingInstance: 128, action: 128, reason: 128, note: 1024 } as const;

export class FakeEvents implements FakeApiGroup {
  /** Every Event the server accepted, as stored (with its generated name), in order. */
  readonly created: Record<string, unknown>[] = [];
  /** Answer every create with 403, as without RBAC's `events create`. */
  forbidden = false;
  private names = 0;

  serve(request: FakeApiRequest, context: FakeApiContext): FakeReply | undefined {
    const namespace = EVENTS_COLLECTION.exec(request.path)?.[1];
    if (namespace === undefined || request.method !== 'POST') return undefined;
    return this.create(decodeURIComponent(namespace), request.body, context.now());
  }

  /** A POST to the namespace's collection, body as received. */
  create(namespace: string, text: string, now: number): FakeReply {
    if (this.forbidden) {
      return kubeStatus(
        403,
        'Forbidden',
        `events.events.k8s.io is forbidden: User "system:serviceaccount:${namespace}:tes-heartbeat" cannot create resource "events" in API group "events.k8s.io" in the namespace "${namespace}"`,
        { group: 'events.k8s.io', kind: 'events' },
      );
    }
    const decoded = decodeObject(text, { apiVersion: 'events.k8s.io/v1', kind: 'Event', namespace });
    if ('reply' in decoded) return decoded.reply;
    const event = decoded.object;
    const metadata = (event.metadata ?? {}) as Record<string, unknown>;
    if (
      event.eventTime !== undefined &&
      event.eventTime !== null &&
      !MICRO_TIME.test(String(event.eventTime))
    ) {
      return kubeStatus(
        400,
        'BadRequest',
        `Event in version "v1" cannot be handled as a Event: parsing time "${event.eventTime}"`,
      );
    }
    const causes = validate(event, metadata, namespace);
    const name =
      typeof metadata.name === 'string' && metadata.name
        ? metadata.name
        : `${String(metadata.generateName ?? '')}${(++this.names).toString(36).padStart(5, '0')}`;
    if (causes.length > 0) return invalidStatus({ group: 'events.k8s.io', kind: 'Event', name }, causes);
    const stored = {
      ...event,
      metadata: {
        ...metadata,
        name,
        namespace,
        uid: `00000000-0000-4000-9000-${String(this.names).padStart(12, '0')}`,
        resourceVersion: String(this.names),
        creationTimestamp: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    };
    this.created.push(stored);
    return { code: 201, body: stored };
  }
}

function validate(
  event: Record<string, unknown>,
  metadata: Record<string, unknown>,
  namespace: string,
): Cause[] {
  const causes: Cause[] = [];
  const required = (field: string) =>
    causes.push({ reason: 'FieldValueRequired', message: 'Required value', field });
  const invalid = (field: string, message: string) =>
    causes.push({ reason: 'FieldValueInvalid', message, field });
  const text = (value: unknown) => (typeof value === 'string' ? value : '');

  if (!text(metadata.name) && !text(metadata.generateName)) {
    causes.push({
      reason: 'FieldValueRequired',
      message: 'Required value: name or generateName is required',
      field: 'metadata.name',
    });
  }
  const regarding = (event.regarding ?? {}) as Record<string, unknown>;
  if (!text(regarding.namespace) && namespace !== 'default' && namespace !== 'kube-system') {
    invalid('regarding.namespace', 'does not match event.namespace');
  }
  if (!event.eventTime) required('eventTime');
  const controller = text(event.reportingController);
  if (!controller) required('reportingController');
  else if (!QUALIFIED_NAME.test(controller)) invalid('reportingController', 'must be a qualified name');
  for (const field of ['reportingInstance', 'action', 'reason'] as const) {
    const value = text(event[field]);
    if (!value) required(field);
    else if (value.length > LIMIT[field]) invalid(field, `can have at most ${LIMIT[field]} characters`);
  }
  if (Buffer.byteLength(text(event.note)) > LIMIT.note)
    invalid('note', `can have at most ${LIMIT.note} characters`);
  if (event.type !== 'Normal' && event.type !== 'Warning')
    invalid('type', `has invalid value: ${text(event.type)}`);
  for (const field of [
    'deprecatedFirstTimestamp',
    'deprecatedLastTimestamp',
    'deprecatedCount',
    'deprecatedSource',
  ]) {
    if (event[field] !== undefined && event[field] !== null) invalid(field, 'needs to be unset');
  }
  return causes;
}

/**
 * A create or update body decoded as kube-apiserver decodes it before validation: 400
 * for what is not a JSON object, for another apiVersion or kind, and for a namespace in
 * the object other than the URL's.
 */
export function decodeObject(
  text: string,
  expected: { apiVersion: string; kind: string; namespace: string },
): { object: Record<string, unknown> } | { reply: FakeReply } {
  let object: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    object = parsed as Record<string, unknown>;
  } catch {
    return { reply: kubeStatus(400, 'BadRequest', 'the body of the request was in an unknown format') };
  }
  if (object.apiVersion !== expected.apiVersion || object.kind !== expected.kind) {
    return {
      reply: kubeStatus(
        400,
        'BadRequest',
        `the API version in the data (${String(object.apiVersion)}) does not match`,
      ),
    };
  }
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  if (metadata.namespace !== undefined && metadata.namespace !== expected.namespace) {
    return {
      reply: kubeStatus(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      ),
    };
  }
  return { object };
}

/** 422 Invalid as apiserver's NewInvalid words it: one error as is, several as `[a, b]`. */
export function invalidStatus(
  object: { group: string; kind: string; name: string },
  causes: Cause[],
): FakeReply {
  const errors = causes.map((c) => `${c.field}: ${c.message}`);
  return kubeStatus(
    422,
    'Invalid',
    `${object.kind}.${object.group} "${object.name}" is invalid: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}`,
    { ...object, causes },
  );
}

/** A `Status` failure as kube-apiserver sends it. */
export function kubeStatus(code: number, reason: string, message: string, details?: object): FakeReply {
  return {
    code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      details,
      code,
    },
  };
}
