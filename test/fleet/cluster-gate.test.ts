// The cluster scope's SendGate against the fake API server, time on a FakeClock: open
// (with a live signal) only while this process holds the Lease, closed per node while the
// node is lost, every change told to the listeners, and the Lease released by release().
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetConfig } from '../../src/config/fleet.ts';
import { ClusterGate } from '../../src/fleet/cluster-gate.ts';
import { KubeApi } from '../../src/kube/api.ts';
import { FakeClock, settle, waitFor } from '../support/fake-clock.ts';
import { startFakeKube } from '../support/fake-kube-api.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const CONFIG: Pick<FleetConfig, 'podName' | 'namespace' | 'lease' | 'timeoutMs'> = {
  podName: 'fleet-a',
  namespace: 'fleet',
  lease: { name: 'tes-heartbeat-fleet', durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
  timeoutMs: 5_000,
};

async function setup() {
  const kube = await startFakeKube();
  kube.server.set('nodes', { metadata: { name: 'node-1' } });
  kube.server.setNodeReady('node-1', 'True');
  const clock = new FakeClock();
  const gate = new ClusterGate({
    config: CONFIG,
    clock,
    log: pino({ level: 'silent' }),
    api: KubeApi.load({ kubeconfig: kube.kubeconfigPath }),
  });
  let changes = 0;
  gate.onChange(() => changes++);
  cleanups.push(
    () => kube.close(),
    () => gate.stop(),
  );
  return { kube, clock, gate, changes: () => changes };
}

describe('the cluster gate', () => {
  it('closed until this process holds the lease; then open with a live signal', async () => {
    const { kube, clock, gate, changes } = await setup();
    kube.server.leases.set('fleet', 'tes-heartbeat-fleet', {
      holderIdentity: 'fleet-b',
      leaseDurationSeconds: 15,
      renewTime: '2026-12-07T20:00:00.000000Z',
    });
    expect(gate.open).toBe(false);
    expect(gate.signal.aborted).toBe(true);
    gate.start();
    // The first try found fleet-b's lease: the elector sleeps until its next try.
    await waitFor(() => clock.pending().some((ms) => ms >= 2_000), 5_000, 'the next try scheduled');
    expect(gate.open).toBe(false);
    // fleet-b releases it: the next try takes it.
    kube.server.leases.set('fleet', 'tes-heartbeat-fleet', { holderIdentity: '', leaseDurationSeconds: 1 });
    await clock.advance(2_400);
    await waitFor(() => gate.open, 5_000, 'leading');
    expect(gate.signal.aborted).toBe(false);
    expect(changes()).toBe(1);
  });

  it('per node: closed while the node is lost, open again when it reports; listeners told each time', async () => {
    const { kube, gate, changes } = await setup();
    gate.start();
    await waitFor(() => gate.open, 5_000, 'leading');
    await waitFor(() => kube.server.openWatches === 1, 5_000, 'the node watch');
    expect(gate.nodeOpen('node-1')).toBe(true);
    expect(gate.nodeOpen(undefined)).toBe(true); // a pod not bound yet
    kube.server.setNodeReady('node-1', 'Unknown');
    await waitFor(() => !gate.nodeOpen('node-1'), 5_000, 'node-1 lost');
    kube.server.setNodeReady('node-1', 'True');
    await waitFor(() => gate.nodeOpen('node-1'), 5_000, 'node-1 back');
    expect(changes()).toBe(3); // leading, lost, back
  });

  it('closes the moment leadership ends (renew deadline), and release() gives the lease up', async () => {
    const { kube, clock, gate } = await setup();
    gate.start();
    await waitFor(() => gate.open, 5_000, 'leading');
    const signal = gate.signal;
    kube.server.cutOff(kube.server.token, { status: 503 });
    // Renewals fail (503) every retry period until the renew deadline, 10 s after the last success.
    for (let t = 0; t < 12_000 && gate.open; t += 500) {
      await clock.advance(500);
      await settle();
    }
    expect(gate.open).toBe(false);
    expect(signal.aborted).toBe(true);
    kube.server.restore(kube.server.token);
    await waitFor(() => clock.pending().some((ms) => ms >= 2_000), 5_000, 'the next try scheduled');
    await clock.advance(2_400);
    await waitFor(() => gate.open, 5_000, 'leading again: nobody took it');
    await gate.release();
    expect(gate.open).toBe(false);
    expect(kube.server.leases.get('fleet', 'tes-heartbeat-fleet')?.spec).toMatchObject({
      holderIdentity: '',
      leaseDurationSeconds: 1,
    });
  });
});
