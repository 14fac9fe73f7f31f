// The built agent as a process, as in a pod: the fake Kubernetes API over HTTPS,
// the emulator as the TES, signals, exit codes, logs, health and metrics.
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { type AgentProcess, freePort, getListener, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import {
  containerStatus,
  type FakeKube,
  type KubeObject,
  startFakeKube,
  testPod,
} from '../support/fake-kube-api.ts';

const TOKEN = 'tes-secret-token-41a';
const NONCE = 'nonce-secret-52b';
const NS = 'tasks';

interface World {
  emulator: Emulator;
  kube: FakeKube;
  runId: string;
  jwts: string[];
  env: Record<string, string>;
  port: number;
}

const after = stopAfterEach();

const runningPod = (status?: KubeObject) =>
  testPod({
    name: 'task-pod',
    namespace: NS,
    containers: ['main', 'tes-heartbeat'],
    nodeName: 'node-1',
    owner: { kind: 'Job', name: 'job-1' },
    status: status ?? {
      phase: 'Running',
      qosClass: 'BestEffort',
      containerStatuses: ['main', 'tes-heartbeat'].map((name) => containerStatus(name)),
    },
  });

function terminatedPod(exitCode: number): KubeObject {
  const pod = runningPod();
  const statuses = (pod.status as { containerStatuses: { state: unknown }[] }).containerStatuses;
  (statuses[0] as { state: unknown }).state = {
    terminated: {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      startedAt: '2026-11-29T10:00:00Z',
      finishedAt: '2026-11-29T10:05:00Z',
    },
  };
  return pod;
}

async function world(): Promise<World> {
  const jwts: string[] = [];
  const emulator = await startEmulator({
    token: TOKEN,
    onResponse: (exchange) => {
      const jwt = /"jwt":"([^"]+)"/.exec(exchange.body)?.[1];
      if (jwt) jwts.push(jwt);
    },
  });
  const kube = await startFakeKube();
  after.defer(
    () => emulator.close(),
    () => kube.close(),
  );
  const runId = emulator.store.create({ name: 'agent-process' }).id as string;
  kube.server.set('pods', runningPod());
  kube.server.set('jobs', { metadata: { name: 'job-1', namespace: NS }, status: { failed: 2 } });
  kube.server.set('nodes', {
    metadata: { name: 'node-1', labels: { 'node.kubernetes.io/instance-type': 'm6i.large' } },
    status: { nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'v1.31.4' } },
  });
  const port = await freePort();
  return {
    emulator,
    kube,
    runId,
    jwts,
    port,
    env: {
      TES_URL: emulator.url,
      TES_RUN_ID: runId,
      TES_TOKEN: TOKEN,
      TES_NONCE: NONCE,
      POD_NAME: 'task-pod',
      POD_NAMESPACE: NS,
      KUBECONFIG: kube.kubeconfigPath,
      HEARTBEAT_INTERVAL: '1s',
      HEARTBEAT_MIN_GAP: '0s',
      HTTP_ADDR: `127.0.0.1:${port}`,
      LOG_LEVEL: 'debug',
    },
  };
}

const run = (w: World, env: Record<string, string> = {}): AgentProcess => after.agent({ ...w.env, ...env });

const beats = (w: World): HeartbeatTaskRunRequest[] => w.emulator.heartbeats(w.runId);
const get = (w: World, path: string) => getListener(w.port, path);

describe('a task from start to completion', () => {
  it('reports the pod, serves health and metrics, and ends with one final heartbeat and exit 0', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => beats(w).length >= 1, 10_000, 'first heartbeat');
    const first = beats(w)[0] as HeartbeatTaskRunRequest;
    expect(first).toMatchObject({
      podName: 'task-pod',
      nonce: NONCE,
      jobRetryCount: 2,
      containerStatus: [{ name: 'main', state: { running: { startedAt: '2026-11-29T10:00:00Z' } } }],
    });
    expect(first.podUID).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.lastHeartbeat).toBeUndefined();

    await waitFor(async () => (await get(w, '/readyz')).status === 200, 5_000, 'ready');
    expect((await get(w, '/healthz')).status).toBe(200);
    // The node joins the heartbeats once read.
    await waitFor(
      () => beats(w).some((b) => b.podHardwareDetails?.includes('m6i.large')),
      5_000,
      'node details',
    );

    w.kube.server.dropWatches();
    await waitFor(
      async () => /tes_kube_watch_restarts_total [1-9]/.test((await get(w, '/metrics')).body),
      10_000,
      'watch restart counted',
    );
    const metrics = (await get(w, '/metrics')).body;
    for (const name of [
      'tes_heartbeats_total{result="success"}',
      'tes_heartbeats_total{result="failure"} 0',
      'tes_heartbeat_attempts_total',
      'tes_heartbeat_duration_seconds_bucket',
      'tes_heartbeat_last_success_timestamp_seconds',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(metrics).toContain(name);

    w.kube.server.set('pods', terminatedPod(0));
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const all = beats(w);
    expect(all.filter((b) => b.lastHeartbeat === true)).toHaveLength(1);
    expect(all.at(-1)?.lastHeartbeat).toBe(true);
    expect(all.at(-1)?.containerStatus?.[0]?.state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    expect(w.emulator.store.get(w.runId).status).toBe('Completed');

    // Every line is JSON with the run and the pod; no secret anywhere.
    expect(agent.logs.length).toBeGreaterThan(3);
    for (const line of agent.logs) expect(line).toMatchObject({ runId: w.runId, podName: 'task-pod' });
    expect(w.jwts.length).toBeGreaterThan(0);
    const output = agent.stdout() + agent.stderr() + metrics;
    for (const secret of [TOKEN, NONCE, ...w.jwts]) expect(output).not.toContain(secret);
    // The agent used the rotated jwt after the first answer.
    expect(agent.stderr()).toBe('');
  });

  it('a failed task ends the run Failed, naming the container and its exit code', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => beats(w).length >= 1, 10_000, 'first heartbeat');
    w.kube.server.set('pods', terminatedPod(3));
    expect((await agent.exited).code).toBe(0);
    const run1 = w.emulator.store.get(w.runId);
    expect(run1.status).toBe('Failed');
    expect(run1.statusDetails).toContain('main');
    expect(run1.statusDetails).toContain('3');
  });
});

