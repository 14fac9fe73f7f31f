// The Lease calls of KubeApi against the fake API server over HTTPS: what the leader
// election relies on — a PUT carrying a stale resourceVersion is refused with 409
// Conflict, a second create with 409 AlreadyExists, a missing Lease is 404, and the
// Lease validation answers 422 — each as a KubeError with its status and reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApi } from '../../src/kube/api.ts';
import type { Lease } from '../../src/kube/types.ts';
import { type FakeKube, kubeFailure, startFakeKube } from '../support/fake-kube-api.ts';

const call = { timeoutMs: 5_000 };
const NS = 'fleet';

let kube: FakeKube;
let api: KubeApi;

beforeAll(async () => {
  kube = await startFakeKube();
  api = KubeApi.load({ kubeconfig: kube.kubeconfigPath });
});
afterAll(async () => {
  await api.close();
  await kube.close();
});

function lease(name: string, spec: NonNullable<Lease['spec']>, resourceVersion?: string): Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: NS, ...(resourceVersion && { resourceVersion }) },
    spec,
  };
}

const SPEC = {
  holderIdentity: 'fleet-a',
  leaseDurationSeconds: 15,
  acquireTime: '2026-12-07T20:00:00.123000Z',
  renewTime: '2026-12-07T20:00:00.123000Z',
  leaseTransitions: 0,
};

describe('Leases through KubeApi', () => {
  it('creates, reads and replaces a lease; each write gets a new resourceVersion', async () => {
    const created = await api.createLease(lease('one', SPEC), call);
    expect(created.metadata).toMatchObject({ name: 'one', namespace: NS });
    expect(created.spec).toEqual(SPEC);
    const read = await api.getLease(NS, 'one', call);
    expect(read).toEqual(created);
    const renewed = await api.replaceLease(
      { ...read, spec: { ...read.spec, renewTime: '2026-12-07T20:00:02.000000Z' } },
      call,
    );
    expect(renewed.spec?.renewTime).toBe('2026-12-07T20:00:02.000000Z');
    expect(renewed.metadata?.resourceVersion).not.toBe(read.metadata?.resourceVersion);
    expect(kube.server.requests.filter((r) => r.path.includes('/leases')).map((r) => r.method)).toEqual([
      'POST',
      'GET',
      'PUT',
    ]);
  });

  it('refuses a write carrying a resourceVersion that is no longer current: 409 Conflict', async () => {
    const first = await api.createLease(lease('two', SPEC), call);
    await api.replaceLease({ ...first, spec: { ...first.spec, holderIdentity: 'fleet-b' } }, call);
    const stale = await kubeFailure(api.replaceLease({ ...first, spec: { ...first.spec } }, call));
    expect(stale).toMatchObject({ code: 'KUBE_HTTP', status: 409, reason: 'Conflict' });
    expect(stale.message).toBe(
      `PUT /apis/coordination.k8s.io/v1/namespaces/${NS}/leases/two: 409 Conflict: Operation cannot be fulfilled on leases.coordination.k8s.io "two": the object has been modified; please apply your changes to the latest version and try again`,
    );
    expect(kube.server.leases.get(NS, 'two')?.spec.holderIdentity).toBe('fleet-b');
  });

  it('refuses a second create (409 AlreadyExists) and answers 404 for a missing lease', async () => {
    await api.createLease(lease('three', SPEC), call);
    const again = await kubeFailure(
      api.createLease(lease('three', { ...SPEC, holderIdentity: 'fleet-b' }), call),
    );
    expect(again).toMatchObject({ status: 409, reason: 'AlreadyExists' });
    expect(again.message).toContain('leases.coordination.k8s.io "three" already exists');
    const missing = await kubeFailure(api.getLease(NS, 'nobody', call));
    expect(missing).toMatchObject({ status: 404, reason: 'NotFound' });
    expect(missing.message).toContain('leases.coordination.k8s.io "nobody" not found');
  });

  it.each([
    {
      desc: 'a lease duration of 0',
      spec: { ...SPEC, leaseDurationSeconds: 0 },
      message: 'spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
    },
    {
      desc: 'negative transitions',
      spec: { ...SPEC, leaseTransitions: -1 },
      message: 'spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0',
    },
  ])('validates as kube-apiserver does: $desc is 422 Invalid', async ({ spec, message }) => {
    const invalid = await kubeFailure(api.createLease(lease('four', spec), call));
    expect(invalid).toMatchObject({ status: 422, reason: 'Invalid' });
    expect(invalid.message).toContain(`Lease.coordination.k8s.io "four" is invalid: ${message}`);
  });

  it('refuses an update without a resourceVersion and a renewTime that is not a MicroTime', async () => {
    await api.createLease(lease('five', SPEC), call);
    const unconditional = await kubeFailure(api.replaceLease(lease('five', SPEC), call));
    expect(unconditional).toMatchObject({ status: 422, reason: 'Invalid' });
    expect(unconditional.message).toContain(
      'metadata.resourceVersion: Invalid value: 0: must be specified for an update',
    );
    const millis = await kubeFailure(
      api.createLease(lease('six', { ...SPEC, renewTime: '2026-12-07T20:00:00.123Z' }), call),
    );
    expect(millis).toMatchObject({ status: 400, reason: 'BadRequest' });
  });
});
