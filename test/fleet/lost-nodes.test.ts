// Lost nodes against the fake API server: a node whose Ready condition turns Unknown (the
// node controller's word for a kubelet that stopped posting status) is lost until it
// reports again or is deleted; a change missed while the watch was down comes with the re-list.
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { LostNodes } from '../../src/fleet/lost-nodes.ts';
import { KubeApi } from '../../src/kube/api.ts';
import { FakeClock, waitFor } from '../support/fake-clock.ts';
import { startFakeKube } from '../support/fake-kube-api.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const kube = await startFakeKube();
  const api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
  for (const name of ['node-a', 'node-b']) kube.server.set('nodes', { metadata: { name } });
  kube.server.setNodeReady('node-a', 'True');
  kube.server.setNodeReady('node-b', 'Unknown');
  const changes: [string, boolean][] = [];
  const clock = new FakeClock();
  const nodes = new LostNodes({
    api,
    clock,
    log: pino({ level: 'silent' }),
    timeoutMs: 5_000,
    onChange: (node, lost) => changes.push([node, lost]),
  });
  const stop = new AbortController();
  const done = nodes.run(stop.signal);
  cleanups.push(
    () => kube.close(),
    () => api.close(),
    async () => {
      stop.abort();
      await done;
    },
  );
  await waitFor(() => kube.server.openWatches === 1, 5_000, 'the node watch');
  return { kube, clock, nodes, changes };
}

describe('lost nodes', () => {
  it('follows Ready Unknown on the list and the watch: lost, found again, deleted', async () => {
    const { kube, nodes, changes } = await setup();
    expect(changes).toEqual([['node-b', true]]);
    expect(nodes.isLost('node-b')).toBe(true);
    expect(nodes.isLost('node-a')).toBe(false);
    expect(nodes.isLost('node-unknown-to-us')).toBe(false);
    expect(nodes.isLost(undefined)).toBe(false);

    kube.server.setNodeReady('node-a', 'Unknown');
    await waitFor(() => nodes.isLost('node-a'), 5_000, 'node-a lost');
    kube.server.setNodeReady('node-b', 'True');
    await waitFor(() => !nodes.isLost('node-b'), 5_000, 'node-b found');
    // NotReady is a kubelet that reports (its pods' state is known): not lost.
    kube.server.setNodeReady('node-b', 'False');
    kube.server.delete('nodes', undefined, 'node-a');
    await waitFor(() => !nodes.isLost('node-a'), 5_000, 'node-a gone');
    expect(changes).toEqual([
      ['node-b', true],
      ['node-a', true],
      ['node-b', false],
      ['node-a', false],
    ]);
  });

  it('a change missed while the watch was down arrives with the re-list after 410', async () => {
    const { kube, clock, nodes, changes } = await setup();
    kube.server.dropWatches();
    kube.server.setNodeReady('node-b', 'True');
    kube.server.setNodeReady('node-a', 'Unknown');
    kube.server.compact();
    await waitFor(
      async () => {
        await clock.advance(1_000);
        return nodes.isLost('node-a') && !nodes.isLost('node-b');
      },
      5_000,
      'the re-list',
    );
    expect(changes).toEqual([
      ['node-b', true],
      ['node-b', false],
      ['node-a', true],
    ]);
  });
});
