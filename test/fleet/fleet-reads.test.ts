// Shared reads and bounded waits (contract: Fleet mode, where the fleet's rules meet):
// a Job read once for pods seen together, a node once; a newly seen pod's first
// heartbeat waits at most 1 s for its Job; a pod missing from a re-list ends like a
// deletion; a final that hangs at SIGTERM still lets the fleet exit in time.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus } from '../support/fake-kube-api.ts';
import { fleetPod, fleetWorlds, markOf, NODE, RUNNING_STATUS } from '../support/fleet-harness.ts';

const world = fleetWorlds();
const JOB_PATH = '/apis/batch/v1/namespaces/tasks/jobs/job-1';

describe('reads', () => {
  it('reads a Job once for the pods seen together, and the node once', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('jobs', { metadata: { name: 'job-1', namespace: 'tasks' }, status: { failed: 2 } });
    for (const name of ['a', 'b', 'c'])
      server.set('pods', fleetPod({ name, owner: { kind: 'Job', name: 'job-1' }, status: RUNNING_STATUS }));
    await w.fleet();
    await waitFor(
      () => ['a', 'b', 'c'].every((n) => w.beats(`run-${n}`).some((b) => b.jobRetryCount === 2)),
      10_000,
      'jobRetryCount 2 everywhere',
    );
    expect(server.requests.filter((r) => r.path === JOB_PATH)).toHaveLength(1);
    expect(server.requests.filter((r) => r.path === `/api/v1/nodes/${NODE}`)).toHaveLength(1);
  });

  it("sends a new pod's first heartbeat after at most 1 s of waiting for its Job, then the real jobRetryCount", async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('jobs', { metadata: { name: 'job-1', namespace: 'tasks' }, status: { failed: 3 } });
    const fleet = await w.fleet({ HEARTBEAT_INTERVAL: '500ms', HEARTBEAT_TIMEOUT: '3s' });
    await waitFor(() => fleet.logged('first pod list synced'), 10_000, 'synced');
    server.failNext({ path: JOB_PATH }, 'hang');
    const seenAt = Date.now();
    server.set(
      'pods',
      fleetPod({ name: 'j', owner: { kind: 'Job', name: 'job-1' }, status: RUNNING_STATUS }),
    );
    await waitFor(() => w.beats('run-j').length >= 1, 5_000, 'first beat');
    const waited = Date.now() - seenAt;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(2_900); // not the Job read's 3 s timeout
    expect(w.beats('run-j')[0]?.jobRetryCount).toBe(0);
    await waitFor(() => w.beats('run-j').some((b) => b.jobRetryCount === 3), 15_000, 'the real count');
  });

  it('a pod missing from a re-list (deleted while the watch was down) gets its final with its last state', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'gone', status: RUNNING_STATUS }));
    const fleet = await w.fleet();
    await waitFor(() => w.beats('run-gone').length >= 1, 10_000, 'first beat');
    server.dropWatches();
    server.delete('pods', 'tasks', 'gone');
    server.compact(); // the DELETED event is no longer in the history: a resumed watch gets 410
    await waitFor(() => w.beats('run-gone').some((b) => b.lastHeartbeat), 15_000, 'the final');
    const final = w.beats('run-gone').find((b) => b.lastHeartbeat);
    expect(final?.containerStatus?.[0]?.state?.running).toBeDefined();
    expect(w.beats('run-gone').filter((b) => b.lastHeartbeat)).toHaveLength(1);
    await fleet.logged('pod missing from a re-list: it ends like a deletion');
  });
});

describe('SIGTERM with a final that never answers', () => {
  it('gives the final FINAL_HEARTBEAT_DEADLINE, marks it failed, and exits 0 about a second after', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'h', status: RUNNING_STATUS }));
    const fleet = await w.fleet({ FINAL_HEARTBEAT_DEADLINE: '1s', HEARTBEAT_TIMEOUT: '5s' });
    await waitFor(() => w.beats('run-h').length >= 1, 10_000, 'first beat');
    w.tes.setRunReply('run-h', { hang: true });
    server.set(
      'pods',
      fleetPod({
        name: 'h',
        status: {
          phase: 'Succeeded',
          containerStatuses: [containerStatus('main', { terminated: { exitCode: 0 } })],
        },
      }),
    );
    await waitFor(() => w.beats('run-h').some((b) => b.lastHeartbeat), 5_000, 'the final in flight');
    const signalledAt = Date.now();
    fleet.child.kill('SIGTERM');
    expect(await fleet.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(1_000 + 2_000);
    expect(markOf(server.get('pods', 'tasks', 'h'))).toMatch(/ failed$/);
  });
});
