// A small validator over the definitions of api/tes-v1.swagger.json: just the
// Swagger 2.0 keywords that file uses. The emulator checks request bodies with it
// and the tests check every response. Not for the agent: it pulls in the JSON.
import swagger from '../../api/tes-v1.swagger.json' with { type: 'json' };

interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  maxLength?: number;
  minLength?: number;
  minimum?: number;
  maximum?: number;
}

const definitions = (swagger as unknown as { definitions: Record<string, Schema> }).definitions;

export interface FieldProblem {
  /** JSON path of the offending value, '' for the value itself: `containerStatus[0].state.running.startedAt`. */
  path: string;
  message: string;
}

/** Problems of `value` against definition `name`, each as "path: message"; [] when valid. */
export function validateAgainstDefinition(name: string, value: unknown): string[] {
  return definitionProblems(name, value).map((p) => `${p.path || '(root)'}: ${p.message}`);
}

/** The same problems, with the path apart (the emulator's ErrorResponse.details). */
export function definitionProblems(name: string, value: unknown): FieldProblem[] {
  const schema = definitions[name];
  if (!schema) throw new Error(`no definition named ${name} in the TES swagger`);
  const problems: FieldProblem[] = [];
  check(schema, value, '', problems);
  return problems;
}

const INT_RANGE = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
} as const;

// RFC 3339 date-time: generated clients reject a date without `Z` or an offset.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function check(schema: Schema, value: unknown, path: string, problems: FieldProblem[]): void {
  if (schema.$ref) {
    const target = definitions[schema.$ref.replace('#/definitions/', '')];
    if (!target) throw new Error(`unresolved $ref ${schema.$ref}`);
    check(target, value, path, problems);
    return;
  }
  const fail = (message: string) => problems.push({ path, message });
  switch (schema.type) {
    case undefined:
      return; // `items: {}`: anything goes
    case 'string':
      if (typeof value !== 'string') return void fail(`expected a string, got ${typeName(value)}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength)
        fail(`longer than ${schema.maxLength} characters`);
      if (schema.minLength !== undefined && value.length < schema.minLength)
        fail(`shorter than ${schema.minLength} characters`);
      if (schema.format === 'date-time' && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value))))
        fail('not a date-time with Z or an offset');
      return;
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value))
        return void fail(
          `expected ${schema.type === 'integer' ? 'an integer' : 'a number'}, got ${typeName(value)}`,
        );
      if (schema.type === 'integer' && !Number.isInteger(value))
        return void fail(`expected an integer, got ${value}`);
      const range = INT_RANGE[schema.format as keyof typeof INT_RANGE];
      if (range && (value < range[0] || value > range[1])) fail(`out of the ${schema.format} range`);
      if (schema.minimum !== undefined && value < schema.minimum) fail(`less than ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) fail(`greater than ${schema.maximum}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(`expected a boolean, got ${typeName(value)}`);
      return;
    case 'array':
      if (!Array.isArray(value)) return void fail(`expected an array, got ${typeName(value)}`);
      value.forEach((item, i) => {
        check(schema.items ?? {}, item, `${path}[${i}]`, problems);
      });
      return;
    case 'object':
      checkObject(schema, value, path, problems);
      return;
    default:
      throw new Error(`unsupported schema type ${schema.type}`);
  }
}

function checkObject(schema: Schema, value: unknown, path: string, problems: FieldProblem[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ path, message: `expected an object, got ${typeName(value)}` });
    return;
  }
  const record = value as Record<string, unknown>;
  const at = (key: string) => (path ? `${path}.${key}` : key);
  for (const key of schema.required ?? []) {
    if (!(key in record)) problems.push({ path: at(key), message: 'required' });
  }
  for (const [key, item] of Object.entries(record)) {
    const property = schema.properties?.[key];
    if (property) check(property, item, at(key), problems);
    else if (typeof schema.additionalProperties === 'object')
      check(schema.additionalProperties, item, at(key), problems);
    else if (schema.properties || schema.additionalProperties === false)
      problems.push({ path: at(key), message: 'unknown field' });
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
