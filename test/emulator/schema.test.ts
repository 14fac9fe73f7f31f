// The generic response check the other emulator tests rely on: it must pick the
// right schema from the definition's paths and catch a body that breaks it.
import { describe, expect, it } from 'vitest';
import { expectedSchema, responseProblems } from '../support/emulator-harness.ts';

describe('the response check', () => {
  it.each([
    { method: 'POST', path: '/v1/tasks/runs', status: 201, schema: 'TaskRun' },
    { method: 'GET', path: '/v1/tasks/runs', status: 200, schema: 'TaskRunSummaryPagedItems' },
    { method: 'GET', path: '/v1/tasks/runs/trn.1', status: 200, schema: 'TaskRun' },
    { method: 'PUT', path: '/v1/tasks/runs/a%3Ab:abort', status: 200, schema: 'TaskRunSummary' },
    { method: 'POST', path: '/v1/tasks/runs/trn.1:heartbeat', status: 200, schema: 'TaskRunHeartbeat' },
    { method: 'POST', path: '/v1/tasks/runs/trn.1:heartbeat', status: 409, schema: 'ErrorResponse' },
    { method: 'DELETE', path: '/v1/tasks/runs', status: 405, schema: 'ErrorResponse' },
    { method: 'GET', path: '/nope', status: 404, schema: 'ErrorResponse' },
    { method: 'GET', path: '/emulator/runs/trn.1/heartbeats', status: 200, schema: 'HeartbeatLog' },
  ])('$method $path $status → $schema', ({ method, path, status, schema }) => {
    expect(expectedSchema(method, path, status)).toBe(schema);
  });

  it('catches a wrong type, a date without a zone, a missing status and a non-JSON body', () => {
    const problems = responseProblems({
      method: 'GET',
      path: '/v1/tasks/runs/trn.1',
      status: 200,
      body: JSON.stringify({ id: 1, timeCreated: '2026-01-01T00:00:00', name: 'n'.repeat(256) }),
    });
    expect(problems).toEqual([
      'GET /v1/tasks/runs/trn.1 → 200 (TaskRun): id: expected a string, got a number',
      'GET /v1/tasks/runs/trn.1 → 200 (TaskRun): timeCreated: not a date-time with Z or an offset',
      'GET /v1/tasks/runs/trn.1 → 200 (TaskRun): name: longer than 255 characters',
      'GET /v1/tasks/runs/trn.1 → 200 (TaskRun): run 0: no status',
    ]);
    expect(responseProblems({ method: 'GET', path: '/x', status: 404, body: 'oops' })).toEqual([
      'GET /x → 404: body is not JSON',
    ]);
    expect(
      responseProblems({
        method: 'GET',
        path: '/emulator/runs/r/heartbeats',
        status: 200,
        body: '[{"podName":3}]',
      }),
    ).toEqual([
      'GET /emulator/runs/r/heartbeats → 200 (HeartbeatLog): [0] podName: expected a string, got a number',
    ]);
  });
});
