// The fake API server answers as kube-apiserver does where fleet mode depends on it:
// selectors on list and watch, the watch cache's DELETED for an object leaving a
// selection, patches with resourceVersion preconditions, deletion held by finalizers,
// and one client cut off or revoked while the others keep working.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKubeApiServer, type KubeObject } from '../../src/testing/fake-kube-api-server.ts';
import { FakeClock, waitFor } from '../support/fake-clock.ts';
import { testPod } from '../support/fake-kube-api.ts';

const NS = 'tasks';
const PODS = `/api/v1/namespaces/${NS}/pods`;
let server: FakeKubeApiServer;
let clock: FakeClock;
const streams: AbortController[] = [];

beforeEach(async () => {
  clock = new FakeClock();
  server = await FakeKubeApiServer.start({ clock });
});
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.abort();
  await server.close();
});

interface Answer {
  status: number;
  body: Record<string, unknown> & { items?: KubeObject[]; metadata?: Record<string, unknown> };
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; token?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${options.token ?? server.token}`,
      ...(options.body !== undefined && { 'content-type': options.contentType ?? 'application/json' }),
    },
    ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

interface WatchLine {
  type: string;
  object: KubeObject;
}

/** An open watch: the events received so far, and whether the stream ended. */
function watch(
  path: string,
  token = server.token,
): { events: WatchLine[]; ended: () => boolean; status: Promise<number> } {
  const events: WatchLine[] = [];
  let ended = false;
  const abort = new AbortController();
  streams.push(abort);
  const status = fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  }).then(async (res) => {
    const read = async () => {
      let rest = '';
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          rest += decoder.decode(chunk, { stream: true });
          const lines = rest.split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) if (line) events.push(JSON.parse(line) as WatchLine);
        }
      } catch {
        // aborted or cut
      }
      ended = true;
    };
    void read();
    return res.status;
  });
  return { events, ended: () => ended, status };
}

const names = (answer: Answer) => (answer.body.items ?? []).map((item) => item.metadata?.name);
const labelled = (
  name: string,
  labels: Record<string, string>,
  extra: Partial<KubeObject> = {},
): KubeObject => {
  const pod = testPod({ name, namespace: NS, nodeName: 'node-a' });
  return { ...pod, ...extra, metadata: { ...pod.metadata, labels } };
};
const rv = (object: KubeObject | undefined) => object?.metadata?.resourceVersion;

describe('selectors', () => {
  beforeEach(() => {
    server.set('pods', labelled('a', { fleet: 'true', tier: 'gold' }));
    server.set('pods', labelled('b', { fleet: 'true', tier: 'silver' }));
    server.set('pods', labelled('c', { fleet: 'false' }));
    server.set('pods', labelled('d', {}));
    server.set('pods', {
      ...labelled('e', { fleet: 'true' }),
      metadata: { name: 'e', namespace: 'other', labels: { fleet: 'true' } },
    });
    server.set('pods', {
      ...testPod({ name: 'f', namespace: NS, nodeName: 'node-b' }),
      status: { phase: 'Running' },
    });
  });

  it('label selectors on a list, per namespace and cluster-wide, as labels.Parse reads them', async () => {
    const list = async (selector: string, path = PODS) =>
      names(await call('GET', `${path}?labelSelector=${encodeURIComponent(selector)}`));
    expect(await list('fleet=true')).toEqual(['a', 'b']);
    expect(await list('fleet==true', '/api/v1/pods')).toEqual(['e', 'a', 'b']);
    expect(await list('fleet!=true')).toEqual(['c', 'd', 'f']); // without the label matches too
    expect(await list('tier in (gold, bronze)')).toEqual(['a']);
    expect(await list('tier notin (gold)')).toEqual(['b', 'c', 'd', 'f']);
    expect(await list('tier')).toEqual(['a', 'b']);
    expect(await list('!tier')).toEqual(['c', 'd', 'f']);
    expect(await list('fleet=true,tier!=gold')).toEqual(['b']);
    const bad = await call('GET', `${PODS}?labelSelector=${encodeURIComponent('tier in ()')}`);
    expect(bad.status).toBe(400);
  });

  it('field selectors: spec.nodeName, status.phase, != ; an unsupported field is 400', async () => {
    const list = async (selector: string) =>
      names(await call('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(selector)}`));
    expect(await list('spec.nodeName=node-b')).toEqual(['f']);
    expect(await list('status.phase!=Pending,metadata.namespace=tasks')).toEqual(['f']);
    expect(await list('metadata.name=e')).toEqual(['e']);
    const bad = await call('GET', `/api/v1/pods?fieldSelector=spec.hostname%3Dx`);
    expect(bad).toMatchObject({
      status: 400,
      body: { reason: 'BadRequest', message: 'field label not supported: spec.hostname' },
    });
  });

  it('pages a selected list with limit/continue, without remainingItemCount', async () => {
    const first = await call('GET', `/api/v1/pods?labelSelector=fleet%3Dtrue&limit=2`);
    expect(names(first)).toEqual(['e', 'a']);
    expect(first.body.metadata?.remainingItemCount).toBeUndefined();
    const next = await call(
      'GET',
      `/api/v1/pods?labelSelector=fleet%3Dtrue&limit=2&continue=${first.body.metadata?.continue}`,
    );
    expect(names(next)).toEqual(['b']);
    expect(next.body.metadata?.continue).toBeUndefined();
  });
});

