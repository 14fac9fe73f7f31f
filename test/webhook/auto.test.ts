// `auto` sidecar mode against the fake API server: the node watch decides
// native vs regular, and a review admitted right after a node change already
// gets the new mode.
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { type RunningWebhook, startWebhook } from '../../src/webhook/webhook.ts';
import { waitFor } from '../support/fake-clock.ts';
import { type FakeKube, startFakeKube } from '../support/fake-kube-api.ts';
import {
  admissionReview,
  applyAnswer,
  httpsClient,
  jobPod,
  review,
  silentLogger,
  webhookConfig,
} from '../support/webhook-helpers.ts';

const node = (name: string, kubeletVersion: string) => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  status: { nodeInfo: { kubeletVersion, architecture: 'amd64', operatingSystem: 'linux' } },
});

let client: Agent;
let kube: FakeKube;
let webhook: RunningWebhook | undefined;

beforeAll(async () => {
  client = await httpsClient();
});
afterAll(async () => {
  await client.close();
});
afterEach(async () => {
  await webhook?.stop(1_000);
  webhook = undefined;
  await kube?.close();
});

async function startAuto(): Promise<RunningWebhook> {
  webhook = await startWebhook(
    await webhookConfig({ sidecarMode: 'auto', kubeconfig: kube.kubeconfigPath }),
    {
      clock: systemClock,
      logger: silentLogger,
      pollIntervalMs: 100,
      processMetrics: false,
    },
  );
  return webhook;
}

/** Where a review puts the agent right now. */
async function placement(w: RunningWebhook): Promise<'native' | 'regular' | 'none'> {
  const pod = jobPod();
  const patched = applyAnswer(pod, await review(client, w.port, admissionReview(pod)));
  if (patched.spec?.initContainers?.[0]?.name === 'tes-heartbeat') {
    expect(patched.spec.initContainers[0].restartPolicy).toBe('Always');
    return 'native';
  }
  if (patched.spec?.containers.at(-1)?.name === 'tes-heartbeat') return 'regular';
  return 'none';
}

/** The node list applied: the watch after it is open. */
async function nodesKnown(): Promise<void> {
  await waitFor(() => kube.server.openWatches === 1, 5_000, 'the node list read and the watch open');
}

async function modeGauge(w: RunningWebhook): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${w.healthPort}/metrics`)).text();
  return /tes_webhook_sidecar_mode\{mode="native"\} 1/.test(text)
    ? 'native'
    : /tes_webhook_sidecar_mode\{mode="regular"\} 1/.test(text)
      ? 'regular'
      : 'none';
}

describe('auto mode', () => {
  it('switches to regular when a 1.28 node joins and back to native when it is deleted', async () => {
    kube = await startFakeKube();
    kube.server.setVersion({ major: '1', minor: '30+', gitVersion: 'v1.30.4-eks-a737599' });
    kube.server.set('nodes', node('node-a', 'v1.30.4-eks-a737599'));
    kube.server.set('nodes', node('node-b', 'v1.29.8'));
    const w = await startAuto();
    await nodesKnown();
    expect(await placement(w)).toBe('native');
    expect(await modeGauge(w)).toBe('native');

    kube.server.set('nodes', node('node-old', 'v1.28.15-eks-1552ad0'));
    await waitFor(async () => (await placement(w)) === 'regular', 5_000, 'regular after the old node joined');
    expect(await modeGauge(w)).toBe('regular');

    kube.server.delete('nodes', undefined, 'node-old');
    await waitFor(async () => (await placement(w)) === 'native', 5_000, 'native after the old node left');
    expect(await modeGauge(w)).toBe('native');
  });

  it('follows a node upgraded in place (MODIFIED), and bookmarks change nothing', async () => {
    kube = await startFakeKube();
    kube.server.set('nodes', node('node-a', 'v1.31.0'));
    kube.server.set('nodes', node('node-b', 'v1.28.3'));
    const w = await startAuto();
    await nodesKnown();
    expect(await placement(w)).toBe('regular');
    kube.server.bookmark();
    kube.server.set('nodes', node('node-b', 'v1.29.0'));
    await waitFor(async () => (await placement(w)) === 'native', 5_000, 'native after the upgrade');
  });

  it('relists after 410 Gone and still follows changes', async () => {
    kube = await startFakeKube();
    kube.server.set('nodes', node('node-a', 'v1.31.0'));
    const w = await startAuto();
    await nodesKnown();
    const lists = () => kube.server.requests.filter((r) => r.path === '/api/v1/nodes' && !r.watch).length;
    expect(lists()).toBe(1);
    // History compacted while the watch was down: resuming gets 410.
    kube.server.compact();
    kube.server.set('nodes', node('node-old', 'v1.27.1'));
    kube.server.compact();
    kube.server.dropWatches();
    await waitFor(() => lists() === 2, 10_000, 'a relist');
    await waitFor(async () => (await placement(w)) === 'regular', 10_000, 'regular after the relist');
  });

  it('stays regular while the API server is older than 1.29, whatever the nodes', async () => {
    kube = await startFakeKube();
    kube.server.setVersion({ major: '1', minor: '28', gitVersion: 'v1.28.9' });
    kube.server.set('nodes', node('node-a', 'v1.31.0'));
    const w = await startAuto();
    await nodesKnown();
    expect(await placement(w)).toBe('regular');
  });

  it('is ready on its certificate alone and injects regular sidecars until the node list is read (rule I4)', async () => {
    kube = await startFakeKube();
    kube.server.set('nodes', node('node-a', 'v1.31.0'));
    kube.server.failNext({ path: '/api/v1/nodes', watch: false }, { status: 503 }, 1);
    const w = await startAuto();
    expect(w.readiness()).toEqual({ ready: true });
    expect(await placement(w)).toBe('regular');
    expect(await modeGauge(w)).toBe('regular');
    expect((await fetch(`http://127.0.0.1:${w.healthPort}/readyz`)).status).toBe(200);
    await waitFor(async () => (await placement(w)) === 'native', 5_000, 'native after the retry');
  });

  it('stays ready and regular while nodes cannot be read (403)', async () => {
    kube = await startFakeKube();
    kube.server.set('nodes', node('node-a', 'v1.31.0'));
    kube.server.forbid('nodes');
    const w = await startAuto();
    await waitFor(
      () => kube.server.requests.filter((r) => r.path === '/api/v1/nodes').length >= 1,
      5_000,
      'a node list refused',
    );
    expect(w.readiness()).toEqual({ ready: true });
    expect(await placement(w)).toBe('regular');
    expect(await modeGauge(w)).toBe('regular');
    kube.server.allow('nodes');
    // The list is retried with backoff (1 s, then 2 s…): the RBAC fix is picked up.
    await waitFor(async () => (await placement(w)) === 'native', 8_000, 'native once nodes can be read');
  });
});
