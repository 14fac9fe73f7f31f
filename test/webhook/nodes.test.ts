// NodeTracker against the fake API server, time on the FakeClock: the version
// read backs off 1 s, 2 s, 4 s; the mode stays regular and unsynced until both
// the version and the node list are known; then it follows the nodes.
import { afterEach, describe, expect, it } from 'vitest';
import { KubeApi } from '../../src/kube/api.ts';
import { NodeTracker } from '../../src/webhook/nodes.ts';
import { FakeClock, waitFor } from '../support/fake-clock.ts';
import { type FakeKube, startFakeKube } from '../support/fake-kube-api.ts';
import { silentLogger } from '../support/webhook-helpers.ts';

const node = (name: string, kubeletVersion: string) => ({
  metadata: { name },
  status: { nodeInfo: { kubeletVersion } },
});

let kube: FakeKube | undefined;
let api: KubeApi | undefined;
afterEach(async () => {
  await api?.close();
  await kube?.close();
});

describe('NodeTracker', () => {
  it('backs off 1 s, 2 s, 4 s while /version fails, and is regular and unsynced until it answers', async () => {
    kube = await startFakeKube();
    kube.server.set('nodes', node('a', 'v1.30.0'));
    kube.server.failNext({ path: '/version' }, { status: 503 }, 3);
    api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
    const clock = new FakeClock();
    const modes: string[] = [];
    const tracker = new NodeTracker({ api, clock, logger: silentLogger, onMode: (m) => modes.push(m) });
    const stop = new AbortController();
    const running = tracker.run(stop.signal);

    for (const delay of [1_000, 2_000, 4_000]) {
      await waitFor(() => clock.pending().includes(delay), 5_000, `a ${delay} ms backoff`);
      expect(tracker.isSynced).toBe(false);
      expect(tracker.mode).toBe('regular');
      await clock.advance(delay);
    }
    await waitFor(() => tracker.isSynced, 5_000, 'synced');
    expect(clock.requestedSleeps.slice(0, 3)).toEqual([1_000, 2_000, 4_000]);
    expect(tracker.mode).toBe('native');
    expect(modes).toEqual(['native']);

    kube.server.set('nodes', node('b', 'v1.28.15-eks-1552ad0'));
    await waitFor(() => tracker.mode === 'regular', 5_000, 'regular');
    expect(modes).toEqual(['native', 'regular']);
    stop.abort();
    await running;
  });

  it('reads the version again later: a control plane upgraded in place is noticed', async () => {
    kube = await startFakeKube();
    kube.server.setVersion({ gitVersion: 'v1.28.9', minor: '28' });
    kube.server.set('nodes', node('a', 'v1.30.0'));
    api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
    const clock = new FakeClock();
    const tracker = new NodeTracker({
      api,
      clock,
      logger: silentLogger,
      onMode: () => {},
      versionRefreshMs: 60_000,
    });
    const stop = new AbortController();
    const running = tracker.run(stop.signal);
    await waitFor(() => tracker.isSynced, 5_000, 'synced');
    expect(tracker.mode).toBe('regular');
    kube.server.setVersion({ gitVersion: 'v1.29.1', minor: '29+' });
    await waitFor(() => clock.pending().includes(60_000), 5_000, 'the refresh timer');
    await clock.advance(60_000);
    await waitFor(() => tracker.mode === 'native', 5_000, 'native after the upgrade');
    stop.abort();
    await running;
  });
});
