// What the fleet does with a selected pod, from its containers and annotations
// (fleet/pod-plan.ts, pure; contract: Fleet mode, Which pods). Table cases.
import { describe, expect, it } from 'vitest';
import { finalMark, podPlan } from '../../src/fleet/pod-plan.ts';
import type { Pod } from '../../src/kube/types.ts';

const pod = (annotations: Record<string, string>, containers = ['main'], init: string[] = []): Pod =>
  ({
    metadata: { name: 'p', namespace: 'tasks', annotations },
    spec: {
      containers: containers.map((name) => ({ name })),
      ...(init.length > 0 ? { initContainers: init.map((name) => ({ name, restartPolicy: 'Always' })) } : {}),
    },
  }) as Pod;
const RUN = { 'tes-heartbeat/run-id': 'trn.1' };

describe('podPlan', () => {
  it.each([
    {
      desc: 'an agent container: its sidecar reports it',
      pod: pod(RUN, ['main', 'tes-heartbeat']),
      want: { kind: 'sidecar' },
    },
    {
      desc: 'an agent as a native sidecar (init container)',
      pod: pod(RUN, ['main'], ['tes-heartbeat']),
      want: { kind: 'sidecar' },
    },
    {
      desc: 'marked: nothing more, ever',
      pod: pod({ ...RUN, 'tes-heartbeat/final-heartbeat': '2026-11-29T10:00:00Z sent' }),
      want: { kind: 'marked', mark: '2026-11-29T10:00:00Z sent' },
    },
    {
      desc: 'no run id',
      pod: pod({}),
      want: { kind: 'unusable', why: 'the pod has no tes-heartbeat/run-id annotation' },
    },
    { desc: 'an empty run id', pod: pod({ 'tes-heartbeat/run-id': ' ' }), want: { kind: 'unusable' } },
    { desc: 'a run id alone', pod: pod(RUN), want: { kind: 'run', runId: 'trn.1' } },
    {
      desc: 'nonce and containers',
      pod: pod({ ...RUN, 'tes-heartbeat/nonce': 'n-1', 'tes-heartbeat/containers': 'a, b,' }),
      want: { kind: 'run', runId: 'trn.1', nonce: 'n-1', containers: ['a', 'b'] },
    },
    {
      desc: 'a nonce Secret with FLEET_NONCE_SECRETS off and no nonce annotation',
      pod: pod({ ...RUN, 'tes-heartbeat/nonce-secret': 's' }),
      want: { kind: 'unusable' },
    },
    {
      desc: 'a nonce Secret with FLEET_NONCE_SECRETS off falls back to the annotation',
      pod: pod({ ...RUN, 'tes-heartbeat/nonce-secret': 's', 'tes-heartbeat/nonce': 'n-1' }),
      want: { kind: 'run', nonce: 'n-1' },
    },
    {
      desc: 'a nonce Secret with FLEET_NONCE_SECRETS on wins over the annotation (T2)',
      pod: pod({ ...RUN, 'tes-heartbeat/nonce-secret': 's', 'tes-heartbeat/nonce': 'n-1' }),
      nonceSecrets: true,
      want: { kind: 'run', nonceSecret: 's' },
    },
  ])('$desc', ({ pod: p, want, nonceSecrets }) => {
    const plan = podPlan(p, { selfName: 'tes-heartbeat', nonceSecrets: nonceSecrets ?? false });
    expect(plan).toMatchObject(want);
    if (want.kind === 'run' && !('nonce' in want)) expect(plan).not.toHaveProperty('nonce');
  });

  it('marks with an RFC 3339 time at the second and the outcome', () => {
    expect(finalMark(Date.parse('2026-11-29T10:00:00.789Z'), 'sent')).toBe('2026-11-29T10:00:00Z sent');
    expect(finalMark(Date.parse('2026-11-29T10:00:00Z'), 'failed')).toBe('2026-11-29T10:00:00Z failed');
  });
});
