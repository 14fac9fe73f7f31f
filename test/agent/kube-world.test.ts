// What the Kubernetes side does to the built agent (rules 19 and 21, the Mapping's
// pod-level reason): the agent as a child process, the fake API server over HTTPS
// driven by the test, the emulator as the TES.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { type AgentProcess, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import {
  COMPLETED,
  containerStatus,
  type FakeKube,
  type KubeObject,
  RUNNING,
  startFakeKube,
  testPod,
} from '../support/fake-kube-api.ts';

const NS = 'tasks';
const POD = 'task-pod';
const PODS = `/api/v1/namespaces/${NS}/pods`;

interface World {
  emulator: Emulator;
  kube: FakeKube;
  runId: string;
  env: Record<string, string>;
}

const after = stopAfterEach();

function pod(mainState: object, owner?: { kind: string; name: string }): KubeObject {
  return testPod({
    name: POD,
    namespace: NS,
    containers: ['main', 'tes-heartbeat'],
    ...(owner && { owner }),
    status: {
      phase: 'Running',
      containerStatuses: [containerStatus('main', mainState), containerStatus('tes-heartbeat', RUNNING)],
    },
  });
}

async function world(first: KubeObject = pod(RUNNING)): Promise<World> {
  const emulator = await startEmulator({});
  const kube = await startFakeKube();
  after.defer(
    () => emulator.close(),
    () => kube.close(),
  );
  const runId = emulator.store.create({ name: 'kube-world' }).id as string;
  kube.server.set('pods', first);
  return {
    emulator,
    kube,
    runId,
    env: {
      TES_URL: emulator.url,
      TES_RUN_ID: runId,
      POD_NAME: POD,
      POD_NAMESPACE: NS,
      KUBECONFIG: kube.kubeconfigPath,
      JOB_RETRY_COUNT: '0',
      HARDWARE_DETAILS: 'off',
      HEARTBEAT_INTERVAL: '1s',
      HEARTBEAT_MIN_GAP: '0s',
      HTTP_ADDR: 'off',
      LOG_LEVEL: 'debug',
    },
  };
}

const run = (w: World, env: Record<string, string> = {}): AgentProcess => after.agent({ ...w.env, ...env });

const beats = (w: World): HeartbeatTaskRunRequest[] => w.emulator.heartbeats(w.runId);
const podLists = (w: World) => w.kube.server.requests.filter((r) => r.path === PODS && !r.watch);
const mainState = (beat: HeartbeatTaskRunRequest | undefined) =>
  beat?.containerStatus?.find((c) => c.name === 'main')?.state;

