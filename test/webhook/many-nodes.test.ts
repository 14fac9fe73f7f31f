// `auto` mode on a 5,000-node cluster (rule I4). The fake API server holds 5,000
// Nodes shaped like a real EKS node (test/fixtures/nodes/eks-gpu.json) and answers a
// LIST slowly, per item returned, as a consistent read of a big collection is: one
// read of every node outlasts the request timeout, every page of 500 fits in it.
// The webhook is ready on its certificate at once, injects regular sidecars while it
// pages through the nodes, then native.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { KubeApi, KubeError } from '../../src/kube/api.ts';
import { NodeTracker } from '../../src/webhook/nodes.ts';
import { type RunningWebhook, startWebhook } from '../../src/webhook/webhook.ts';
import { waitFor } from '../support/fake-clock.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fake-kube-api.ts';
import {
  admissionReview,
  applyAnswer,
  fixtures,
  httpsClient,
  jobPod,
  review,
  silentLogger,
  webhookConfig,
} from '../support/webhook-helpers.ts';

const NODES = 5_000;
/** 0.4 ms per node: a full LIST takes 2 s, a page of 500 takes 0.2 s. */
const LIST_COST_MS_PER_ITEM = 0.4;
/** Bound on each request in these tests: a full LIST cannot make it, a page can. */
const REQUEST_TIMEOUT_MS = 1_000;

const realNode = JSON.parse(readFileSync(path.join(fixtures, 'nodes/eks-gpu.json'), 'utf8')) as KubeObject;

/** Node number `i`: the EKS capture renamed, with its own kubelet version. */
function node(i: number, kubeletVersion = 'v1.31.2-eks-7f9249a'): KubeObject {
  const copy = structuredClone(realNode) as KubeObject & { status: { nodeInfo: Record<string, string> } };
  const name = `ip-10-${Math.floor(i / 250)}-${i % 250}-7.ec2.internal`;
  copy.metadata = {
    ...copy.metadata,
    name,
    labels: { ...(copy.metadata?.labels as object), 'kubernetes.io/hostname': name },
  };
  delete copy.metadata.resourceVersion;
  delete copy.metadata.uid;
  copy.status.nodeInfo = { ...copy.status.nodeInfo, kubeletVersion };
  return copy;
}

function fill(kube: FakeKube, count: number, versionOf: (i: number) => string | undefined = () => undefined) {
  for (let i = 0; i < count; i++) kube.server.set('nodes', node(i, versionOf(i)));
}

let kube: FakeKube;
let api: KubeApi | undefined;
let webhook: RunningWebhook | undefined;
let client: Agent;
beforeAll(async () => {
  client = await httpsClient();
});
afterAll(async () => {
  await client.close();
});
afterEach(async () => {
  await webhook?.stop(1_000);
  webhook = undefined;
  await api?.close();
  api = undefined;
  await kube?.close();
});

/** A NodeTracker on the fake API server, running until `stop` aborts. */
function startTracker() {
  api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
  const tracker = new NodeTracker({
    api,
    clock: systemClock,
    logger: silentLogger,
    onMode: () => {},
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  const stop = new AbortController();
  return { tracker, stop, running: tracker.run(stop.signal) };
}

const nodeLists = (from = 0) =>
  kube.server.requests.slice(from).filter((r) => r.path === '/api/v1/nodes' && !r.watch);

async function placement(w: RunningWebhook): Promise<'native' | 'regular'> {
  const pod = jobPod();
  const patched = applyAnswer(pod, await review(client, w.port, admissionReview(pod)));
  return patched.spec?.initContainers?.[0]?.name === 'tes-heartbeat' ? 'native' : 'regular';
}

describe('auto mode with 5,000 nodes', () => {
  it('is ready at once, injects regular while paging, then native; every LIST is one page of 500', async () => {
    kube = await startFakeKube({ listCostMsPerItem: LIST_COST_MS_PER_ITEM });
    fill(kube, NODES);
    // The scenario is real: one consistent LIST of every node times out, a page does not.
    api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
    const unpaged = await api.list('/api/v1/nodes', {}, { timeoutMs: REQUEST_TIMEOUT_MS }).catch((e) => e);
    expect(unpaged).toBeInstanceOf(KubeError);
    expect((unpaged as KubeError).code).toBe('KUBE_TIMEOUT');
    const before = kube.server.requests.length;

    webhook = await startWebhook(
      await webhookConfig({ sidecarMode: 'auto', kubeconfig: kube.kubeconfigPath }),
      {
        clock: systemClock,
        logger: silentLogger,
        pollIntervalMs: 100,
        processMetrics: false,
        nodeList: { requestTimeoutMs: REQUEST_TIMEOUT_MS },
      },
    );
    const w = webhook;
    expect(w.readiness()).toEqual({ ready: true });
    expect((await fetch(`http://127.0.0.1:${w.healthPort}/readyz`)).status).toBe(200);
    expect(await placement(w)).toBe('regular');
    expect(w.mode()).toBe('regular');

    await waitFor(async () => (await placement(w)) === 'native', 15_000, 'native once every page is in');
    const lists = nodeLists(before);
    expect(lists).toHaveLength(NODES / 500);
    for (const [i, list] of lists.entries()) {
      expect(list.query.limit).toBe('500');
      expect(Boolean(list.query.continue)).toBe(i > 0);
    }
    // Followed from the first page's resourceVersion on: an old node joining is seen.
    kube.server.set('nodes', node(NODES, 'v1.28.15-eks-1552ad0'));
    await waitFor(async () => (await placement(w)) === 'regular', 5_000, 'regular after a 1.28 node joined');
  });

  it('one 1.28 node on the last of four pages keeps the whole cluster regular', async () => {
    kube = await startFakeKube({ listCostMsPerItem: LIST_COST_MS_PER_ITEM / 4 });
    fill(kube, 2_000, (i) => (i === 1_999 ? 'v1.28.15-eks-1552ad0' : undefined));
    const { tracker, stop, running } = startTracker();
    await waitFor(() => tracker.isSynced, 10_000, 'synced');
    expect(tracker.mode).toBe('regular');
    kube.server.delete('nodes', undefined, node(1_999).metadata?.name as string);
    await waitFor(() => tracker.mode === 'native', 5_000, 'native once the old node left');
    stop.abort();
    await running;
  });

  it('a continue token that expired mid-list (compaction) starts the LIST over', async () => {
    kube = await startFakeKube({ listCostMsPerItem: LIST_COST_MS_PER_ITEM / 4 });
    fill(kube, 2_000);
    const { tracker, stop, running } = startTracker();
    await waitFor(() => nodeLists().length === 2, 5_000, 'the second page requested');
    kube.server.set('nodes', node(2_000));
    kube.server.compact();
    await waitFor(() => tracker.isSynced, 10_000, 'synced after starting over');
    const lists = nodeLists();
    const restart = lists.findIndex((r, i) => i > 0 && !r.query.continue);
    expect(restart).toBeGreaterThan(0);
    expect(tracker.mode).toBe('native');
    stop.abort();
    await running;
  });
});
