// `tes-heartbeat demo`, as the README's first command runs it.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { CLI } from '../support/agent-harness.ts';

it('drives one pod from Unschedulable to exit 0 and ends with the run Completed', () => {
  const result = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 30_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const beats = result.stdout.split('\n').filter((line) => line.includes('heartbeat #'));
  expect(beats[0]).toContain('task: waiting (Unschedulable');
  expect(beats.some((line) => line.includes('task: waiting (ContainerCreating)'))).toBe(true);
  expect(beats.some((line) => line.includes('task: running since'))).toBe(true);
  expect(beats.at(-1)).toContain('task: terminated (exit 0, Completed)');
  expect(beats.filter((line) => line.includes('lastHeartbeat'))).toHaveLength(1);
  expect(beats.at(-1)).toContain('lastHeartbeat');
  expect(result.stdout).toMatch(/agent exited with 0; run \S+: Completed/);
});
