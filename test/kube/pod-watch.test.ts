import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KubeApi } from '../../src/kube/api.ts';
import type { Pod } from '../../src/kube/types.ts';
import { listWatch } from '../../src/kube/list-watch.ts';
import { watchPod } from '../../src/kube/pod-watch.ts';
import { heartbeatBody } from '../../src/heartbeat/mapping.ts';
import { createLogger } from '../../src/log.ts';
import { validateAgainstDefinition } from '../../src/tes/definition.ts';
import { FakeClock, settle, waitFor } from '../support/fake-clock.ts';
import { type FakeKube, type RequestRecord, startFakeKube, testPod } from '../support/fake-kube-api.ts';
import { loadPod } from '../support/k8s-fixtures.ts';

const NS = 'tasks';
const POD = 'task-pod';
const PODS_PATH = `/api/v1/namespaces/${NS}/pods`;

let kube: FakeKube;
let api: KubeApi;
const log = await createLogger({ level: 'silent', format: 'json' });

beforeAll(async () => {
  kube = await startFakeKube();
  api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
});
afterAll(async () => {
  await api.close();
  await kube.close();
});

interface Run {
  clock: FakeClock;
  pods: Pod[];
  phases(): (string | undefined)[];
  deleted: number;
  restarts: number;
  done: Promise<void>;
  stop(): Promise<void>;
}

let run: Run | undefined;
let firstRequest = 0;

beforeEach(() => {
  kube.server.compact();
  for (const name of [POD, 'other-pod']) kube.server.delete('pods', NS, name);
  firstRequest = kube.server.requests.length;
});
afterEach(async () => {
  await run?.stop();
  run = undefined;
  await waitFor(() => kube.server.openWatches === 0, 5_000, 'no open watch');
});

function requests(): RequestRecord[] {
  return kube.server.requests.slice(firstRequest).filter((r) => r.path.startsWith(PODS_PATH));
}
const lists = () => requests().filter((r) => !r.watch);
const watches = () => requests().filter((r) => r.watch);

function setPod(phase: string): string {
  return (
    kube.server.set('pods', testPod({ name: POD, namespace: NS, status: { phase } })).metadata
      ?.resourceVersion ?? ''
  );
}

function start(listTimeoutMs = 5_000, onPod?: (pod: Pod) => void): Run {
  const clock = new FakeClock();
  const controller = new AbortController();
  const state: Run = {
    clock,
    pods: [],
    phases: () => state.pods.map((p) => p.status?.phase),
    deleted: 0,
    restarts: 0,
    done: Promise.resolve(),
    async stop() {
      controller.abort();
      await state.done;
    },
  };
  state.done = watchPod({
    api,
    namespace: NS,
    podName: POD,
    listTimeoutMs,
    clock,
    log,
    signal: controller.signal,
    onPod: (pod) => {
      onPod?.(pod);
      state.pods.push(pod);
    },
    onDeleted: () => state.deleted++,
    onRestart: () => state.restarts++,
  });
  run = state;
  return state;
}

/** Waits until the watch is asleep in a backoff, then wakes it. */
async function wakeFromBackoff(clock: FakeClock): Promise<number> {
  await waitFor(() => clock.pending().length > 0, 5_000, 'a backoff sleep');
  return clock.advanceToNext();
}

