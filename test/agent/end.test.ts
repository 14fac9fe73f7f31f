// What the world does to the built agent at the end and in between (contract rules 13,
// 15–18, 22), done to the real process: the fake Kubernetes API over HTTPS, a fault-
// injecting TES, signals sent the way the kubelet sends them.
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import {
  type AgentProcess,
  type AgentWorld,
  freePort,
  getListener,
  stopAfterEach,
} from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import { COMPLETED, type KubeObject, RUNNING, testPod, testTls } from '../support/fake-kube-api.ts';

const NS = 'tasks';

interface World extends AgentWorld {
  port: number;
}

const after = stopAfterEach();

type Statuses = { name: string; state: Record<string, unknown> }[];

/** The task pod with `main` (and the agent) in the given states; `native` puts the agent among the init containers with restartPolicy Always. */
function pod(
  options: { main?: Record<string, unknown>; native?: boolean; others?: string[] } = {},
): KubeObject {
  const regular = ['main', ...(options.others ?? [])];
  const base = testPod({
    name: 'task-pod',
    namespace: NS,
    containers: options.native ? regular : [...regular, 'tes-heartbeat'],
    status: {},
  });
  const statuses: Statuses = regular.map((name) => ({
    name,
    state: name === 'main' ? (options.main ?? RUNNING) : RUNNING,
  }));
  const self = { name: 'tes-heartbeat', state: RUNNING };
  const spec = base.spec as Record<string, unknown>;
  if (options.native)
    spec.initContainers = [{ name: 'tes-heartbeat', image: 'tes-heartbeat', restartPolicy: 'Always' }];
  return {
    ...base,
    status: {
      phase: 'Running',
      ...(options.native
        ? { initContainerStatuses: [self], containerStatuses: statuses }
        : { containerStatuses: [...statuses, self] }),
    },
  };
}

async function world(): Promise<World> {
  const port = await freePort();
  const w = await after.world({
    runId: 'run-end-1',
    podStatus: pod().status as KubeObject,
    env: {
      JOB_RETRY_COUNT: '0',
      HARDWARE_DETAILS: 'off',
      HEARTBEAT_INTERVAL: '5s',
      HEARTBEAT_MIN_GAP: '0s',
      HTTP_ADDR: `127.0.0.1:${port}`,
      LOG_LEVEL: 'debug',
    },
  });
  return { ...w, port };
}

const run = (w: World, env: Record<string, string> = {}): AgentProcess => after.agent({ ...w.env, ...env });

const bodies = (w: World): HeartbeatTaskRunRequest[] => w.tes.requests.map((r) => r.body);
const finals = (w: World) => bodies(w).filter((b) => b.lastHeartbeat === true);
const mainState = (b: HeartbeatTaskRunRequest | undefined) =>
  b?.containerStatus?.find((c) => c.name === 'main')?.state;
const get = (w: World, path: string) => getListener(w.port, path);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rule 13: Retry-After is a floor', () => {
  it('503 with Retry-After: 0 does not hammer the TES', async () => {
    const w = await world();
    w.tes.setFallback({ status: 503, headers: { 'retry-after': '0' } });
    const agent = run(w, { HEARTBEAT_INTERVAL: '10s', FINAL_HEARTBEAT_DEADLINE: '1s' });
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first attempt');
    await sleep(3_000);
    // Backoff from 1 s doubling, full jitter: a handful of attempts in 3 s (before: ~100).
    expect(w.tes.requests.length).toBeLessThan(12);
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });
});

describe('rule 15: the end is bounded', () => {
  it('a black-hole TES: SIGTERM during a beat, exit 0 within FINAL_HEARTBEAT_DEADLINE plus about a second', async () => {
    const w = await world();
    w.tes.setFallback({ hang: true });
    const agent = run(w, { HEARTBEAT_TIMEOUT: '20s', FINAL_HEARTBEAT_DEADLINE: '2s' });
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first attempt');
    await sleep(500);
    const signalled = performance.now();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const tookMs = performance.now() - signalled;
    expect(tookMs).toBeLessThan(2_000 + 1_500);
    expect(finals(w)).toHaveLength(1); // the final heartbeat got its attempt
    expect(agent.logs.some((l) => l.msg === 'agent finished')).toBe(true);
  });
});

