// FLEET_FINALIZER, FLEET_FINALIZER_TIMEOUT, --release-finalizers and the fleet's own
// SIGTERM (contract: Fleet mode, The end of a run; The fleet's own end).
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import type { KubeObject } from '../support/fake-kube-api.ts';
import {
  COMPLETED_STATUS,
  fleetPod,
  fleetWorlds,
  markOf,
  metaOf,
  RUNNING_STATUS,
} from '../support/fleet-harness.ts';

const world = fleetWorlds();
const FINALIZER = 'tes-heartbeat/final-heartbeat';

describe('FLEET_FINALIZER', () => {
  it('holds a pod deleted while no fleet runs until a fleet has sent its final, then releases it', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'f', status: RUNNING_STATUS }));
    const first = await w.fleet({ FLEET_FINALIZER: 'on' });
    await waitFor(
      () => metaOf(server.get('pods', 'tasks', 'f')).finalizers?.includes(FINALIZER),
      10_000,
      'finalizer added',
    );
    first.child.kill('SIGKILL');
    await first.exited;
    // The task ends and the pod is deleted while no fleet runs: the finalizer keeps its last state.
    server.set('pods', { ...server.get('pods', 'tasks', 'f'), status: COMPLETED_STATUS });
    server.delete('pods', 'tasks', 'f');
    const held = server.get('pods', 'tasks', 'f');
    expect(metaOf(held).finalizers).toContain(FINALIZER);
    await w.fleet({ FLEET_FINALIZER: 'on' });
    await waitFor(() => server.get('pods', 'tasks', 'f') === undefined, 10_000, 'the pod released and gone');
    const finals = w.beats('run-f').filter((b) => b.lastHeartbeat);
    expect(finals).toHaveLength(1);
    expect(finals[0]?.containerStatus?.[0]?.state?.terminated?.exitCode).toBe(0);
  });

  it('releases a pod whose deletion started more than FLEET_FINALIZER_TIMEOUT ago: mark failed, FinalHeartbeatFailed', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 't', status: RUNNING_STATUS }));
    const fleet = await w.fleet({ FLEET_FINALIZER: 'on', FLEET_FINALIZER_TIMEOUT: '1s' });
    await waitFor(
      () => metaOf(server.get('pods', 'tasks', 't')).finalizers?.includes(FINALIZER),
      10_000,
      'finalizer added',
    );
    // A long grace period: the task keeps running, the run goes on, until the timeout releases it.
    server.delete('pods', 'tasks', 't', { gracePeriodSeconds: 3600 });
    await waitFor(() => markOf(server.get('pods', 'tasks', 't')) !== undefined, 10_000, 'the release');
    const pod = server.get('pods', 'tasks', 't');
    expect(markOf(pod)).toMatch(/ failed$/);
    expect(metaOf(pod).finalizers ?? []).not.toContain(FINALIZER);
    expect(w.beats('run-t').some((b) => b.lastHeartbeat)).toBe(false);
    const event = await waitFor(
      () => server.events.created.find((e) => e.reason === 'FinalHeartbeatFailed'),
      5_000,
      'the Event',
    );
    expect(event).toMatchObject({ type: 'Warning', reportingInstance: 'fleet-abc12' });
    expect(String(event?.note)).toContain('FLEET_FINALIZER_TIMEOUT');
    expect((await fleet.get('/metrics')).body).toMatch(
      /^tes_fleet_final_heartbeats_total\{result="failed"\} 1$/m,
    );
  });
});

describe("FLEET_FINALIZER beside other controllers' finalizers", () => {
  it('adds and removes only its own, keeping one added meanwhile by another controller', async () => {
    const w = await world();
    const { server } = w.kube;
    const pod = fleetPod({ name: 'o', status: RUNNING_STATUS });
    pod.metadata = { ...pod.metadata, finalizers: ['example.com/first'] };
    server.set('pods', pod);
    await w.fleet({ FLEET_FINALIZER: 'on' });
    await waitFor(
      () => metaOf(server.get('pods', 'tasks', 'o')).finalizers?.includes(FINALIZER),
      10_000,
      'finalizer added',
    );
    expect(metaOf(server.get('pods', 'tasks', 'o')).finalizers).toEqual(['example.com/first', FINALIZER]);
    // Another controller adds its own; then the task ends.
    const current = server.get('pods', 'tasks', 'o') as KubeObject;
    server.set('pods', {
      ...current,
      metadata: {
        ...current.metadata,
        finalizers: [...(metaOf(current).finalizers ?? []), 'example.com/second'],
      },
      status: COMPLETED_STATUS,
    });
    await waitFor(() => markOf(server.get('pods', 'tasks', 'o')) !== undefined, 10_000, 'marked');
    expect(metaOf(server.get('pods', 'tasks', 'o')).finalizers).toEqual([
      'example.com/first',
      'example.com/second',
    ]);
  });
});