describe('watchPod', () => {
  it('lists, then watches from the list resourceVersion and delivers each change in order', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    setPod('Running');
    setPod('Succeeded');
    await waitFor(() => r.pods.length === 3);
    expect(r.phases()).toEqual(['Pending', 'Running', 'Succeeded']);
    expect(lists()).toHaveLength(1);
    expect(lists()[0]?.query).toMatchObject({ fieldSelector: `metadata.name=${POD}` });
    expect(watches()).toHaveLength(1);
    expect(watches()[0]?.query).toMatchObject({
      fieldSelector: `metadata.name=${POD}`,
      resourceVersion: r.pods[0]?.metadata?.resourceVersion,
      allowWatchBookmarks: 'true',
    });
    expect(r.restarts).toBe(0);
  });

  it('resumes from the last resourceVersion after a normal end, without listing again', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    const rv = setPod('Running');
    await waitFor(() => r.pods.length === 2);
    kube.server.endWatches();
    await waitFor(() => watches().length === 2 && kube.server.openWatches === 1);
    expect(watches()[1]?.query.resourceVersion).toBe(rv);
    expect(lists()).toHaveLength(1);
    expect(r.restarts).toBe(1);
    expect(r.clock.requestedSleeps).toEqual([]); // resumed at once
    // A change made while reconnecting is not lost, nor delivered twice.
    setPod('Succeeded');
    await waitFor(() => r.pods.length === 3);
    expect(r.phases()).toEqual(['Pending', 'Running', 'Succeeded']);
  });

  it('reconnects a dropped stream with backoff 1 s doubling to 30 s, reset by an event', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.failNext({ path: PODS_PATH, watch: true }, 'drop', 6);
    kube.server.dropWatches();
    for (let i = 0; i < 7; i++) await wakeFromBackoff(r.clock);
    await waitFor(() => kube.server.openWatches === 1);
    expect(r.clock.requestedSleeps).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(lists()).toHaveLength(1); // a drop resumes, it does not re-list
    expect(new Set(watches().map((w) => w.query.resourceVersion)).size).toBe(1);

    setPod('Running'); // an event resets the backoff
    await waitFor(() => r.pods.length === 2);
    r.clock.setRandom(0.25); // and the jitter comes from the clock
    kube.server.dropWatches();
    await wakeFromBackoff(r.clock);
    expect(r.clock.requestedSleeps.slice(7)).toEqual([750]);
    await waitFor(() => kube.server.openWatches === 1);
    expect(r.restarts).toBe(watches().length - 1);
  });

  it('re-lists on 410 and watches from the list resourceVersion, never the pod own', async () => {
    const podRv = setPod('Running');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    // Other objects move the server on; the pod itself does not change.
    for (let i = 0; i < 3; i++) kube.server.set('pods', testPod({ name: 'other-pod', namespace: NS }));
    kube.server.compact();
    const serverRv = kube.server.resourceVersion;
    kube.server.dropWatches();
    await wakeFromBackoff(r.clock);
    await waitFor(() => lists().length === 2 && kube.server.openWatches === 1);
    const [first, second, third] = watches();
    expect(first?.query.resourceVersion).toBe(podRv);
    expect(second?.query.resourceVersion).toBe(podRv); // answered 410
    expect(third?.query.resourceVersion).toBe(serverRv);
    expect(serverRv).not.toBe(podRv);
    expect(r.pods).toHaveLength(1); // the re-listed pod is the same version: not delivered again
    expect(r.clock.requestedSleeps).toEqual([1000]); // only the drop waited; the 410 re-listed at once
  });

  it.each([
    { desc: 'code 410 and reason Expired', status: { code: 410, reason: 'Expired' } },
    { desc: 'reason Expired without a code', status: { reason: 'Expired' } },
    { desc: 'reason Gone without a code', status: { reason: 'Gone' } },
    { desc: 'code 410 alone', status: { code: 410 } },
  ])('re-lists on an ERROR event whose Status says $desc (rule 21)', async ({ status }) => {
    setPod('Running');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.failWatches({ ...status, message: 'too old resource version: 1 (2)' });
    await waitFor(() => lists().length === 2 && kube.server.openWatches === 1);
    expect(watches().at(-1)?.query.resourceVersion).toBe(kube.server.resourceVersion);
    expect(r.clock.requestedSleeps).toEqual([]); // the first expiry re-lists at once
  });

  it('ends a stream whose line passes 16 MiB and re-lists, without holding the line (rule 21)', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    // A line that never ends: if the client buffered it whole, nothing would happen.
    const mebibyte = 'x'.repeat(1024 * 1024);
    // 17 MiB in all: the cap is passed with the last write, so every write lands on the first stream.
    for (let i = 0; i < 17; i++) {
      kube.server.writeToWatches(mebibyte, { newline: false });
      await settle(2);
    }
    await waitFor(() => lists().length === 2 && kube.server.openWatches === 1, 10_000, 'a re-list');
    setPod('Running');
    await waitFor(() => r.phases().includes('Running'));
    expect(r.phases()).toEqual(['Pending', 'Running']);
  });

  it('delivers lines of any length up to the cap, split across chunks', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    const pod = testPod({ name: POD, namespace: NS, status: { phase: 'Running' } });
    (pod.metadata as Record<string, unknown>).annotations = { big: 'é'.repeat(3 * 1024 * 1024) };
    (pod.metadata as Record<string, unknown>).resourceVersion = '999999';
    const line = JSON.stringify({ type: 'MODIFIED', object: pod });
    kube.server.writeToWatches(line.slice(0, 1000), { newline: false });
    await settle(2);
    kube.server.writeToWatches(line.slice(1000));
    await waitFor(() => r.pods.length === 2);
    expect(r.pods[1]?.metadata?.annotations?.big).toHaveLength(3 * 1024 * 1024);
  });

  it.each(['kind-1.33-list-item', 'kubeadm-init-crash-loop', 'resize-status-fragment'] as const)(
    'delivers a real object as it comes, without apiVersion/kind, spec or non-null times: %s',
    async (fixture) => {
      setPod('Pending');
      const r = start();
      await waitFor(() => kube.server.openWatches === 1);
      const pod = loadPod(fixture);
      pod.metadata = { ...pod.metadata, name: POD, namespace: NS, resourceVersion: '999999' };
      kube.server.writeToWatches(JSON.stringify({ type: 'MODIFIED', object: pod }));
      await waitFor(() => r.pods.length === 2);
      expect(r.pods[1]).toStrictEqual(pod);
      const body = heartbeatBody(
        { pod: r.pods[1] as Pod, jobRetryCount: 0 },
        { podName: POD, selfName: 'tes-heartbeat', hardwareDetails: true },
        false,
      );
      expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
      expect(JSON.stringify(body)).not.toContain('null');
    },
  );

  it('resumes from before an event whose onPod threw, and delivers it again (rule 21)', async () => {
    setPod('Pending');
    let failOnce = true;
    const r = start(5_000, (pod) => {
      if (pod.status?.phase === 'Running' && failOnce) {
        failOnce = false;
        throw new Error('applying failed');
      }
    });
    await waitFor(() => kube.server.openWatches === 1);
    const pendingRv = r.pods[0]?.metadata?.resourceVersion;
    setPod('Running');
    await wakeFromBackoff(r.clock);
    await waitFor(() => r.phases().includes('Running'));
    expect(r.phases()).toEqual(['Pending', 'Running']);
    expect(watches().at(-1)?.query.resourceVersion).toBe(pendingRv);
    expect(lists()).toHaveLength(1);
  });

  it('lists again, after a backoff, when applying the LIST failed (nothing is skipped)', async () => {
    setPod('Running');
    let failOnce = true;
    const r = start(5_000, () => {
      if (failOnce) {
        failOnce = false;
        throw new Error('applying failed');
      }
    });
    await wakeFromBackoff(r.clock);
    await waitFor(() => r.pods.length === 1 && kube.server.openWatches === 1);
    expect(lists()).toHaveLength(2);
    expect(watches()[0]?.query.resourceVersion).toBe(kube.server.resourceVersion);
  });

  it('advances the resourceVersion on BOOKMARK', async () => {
    setPod('Running');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.set('pods', testPod({ name: 'other-pod', namespace: NS }));
    kube.server.bookmark();
    const bookmarkRv = kube.server.resourceVersion;
    await settle(20);
    kube.server.endWatches();
    await waitFor(() => watches().length === 2);
    expect(watches()[1]?.query.resourceVersion).toBe(bookmarkRv);
    expect(r.pods).toHaveLength(1);
  });

  it('reports DELETED and ends', async () => {
    setPod('Running');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.delete('pods', NS, POD);
    await r.done;
    expect(r.deleted).toBe(1);
    expect(r.clock.pending()).toEqual([]);
  });

  it('reports a deletion that happened while the watch was down', async () => {
    setPod('Running');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.failNext({ path: PODS_PATH, watch: true }, 'drop');
    kube.server.dropWatches();
    await wakeFromBackoff(r.clock);
    kube.server.delete('pods', NS, POD);
    kube.server.compact();
    await wakeFromBackoff(r.clock);
    await r.done;
    expect(r.deleted).toBe(1);
  });

  it.each([
    { desc: 'a 500', failure: { status: 500 } as const },
    { desc: 'a dropped connection', failure: 'drop' as const },
    { desc: 'a 403 (RBAC may be fixed later)', failure: { status: 403 } as const },
  ])('retries the first LIST after $desc, with backoff', async ({ failure }) => {
    setPod('Pending');
    kube.server.failNext({ path: PODS_PATH, watch: false }, failure, 2);
    const r = start();
    await wakeFromBackoff(r.clock);
    await wakeFromBackoff(r.clock);
    await waitFor(() => r.pods.length === 1 && kube.server.openWatches === 1);
    expect(r.clock.requestedSleeps).toEqual([1000, 2000]);
    expect(lists()).toHaveLength(3);
  });

  it('bounds the LIST by the given timeout and retries it', async () => {
    setPod('Pending');
    kube.server.failNext({ path: PODS_PATH, watch: false }, 'hang');
    const r = start(150);
    await wakeFromBackoff(r.clock);
    await waitFor(() => r.pods.length === 1);
    expect(lists()).toHaveLength(2);
  });

  it('backs off after an ERROR event other than 410', async () => {
    setPod('Pending');
    kube.server.failNext({ path: PODS_PATH, watch: true }, { status: 500 });
    const r = start();
    await wakeFromBackoff(r.clock);
    await waitFor(() => kube.server.openWatches === 1);
    expect(r.clock.requestedSleeps).toEqual([1000]);
    expect(lists()).toHaveLength(1);
  });

  it('makes no periodic requests while the watch is healthy', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    await r.clock.advance(6 * 60 * 60 * 1000);
    await settle(20);
    expect(requests()).toHaveLength(2); // one LIST, one WATCH
    expect(requests().filter((q) => q.path === `${PODS_PATH}/${POD}`)).toEqual([]);
  });

  it('stops on abort, mid-stream or mid-backoff, leaving nothing behind', async () => {
    setPod('Pending');
    const r = start();
    await waitFor(() => kube.server.openWatches === 1);
    await r.stop();
    await waitFor(() => kube.server.openWatches === 0);

    kube.server.failNext({ path: PODS_PATH, watch: true }, 'drop');
    const r2 = start();
    await waitFor(() => r2.clock.pending().length === 1);
    await r2.stop();
    expect(r2.clock.pending()).toEqual([]);
  });
});