describe('rule 16: the kubelet’s last word', () => {
  it('waits after SIGTERM until the task container is terminated, then sends that', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first heartbeat');
    await waitFor(() => agent.logs.some((l) => l.msg === 'heartbeat acknowledged'), 5_000, 'answer taken');
    agent.child.kill('SIGTERM');
    await sleep(600); // the kubelet reports the task's exit to the API server only now
    w.kube.server.set('pods', pod({ main: COMPLETED }));
    expect((await agent.exited).code).toBe(0);
    expect(finals(w)).toHaveLength(1);
    expect(mainState(finals(w)[0])?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  it('gives up waiting after about 2 s and sends what it has', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first heartbeat');
    const signalled = performance.now();
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    expect(performance.now() - signalled).toBeGreaterThan(1_900);
    expect(mainState(finals(w)[0])?.running).toBeDefined();
  });

  it('a SIGTERM before the Kubernetes configuration was loaded still gets the refresh', async () => {
    const w = await world();
    // TES_CA_FILE as a named pipe holds the agent inside its settings check — after its
    // signal handlers are installed, before the Kubernetes configuration is loaded.
    const dir = await mkdtemp(path.join(tmpdir(), 'end-'));
    after.defer(() => rm(dir, { recursive: true, force: true }));
    const fifo = path.join(dir, 'ca.pem');
    execFileSync('mkfifo', [fifo]);
    const agent = run(w, { TES_CA_FILE: fifo });
    const pipe = await open(fifo, 'w'); // resolves once the agent opened it for reading
    agent.child.kill('SIGTERM');
    await pipe.writeFile(testTls.ca);
    await pipe.close();
    setTimeout(() => w.kube.server.set('pods', pod({ main: COMPLETED })), 600);
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(bodies(w).map((b) => b.lastHeartbeat)).toEqual([true]);
    expect(mainState(finals(w)[0])?.terminated).toMatchObject({ exitCode: 0 });
  });
});

describe('rule 17: deletion', () => {
  it('reports the final state that only the DELETED event carries, without waiting', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first heartbeat');
    await waitFor(() => w.kube.server.openWatches > 0, 5_000, 'watch open');
    // A force-deleted pod: its last state appears in the DELETED event and nowhere else.
    const last = pod({ main: COMPLETED }) as { metadata: Record<string, unknown> };
    last.metadata.resourceVersion = '999999';
    const deletedAt = performance.now();
    w.kube.server.writeToWatches(JSON.stringify({ type: 'DELETED', object: last }));
    expect((await agent.exited).code).toBe(0);
    expect(performance.now() - deletedAt).toBeLessThan(1_500);
    expect(finals(w)).toHaveLength(1);
    expect(mainState(finals(w)[0])?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });
});

describe('rule 18: native sidecar', () => {
  it('after completion sends the final heartbeat, then waits for SIGTERM sending nothing more', async () => {
    const w = await world();
    w.kube.server.set('pods', pod({ native: true, others: ['helper'] }));
    const agent = run(w, { WATCH_CONTAINERS: 'main', HEARTBEAT_INTERVAL: '300ms' });
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first heartbeat');
    await waitFor(async () => (await get(w, '/readyz')).status === 200, 5_000, 'ready');
    w.kube.server.set('pods', pod({ native: true, others: ['helper'], main: COMPLETED }));
    await waitFor(() => finals(w).length === 1, 5_000, 'final heartbeat');
    const sent = w.tes.requests.length;
    await sleep(1_500); // five intervals
    expect(agent.child.exitCode).toBeNull();
    expect(w.tes.requests).toHaveLength(sent);
    expect((await get(w, '/healthz')).status).toBe(200);
    expect((await get(w, '/readyz')).status).toBe(200); // stands still
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(w.tes.requests).toHaveLength(sent);
    expect(finals(w)).toHaveLength(1);
  });

  it('a regular sidecar still exits 0 after the final heartbeat', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.tes.requests.length >= 1, 10_000, 'first heartbeat');
    w.kube.server.set('pods', pod({ main: COMPLETED }));
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(finals(w)).toHaveLength(1);
  });
});

describe('rule 22: crash-proof', () => {
  it('an exception in a callback, an unhandled rejection and a late listener error are logged; the heartbeats and the final one go on', async () => {
    const w = await world();
    const preload = path.join(import.meta.dirname, '..', 'support', 'crash-preload.mjs');
    const agent = run(w, {
      NODE_OPTIONS: `--import=${preload}`,
      HEARTBEAT_INTERVAL: '300ms',
      FINAL_HEARTBEAT_DEADLINE: '1s',
    });
    await waitFor(
      async () => (await get(w, '/readyz').catch(() => undefined))?.status === 200,
      10_000,
      'ready',
    );
    agent.child.kill('SIGUSR2');
    await agent.logged('health and metrics listener error; it goes on');
    await waitFor(
      () => agent.logs.filter((l) => l.msg === 'internal error; the agent goes on').length === 2,
      5_000,
      'both internal errors logged',
    );
    const before = w.tes.requests.length;
    await waitFor(() => w.tes.requests.length >= before + 2, 5_000, 'heartbeats after the errors');
    expect((await get(w, '/healthz')).status).toBe(200);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(finals(w)).toHaveLength(1);
    expect(agent.logs.filter((l) => l.level === 50)).toHaveLength(3);
  });
});
