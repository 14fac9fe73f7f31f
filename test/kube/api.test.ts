import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubeApi, KubeError } from '../../src/kube/api.ts';
import type { Pod } from '../../src/kube/types.ts';
import { kubeBackoffMs } from '../../src/kube/backoff.ts';
import { FakeKubeApiServer } from '../../src/testing/fake-kube-api-server.ts';
import { jobFailedCount, owningJobName } from '../../src/kube/job.ts';
import { readUntilAnswered } from '../../src/kube/read-retry.ts';
import { FakeClock, waitFor } from '../support/fake-clock.ts';
import { type FakeKube, kubeFailure, startFakeKube, testPod, testTls } from '../support/fake-kube-api.ts';

const call = { timeoutMs: 5_000 };

let kube: FakeKube;
let api: KubeApi;

beforeAll(async () => {
  kube = await startFakeKube();
  api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
  kube.server.set('pods', testPod({ name: 'task-pod', owner: { kind: 'Job', name: 'task-job' } }));
  kube.server.set('pods', testPod({ name: 'other-pod' }));
  kube.server.set('jobs', { metadata: { name: 'task-job', namespace: 'tasks' }, status: { failed: 2 } });
  kube.server.set('nodes', { metadata: { name: 'node-1', labels: { 'kubernetes.io/arch': 'amd64' } } });
});
afterAll(async () => {
  await api.close();
  await kube.close();
});

/** Every way an error could show the token: message, cause, JSON, stack. */
function exposes(error: unknown, secret: string): boolean {
  const err = error as Error;
  const texts = [
    err.message,
    err.stack,
    String(err.cause ?? ''),
    JSON.stringify(err),
    String((err.cause as Error)?.stack),
  ];
  return texts.some((text) => text?.includes(secret));
}