describe('the end', () => {
  it('SIGTERM before the first heartbeat: the final heartbeat is the only one, exit 0', async () => {
    const w = await world();
    w.kube.server.failNext({ path: /\/pods$/, watch: false }, 'hang');
    const agent = run(w, { HEARTBEAT_TIMEOUT: '10s' });
    await agent.logged('agent starting');
    await waitFor(() => w.kube.server.requests.some((r) => r.path.endsWith('/pods')), 5_000, 'pod list sent');
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(beats(w).map((b) => b.lastHeartbeat)).toEqual([true]);
  });

  it('the pod deleted on the watch counts as SIGTERM', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => beats(w).length >= 1, 10_000, 'first heartbeat');
    w.kube.server.delete('pods', NS, 'task-pod');
    expect((await agent.exited).code).toBe(0);
    expect(beats(w).filter((b) => b.lastHeartbeat)).toHaveLength(1);
  });

  it('an unreachable TES never fails the pod: not ready, then exit 0 on SIGTERM within the final deadline', async () => {
    const w = await world();
    const agent = run(w, {
      TES_URL: 'http://127.0.0.1:9', // discard port: connection refused
      HEARTBEAT_TIMEOUT: '300ms',
      FINAL_HEARTBEAT_DEADLINE: '1s',
    });
    await agent.logged('heartbeat attempt failed; retrying');
    const ready = await get(w, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: false, reason: expect.any(String) });
    expect((await get(w, '/healthz')).status).toBe(200);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });
});

describe('degraded reads', () => {
  it('403 on the Job and the node: jobRetryCount 0, the pod part of the hardware details, one warning each', async () => {
    const w = await world();
    w.kube.server.forbid('jobs');
    w.kube.server.forbid('nodes');
    const agent = run(w, { WATCH_CONTAINERS: 'main,ghost,phantom' });
    await waitFor(() => beats(w).length >= 2, 10_000, 'two heartbeats');
    const beat = beats(w).at(-1) as HeartbeatTaskRunRequest;
    expect(beat.jobRetryCount).toBe(0);
    expect(JSON.parse(beat.podHardwareDetails as string)).toMatchObject({ nodeName: 'node-1' });
    expect(beat.podHardwareDetails).not.toContain('kubeletVersion');
    const warnings = agent.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warnings.filter((m) => /Job/.test(m))).toHaveLength(1);
    expect(warnings.filter((m) => /node/.test(m))).toHaveLength(1);
    const missing = agent.logs.filter((l) => l.level === 40 && /WATCH_CONTAINERS/.test(String(l.msg)));
    expect(missing).toHaveLength(1);
    expect(missing[0]?.containers).toEqual(['ghost', 'phantom']);
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });

  it('a listener port already taken is one error, and the heartbeats go on', async () => {
    const w = await world();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(w.port, '127.0.0.1', resolve));
    after.defer(() => new Promise((resolve) => taken.close(resolve)));
    const agent = run(w);
    await waitFor(() => beats(w).length >= 2, 10_000, 'two heartbeats');
    const errors = agent.logs.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.msg)).toContain('listener');
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });

  it('goes on with the last snapshot while the Kubernetes API is down', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => beats(w).length >= 1, 10_000, 'first heartbeat');
    await w.kube.close();
    const before = beats(w).length;
    await waitFor(() => beats(w).length >= before + 2, 10_000, 'heartbeats without the API');
    expect(beats(w).at(-1)?.containerStatus?.[0]?.state?.running).toBeDefined();
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });
});
