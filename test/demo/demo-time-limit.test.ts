// `tes-heartbeat demo` never hangs: past its time limit it stops the agent and fails clearly.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { CLI } from '../support/agent-harness.ts';

it('a demo that has not finished within --timeout exits 1 with a line that says so', () => {
  // The demo's own timeline takes about 7 s: a 1 s limit cuts it short.
  const result = spawnSync(process.execPath, [CLI, 'demo', '--timeout', '1s'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('tes-heartbeat demo: no final heartbeat within 1s; the agent was stopped');
});

it('a time limit that is not a duration is a usage error', () => {
  const result = spawnSync(process.execPath, [CLI, 'demo', '--timeout', '5'], { encoding: 'utf8' });
  expect(result.status).toBe(2);
  expect(result.stderr).toContain('timeout');
});
