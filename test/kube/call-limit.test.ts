// KubeApi's `maxConcurrentCalls` (the fleet's 16): calls beyond it wait their turn, and a
// call's deadline runs from its turn, not from when it was made — else under load calls
// time out before they start, or are cut off mid-answer and close their connection
// (docs/performance.md, Fleet). One slot here, held by a GET the fake server never answers.
// The deadlines are KubeApi's wall-clock bounds on I/O (no Clock to fake): the test relies
// only on their order — the queued call's deadline is shorter than its wait.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeApi, KubeError } from '../../src/kube/api.ts';
import type { Pod } from '../../src/kube/types.ts';
import { type FakeKube, startFakeKube, testPod } from '../support/fake-kube-api.ts';

const HUNG = '/api/v1/namespaces/tasks/pods/hung-pod';
const TASK = '/api/v1/namespaces/tasks/pods/task-pod';

let kube: FakeKube;
let api: KubeApi;

beforeEach(async () => {
  kube = await startFakeKube();
  kube.server.set('pods', testPod({ name: 'hung-pod' }));
  kube.server.set('pods', testPod({ name: 'task-pod' }));
});
afterEach(async () => {
  await api.close();
  await kube.close();
});

/** A KubeApi with one slot, and a GET holding it until its own deadline (or signal) ends it. */
function holdTheSlot(timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  api = KubeApi.load({ kubeconfig: kube.kubeconfigPath, maxConcurrentCalls: 1 });
  kube.server.failNext({ method: 'GET', path: HUNG }, 'hang');
  return api.get<Pod>(HUNG, { timeoutMs, signal }).catch((error: unknown) => error);
}

function seen(path: string): number {
  return kube.server.requests.filter((request) => request.path === path).length;
}

describe('KubeApi maxConcurrentCalls', () => {
  it('starts a queued call’s deadline when it gets its turn', async () => {
    const first = holdTheSlot(1_000);
    // Made while the slot is held; its 500 ms would be over before the slot frees.
    const second = api.get<Pod>(TASK, { timeoutMs: 500 });
    expect(await first).toMatchObject({ code: 'KUBE_TIMEOUT' });
    expect((await second).metadata?.name).toBe('task-pod');
  });

  it('waits for the turn before sending, and a caller’s abort ends the wait at once', async () => {
    const holder = new AbortController();
    const first = holdTheSlot(60_000, holder.signal);
    const queued = new AbortController();
    const second = api.get<Pod>(TASK, { timeoutMs: 60_000, signal: queued.signal }).catch((e: unknown) => e);
    await expect.poll(() => seen(HUNG)).toBe(1);
    queued.abort();
    const error = await second;
    expect(error).toBeInstanceOf(KubeError);
    expect(error).toMatchObject({ code: 'KUBE_ABORTED' });
    expect(seen(TASK)).toBe(0); // never sent: the slot is still held
    holder.abort();
    expect(await first).toMatchObject({ code: 'KUBE_ABORTED' });
  });

  it('lets a list through while the one-off calls hold every slot', async () => {
    const holder = new AbortController();
    const first = holdTheSlot(60_000, holder.signal);
    await expect.poll(() => seen(HUNG)).toBe(1);
    // A (re)list of the pod source must not queue behind the Job reads and marks.
    const list = await api.list<Pod>('/api/v1/namespaces/tasks/pods', {}, { timeoutMs: 5_000 });
    expect(list.items.map((pod) => pod.metadata?.name).sort()).toEqual(['hung-pod', 'task-pod']);
    holder.abort();
    await first;
  });
});