describe('listWatch on nodes', () => {
  it('gives the full list, then each change, and the full list again after a 410', async () => {
    kube.server.set('nodes', { metadata: { name: 'node-a' } });
    kube.server.set('nodes', { metadata: { name: 'node-b' } });
    const clock = new FakeClock();
    const controller = new AbortController();
    const seen: string[] = [];
    const done = listWatch<{ metadata?: { name?: string; resourceVersion?: string } }>({
      api,
      path: '/api/v1/nodes',
      timeoutMs: 5_000,
      clock,
      log,
      signal: controller.signal,
      onList: (items) => {
        seen.push(`list ${items.map((n) => n.metadata?.name).join(',')}`);
        return undefined;
      },
      onEvent: (type, node) => {
        seen.push(`${type} ${node.metadata?.name}`);
        return undefined;
      },
    });
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.set('nodes', { metadata: { name: 'node-a', labels: { upgraded: 'yes' } } });
    kube.server.delete('nodes', undefined, 'node-b');
    await waitFor(() => seen.length === 3);
    kube.server.dropWatches();
    await waitFor(() => clock.pending().length === 1);
    // While the watch is down: a new node, other changes, and the history compacted.
    kube.server.set('nodes', { metadata: { name: 'node-c' } });
    kube.server.set('pods', testPod({ name: 'other-pod', namespace: NS }));
    kube.server.compact();
    await clock.advanceToNext();
    await waitFor(() => seen.length === 4 && kube.server.openWatches === 1);
    const nodeWatches = kube.server.requests.filter((r) => r.path === '/api/v1/nodes' && r.watch);
    expect(nodeWatches.at(-1)?.query.resourceVersion).toBe(kube.server.resourceVersion);
    controller.abort();
    await done;
    kube.server.delete('nodes', undefined, 'node-a');
    kube.server.delete('nodes', undefined, 'node-c');
    expect(seen).toEqual(['list node-a,node-b', 'MODIFIED node-a', 'DELETED node-b', 'list node-a,node-c']);
  });
});