describe('a selected watch, as the watch cache serves it', () => {
  it('an object entering the selection is ADDED, leaving it DELETED with its last matching state', async () => {
    const start = server.set('pods', labelled('p', { fleet: 'false' }));
    const w = watch(`/api/v1/pods?watch=true&labelSelector=fleet%3Dtrue&resourceVersion=${rv(start)}`);
    expect(await w.status).toBe(200);
    server.set('pods', labelled('other', { fleet: 'false' })); // never matches: nothing
    const entered = server.set('pods', labelled('p', { fleet: 'true' }));
    const changed = server.set('pods', labelled('p', { fleet: 'true', step: '2' }));
    const left = server.set('pods', labelled('p', { fleet: 'false', step: '3' }));
    await waitFor(() => w.events.length >= 3, 2_000, 'three events');
    expect(w.events.map((e) => [e.type, e.object.metadata?.name])).toEqual([
      ['ADDED', 'p'],
      ['MODIFIED', 'p'],
      ['DELETED', 'p'],
    ]);
    expect(rv(w.events[0]?.object)).toBe(rv(entered));
    expect(rv(w.events[1]?.object)).toBe(rv(changed));
    // The previous object (still labelled fleet=true, step 2) with the change's resourceVersion.
    expect(w.events[2]?.object.metadata).toMatchObject({
      labels: { fleet: 'true', step: '2' },
      resourceVersion: rv(left),
    });

    // The same from history: a watch from the first resourceVersion replays the three.
    const replay = watch(`/api/v1/pods?watch=true&labelSelector=fleet%3Dtrue&resourceVersion=${rv(start)}`);
    await waitFor(() => replay.events.length >= 3, 2_000, 'replayed');
    expect(replay.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('a field-selected watch sees a pod leave its node as DELETED', async () => {
    server.set('pods', testPod({ name: 'q', namespace: NS, nodeName: 'node-a' }));
    const w = watch(`/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode-a`);
    await waitFor(() => w.events.length === 1, 2_000, 'initial ADDED');
    server.set('pods', testPod({ name: 'q', namespace: NS, nodeName: 'node-b' }));
    await waitFor(() => w.events.length === 2, 2_000, 'DELETED');
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
  });
});

describe('PATCH', () => {
  it('merge patch: null deletes a key, a list is replaced whole; a stale resourceVersion is 409', async () => {
    const pod = server.set('pods', {
      ...labelled('m', { fleet: 'true', gone: 'soon' }),
      metadata: { name: 'm', namespace: NS, labels: { fleet: 'true', gone: 'soon' }, finalizers: ['a', 'b'] },
    });
    const patched = await call('PATCH', `${PODS}/m`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { gone: null, added: 'x' }, finalizers: ['b'], resourceVersion: rv(pod) } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.metadata).toMatchObject({ labels: { fleet: 'true', added: 'x' }, finalizers: ['b'] });
    expect(patched.body.metadata?.labels).not.toHaveProperty('gone');
    expect(Number(rv(patched.body))).toBeGreaterThan(Number(rv(pod)));

    const stale = await call('PATCH', `${PODS}/m`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { finalizers: [], resourceVersion: rv(pod) } },
    });
    expect(stale).toMatchObject({
      status: 409,
      body: {
        reason: 'Conflict',
        message:
          'Operation cannot be fulfilled on pods "m": the object has been modified; please apply your changes to the latest version and try again',
      },
    });
    expect(server.get('pods', NS, 'm')?.metadata?.finalizers).toEqual(['b']);

    // A patch that changes nothing writes nothing: the same resourceVersion, no event.
    const same = await call('PATCH', `${PODS}/m`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { finalizers: ['b'] } },
    });
    expect(rv(same.body)).toBe(rv(patched.body));
  });

  it('JSON Patch: a failed test is 422 and changes nothing; a holding one applies; other types 415', async () => {
    const pod = server.set('pods', {
      ...labelled('j', {}),
      metadata: { name: 'j', namespace: NS, finalizers: ['x'] },
    });
    const patch = (ops: unknown, contentType = 'application/json-patch+json') =>
      call('PATCH', `${PODS}/j`, { contentType, body: ops });
    const failed = await patch([
      { op: 'test', path: '/metadata/resourceVersion', value: '1' },
      { op: 'remove', path: '/metadata/finalizers/0' },
    ]);
    expect(failed).toMatchObject({ status: 422, body: { reason: 'Invalid' } });
    expect(server.get('pods', NS, 'j')?.metadata?.finalizers).toEqual(['x']);
    const held = await patch([
      { op: 'test', path: '/metadata/resourceVersion', value: rv(pod) },
      { op: 'remove', path: '/metadata/finalizers/0' },
    ]);
    expect(held.status).toBe(200);
    expect(held.body.metadata?.finalizers).toEqual([]);
    expect((await patch({}, 'application/strategic-merge-patch+json')).status).toBe(415);
  });
});