describe('FLEET_FINALIZER and a run that ends at once', () => {
  it('a pod complete when first seen is held and released in the right order: marked, no finalizer left', async () => {
    const w = await world();
    const { server } = w.kube;
    for (const n of [1, 2, 3, 4, 5])
      server.set('pods', fleetPod({ name: `q${n}`, status: COMPLETED_STATUS }));
    await w.fleet({ FLEET_FINALIZER: 'on' });
    for (const n of [1, 2, 3, 4, 5]) {
      await waitFor(() => markOf(server.get('pods', 'tasks', `q${n}`)) !== undefined, 10_000, `q${n} marked`);
      await waitFor(
        () => !metaOf(server.get('pods', 'tasks', `q${n}`)).finalizers?.includes(FINALIZER),
        5_000,
        `q${n} not held`,
      );
    }
    expect(w.tes.requests.map((r) => r.body.lastHeartbeat)).toEqual([true, true, true, true, true]);
  });
});

describe('--release-finalizers', () => {
  it("removes the fleet's finalizer from every selected pod, marking unmarked ones failed, and exits 0", async () => {
    const w = await world();
    const { server } = w.kube;
    const held = (name: string, annotations: Record<string, string> = {}) => {
      const pod = fleetPod({ name, status: RUNNING_STATUS, annotations });
      pod.metadata = { ...pod.metadata, finalizers: ['example.com/other', FINALIZER] };
      server.set('pods', pod);
    };
    held('u');
    held('m', { 'tes-heartbeat/final-heartbeat': '2026-11-29T10:00:00Z sent' });
    const hook = await w.fleet({ FLEET_NAMESPACES: 'tasks' }, ['--release-finalizers']);
    expect((await hook.exited).code).toBe(0);
    expect(metaOf(server.get('pods', 'tasks', 'u')).finalizers).toEqual(['example.com/other']);
    expect(metaOf(server.get('pods', 'tasks', 'm')).finalizers).toEqual(['example.com/other']);
    expect(markOf(server.get('pods', 'tasks', 'u'))).toMatch(/ failed$/);
    expect(markOf(server.get('pods', 'tasks', 'm'))).toBe('2026-11-29T10:00:00Z sent');
    expect(w.tes.requests).toHaveLength(0);
  });
});

describe('SIGTERM', () => {
  it('a SIGTERM as the fleet starts ends it at once, exit 0', async () => {
    const w = await world();
    w.kube.server.set('pods', fleetPod({ name: 's', status: RUNNING_STATUS }));
    const fleet = await w.fleet();
    await fleet.logged('fleet starting');
    fleet.child.kill('SIGTERM');
    expect(await fleet.exited).toEqual({ code: 0, signal: null });
    expect(w.beats('run-s').some((b) => b.lastHeartbeat)).toBe(false);
  });

  it('running runs get no final; a final already due finishes with its mark; exit 0', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'r', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'c', status: RUNNING_STATUS }));
    const fleet = await w.fleet({ FINAL_HEARTBEAT_DEADLINE: '3s' });
    await waitFor(() => w.beats('run-r').length >= 1 && w.beats('run-c').length >= 1, 10_000, 'first beats');
    // run-c's final is slow to be answered: it is due when SIGTERM comes.
    w.tes.setRunReply('run-c', { status: 200, body: {}, afterMs: 1_000 });
    server.set('pods', fleetPod({ name: 'c', status: COMPLETED_STATUS }));
    await waitFor(() => w.beats('run-c').some((b) => b.lastHeartbeat), 5_000, 'the final in flight');
    fleet.child.kill('SIGTERM');
    expect(await fleet.exited).toEqual({ code: 0, signal: null });
    expect(markOf(server.get('pods', 'tasks', 'c'))).toMatch(/ sent$/);
    expect(w.beats('run-r').some((b) => b.lastHeartbeat)).toBe(false);
    expect(markOf(server.get('pods', 'tasks', 'r'))).toBeUndefined();
  });
});
