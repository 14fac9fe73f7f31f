// Label and field selectors of the fake Kubernetes API server, parsed and matched as
// kube-apiserver does (k8s.io/apimachinery pkg/labels/selector.go and pkg/fields):
// labels take `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`,
// `k<n`, comma = AND, and `!=`/`notin` also match objects without the label; fields take
// `=`, `==`, `!=` on the few fields each resource supports (anything else: 400 "field
// label not supported"), an unset field comparing as "".
import type { KubeObject } from './fake-kube-api-server.ts';
import { QUALIFIED_NAME } from './fake-kube-events.ts';

/** Whether an object is selected. */
export type ObjectFilter = (object: KubeObject) => boolean;

/** A selector kube-apiserver would refuse (answered 400 BadRequest with this message). */
export class SelectorError extends Error {}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The fields a field selector may name, per resource (pkg/registry/<group>/<resource>/strategy.go). */
const FIELDS: Record<string, Record<string, (object: KubeObject) => string>> = {
  pods: {
    'metadata.name': (o) => text(o.metadata?.name),
    'metadata.namespace': (o) => text(o.metadata?.namespace),
    'spec.nodeName': (o) => text(field(o, 'spec', 'nodeName')),
    'spec.restartPolicy': (o) => text(field(o, 'spec', 'restartPolicy')),
    'spec.schedulerName': (o) => text(field(o, 'spec', 'schedulerName')),
    'spec.serviceAccountName': (o) => text(field(o, 'spec', 'serviceAccountName')),
    'status.phase': (o) => text(field(o, 'status', 'phase')),
    'status.podIP': (o) => text(field(o, 'status', 'podIP')),
  },
  nodes: {
    'metadata.name': (o) => text(o.metadata?.name),
    'spec.unschedulable': (o) => String(field(o, 'spec', 'unschedulable') === true),
  },
  jobs: {
    'metadata.name': (o) => text(o.metadata?.name),
    'metadata.namespace': (o) => text(o.metadata?.namespace),
    'status.successful': (o) => String(field(o, 'status', 'successful') ?? 0),
  },
};

/** A `fieldSelector` for `resource`; throws SelectorError for a field the resource does not index. */
export function parseFieldSelector(resource: string, selector: string): ObjectFilter {
  const known = FIELDS[resource] ?? {};
  const tests = splitTerms(selector).map((term) => {
    const match = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!match) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${term}'`);
    const [, name = '', operator, value = ''] = match;
    const read = known[name];
    if (!read) throw new SelectorError(`field label not supported: ${name}`);
    return operator === '!=' ? (o: KubeObject) => read(o) !== value : (o: KubeObject) => read(o) === value;
  });
  return (object) => tests.every((test) => test(object));
}

/** A `labelSelector`; throws SelectorError on a requirement kube-apiserver cannot parse. */
export function parseLabelSelector(selector: string): ObjectFilter {
  const tests = splitTerms(selector).map((term) => requirement(term));
  return (object) => {
    const labels = (object.metadata?.labels ?? {}) as Record<string, string>;
    return tests.every((test) => test(labels));
  };
}

function requirement(term: string): (labels: Record<string, string>) => boolean {
  const has = (labels: Record<string, string>, key: string) => Object.hasOwn(labels, key);
  let match = /^!\s*(\S+)$/.exec(term);
  if (match) {
    const key = labelKey(match[1]);
    return (labels) => !has(labels, key);
  }
  match = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
  if (match) {
    const key = labelKey(match[1]);
    const listed = (match[3] ?? '').trim();
    if (!listed) {
      throw new SelectorError(
        `unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`,
      );
    }
    const values = new Set(listed.split(',').map((value) => labelValue(value.trim())));
    if (match[2] === 'in') {
      return (labels) => has(labels, key) && values.has(labels[key] ?? '');
    }
    return (labels) => !has(labels, key) || !values.has(labels[key] ?? '');
  }
  match = /^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*)$/.exec(term);
  if (match) {
    const key = labelKey(match[1]);
    const value = labelValue(match[3] ?? '');
    switch (match[2]) {
      case '!=':
        return (labels) => labels[key] !== value;
      case '>':
      case '<': {
        if (!/^-?\d+$/.test(value)) {
          throw new SelectorError(
            `unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`,
          );
        }
        const bound = Number(value);
        const greater = match[2] === '>';
        return (labels) => {
          const actual = labels[key];
          if (actual === undefined || !/^-?\d+$/.test(actual)) return false;
          return greater ? Number(actual) > bound : Number(actual) < bound;
        };
      }
      default:
        return (labels) => has(labels, key) && labels[key] === value;
    }
  }
  const key = labelKey(term);
  return (labels) => has(labels, key);
}

function labelKey(key: string | undefined): string {
  if (!key || !QUALIFIED_NAME.test(key) || (key.split('/').at(-1)?.length ?? 0) > 63) {
    throw new SelectorError(`unable to parse requirement: invalid label key "${key ?? ''}"`);
  }
  return key;
}

function labelValue(value: string): string {
  if (value.length > 63 || !LABEL_VALUE.test(value)) {
    throw new SelectorError(`unable to parse requirement: invalid label value: "${value}"`);
  }
  return value;
}

/** Requirements separated by commas outside parentheses; blanks dropped. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= selector.length; i++) {
    const char = selector[i];
    if (char === '(') depth++;
    else if (char === ')') depth--;
    else if ((char === ',' && depth === 0) || char === undefined) {
      const term = selector.slice(start, i).trim();
      if (term) terms.push(term);
      start = i + 1;
    }
  }
  return terms;
}

function field(object: KubeObject, part: string, name: string): unknown {
  const section = object[part];
  return section && typeof section === 'object' ? (section as Record<string, unknown>)[name] : undefined;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