describe('DELETE with finalizers and grace periods', () => {
  it('a finalizer holds a deleted pod until it is removed; the watch sees MODIFIED then DELETED', async () => {
    const pod = server.set('pods', {
      ...labelled('t', { fleet: 'true' }),
      metadata: { name: 't', namespace: NS, finalizers: ['tes-heartbeat/final-heartbeat'] },
    });
    const w = watch(`${PODS}?watch=true&resourceVersion=${rv(pod)}`);
    expect(await w.status).toBe(200);
    const deleted = await call('DELETE', `${PODS}/t`, { body: { gracePeriodSeconds: 30 } });
    expect(deleted.status).toBe(200);
    expect(deleted.body.metadata).toMatchObject({
      deletionTimestamp: new Date(clock.now() + 30_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      deletionGracePeriodSeconds: 30,
    });
    // No new finalizer on an object being deleted.
    const added = await call('PATCH', `${PODS}/t`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { finalizers: ['tes-heartbeat/final-heartbeat', 'other'] } },
    });
    expect(added.status).toBe(422);
    // The kubelet's status update keeps the finalizer and the deletion under way.
    server.setStatus('pods', NS, 't', { phase: 'Succeeded' });
    expect(server.get('pods', NS, 't')?.metadata).toMatchObject({
      finalizers: ['tes-heartbeat/final-heartbeat'],
      deletionGracePeriodSeconds: 30,
    });
    // The kubelet's final delete (grace 0): the finalizer still holds it.
    expect(server.delete('pods', NS, 't')).toBe(true);
    expect(server.get('pods', NS, 't')?.metadata?.deletionGracePeriodSeconds).toBe(0);
    const released = await call('PATCH', `${PODS}/t`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { finalizers: null } },
    });
    expect(released.status).toBe(200);
    expect(server.get('pods', NS, 't')).toBeUndefined();
    await waitFor(() => w.events.length >= 4, 2_000, 'four events');
    expect(w.events.map((e) => e.type)).toEqual(['MODIFIED', 'MODIFIED', 'MODIFIED', 'DELETED']);
    // The DELETED event carries the last stored state, finalizer included, as the store's delete returns it.
    expect(w.events[3]?.object.metadata?.finalizers).toEqual(['tes-heartbeat/final-heartbeat']);
  });

  it('without finalizers: an unscheduled pod goes at once; a running one waits for the kubelet', async () => {
    server.set('pods', testPod({ name: 'unscheduled', namespace: NS }));
    expect((await call('DELETE', `${PODS}/unscheduled`)).status).toBe(200);
    expect(server.get('pods', NS, 'unscheduled')).toBeUndefined();
    server.set(
      'pods',
      testPod({ name: 'running', namespace: NS, nodeName: 'node-a', status: { phase: 'Running' } }),
    );
    await call('DELETE', `${PODS}/running`);
    expect(server.get('pods', NS, 'running')?.metadata?.deletionGracePeriodSeconds).toBe(30);
    server.delete('pods', NS, 'running', { gracePeriodSeconds: 0 });
    expect(server.get('pods', NS, 'running')).toBeUndefined();
  });
});

