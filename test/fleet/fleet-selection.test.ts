// Which pods the built fleet heartbeats (contract: Fleet mode, Which pods; Scope per
// node): selected on the API server's side by label, node and namespace; pods without a
// run id skipped with one warning and one HeartbeatSkipped Event; pods with an agent
// container skipped silently (their sidecar reports them).
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import { fleetPod, fleetWorlds, NODE, RUNNING_STATUS } from '../support/fleet-harness.ts';

const world = fleetWorlds();

describe('selection', () => {
  it('heartbeats the labelled pods on its node in its namespaces, and no other', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'a', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'b', namespace: 'tasks-2', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'other-node', nodeName: 'node-2', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'unlabelled', labels: {}, status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'other-ns', namespace: 'elsewhere', status: RUNNING_STATUS }));
    const fleet = await w.fleet({ FLEET_NAMESPACES: 'tasks,tasks-2' });
    await waitFor(
      () => w.beats('run-a').length >= 2 && w.beats('run-b').length >= 2,
      10_000,
      'two beats each',
    );
    expect(new Set(w.tes.requests.map((r) => r.runId))).toEqual(new Set(['run-a', 'run-b']));
    // Selected by the server: every pod list and watch carried the selectors.
    const podCalls = server.requests.filter((r) => r.path.endsWith('/pods'));
    expect(podCalls.length).toBeGreaterThan(0);
    for (const call of podCalls) {
      expect(call.query.labelSelector).toBe('tes-heartbeat/fleet=true');
      expect(call.query.fieldSelector).toBe(`spec.nodeName=${NODE}`);
    }
    expect(new Set(podCalls.map((r) => r.path))).toEqual(
      new Set(['/api/v1/namespaces/tasks/pods', '/api/v1/namespaces/tasks-2/pods']),
    );
    expect((await fleet.get('/readyz')).status).toBe(200);
    const metrics = (await fleet.get('/metrics')).body;
    expect(metrics).toMatch(/^tes_fleet_runs 2$/m);
    expect(metrics).toMatch(/^tes_fleet_leader 1$/m);
    expect(metrics).toMatch(/^tes_heartbeats_total\{result="success"\} \d+$/m);
  });

  it("is ready once every namespace's first pod list is synced, not before", async () => {
    const w = await world();
    w.kube.server.set('pods', fleetPod({ name: 'a', namespace: 'tasks-2', status: RUNNING_STATUS }));
    w.kube.server.failNext({ path: '/api/v1/namespaces/tasks-2/pods', watch: false }, { status: 503 }, 2);
    const fleet = await w.fleet({ FLEET_NAMESPACES: 'tasks,tasks-2' });
    await fleet.logged('list failed; retrying');
    const early = await fleet.get('/readyz');
    expect(early.status).toBe(503);
    expect(JSON.parse(early.body)).toEqual({ ready: false, reason: 'the first pod list is not synced yet' });
    expect((await fleet.get('/healthz')).status).toBe(200);
    await fleet.logged('first pod list synced');
    expect((await fleet.get('/readyz')).status).toBe(200);
  });

  it('watches the whole cluster when FLEET_NAMESPACES is empty', async () => {
    const w = await world();
    w.kube.server.set('pods', fleetPod({ name: 'x', namespace: 'ns-x', status: RUNNING_STATUS }));
    w.kube.server.set('pods', fleetPod({ name: 'y', namespace: 'ns-y', status: RUNNING_STATUS }));
    await w.fleet();
    await waitFor(() => w.beats('run-x').length >= 1 && w.beats('run-y').length >= 1, 10_000, 'both runs');
    expect(
      new Set(w.kube.server.requests.filter((r) => r.path.endsWith('/pods')).map((r) => r.path)),
    ).toEqual(new Set(['/api/v1/pods']));
  });

  it('skips a pod without a run id (one warning, one HeartbeatSkipped Event) and a pod with an agent container (silently)', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'no-id', runId: undefined, status: RUNNING_STATUS }));
    server.set(
      'pods',
      fleetPod({ name: 'sidecar', containers: ['main', 'tes-heartbeat'], status: RUNNING_STATUS }),
    );
    server.set('pods', fleetPod({ name: 'ok', status: RUNNING_STATUS }));
    const fleet = await w.fleet();
    await waitFor(() => w.beats('run-ok').length >= 2, 10_000, 'the good pod beats');
    // More changes of the skipped pod: still one warning and one Event.
    server.set('pods', { ...fleetPod({ name: 'no-id', runId: undefined, status: { phase: 'Running' } }) });
    await waitFor(() => server.events.created.length >= 1, 5_000, 'the Event');
    await new Promise((r) => setTimeout(r, 300));
    expect(new Set(w.tes.requests.map((r) => r.runId))).toEqual(new Set(['run-ok']));
    const skipped = fleet.logs.filter((l) => l.msg === 'pod skipped: no heartbeats for it');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ podName: 'no-id', runId: null, level: 40 });
    expect(String(skipped[0]?.why)).toContain('tes-heartbeat/run-id');
    const events = server.events.created;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      reason: 'HeartbeatSkipped',
      type: 'Warning',
      reportingInstance: 'fleet-abc12',
      regarding: { kind: 'Pod', name: 'no-id', namespace: 'tasks' },
    });
    expect(String(events[0]?.note)).toContain('tes-heartbeat/run-id');
    expect(fleet.logs.some((l) => l.podName === 'sidecar')).toBe(false);
    // Every JSON line carries runId and podName (null on the process's own lines).
    for (const line of fleet.logs) {
      expect(line).toHaveProperty('runId');
      expect(line).toHaveProperty('podName');
    }
    expect(fleet.logs.find((l) => l.msg === 'fleet starting')).toMatchObject({ runId: null, podName: null });
  });
});