describe('KubeApi reads over HTTPS', () => {
  it('gets a pod, a job, a node and the version', async () => {
    const pod = await api.getPod('tasks', 'task-pod', call);
    expect(pod.metadata?.name).toBe('task-pod');
    expect(typeof pod.metadata?.creationTimestamp).toBe('string'); // wire format, not Date
    expect((await api.getJob('tasks', 'task-job', call)).status?.failed).toBe(2);
    expect((await api.getNode('node-1', call)).metadata?.labels?.['kubernetes.io/arch']).toBe('amd64');
    kube.server.setVersion({ gitVersion: 'v1.30.2-eks-1', major: '1', minor: '30+' });
    expect(await api.getVersion(call)).toMatchObject({ gitVersion: 'v1.30.2-eks-1', minor: '30+' });
  });

  it('lists one pod by name with the server resourceVersion, not the pod one', async () => {
    kube.server.set('pods', testPod({ name: 'other-pod', containers: ['a', 'b'] })); // bumps the server RV
    const podsPath = '/api/v1/namespaces/tasks/pods';
    const byName = (name: string) =>
      api.list<Pod>(podsPath, { fieldSelector: `metadata.name=${name}` }, call);
    const { items, resourceVersion } = await byName('task-pod');
    expect(items.map((pod) => pod.metadata?.name)).toEqual(['task-pod']);
    expect(resourceVersion).toBe(kube.server.resourceVersion);
    expect(resourceVersion).not.toBe(items[0]?.metadata?.resourceVersion);
    const request = kube.server.requests.at(-1);
    expect(request).toMatchObject({ path: podsPath, query: { fieldSelector: 'metadata.name=task-pod' } });
    expect(await byName('missing')).toEqual({ items: [], resourceVersion: kube.server.resourceVersion });
  });

  it('lists nodes generically', async () => {
    const nodes = await api.list<{ metadata?: { name?: string } }>('/api/v1/nodes', {}, call);
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node-1']);
    expect(nodes.resourceVersion).toBe(kube.server.resourceVersion);
  });

  it('reuses one TLS connection across calls', async () => {
    const before = kube.server.connections;
    for (let i = 0; i < 5; i++) await api.getPod('tasks', 'task-pod', call);
    await api.list('/api/v1/namespaces/tasks/pods', {}, call);
    expect(kube.server.connections - before).toBeLessThanOrEqual(1);
  });

  it('turns a Status answer into a KubeError with status, reason and path', async () => {
    const notFound = await kubeFailure(api.getPod('tasks', 'nope', call));
    expect(notFound).toMatchObject({
      code: 'KUBE_HTTP',
      status: 404,
      reason: 'NotFound',
      path: '/api/v1/namespaces/tasks/pods/nope',
    });
    expect(notFound.message).toContain('pods "nope" not found');

    kube.server.forbid('nodes');
    try {
      const forbidden = await kubeFailure(api.getNode('node-1', call));
      expect(forbidden).toMatchObject({ status: 403, reason: 'Forbidden', path: '/api/v1/nodes/node-1' });
    } finally {
      kube.server.allow('nodes');
    }
  });

  it('never puts the bearer token in an error', async () => {
    const token = kube.server.token;
    kube.server.failNext({ path: /task-pod$/ }, { status: 500, message: 'etcd is sad' });
    kube.server.failNext({ path: /task-pod$/ }, 'drop');
    kube.server.failNext({ path: /task-pod$/ }, 'hang');
    const errors = [
      await kubeFailure(api.getPod('tasks', 'task-pod', call)),
      await kubeFailure(api.getPod('tasks', 'task-pod', call)),
      await kubeFailure(api.getPod('tasks', 'task-pod', { timeoutMs: 150 })),
      await kubeFailure(api.getPod('tasks', 'nope', call)),
    ];
    expect(errors.map((e) => e.code)).toEqual(['KUBE_HTTP', 'KUBE_NETWORK', 'KUBE_TIMEOUT', 'KUBE_HTTP']);
    for (const error of errors) expect(exposes(error, token)).toBe(false);

    const dir = await mkdtemp(path.join(tmpdir(), 'kube-bad-'));
    try {
      const wrong = path.join(dir, 'wrong');
      await writeFile(wrong, kube.server.kubeconfig().replace(token, 'not-the-token'));
      const unauthorized = await kubeFailure(
        KubeApi.load({ kubeconfig: wrong }).getPod('tasks', 'task-pod', call),
      );
      expect(unauthorized).toMatchObject({ status: 401, reason: 'Unauthorized' });
      expect(exposes(unauthorized, 'not-the-token')).toBe(false);

      const broken = path.join(dir, 'broken');
      await writeFile(broken, `${kube.server.kubeconfig()}\n  : [unclosed\n`);
      expect(() => KubeApi.load({ kubeconfig: broken })).toThrow(KubeError);
      try {
        KubeApi.load({ kubeconfig: broken });
      } catch (error) {
        expect(error).toMatchObject({ code: 'KUBE_CONFIG' });
        expect(exposes(error, token)).toBe(false);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bounds a call by its timeout and honours the caller signal', async () => {
    kube.server.failNext({ path: '/api/v1/nodes/node-1' }, 'hang');
    const timedOut = await kubeFailure(api.getNode('node-1', { timeoutMs: 100 }));
    expect(timedOut.code).toBe('KUBE_TIMEOUT');

    kube.server.failNext({ path: '/api/v1/nodes/node-1' }, 'hang');
    const count = () => kube.server.requests.filter((r) => r.path === '/api/v1/nodes/node-1').length;
    const before = count();
    const controller = new AbortController();
    const pending = api.getNode('node-1', { timeoutMs: 10_000, signal: controller.signal });
    await waitFor(() => count() > before);
    controller.abort();
    expect((await kubeFailure(pending)).code).toBe('KUBE_ABORTED');
  });

  it('reports a missing kubeconfig file as KUBE_CONFIG', () => {
    expect(() => KubeApi.load({ kubeconfig: '/nonexistent/kubeconfig' })).toThrow(
      /KUBECONFIG: cannot read \/nonexistent\/kubeconfig: ENOENT/,
    );
  });
});

describe('KubeApi.watch', () => {
  it('delivers events, reports bad lines, and ends when the server ends the stream', async () => {
    const events: string[] = [];
    const badLines: string[] = [];
    const ended = api.watch<{ metadata?: { name?: string } }>(
      '/api/v1/namespaces/tasks/pods',
      { resourceVersion: kube.server.resourceVersion },
      {
        signal: new AbortController().signal,
        connectTimeoutMs: 5_000,
        idleTimeoutMs: 5_000,
        onEvent: (event) =>
          events.push(`${event.type} ${event.type === 'ERROR' ? '' : event.object.metadata?.name}`),
        onBadLine: (line) => badLines.push(line),
      },
    );
    await waitFor(() => kube.server.openWatches === 1);
    kube.server.set('pods', testPod({ name: 'task-pod', status: { phase: 'Running' } }));
    kube.server.writeToWatches('{"type":"MODIFIED","obj');
    kube.server.writeToWatches('{"type":"SOMETHING","object":{}}');
    kube.server.delete('pods', 'tasks', 'other-pod');
    await waitFor(() => events.length === 2);
    kube.server.endWatches();
    expect(await ended).toBe('closed');
    expect(events).toEqual(['MODIFIED task-pod', 'DELETED other-pod']);
    expect(badLines).toEqual(['{"type":"MODIFIED","obj', '{"type":"SOMETHING","object":{}}']);
    kube.server.set('pods', testPod({ name: 'other-pod' }));
  });

  it('ends a silent stream as idle, and fails a non-200 with its status', async () => {
    const options = {
      signal: new AbortController().signal,
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 100,
      onEvent: () => {},
    };
    expect(await api.watch('/api/v1/nodes', { resourceVersion: kube.server.resourceVersion }, options)).toBe(
      'idle',
    );
    kube.server.forbid('nodes');
    try {
      const forbidden = await kubeFailure(api.watch('/api/v1/nodes', {}, options));
      expect(forbidden).toMatchObject({ status: 403, code: 'KUBE_HTTP' });
      expect(forbidden.path).toBe('/api/v1/nodes?watch=true');
    } finally {
      kube.server.allow('nodes');
    }
  });
});

describe('KubeApi.load in a cluster', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('uses the service-account token, CA and API address when no kubeconfig is given; follows the token as it rotates (T1)', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'in-cluster-'));
    const saDir = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    await mkdir(saDir, { recursive: true });
    kube.server.addToken('bound-token-a');
    kube.server.addToken('bound-token-b');
    await writeFile(path.join(saDir, 'token'), 'bound-token-a');
    await writeFile(path.join(saDir, 'ca.crt'), testTls.ca);
    await writeFile(path.join(saDir, 'namespace'), 'tasks');
    const url = new URL(kube.server.url);
    delete process.env.KUBECONFIG;
    process.env.KUBERNETES_SERVICE_HOST = url.hostname;
    process.env.KUBERNETES_SERVICE_PORT = url.port;
    const inCluster = KubeApi.load({ inClusterRoot: root });
    try {
      expect(inCluster.server).toBe(kube.server.url);
      expect((await inCluster.getPod('tasks', 'task-pod', call)).metadata?.name).toBe('task-pod');
      // The kubelet rotated the bound token and the old one expired: the 401 makes it read the file again.
      await writeFile(path.join(saDir, 'token'), 'bound-token-b');
      kube.server.revokeToken('bound-token-a');
      expect((await inCluster.getPod('tasks', 'task-pod', call)).metadata?.name).toBe('task-pod');
      expect(kube.server.requests.at(-1)?.token).toBe('bound-token-b');
    } finally {
      await inCluster.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('fails plainly with no cluster and no ~/.kube/config', () => {
    delete process.env.KUBECONFIG;
    delete process.env.KUBERNETES_SERVICE_HOST;
    process.env.HOME = '/nonexistent-home';
    expect(() => KubeApi.load({})).toThrow(/no Kubernetes configuration/);
  });
});

describe('the fake API over plain HTTP (the demo)', () => {
  it('is reachable with insecure-skip-tls-verify', async () => {
    const server = await FakeKubeApiServer.start();
    const dir = await mkdtemp(path.join(tmpdir(), 'kube-http-'));
    const file = path.join(dir, 'kubeconfig');
    await writeFile(file, server.kubeconfig());
    const plain = KubeApi.load({ kubeconfig: file });
    try {
      server.set('pods', testPod({}));
      expect((await plain.getPod('tasks', 'task-pod', call)).metadata?.name).toBe('task-pod');
    } finally {
      await plain.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('readUntilAnswered', () => {
  it('retries a failing read with capped backoff until it succeeds', async () => {
    const clock = new FakeClock();
    kube.server.failNext({ path: '/apis/batch/v1/namespaces/tasks/jobs/task-job' }, { status: 500 }, 2);
    const stuck: number[] = [];
    const result = readUntilAnswered((c) => api.getJob('tasks', 'task-job', c), {
      clock,
      signal: new AbortController().signal,
      timeoutMs: 5_000,
      onStuck: (_error, failures) => stuck.push(failures),
    });
    await waitFor(() => clock.pending().length === 1);
    await clock.advanceToNext();
    await waitFor(() => clock.pending().length === 1);
    await clock.advanceToNext();
    const job = await result;
    expect(job).not.toBeInstanceOf(KubeError);
    expect(jobFailedCount(job as Exclude<typeof job, KubeError>)).toBe(2);
    expect(clock.requestedSleeps).toEqual([1000, 2000]);
    expect(stuck).toEqual([]); // two failures are not yet stuck
  });

  it('reports a read that keeps failing as stuck, once, after three tries, and keeps trying', async () => {
    const clock = new FakeClock();
    const path = '/apis/batch/v1/namespaces/tasks/jobs/task-job';
    kube.server.failNext({ path }, { status: 500 }, 6);
    const stuck: { status: number | undefined; failures: number }[] = [];
    const result = readUntilAnswered((c) => api.getJob('tasks', 'task-job', c), {
      clock,
      signal: new AbortController().signal,
      timeoutMs: 5_000,
      onStuck: (error, failures) => stuck.push({ status: error.status, failures }),
    });
    for (let i = 0; i < 6; i++) {
      await waitFor(() => clock.pending().length === 1);
      if (i === 1) expect(stuck).toEqual([]);
      await clock.advanceToNext();
    }
    expect(await result).not.toBeInstanceOf(KubeError);
    expect(stuck).toEqual([{ status: 500, failures: 3 }]);
    expect(clock.requestedSleeps).toEqual([1000, 2000, 4000, 8000, 16000, 30000]);
  });

  it.each([
    { desc: '403 Forbidden', status: 403 },
    { desc: '404 NotFound', status: 404 },
  ])('takes $desc as final, without retrying', async ({ status }) => {
    const clock = new FakeClock();
    const path = '/api/v1/nodes/node-1';
    const before = kube.server.requests.filter((r) => r.path === path).length;
    kube.server.failNext({ path }, { status });
    const result = await readUntilAnswered((c) => api.getNode('node-1', c), {
      clock,
      signal: new AbortController().signal,
      timeoutMs: 5_000,
    });
    expect(result).toBeInstanceOf(KubeError);
    expect((result as KubeError).status).toBe(status);
    expect(kube.server.requests.filter((r) => r.path === path).length - before).toBe(1);
    expect(clock.requestedSleeps).toEqual([]);
  });

  it('stops when cancelled while waiting', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    kube.server.failNext({ path: '/api/v1/nodes/node-1' }, { status: 503 }, 5);
    const result = readUntilAnswered((c) => api.getNode('node-1', c), {
      clock,
      signal: controller.signal,
      timeoutMs: 5_000,
    });
    await waitFor(() => clock.pending().length === 1);
    controller.abort(new Error('stopping'));
    await expect(result).rejects.toThrow('stopping');
    expect(clock.pending()).toEqual([]);
  });
});

describe('helpers', () => {
  it('kubeBackoffMs doubles from 1 s to a 30 s cap, jittered ±50%', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => kubeBackoffMs(n, 0.5))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    expect(kubeBackoffMs(1, 0)).toBe(500);
    expect(kubeBackoffMs(2, 0.999)).toBe(2998);
    expect(kubeBackoffMs(6, 0.999)).toBe(30000);
    expect(kubeBackoffMs(6, 0)).toBe(15000);
  });

  it('finds the owning Job and its failures', () => {
    const owned = testPod({ owner: { kind: 'Job', name: 'j1' } });
    expect(owningJobName(owned as never)).toBe('j1');
    expect(
      owningJobName(testPod({ owner: { kind: 'ReplicaSet', name: 'rs', apiVersion: 'apps/v1' } }) as never),
    ).toBe(undefined);
    expect(owningJobName(testPod({}) as never)).toBe(undefined);
    expect(jobFailedCount({ status: {} })).toBe(0);
    expect(jobFailedCount({ status: { failed: 3 } })).toBe(3);
    expect(jobFailedCount({})).toBe(0);
  });
});