describe('many identities', () => {
  it('cutOff fails one token (requests and open watches) while another keeps working; restore ends it', async () => {
    server.addToken('leader');
    server.addToken('standby');
    const leaderWatch = watch(`${PODS}?watch=true`, 'leader');
    const standbyWatch = watch(`${PODS}?watch=true`, 'standby');
    await Promise.all([leaderWatch.status, standbyWatch.status]);
    server.cutOff('leader', { status: 503 });
    expect((await call('GET', PODS, { token: 'leader' })).status).toBe(503);
    expect((await call('GET', PODS, { token: 'standby' })).status).toBe(200);
    await waitFor(leaderWatch.ended, 2_000, 'the leader watch ended');
    server.set('pods', testPod({ name: 'seen', namespace: NS }));
    await waitFor(() => standbyWatch.events.length === 1, 2_000, 'the standby watch still runs');
    expect(standbyWatch.ended()).toBe(false);
    server.restore('leader');
    expect((await call('GET', PODS, { token: 'leader' })).status).toBe(200);
    expect(server.requests.filter((r) => r.token === 'leader').map((r) => r.watch)).toEqual([
      true,
      false,
      false,
    ]);
  });

  it("a 'hang' cut-off silences the token's watch; restore drops it", async () => {
    server.addToken('leader');
    const w = watch(`${PODS}?watch=true`, 'leader');
    await w.status;
    server.cutOff('leader', 'hang');
    server.set('pods', testPod({ name: 'unseen', namespace: NS }));
    await new Promise((r) => setTimeout(r, 50));
    expect(w.events).toEqual([]);
    server.restore('leader');
    await waitFor(w.ended, 2_000, 'dropped');
    expect(w.events).toEqual([]);
  });

  it('revokeToken: 401 from then on, and its open watches end', async () => {
    server.addToken('old');
    const w = watch(`${PODS}?watch=true`, 'old');
    await w.status;
    server.revokeToken('old');
    await waitFor(w.ended, 2_000, 'ended');
    expect(await call('GET', PODS, { token: 'old' })).toMatchObject({
      status: 401,
      body: { reason: 'Unauthorized' },
    });
    expect((await call('GET', PODS)).status).toBe(200);
  });
});

it("nodes: list and watch with resourceVersions; setNodeReady('Unknown') is a MODIFIED", async () => {
  server.set('nodes', { metadata: { name: 'node-a' }, status: { conditions: [] } });
  const list = await call('GET', '/api/v1/nodes');
  const w = watch(`/api/v1/nodes?watch=true&resourceVersion=${list.body.metadata?.resourceVersion}`);
  await w.status;
  server.setNodeReady('node-a', 'True');
  server.setNodeReady('node-a', 'Unknown');
  await waitFor(() => w.events.length === 2, 2_000, 'two events');
  expect(w.events.map((e) => e.type)).toEqual(['MODIFIED', 'MODIFIED']);
  expect(w.events[1]?.object.status).toHaveProperty('conditions', [
    expect.objectContaining({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown' }),
  ]);
});
