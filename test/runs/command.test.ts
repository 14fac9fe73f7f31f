// `tes-heartbeat runs …` as shipped (the built dist) against an in-process emulator.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator, EmulatorExchange } from '../../src/emulator/server.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { expectValidResponses, startCheckedEmulator } from '../support/emulator-harness.ts';
import { FaultTes } from '../support/fault-tes.ts';

const TOKEN = 'runs-cli-token';
let emulator: Emulator;
const exchanges: EmulatorExchange[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'runs-cli-'));

beforeAll(async () => {
  emulator = await startCheckedEmulator({ token: TOKEN, onResponse: (e) => exchanges.push(e) });
});
afterAll(() => emulator.close());
afterEach(() => {
  expectValidResponses();
});

/** Runs the CLI asynchronously (the emulator lives in this process: a sync spawn would deadlock it). */
function runs(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['dist/tes-heartbeat.js', 'runs', ...args],
      {
        env: { PATH: process.env.PATH ?? '', TES_URL: emulator.url, TES_TOKEN: TOKEN, ...env },
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

function file(name: string, content: unknown): string {
  const target = path.join(dir, name);
  writeFileSync(target, typeof content === 'string' ? content : JSON.stringify(content));
  return target;
}

describe('tes-heartbeat runs', () => {
  it('create from flags prints the run as a table; --json prints the TaskRun', async () => {
    const table = await runs([
      'create',
      '--name',
      'cli run',
      '--description',
      'from the CLI',
      '--acl',
      'a,b',
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID:\s+trn\.\w+$/m);
    expect(table.stdout).toMatch(/^Name:\s+cli run$/m);
    expect(table.stdout).toMatch(/^Status:\s+Pending$/m);
    expect(table.stdout).toMatch(/^ACL:\s+a, b$/m);
    const json = await runs(['create', '--name', 'json run', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'json run', status: 'Pending', acl: [] });
  });

  it('create --body FILE sends the JSON CreateTaskRunRequest as it is', async () => {
    const body = {
      name: 'from file',
      acl: ['x'],
      execution: { image: { name: 'busybox' }, command: 'true' },
    };
    const { code, stdout } = await runs(['create', '--body', file('create.json', body), '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject(body);
  });

  it('list shows a table; --json the page; filters and sort go through', async () => {
    emulator.store.create({ name: 'listed-b', acl: ['listing'] });
    emulator.store.create({ name: 'listed-a', acl: ['listing'] });
    const table = await runs(['list', '--acls', 'listing', '--sort', 'name asc']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+CREATED\s+MODIFIED$/);
    expect(lines[1]).toMatch(/^trn\.\w+\s+listed-a\s+Pending\s/);
    expect(lines[2]).toMatch(/^trn\.\w+\s+listed-b\s+Pending\s/);
    expect(lines.at(-1)).toBe('2 of 2 task runs');
    const json = await runs(['list', '--acls', 'listing', '--page-size', '1', '--json']);
    const page = JSON.parse(json.stdout);
    expect(page).toMatchObject({ itemCount: 1, totalItemCount: 2 });
    expect(page.nextPageToken).toBeDefined();
    const next = await runs([
      'list',
      '--acls',
      'listing',
      '--page-size',
      '1',
      '--page-token',
      page.nextPageToken,
      '--json',
    ]);
    expect(JSON.parse(next.stdout).items[0].name).toBe('listed-a');
  });

  it('list --all follows the page tokens to the last page', async () => {
    for (let i = 0; i < 23; i++) emulator.store.create({ name: `all-${i}`, acl: ['all'] });
    exchanges.length = 0;
    const { code, stdout } = await runs(['list', '--all', '--acls', 'all', '--page-size', '5', '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.items.map((r: { name: string }) => r.name)).toEqual(
      Array.from({ length: 23 }, (_, i) => `all-${i}`),
    );
    expect(exchanges.filter((e) => e.path === '/v1/tasks/runs')).toHaveLength(5);
  });

  it('get prints one run; an unknown run exits 1 with the status, code and message', async () => {
    const { id } = emulator.store.create({ name: 'to get' });
    const ok = await runs(['get', id as string]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Name:\s+to get$/m);
    const missing = await runs(['get', 'trn.missing']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('HTTP 404 RunNotFound: no task run');
  });

  it('abort aborts; aborting again exits 1 with the 400', async () => {
    const { id } = emulator.store.create({});
    const first = await runs(['abort', id as string]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Status:\s+Aborted$/m);
    const again = await runs(['abort', id as string]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('HTTP 400 InvalidRunState');
  });

  it('heartbeat builds the body from flags, --last included; the jwt only with --json', async () => {
    const { id } = emulator.store.create({});
    const first = await runs([
      'heartbeat',
      id as string,
      '--pod-name',
      'pod-1',
      '--nonce',
      'n1',
      '--job-retry-count',
      '2',
    ]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('heartbeat accepted');
    expect(first.stdout).not.toMatch(/eyJ/);
    const fenced = await runs(['heartbeat', id as string, '--nonce', 'n2']);
    expect(fenced.code).toBe(1);
    expect(fenced.stderr).toContain('HTTP 409 NonceMismatch');
    const last = await runs(['heartbeat', id as string, '--nonce', 'n1', '--last', '--json']);
    expect(JSON.parse(last.stdout).jwt).toMatch(/^eyJ/);
    expect(emulator.heartbeats(id as string)).toEqual([
      { podName: 'pod-1', nonce: 'n1', jobRetryCount: 2 },
      { nonce: 'n1', lastHeartbeat: true },
    ]);
    expect(emulator.store.get(id as string).status).toBe('Failed');
  });

  it('heartbeat --body FILE sends a HeartbeatTaskRunRequest as it is', async () => {
    const { id } = emulator.store.create({});
    const body = {
      lastHeartbeat: true,
      containerStatus: [
        { name: 'main', state: { terminated: { exitCode: 0, finishedAt: '2026-01-01T00:00:00Z' } } },
      ],
    };
    const { code } = await runs(['heartbeat', id as string, '--body', file('beat.json', body)]);
    expect(code).toBe(0);
    expect(emulator.heartbeats(id as string)).toEqual([body]);
    expect(emulator.store.get(id as string).status).toBe('Completed');
  });

  it('heartbeat --container reports container states; a final one with exit 0 completes the run', async () => {
    const { id } = emulator.store.create({});
    const before = Date.now();
    const running = await runs([
      'heartbeat',
      id as string,
      '--container',
      'main=running',
      '--container',
      'fetch=exit:0:Completed',
      '--container=sidecar=waiting:ContainerCreating',
    ]);
    expect(running.code).toBe(0);
    const last = await runs(['heartbeat', id as string, '--last', '--container', 'main=exit:0']);
    expect(last.code).toBe(0);
    expect(emulator.store.get(id as string).status).toBe('Completed');
    const [first, final] = emulator.heartbeats(id as string) as HeartbeatTaskRunRequest[];
    expect(first?.containerStatus).toEqual([
      { name: 'main', state: { running: { startedAt: expect.any(String) } } },
      {
        name: 'fetch',
        state: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: expect.any(String) } },
      },
      { name: 'sidecar', state: { waiting: { reason: 'ContainerCreating' } } },
    ]);
    const startedAt = Date.parse(first?.containerStatus?.[0]?.state?.running?.startedAt ?? '');
    expect(startedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(startedAt).toBeLessThanOrEqual(Date.now());
    expect(final).toEqual({
      lastHeartbeat: true,
      containerStatus: [
        { name: 'main', state: { terminated: { exitCode: 0, finishedAt: expect.any(String) } } },
      ],
    });
  });

  it('heartbeat --container with an exit code other than 0 fails the run, naming it', async () => {
    const { id } = emulator.store.create({});
    const last = await runs(['heartbeat', id as string, '--last', '--container', 'main=exit:137:OOMKilled']);
    expect(last.code).toBe(0);
    expect(emulator.store.get(id as string)).toMatchObject({
      status: 'Failed',
      statusDetails: 'main: exit code 137 (OOMKilled)',
    });
  });

  it('a bad --container, one given twice, or with --body is a usage error', async () => {
    const { id } = emulator.store.create({});
    for (const [args, message] of [
      [['--container', 'main'], "'main' names no container"],
      [['--container', 'main=done'], "'main=done' has no state 'done'"],
      [['--container', 'main=exit:ok'], "'main=exit:ok' has no integer exit code"],
      [['--container', 'main=running:now'], "'main=running:now' has more after running"],
      [['--container', 'a=running', '--container', 'a=exit:0'], "'a' is given twice"],
      [['--container', 'a=running', '--body', file('c.json', {})], '--body cannot be combined'],
    ] as const) {
      const result = await runs(['heartbeat', id as string, ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect(emulator.heartbeats(id as string)).toEqual([]);
  });

  it('a bad or missing token exits 1 with the 401, never printing the token', async () => {
    const { code, stderr } = await runs(['list'], { TES_TOKEN: 'wrong-token-value' });
    expect(code).toBe(1);
    expect(stderr).toContain('HTTP 401 Unauthorized');
    expect(stderr).not.toContain('wrong-token-value');
    expect((await runs(['list'], { TES_TOKEN: '' })).code).toBe(1);
  });

  it('a TES echoing the token: never in stdout or stderr, raw or JSON-escaped (rule 11)', async () => {
    const tes = await new FaultTes().start();
    try {
      const echo = `token ${TOKEN} rejected`;
      tes.reply(
        { status: 400, body: { code: 'BadRequest', message: echo } },
        { status: 502, headers: { 'content-type': 'text/plain' }, raw: `upstream said: ${echo}` },
        { status: 200, body: { id: 'r1', name: echo, status: 'Running', statusDetails: echo } },
        { status: 200, body: { id: 'r1', name: echo, status: 'Running', statusDetails: echo } },
      );
      const outputs: string[] = [];
      for (const args of [
        ['get', 'r1'],
        ['get', 'r1'],
        ['get', 'r1'],
        ['get', 'r1', '--json'],
      ]) {
        const result = await runs(args, { TES_URL: tes.url });
        expect(result.code).toBe(outputs.length < 2 ? 1 : 0);
        outputs.push(result.stdout + result.stderr);
      }
      expect(tes.requests.map((r) => r.authorization)).toEqual(Array(4).fill(`Bearer ${TOKEN}`));
      const output = outputs.join('\n');
      expect(output).toContain('BadRequest');
      expect(output).toMatch(/Name:\s+token \[redacted\] rejected/);
      expect(output).not.toContain(TOKEN);
    } finally {
      await tes.close();
    }
  });

  it('a token a header cannot carry is a usage error naming TES_TOKEN, never printing it', async () => {
    const { code, stderr } = await runs(['list'], { TES_TOKEN: 'bad-token\nsecret-part' });
    expect(code).toBe(2);
    expect(stderr).toContain('TES_TOKEN (--token)');
    expect(stderr).not.toContain('bad-token');
    expect(stderr).not.toContain('secret-part');
  });

  it('an unreachable TES exits 1 with a network error', async () => {
    const { code, stderr } = await runs(['list', '--timeout', '2s'], { TES_URL: 'http://127.0.0.1:1' });
    expect(code).toBe(1);
    expect(stderr).toContain('TES_NETWORK_ERROR');
  });

  it.each([
    { desc: 'no TES_URL', args: ['list'], env: { TES_URL: '' }, message: 'TES_URL (--tes-url)' },
    { desc: 'no subcommand', args: [], env: {}, message: 'a subcommand is required' },
    { desc: 'an unknown subcommand', args: ['delete'], env: {}, message: "unknown subcommand 'delete'" },
    { desc: 'get without an id', args: ['get'], env: {}, message: 'a RUN_ID is required' },
    { desc: 'an extra argument', args: ['get', 'a', 'b'], env: {}, message: "unexpected argument 'b'" },
    {
      desc: 'a flag of another subcommand',
      args: ['get', 'a', '--names', 'x'],
      env: {},
      message: 'unknown flag --names',
    },
    {
      desc: '--body with body flags',
      args: ['create', '--body', 'x.json', '--name', 'n'],
      env: {},
      message: 'cannot',
    },
    {
      desc: 'a page size out of range',
      args: ['list', '--page-size', '0'],
      env: {},
      message: 'must be at least 1',
    },
  ])('$desc is a usage error (exit 2)', async ({ args, env, message }) => {
    const argsWithFile = args.map((a) => (a === 'x.json' ? file('x.json', {}) : a));
    const { code, stderr } = await runs(argsWithFile, env);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('a body file that is not a JSON object is a usage error', async () => {
    const { code, stderr } = await runs(['create', '--body', file('bad.json', '[1, 2')]);
    expect(code).toBe(2);
    expect(stderr).toContain('is not JSON');
  });

  it('--help lists the settings of a subcommand', async () => {
    const { code, stdout } = await runs(['heartbeat', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--last');
    expect(stdout).toContain('--tes-url <value>');
  });
});
