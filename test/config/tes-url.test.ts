// Rule T6: a bearer only over TLS. With a token or token file configured, the built agent
// and `runs` refuse an http:// TES_URL that is not loopback (exit 2, one line naming
// TES_URL) before any request, unless TES_ALLOW_HTTP=true; loopback stays allowed for local
// use, and without a bearer an http:// TES is allowed.
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleartextTesUrlProblem, isLoopbackHost } from '../../src/config/tes-url.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { CLI, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import { startFakeKube, testPod } from '../support/fake-kube-api.ts';

const TOKEN = 'plain-http-token-7f3';
const after = stopAfterEach();

describe('cleartextTesUrlProblem', () => {
  it.each([
    { url: 'http://127.0.0.1:8080', loopback: true },
    { url: 'http://127.1.2.3', loopback: true },
    { url: 'http://127.1', loopback: true }, // WHATWG URL spells it 127.0.0.1
    { url: 'http://[::1]:8080', loopback: true },
    { url: 'http://[0:0:0:0:0:0:0:1]', loopback: true },
    { url: 'http://LOCALHOST:8080', loopback: true },
    { url: 'http://10.0.0.1', loopback: false },
    { url: 'http://128.0.0.1', loopback: false },
    { url: 'http://127.0.0.1.nip.io', loopback: false },
    { url: 'http://localhost.example.com', loopback: false },
    { url: 'http://tes.tasks.svc:8080', loopback: false },
    { url: 'http://[::ffff:127.0.0.1]', loopback: false }, // by its spelling, not where it routes
  ])('$url: loopback $loopback', ({ url, loopback }) => {
    const parsed = new URL(url);
    expect(isLoopbackHost(parsed.hostname)).toBe(loopback);
    expect(cleartextTesUrlProblem(parsed, { bearer: true, allowHttp: false }) === undefined).toBe(loopback);
    expect(cleartextTesUrlProblem(parsed, { bearer: true, allowHttp: true })).toBeUndefined();
    expect(cleartextTesUrlProblem(parsed, { bearer: false, allowHttp: false })).toBeUndefined();
    const https = new URL(url.replace('http:', 'https:'));
    expect(cleartextTesUrlProblem(https, { bearer: true, allowHttp: false })).toBeUndefined();
  });

  it('names TES_URL and the way out, and never the user-info part of the URL', () => {
    const problem = cleartextTesUrlProblem(new URL('http://user:s3cret-pw@10.0.0.1:8080/tes'), {
      bearer: true,
      allowHttp: false,
    });
    expect(problem).toMatch(/^TES_URL \(--tes-url\): http:\/\/10\.0\.0\.1:8080 /);
    expect(problem).toContain('TES_ALLOW_HTTP=true');
    expect(problem).not.toContain('s3cret-pw');
  });
});

/** A name for this machine that the rule cannot see is loopback, but which reaches it. */
let ownName: { hostname: string; address: string };
beforeAll(async () => {
  ownName = { hostname: hostname(), address: (await lookup(hostname())).address };
});

async function emulatorOnOwnName(): Promise<Emulator> {
  const emulator = await startEmulator({ host: ownName.address, token: TOKEN });
  after.defer(() => emulator.close());
  return emulator;
}
const urlByName = (emulator: Emulator) =>
  emulator.url.replace(new URL(emulator.url).hostname, ownName.hostname);

