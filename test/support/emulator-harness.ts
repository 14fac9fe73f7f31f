// Starts emulators that record every response, and checks each recorded body
// against the schema the copied definition gives that path, method and status —
// looked up generically in api/tes-v1.swagger.json, not restated here.
// Test files call `afterEach(expectValidResponses)`.
import { readFileSync } from 'node:fs';
import {
  type Emulator,
  type EmulatorExchange,
  type EmulatorOptions,
  startEmulator,
} from '../../src/emulator/server.ts';
import { validateAgainstDefinition } from '../../src/tes/definition.ts';

interface Operation {
  responses: Record<string, { schema?: { $ref?: string } }>;
}

const swagger = JSON.parse(
  readFileSync(new URL('../../api/tes-v1.swagger.json', import.meta.url), 'utf8'),
) as {
  paths: Record<string, Record<string, Operation>>;
};

const templates = Object.keys(swagger.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  literalLength: template.replace(/\{[^}]+\}/g, '').length,
}));

/** The most specific swagger path template matching a raw path (`{runId}:abort` over `{runId}`). */
function templateFor(path: string): string | undefined {
  return templates.filter((t) => t.pattern.test(path)).sort((a, b) => b.literalLength - a.literalLength)[0]
    ?.template;
}

/** The definition name a response must match, or 'HeartbeatLog' for the emulator-only route. */
export function expectedSchema(method: string, path: string, status: number): string {
  const template = templateFor(path);
  const operation = template ? swagger.paths[template]?.[method.toLowerCase()] : undefined;
  if (!operation) {
    if (status === 200 && /^\/emulator\/runs\/[^/]+\/heartbeats$/.test(path)) return 'HeartbeatLog';
    return 'ErrorResponse';
  }
  const response = operation.responses[String(status)] ?? operation.responses.default;
  const ref = response?.schema?.$ref;
  if (!ref) throw new Error(`${method} ${template} ${status}: the definition documents no schema`);
  return ref.replace('#/definitions/', '');
}

export function responseProblems(exchange: EmulatorExchange): string[] {
  const where = `${exchange.method} ${exchange.path} → ${exchange.status}`;
  let body: unknown;
  try {
    body = JSON.parse(exchange.body);
  } catch {
    return [`${where}: body is not JSON`];
  }
  const schema = expectedSchema(exchange.method, exchange.path, exchange.status);
  const problems: string[] = [];
  if (schema === 'HeartbeatLog') {
    if (!Array.isArray(body)) return [`${where}: heartbeat log is not an array`];
    body.forEach((item, i) => {
      for (const p of validateAgainstDefinition('HeartbeatTaskRunRequest', item))
        problems.push(`[${i}] ${p}`);
    });
  } else {
    problems.push(...validateAgainstDefinition(schema, body));
    // The contract: every TaskRun and TaskRunSummary carries `status`.
    const runs =
      schema === 'TaskRunSummaryPagedItems'
        ? ((body as { items?: unknown[] }).items ?? [])
        : schema === 'TaskRun' || schema === 'TaskRunSummary'
          ? [body]
          : [];
    runs.forEach((run, i) => {
      if (typeof (run as { status?: unknown }).status !== 'string') problems.push(`run ${i}: no status`);
    });
  }
  return problems.map((p) => `${where} (${schema}): ${p}`);
}

const received: EmulatorExchange[] = [];

/** An emulator whose every response is checked by the next `expectValidResponses`. */
export function startCheckedEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  return startEmulator({
    ...options,
    onResponse: (exchange) => {
      received.push(exchange);
      options.onResponse?.(exchange);
    },
  });
}

/** Fails when any response since the last call breaks the definition; returns how many were checked. */
export function expectValidResponses(): number {
  const batch = received.splice(0);
  const problems = batch.flatMap(responseProblems);
  if (problems.length > 0) throw new Error(`responses that break the definition:\n${problems.join('\n')}`);
  return batch.length;
}
