// `tes-heartbeat emulator` as shipped (the built dist): listens, serves, logs each
// request at debug, and exits 0 on SIGTERM/SIGINT; bad flags exit 2.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../support/emulator-http.ts';
import { waitFor } from '../support/fake-clock.ts';

const CLI = 'dist/tes-heartbeat.js';
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

async function startCli(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'emulator', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const url = (await waitFor(
    () => /"url":"(http:[^"]+)"/.exec(stdout)?.[1],
    10_000,
    'the listening line',
  )) as string;
  return {
    child,
    url,
    lines: () =>
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    stderr: () => stderr,
  };
}

describe('tes-heartbeat emulator', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('serves until %s, then exits 0', async (signal) => {
    const { child, url, lines, stderr } = await startCli(['--log-level', 'debug', '--token', 'cli-token']);
    expect((await send(url, '/v1/tasks/runs')).status).toBe(401);
    const created = await send(url, '/v1/tasks/runs', {
      method: 'POST',
      token: 'cli-token',
      body: '{"name":"x"}',
    });
    expect(created.status).toBe(201);
    child.kill(signal);
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stderr()).toBe('');
    const requests = lines().filter((l) => l.msg === 'request');
    expect(requests.map((l) => [l.method, l.path, l.status])).toEqual([
      ['GET', '/v1/tasks/runs', 401],
      ['POST', '/v1/tasks/runs', 201],
    ]);
    expect(lines().at(-1)?.msg).toBe('emulator stopped');
    expect(JSON.stringify(lines())).not.toContain('cli-token');
  });

  it('--heartbeat-timeout is used (a short one times a run out in real time)', async () => {
    const { url } = await startCli(['--heartbeat-timeout', '200ms']);
    const { json } = await send(url, '/v1/tasks/runs', { method: 'POST' });
    await send(url, `/v1/tasks/runs/${json.id}:heartbeat`, { method: 'POST' });
    await waitFor(
      async () => (await send(url, `/v1/tasks/runs/${json.id}`)).json.status === 'TimedOut',
      5_000,
      'TimedOut',
    );
  });

  it('exits 2 with one plain line per bad setting; --help exits 0', () => {
    const bad = spawnSync(process.execPath, [CLI, 'emulator', '--port', 'x', '--heartbeat-timeout', '90'], {
      encoding: 'utf8',
    });
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      "tes-heartbeat emulator: --port: 'x' is not an integer",
      "tes-heartbeat emulator: --heartbeat-timeout: '90' is not a duration (e.g. 500ms, 1.5s, 1m30s)",
    ]);
    const help = spawnSync(process.execPath, [CLI, 'emulator', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--heartbeat-timeout <value>');
    expect(help.stdout).toContain('default 90s');
  });
});
