// The shape of the Prometheus operator's objects (monitoring.coreos.com/v1), which
// kubernetes-models does not carry: the fields this chart renders, with the types, enums and
// the Duration pattern of the operator's CRDs (prometheus-operator v0.82,
// example/prometheus-operator-crd/monitoring.coreos.com_{podmonitors,servicemonitors,
// prometheusrules}.yaml). Stricter than the CRDs where that costs nothing: a field the chart
// does not use is reported as unknown, so a typo cannot hide.
import type { K8sObject } from './helm-chart.ts';

type Shape =
  | { type: 'string'; pattern?: RegExp; enum?: string[]; minLength?: number }
  | { type: 'boolean' | 'integer' | 'intOrString' }
  | { type: 'array'; items: Shape; minItems?: number }
  | { type: 'map'; values: Shape }
  | { type: 'object'; fields: Record<string, Shape>; required?: string[] };

/** The operator's Duration (also Prometheus's, without fractions). */
export const OPERATOR_DURATION =
  /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;

const str: Shape = { type: 'string' };
const duration: Shape = { type: 'string', pattern: OPERATOR_DURATION };
const labels: Shape = { type: 'map', values: str };
const labelSelector: Shape = {
  type: 'object',
  fields: {
    matchLabels: labels,
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        fields: { key: str, operator: str, values: { type: 'array', items: str } },
        required: ['key', 'operator'],
      },
    },
  },
};
const namespaceSelector: Shape = {
  type: 'object',
  fields: { any: { type: 'boolean' }, matchNames: { type: 'array', items: str } },
};
const endpointFields: Record<string, Shape> = {
  port: str,
  path: str,
  scheme: { type: 'string', enum: ['http', 'https'] },
  interval: duration,
  scrapeTimeout: duration,
  honorLabels: { type: 'boolean' },
};
const metadata: Shape = {
  type: 'object',
  fields: { name: str, namespace: str, labels, annotations: labels },
  required: ['name', 'namespace'],
};

const SHAPES: Record<string, Shape> = {
  PodMonitor: {
    type: 'object',
    fields: {
      apiVersion: str,
      kind: str,
      metadata,
      spec: {
        type: 'object',
        fields: {
          namespaceSelector,
          selector: labelSelector,
          jobLabel: str,
          podMetricsEndpoints: {
            type: 'array',
            minItems: 1,
            items: { type: 'object', fields: endpointFields },
          },
        },
        required: ['selector', 'podMetricsEndpoints'],
      },
    },
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
  },
  ServiceMonitor: {
    type: 'object',
    fields: {
      apiVersion: str,
      kind: str,
      metadata,
      spec: {
        type: 'object',
        fields: {
          namespaceSelector,
          selector: labelSelector,
          jobLabel: str,
          endpoints: { type: 'array', minItems: 1, items: { type: 'object', fields: endpointFields } },
        },
        required: ['selector', 'endpoints'],
      },
    },
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
  },
  PrometheusRule: {
    type: 'object',
    fields: {
      apiVersion: str,
      kind: str,
      metadata,
      spec: {
        type: 'object',
        fields: {
          groups: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              fields: {
                name: { type: 'string', minLength: 1 },
                interval: duration,
                rules: {
                  type: 'array',
                  items: {
                    type: 'object',
                    fields: {
                      alert: str,
                      record: str,
                      expr: { type: 'intOrString' },
                      for: duration,
                      keep_firing_for: duration,
                      labels,
                      annotations: labels,
                    },
                    required: ['expr'],
                  },
                },
              },
              required: ['name'],
            },
          },
        },
        required: ['groups'],
      },
    },
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
  },
};

function check(value: unknown, shape: Shape, at: string, out: string[]): void {
  switch (shape.type) {
    case 'string':
      if (typeof value !== 'string') return void out.push(`${at}: expected a string`);
      if (shape.pattern && !shape.pattern.test(value))
        out.push(`${at}: '${value}' does not match ${shape.pattern}`);
      if (shape.enum && !shape.enum.includes(value))
        out.push(`${at}: '${value}' is not one of ${shape.enum}`);
      if (shape.minLength !== undefined && value.length < shape.minLength) out.push(`${at}: too short`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') out.push(`${at}: expected a boolean`);
      return;
    case 'integer':
      if (!Number.isInteger(value)) out.push(`${at}: expected an integer`);
      return;
    case 'intOrString':
      if (typeof value !== 'string' && !Number.isInteger(value))
        out.push(`${at}: expected an int or a string`);
      return;
    case 'array':
      if (!Array.isArray(value)) return void out.push(`${at}: expected an array`);
      if (shape.minItems !== undefined && value.length < shape.minItems) out.push(`${at}: too few items`);
      for (const [i, item] of value.entries()) check(item, shape.items, `${at}[${i}]`, out);
      return;
    case 'map':
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return void out.push(`${at}: expected an object`);
      const record = value as Record<string, unknown>;
      if (shape.type === 'map') {
        for (const [k, v] of Object.entries(record)) check(v, shape.values, `${at}.${k}`, out);
        return;
      }
      for (const field of shape.required ?? []) {
        if (record[field] === undefined || record[field] === null) out.push(`${at}.${field}: required`);
      }
      for (const [k, v] of Object.entries(record)) {
        const fieldShape = shape.fields[k];
        if (!fieldShape) out.push(`${at}.${k}: unknown field`);
        else check(v, fieldShape, `${at}.${k}`, out);
      }
    }
  }
}

/** Every problem with a monitoring.coreos.com/v1 object; empty when its shape is right. */
export function monitoringObjectErrors(obj: K8sObject): string[] {
  const where = `${obj.kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? '?'}`;
  if (obj.apiVersion !== 'monitoring.coreos.com/v1') return [`${where}: apiVersion ${obj.apiVersion}`];
  const shape = SHAPES[obj.kind];
  if (!shape) return [`${where}: not a kind this chart renders`];
  const errors: string[] = [];
  check(obj, shape, '', errors);
  return errors.map((e) => `${where}: ${e}`);
}