/** The exit, or 'running' if the process is still up after `ms`. */
async function exitWithin(agent: AgentProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'running'>((resolve) => {
    timer = setTimeout(() => resolve('running'), ms);
  });
  try {
    return await Promise.race([agent.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('rule 19: a WATCH_CONTAINERS naming none of the containers', () => {
  it('falls back to the default set with one error naming the unknown names; the agent ends with the task', async () => {
    const w = await world();
    const agent = run(w, { WATCH_CONTAINERS: 'mian,tes-heartbeat' });
    await waitFor(() => beats(w).length >= 1, 10_000, 'first heartbeat');
    expect(beats(w)[0]?.containerStatus).toEqual([{ name: 'main', state: RUNNING }]);
    const error = await agent.logged(/WATCH_CONTAINERS names none/);
    expect(error).toMatchObject({ level: 50, containers: ['mian'], reporting: ['main'] });

    w.kube.server.set('pods', pod(COMPLETED));
    expect(await exitWithin(agent, 10_000)).toEqual({ code: 0, signal: null });
    expect(beats(w).at(-1)).toMatchObject({ lastHeartbeat: true });
    expect(mainState(beats(w).at(-1))).toMatchObject({ terminated: { exitCode: 0, reason: 'Completed' } });
    expect(agent.logs.filter((l) => /WATCH_CONTAINERS/.test(String(l.msg)))).toHaveLength(1);
  });

  it('some unknown names: one warning, the known ones reported', async () => {
    const w = await world();
    const agent = run(w, { WATCH_CONTAINERS: 'main,ghost' });
    await waitFor(() => beats(w).length >= 2, 10_000, 'two heartbeats');
    expect(
      beats(w)
        .at(-1)
        ?.containerStatus?.map((c) => c.name),
    ).toEqual(['main']);
    const lines = agent.logs.filter((l) => /WATCH_CONTAINERS/.test(String(l.msg)));
    expect(lines).toMatchObject([{ level: 40, containers: ['ghost'] }]);
  });
});

describe('rule 21: bounded and expiring watches', () => {
  it.each([
    { desc: 'reason Expired without a code', status: { reason: 'Expired' } },
    { desc: 'reason Gone without a code', status: { reason: 'Gone' } },
  ])('a watch ERROR whose Status says $desc re-lists, and later changes arrive', async ({ status }) => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.kube.server.openWatches === 1 && beats(w).length >= 1, 10_000, 'watching');
    w.kube.server.failWatches({ ...status, message: 'too old resource version' });
    await waitFor(() => podLists(w).length === 2 && w.kube.server.openWatches === 1, 5_000, 're-list');
    w.kube.server.set('pods', pod(COMPLETED));
    expect(await exitWithin(agent, 10_000)).toEqual({ code: 0, signal: null });
    expect(mainState(beats(w).at(-1))).toMatchObject({ terminated: { reason: 'Completed' } });
  });

  it('a watch line past 16 MiB ends the stream and re-lists; the agent goes on', async () => {
    const w = await world();
    const agent = run(w);
    await waitFor(() => w.kube.server.openWatches === 1 && beats(w).length >= 1, 10_000, 'watching');
    // A line that never ends: buffering it whole would hold the agent on this stream for good.
    // 17 MiB in all: the cap is passed with the last write, so every write lands on the first stream.
    const mebibyte = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 17; i++) {
      w.kube.server.writeToWatches(mebibyte, { newline: false });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await waitFor(() => podLists(w).length === 2 && w.kube.server.openWatches === 1, 10_000, 're-list');
    await agent.logged(/watch line longer than the limit/);
    w.kube.server.set('pods', pod(COMPLETED));
    expect(await exitWithin(agent, 10_000)).toEqual({ code: 0, signal: null });
    expect(agent.logs.filter((l) => /not a watch event/.test(String(l.msg)))).toEqual([]);
  });
});

describe("KUBECONFIG with kubectl's meaning", () => {
  it('a list with a missing file first: the file is skipped and the pod is read', async () => {
    const w = await world();
    const kubeconfig = [path.join(path.dirname(w.kube.kubeconfigPath), 'absent'), w.kube.kubeconfigPath];
    run(w, { KUBECONFIG: kubeconfig.join(path.delimiter) });
    await waitFor(() => beats(w).some((b) => b.podUID !== undefined), 10_000, 'a heartbeat with the pod');
  });

  it('a list naming no existing file is a configuration error (exit 2)', async () => {
    const w = await world();
    const agent = run(w, { KUBECONFIG: ['/nonexistent/a', '/nonexistent/b'].join(path.delimiter) });
    expect(await agent.exited).toEqual({ code: 2, signal: null });
    expect(agent.stderr()).toContain(
      'KUBECONFIG (--kubeconfig): none of /nonexistent/a, /nonexistent/b exists',
    );
  });
});

describe('a Job read failing for good', () => {
  it('500 forever: one warning after the first few tries, heartbeats go on with jobRetryCount 0', async () => {
    const w = await world(pod(RUNNING, { kind: 'Job', name: 'job-1' }));
    w.kube.server.failNext({ path: `/apis/batch/v1/namespaces/${NS}/jobs/job-1` }, { status: 500 }, 1_000);
    const agent = run(w, { JOB_RETRY_COUNT: 'auto', HEARTBEAT_TIMEOUT: '1s' });
    const warning = await agent.logged(/cannot read the owning Job yet/);
    expect(warning).toMatchObject({ level: 40, job: 'job-1', failures: 3 });
    const beatsAtWarning = beats(w).length;
    await waitFor(() => beats(w).length >= beatsAtWarning + 2, 10_000, 'heartbeats after the warning');
    expect(beats(w).every((b) => b.jobRetryCount === 0)).toBe(true);
    expect(agent.logs.filter((l) => /owning Job/.test(String(l.msg)))).toHaveLength(1);
  });
});

describe('Mapping: a container that never started in a pod the kubelet gave up on', () => {
  it("reports the pod's own reason and message (Evicted)", async () => {
    const message = 'The node was low on resource: memory. ';
    const evicted = testPod({
      name: POD,
      namespace: NS,
      containers: ['main', 'tes-heartbeat'],
      status: { phase: 'Failed', reason: 'Evicted', message, startTime: '2026-11-29T10:00:00Z' },
    });
    const w = await world(evicted);
    const agent = run(w);
    expect(await exitWithin(agent, 10_000)).toEqual({ code: 0, signal: null });
    expect(beats(w).at(-1)).toMatchObject({
      lastHeartbeat: true,
      containerStatus: [{ name: 'main', state: { waiting: { reason: 'Evicted', message } } }],
    });
  });
});
