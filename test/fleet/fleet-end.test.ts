// The end of a run, exactly once, across restarts (contract: Fleet mode, The end of a
// run): the final heartbeat at once on completion or deletion, then the mark; a DELETED
// object's state in the final; a pod leaving the selection gets no final; a restarted
// fleet finals the pods completed meanwhile and leaves marked ones alone.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus } from '../support/fake-kube-api.ts';
import { COMPLETED_STATUS, fleetPod, fleetWorlds, markOf, RUNNING_STATUS } from '../support/fleet-harness.ts';

const world = fleetWorlds();
const MARK = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (sent|failed)$/;

describe('the end of a run', () => {
  it('a completed pod gets exactly one final heartbeat at once, then the mark; nothing after', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'a', status: RUNNING_STATUS }));
    const fleet = await w.fleet({ HEARTBEAT_INTERVAL: '500ms' });
    await waitFor(() => w.beats('run-a').length >= 1, 10_000, 'first beat');
    server.set('pods', fleetPod({ name: 'a', status: COMPLETED_STATUS }));
    await waitFor(() => markOf(server.get('pods', 'tasks', 'a')) !== undefined, 10_000, 'the mark');
    expect(markOf(server.get('pods', 'tasks', 'a'))).toMatch(MARK);
    expect(markOf(server.get('pods', 'tasks', 'a'))).toMatch(/ sent$/);
    const finals = w.beats('run-a').filter((b) => b.lastHeartbeat);
    expect(finals).toHaveLength(1);
    expect(finals[0]?.containerStatus?.[0]?.state?.terminated?.exitCode).toBe(0);
    // The pod lingers (a Job keeps it) and changes: no heartbeat for a marked run, ever.
    const count = w.beats('run-a').length;
    server.set('pods', {
      ...fleetPod({ name: 'a', status: COMPLETED_STATUS }),
      metadata: {
        ...server.get('pods', 'tasks', 'a')?.metadata,
        labels: { 'tes-heartbeat/fleet': 'true', x: '1' },
      },
    });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(w.beats('run-a')).toHaveLength(count);
    expect((await fleet.get('/metrics')).body).toMatch(
      /^tes_fleet_final_heartbeats_total\{result="sent"\} 1$/m,
    );
    expect(server.events.created.map((e) => e.reason)).toContain('FinalHeartbeatSent');
    expect(server.events.created.find((e) => e.reason === 'FinalHeartbeatSent')).toMatchObject({
      reportingInstance: 'fleet-abc12',
      regarding: { name: 'a', namespace: 'tasks' },
    });
  });

  it("a deleted pod's final heartbeat reports the DELETED object's state", async () => {
    const w = await world();
    const { server } = w.kube;
    const failedOnce = {
      phase: 'Running',
      containerStatuses: [
        containerStatus('main', {
          terminated: {
            exitCode: 3,
            reason: 'Error',
            startedAt: '2026-11-29T10:00:00Z',
            finishedAt: '2026-11-29T10:01:00Z',
          },
        }),
      ],
    };
    // OnFailure: a container that exited 3 will be restarted, so the pod is not complete yet.
    const pod = fleetPod({ name: 'd', status: RUNNING_STATUS });
    (pod.spec as { restartPolicy: string }).restartPolicy = 'OnFailure';
    server.set('pods', pod);
    await w.fleet();
    await waitFor(() => w.beats('run-d').length >= 1, 10_000, 'first beat');
    server.set('pods', { ...pod, status: failedOnce });
    server.delete('pods', 'tasks', 'd');
    await waitFor(() => w.beats('run-d').some((b) => b.lastHeartbeat), 10_000, 'the final');
    const final = w.beats('run-d').find((b) => b.lastHeartbeat);
    expect(final?.containerStatus?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    // The DELETED event was confirmed by a GET (404) before the final.
    expect(
      server.requests.some((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/tasks/pods/d'),
    ).toBe(true);
  });

  it('a pod that leaves the selection (label removed) is no longer heartbeated and gets no final', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'l', status: RUNNING_STATUS }));
    await w.fleet({ HEARTBEAT_INTERVAL: '300ms' });
    await waitFor(() => w.beats('run-l').length >= 2, 10_000, 'two beats');
    server.set('pods', fleetPod({ name: 'l', labels: { other: 'x' }, status: RUNNING_STATUS }));
    await waitFor(
      () => server.requests.some((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/tasks/pods/l'),
      5_000,
      'the GET confirming the pod is still there',
    );
    await new Promise((r) => setTimeout(r, 500));
    const count = w.beats('run-l').length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(w.beats('run-l')).toHaveLength(count);
    expect(w.beats('run-l').some((b) => b.lastHeartbeat)).toBe(false);
    expect(markOf(server.get('pods', 'tasks', 'l'))).toBeUndefined();
  });

  it('after a restart: pods completed meanwhile get their one final; marked pods get nothing', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'p1', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'p2', status: RUNNING_STATUS }));
    server.set(
      'pods',
      fleetPod({
        name: 'p3',
        status: COMPLETED_STATUS,
        annotations: { 'tes-heartbeat/final-heartbeat': '2026-11-29T10:00:00Z sent' },
      }),
    );
    const first = await w.fleet();
    await waitFor(
      () => w.beats('run-p1').length >= 1 && w.beats('run-p2').length >= 1,
      10_000,
      'first beats',
    );
    first.child.kill('SIGKILL'); // a crash: no chance to do anything more
    await first.exited;
    server.set('pods', fleetPod({ name: 'p1', status: COMPLETED_STATUS }));
    const before = w.tes.requests.length;
    const second = await w.fleet();
    await waitFor(() => markOf(server.get('pods', 'tasks', 'p1')) !== undefined, 10_000, 'p1 marked');
    await waitFor(() => w.beats('run-p2').length > 1, 10_000, 'p2 beats again');
    const after = w.tes.requests.slice(before);
    expect(after.filter((r) => r.runId === 'run-p1').map((r) => r.body.lastHeartbeat)).toEqual([true]);
    expect(after.some((r) => r.runId === 'run-p3')).toBe(false);
    expect(w.beats('run-p3')).toHaveLength(0);
    expect(second.logs.some((l) => l.podName === 'p3' && Number(l.level) >= 40)).toBe(false);
  });
});
