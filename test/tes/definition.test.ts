import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { definitionProblems, validateAgainstDefinition } from '../../src/tes/definition.ts';

describe('validateAgainstDefinition', () => {
  it('accepts a full heartbeat, +00:00 dates with 6 fraction digits included', () => {
    expect(
      validateAgainstDefinition('HeartbeatTaskRunRequest', {
        lastHeartbeat: false,
        podName: '',
        podUID: 'u',
        podHardwareDetails: '{}',
        jobRetryCount: 0,
        nonce: 'n',
        containerStatus: [
          { name: 'a', state: { waiting: { reason: 'Pending', message: '' } } },
          { name: 'b', state: { running: { startedAt: '2026-01-01T00:00:00.123456+00:00' } } },
          {
            name: 'c',
            state: {
              terminated: {
                exitCode: -1,
                signal: 9,
                reason: 'OOMKilled',
                message: 'm',
                startedAt: '2026-01-01T00:00:00Z',
                finishedAt: '2026-01-01T01:00:00-05:00',
                containerID: 'containerd://x',
              },
            },
          },
        ],
      }),
    ).toEqual([]);
  });

  it.each([
    {
      desc: 'null is a wrong type',
      value: { podName: null },
      problem: 'podName: expected a string, got null',
    },
    { desc: 'an unknown field', value: { podname: 'x' }, problem: 'podname: unknown field' },
    {
      desc: 'a date-time without Z or an offset',
      value: { containerStatus: [{ state: { running: { startedAt: '2026-01-01T00:00:00' } } }] },
      problem: 'containerStatus[0].state.running.startedAt: not a date-time with Z or an offset',
    },
    {
      desc: 'an empty date-time',
      value: { containerStatus: [{ state: { terminated: { finishedAt: '' } } }] },
      problem: 'containerStatus[0].state.terminated.finishedAt: not a date-time with Z or an offset',
    },
    {
      desc: 'an int32 out of range',
      value: { jobRetryCount: 2 ** 31 },
      problem: 'jobRetryCount: out of the int32 range',
    },
    {
      desc: 'a fraction for an integer',
      value: { jobRetryCount: 1.5 },
      problem: 'jobRetryCount: expected an integer, got 1.5',
    },
    {
      desc: 'a string for a boolean',
      value: { lastHeartbeat: 'true' },
      problem: 'lastHeartbeat: expected a boolean, got a string',
    },
    {
      desc: 'an object for an array',
      value: { containerStatus: {} },
      problem: 'containerStatus: expected an array, got an object',
    },
    { desc: 'an array for the body', value: [], problem: '(root): expected an object, got an array' },
  ])('$desc', ({ value, problem }) => {
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', value)).toEqual([problem]);
  });

  it('checks maxLength and minLength, required, minimum and maximum through $refs', () => {
    expect(
      validateAgainstDefinition('CreateTaskRunRequest', {
        name: 'x'.repeat(256),
        description: 'y'.repeat(4096),
        execution: {
          image: { tag: 't' },
          environment: { inputStreamSettings: { cacheSizeGB: 10, prefetchBlocks: 65 } },
        },
      }),
    ).toEqual([
      'name: longer than 255 characters',
      'execution.image.name: required',
      'execution.environment.inputStreamSettings.cacheSizeGB: less than 50',
      'execution.environment.inputStreamSettings.prefetchBlocks: greater than 64',
    ]);
    expect(validateAgainstDefinition('Image', { name: '' })).toEqual(['name: shorter than 1 characters']);
  });

  it('checks map values against additionalProperties and lets `items: {}` hold anything', () => {
    expect(validateAgainstDefinition('Environment', { variables: { A: 'x', B: 2 } })).toEqual([
      'variables.B: expected a string, got a number',
    ]);
    expect(
      validateAgainstDefinition('ErrorResponse', { code: 'c', message: 'm', details: [1, 'x', {}, null] }),
    ).toEqual([]);
  });

  it('reports every problem, with paths apart for ErrorResponse.details', () => {
    expect(
      definitionProblems('TaskRunSummaryPagedItems', { items: [{ status: 1 }, {}], totalItemCount: 1.5 }),
    ).toEqual([
      { path: 'items[0].status', message: 'expected a string, got a number' },
      { path: 'totalItemCount', message: 'expected an integer, got 1.5' },
    ]);
  });

  it('refuses an unknown definition name', () => {
    expect(() => validateAgainstDefinition('NoSuchThing', {})).toThrow(/NoSuchThing/);
  });
});

describe('scripts/gen-tes-types.mjs', () => {
  it('--check finds src/tes/types.gen.ts up to date', () => {
    expect(() =>
      execFileSync(process.execPath, ['scripts/gen-tes-types.mjs', '--check'], { stdio: 'pipe' }),
    ).not.toThrow();
  });
});