describe('the built agent', () => {
  async function agentEnv(tesUrl: string) {
    const kube = await startFakeKube();
    after.defer(() => kube.close());
    kube.server.set('pods', testPod({ name: 'task-pod', namespace: 'tasks' }));
    return {
      TES_URL: tesUrl,
      TES_RUN_ID: 'run-1',
      TES_TOKEN: TOKEN,
      POD_NAME: 'task-pod',
      POD_NAMESPACE: 'tasks',
      KUBECONFIG: kube.kubeconfigPath,
      HTTP_ADDR: 'off',
      JOB_RETRY_COUNT: '0',
    };
  }

  it('refuses http:// to a non-loopback address before any request: exit 2, one line naming TES_URL', async () => {
    // 10.0.0.1 is never contacted: the settings are checked before the first request.
    const env = await agentEnv('http://10.0.0.1:8080');
    const agent = after.agent(env);
    expect((await agent.exited).code).toBe(2);
    const lines = agent.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tes-heartbeat agent: TES_URL \(--tes-url\): http:\/\/10\.0\.0\.1:8080 /);
    expect(agent.stderr()).not.toContain(TOKEN);
    expect(agent.stdout()).toBe('');

    // A token file is a bearer too.
    const tokenFile = path.join(mkdtempSync(path.join(tmpdir(), 'tes-url-')), 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const fromFile = after.agent({ ...env, TES_TOKEN: undefined, TES_TOKEN_FILE: tokenFile });
    expect((await fromFile.exited).code).toBe(2);
    expect(fromFile.stderr()).toMatch(
      /^tes-heartbeat agent: TES_URL \(--tes-url\): http:\/\/10\.0\.0\.1:8080 /,
    );
  });

  it('sends to http:// on another host when it has no bearer to give away', async () => {
    const open = await startEmulator({ host: ownName.address });
    after.defer(() => open.close());
    const runId = open.store.create({ name: 'no-bearer' }).id as string;
    const agent = after.agent({
      ...(await agentEnv(urlByName(open))),
      TES_TOKEN: undefined,
      TES_RUN_ID: runId,
    });
    await waitFor(() => open.heartbeats(runId).length > 0, 10_000, 'a heartbeat without a bearer');
    agent.child.kill('SIGKILL');
  });

  it('sends to http:// on loopback, and to another host with TES_ALLOW_HTTP=true or --allow-http', async () => {
    const loopback = await startEmulator({ token: TOKEN });
    after.defer(() => loopback.close());
    const local = loopback.store.create({ name: 'loopback' }).id as string;
    const atLoopback = after.agent({ ...(await agentEnv(loopback.url)), TES_RUN_ID: local });
    await waitFor(() => loopback.heartbeats(local).length > 0, 10_000, 'a heartbeat over loopback');
    atLoopback.child.kill('SIGKILL');

    const remote = await emulatorOnOwnName();
    const env = await agentEnv(urlByName(remote));
    const refused = after.agent(env);
    expect((await refused.exited).code).toBe(2);
    expect(refused.stderr()).toContain('TES_URL');

    for (const [i, allow] of [{ TES_ALLOW_HTTP: 'true' }, { args: ['--allow-http'] }].entries()) {
      const runId = remote.store.create({ name: `allowed-${i}` }).id as string;
      const agent =
        'args' in allow
          ? after.agent({ ...env, TES_RUN_ID: runId }, allow.args)
          : after.agent({ ...env, ...allow, TES_RUN_ID: runId });
      await waitFor(() => remote.heartbeats(runId).length > 0, 10_000, 'a heartbeat with the opt-in');
      agent.child.kill('SIGKILL');
    }
  });
});

describe('the built fleet', () => {
  it('refuses a bearer over http:// to a non-loopback address before any request', async () => {
    const env = {
      TES_URL: 'http://10.0.0.1:8080',
      TES_TOKEN: TOKEN,
      POD_NAME: 'fleet-0',
      FLEET_NODE_NAME: 'node-1',
    };
    const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, 'fleet'],
        // A fleet that started anyway is stopped, not left running.
        { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 },
        (error, _o, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr: String(stderr) }),
      ),
    );
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^tes-heartbeat fleet: TES_URL \(--tes-url\): http:\/\/10\.0\.0\.1:8080 /),
    ]);
  });
});

describe('the built runs command', () => {
  function runs(
    args: string[],
    env: Record<string, string>,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, 'runs', ...args],
        { env: { PATH: process.env.PATH ?? '', TES_TOKEN: TOKEN, ...env }, encoding: 'utf8' },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  it('refuses http:// to a non-loopback address before any request, unless allowed', async () => {
    const refused = await runs(['list'], { TES_URL: 'http://10.0.0.1:8080' });
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^tes-heartbeat runs list: TES_URL \(--tes-url\): http:\/\/10\.0\.0\.1:8080 /),
    ]);

    const remote = await emulatorOnOwnName();
    remote.store.create({ name: 'seen-over-http' });
    const byName = { TES_URL: urlByName(remote) };
    expect((await runs(['list'], byName)).code).toBe(2);
    for (const [args, env] of [
      [['list'], { ...byName, TES_ALLOW_HTTP: 'true' }],
      [['list', '--allow-http'], byName],
      [['list', '--allow-http=true'], byName],
    ] as const) {
      const allowed = await runs([...args], env);
      expect(allowed).toMatchObject({ code: 0, stderr: '' });
      expect(allowed.stdout).toContain('seen-over-http');
    }
    expect((await runs(['list', '--allow-http=false'], byName)).code).toBe(2);
    expect((await runs(['list', '--allow-http=maybe'], byName)).stderr).toContain('TES_ALLOW_HTTP');
    // Without a token there is no bearer to refuse (the emulator then answers 401, exit 1).
    const noBearer = await runs(['list'], { ...byName, TES_TOKEN: '' });
    expect(noBearer.code).toBe(1);
    expect(noBearer.stderr).toContain('401');
  });

  it('runs against http:// on loopback as before', async () => {
    const local = await startEmulator({ token: TOKEN });
    after.defer(() => local.close());
    local.store.create({ name: 'seen-on-loopback' });
    const result = await runs(['list'], { TES_URL: local.url });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('seen-on-loopback');
  });
});
