// The two patch formats the fake Kubernetes API server accepts, applied as kube-apiserver
// applies them (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go, on
// evanphx/json-patch): a JSON merge patch (RFC 7386: null deletes a key, a list is
// replaced whole) and a JSON Patch (RFC 6902), whose undecodable body is a 400 and whose
// failing operation — a `test` that does not hold, a path that is not there — a 422.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A patch kube-apiserver refuses: `code` 400 (not decodable) or 422 (an operation failed). */
export class PatchError extends Error {
  readonly code: 400 | 422;

  constructor(code: 400 | 422, message: string) {
    super(message);
    this.code = code;
  }
}

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

interface Operation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

/** RFC 6902 on a copy of `document`; throws PatchError. */
export function jsonPatch(document: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) {
    throw new PatchError(400, 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  }
  const operations = patch.map((operation: unknown) => {
    const candidate = (isObject(operation) ? operation : {}) as Partial<Operation>;
    const known = ['add', 'remove', 'replace', 'move', 'copy', 'test'];
    if (typeof candidate.op !== 'string' || !known.includes(candidate.op)) {
      throw new PatchError(422, `Unexpected kind: ${String(candidate.op)}`);
    }
    if (typeof candidate.path !== 'string')
      throw new PatchError(422, `${candidate.op} operation missing path`);
    return candidate as Operation;
  });
  let doc = structuredClone(document) as Json;
  for (const operation of operations) doc = apply(doc, operation);
  return doc;
}

function apply(doc: Json, operation: Operation): Json {
  const { op, path } = operation;
  switch (op) {
    case 'test': {
      if (!deepEqual(resolve(doc, path, op), (operation.value ?? null) as Json)) {
        throw new PatchError(422, `testing value ${path} failed: test failed`);
      }
      return doc;
    }
    case 'remove':
      return remove(doc, path, op);
    case 'add':
      return add(doc, path, structuredClone(operation.value ?? null) as Json, op);
    case 'replace':
      resolve(doc, path, op);
      return add(remove(doc, path, op), path, structuredClone(operation.value ?? null) as Json, op);
    case 'move': {
      const from = operation.from ?? '';
      const value = resolve(doc, from, op);
      return add(remove(doc, from, op), path, value, op);
    }
    case 'copy':
      return add(doc, path, structuredClone(resolve(doc, operation.from ?? '', op)), op);
  }
}

function tokens(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(422, `invalid JSON pointer: "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The parent container of `path` and the last token (throws when the parent is missing). */
function parentOf(doc: Json, path: string, op: string): { parent: Json; key: string } {
  const parts = tokens(path);
  const key = parts.pop();
  if (key === undefined) throw new PatchError(422, `${op} operation does not apply: the root`);
  let parent: Json = doc;
  for (const part of parts) parent = child(parent, part, path, op);
  return { parent, key };
}

function child(node: Json, key: string, path: string, op: string): Json {
  if (Array.isArray(node)) {
    const index = arrayIndex(key, node.length - 1, path, op);
    return node[index] as Json;
  }
  if (isObject(node) && Object.hasOwn(node, key)) return node[key] as Json;
  throw new PatchError(422, `${op} operation does not apply: doc is missing path: "${path}"`);
}

function resolve(doc: Json, path: string, op: string): Json {
  let node = doc;
  for (const part of tokens(path)) node = child(node, part, path, op);
  return node;
}

function remove(doc: Json, path: string, op: string): Json {
  const { parent, key } = parentOf(doc, path, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length - 1, path, op), 1);
  else if (isObject(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw new PatchError(422, `${op} operation does not apply: doc is missing path: "${path}"`);
  return doc;
}

function add(doc: Json, path: string, value: Json, op: string): Json {
  if (path === '') return value;
  const { parent, key } = parentOf(doc, path, op);
  if (Array.isArray(parent)) {
    parent.splice(key === '-' ? parent.length : arrayIndex(key, parent.length, path, op), 0, value);
  } else if (isObject(parent)) {
    parent[key] = value;
  } else {
    throw new PatchError(422, `${op} operation does not apply: doc is missing path: "${path}"`);
  }
  return doc;
}

function arrayIndex(key: string, max: number, path: string, op: string): number {
  const index = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : Number.NaN;
  if (!(index >= 0 && index <= max)) {
    throw new PatchError(422, `${op} operation does not apply: doc is missing path: "${path}"`);
  }
  return index;
}

/** Whether two JSON values are equal (object keys in any order). */
export function sameJson(a: unknown, b: unknown): boolean {
  return deepEqual(a as Json, b as Json);
}

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i] as Json));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k] as Json, b[k] as Json))
    );
  }
  return false;
}

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
