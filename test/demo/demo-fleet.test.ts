// `tes-heartbeat demo --fleet`: three task pods under one fleet process, no cluster.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { CLI } from '../support/agent-harness.ts';

it('heartbeats every pod through one fleet and exits 0 once each run got its one final heartbeat', () => {
  const result = spawnSync(process.execPath, [CLI, 'demo', '--fleet'], { encoding: 'utf8', timeout: 30_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const lines = result.stdout.split('\n');
  for (const pod of ['pod 1', 'pod 2', 'pod 3']) {
    const beats = lines.filter((line) => line.includes(`${pod} heartbeat #`));
    expect(beats[0]).toContain('task: waiting (ContainerCreating)');
    expect(beats.some((line) => line.includes('task: running since'))).toBe(true);
    expect(beats.filter((line) => line.includes('lastHeartbeat'))).toHaveLength(1);
    expect(beats.at(-1)).toContain('task: terminated (exit 0, Completed)  jobRetryCount=1');
    expect(result.stdout).toMatch(new RegExp(`${pod}: run \\S+: Completed`));
  }
  expect(result.stdout).toContain('fleet exited with 0');
});
