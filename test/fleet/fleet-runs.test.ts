// Per pod, as in the sidecar (contract: Fleet mode, Per pod): the body a sidecar in that
// pod would send, a change at once, one run's failures never delaying another, at most
// FLEET_MAX_IN_FLIGHT requests, a jwt per run, secrets scrubbed, annotations read.
import { describe, expect, it } from 'vitest';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus, type KubeObject } from '../support/fake-kube-api.ts';
import { FLEET_LABEL, fleetPod, fleetWorlds, NODE, RUNNING_STATUS } from '../support/fleet-harness.ts';
import { startCli } from '../support/agent-harness.ts';
import { loadNode, loadPod, type PodFixture } from '../support/k8s-fixtures.ts';

const world = fleetWorlds();
const NONCE = 'nonce-of-run-a-5f6e7d';
const RECYCLED = 'two failed attempts in a row: dialling fresh TES connections';

/** The largest gap between consecutive heartbeats of a run, in ms (arrival times on our side). */
function gaps(times: number[]): number {
  let max = 0;
  for (let i = 1; i < times.length; i++) max = Math.max(max, (times[i] as number) - (times[i - 1] as number));
  return max;
}

describe('bodies', () => {
  it.each<PodFixture>(['kind-1.33-list-item', 'kubeadm-init-crash-loop'])(
    "are the sidecar's for the same pod (%s)",
    async (fixture) => {
      const w = await world();
      const { server } = w.kube;
      const node = loadNode('eks-gpu');
      node.metadata = { ...node.metadata, name: NODE };
      server.set('nodes', node as KubeObject);
      server.set('jobs', { metadata: { name: 'job-1', namespace: 'tasks' }, status: { failed: 2 } });
      const pod = loadPod(fixture) as KubeObject & { spec: { nodeName?: string } };
      pod.metadata = {
        ...pod.metadata,
        name: 'same-pod',
        namespace: 'tasks',
        labels: FLEET_LABEL,
        annotations: { 'tes-heartbeat/run-id': 'run-fleet', 'tes-heartbeat/nonce': NONCE },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: 'job-1', uid: 'j1', controller: true },
        ],
      };
      delete pod.metadata.resourceVersion;
      pod.spec.nodeName = NODE;
      server.set('pods', pod);
      await w.fleet({ HEARTBEAT_INTERVAL: '300ms' });
      const agent = startCli('agent', {
        TES_URL: w.tes.url,
        TES_RUN_ID: 'run-sidecar',
        TES_NONCE: NONCE,
        POD_NAME: 'same-pod',
        POD_NAMESPACE: 'tasks',
        KUBECONFIG: w.kube.kubeconfigPath,
        HEARTBEAT_INTERVAL: '300ms',
        HTTP_ADDR: 'off',
      });
      try {
        const settled = (runId: string) =>
          w
            .beats(runId)
            .filter((b) => b.jobRetryCount === 2 && b.podHardwareDetails?.includes('instanceType'));
        await waitFor(
          () => settled('run-fleet').length > 0 && settled('run-sidecar').length > 0,
          10_000,
          'both settled',
        );
        const fleetBody = settled('run-fleet').at(-1) as HeartbeatTaskRunRequest;
        const sidecarBody = settled('run-sidecar').at(-1) as HeartbeatTaskRunRequest;
        expect(fleetBody).toEqual(sidecarBody);
        expect(fleetBody.nonce).toBe(NONCE);
        expect(fleetBody.containerStatus?.length).toBeGreaterThan(0);
      } finally {
        agent.child.kill('SIGKILL');
        await agent.exited;
      }
    },
  );

  it('a container state change goes out at once, not at the next interval', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set(
      'pods',
      fleetPod({
        name: 'c',
        status: {
          phase: 'Pending',
          containerStatuses: [containerStatus('main', { waiting: { reason: 'ContainerCreating' } })],
        },
      }),
    );
    await w.fleet({ HEARTBEAT_INTERVAL: '30s', HEARTBEAT_MIN_GAP: '100ms' });
    await waitFor(() => w.beats('run-c').length === 1, 10_000, 'first beat');
    await new Promise((r) => setTimeout(r, 200));
    const changedAt = Date.now();
    server.set('pods', fleetPod({ name: 'c', status: RUNNING_STATUS }));
    await waitFor(() => w.beats('run-c').length === 2, 5_000, 'the change');
    expect(Date.now() - changedAt).toBeLessThan(3_000); // the interval is 30 s
    expect(w.beats('run-c')[1]?.containerStatus?.[0]?.state?.running).toBeDefined();
  });
});

describe('isolation', () => {
  it("one run's 503s and another's hangs never delay a third run's heartbeats", async () => {
    const w = await world();
    const { server } = w.kube;
    for (const name of ['good', 'bad', 'slow'])
      server.set('pods', fleetPod({ name, status: RUNNING_STATUS }));
    w.tes.setRunReply('run-bad', {
      status: 503,
      body: { code: 'UNAVAILABLE', message: 'down for this run' },
    });
    w.tes.setRunReply('run-slow', { hang: true });
    const arrivals: number[] = [];
    const seen = () => w.beats('run-good').length;
    await w.fleet({
      HEARTBEAT_INTERVAL: '300ms',
      HEARTBEAT_TIMEOUT: '1s',
      HEARTBEAT_MIN_GAP: '0s',
    });
    await waitFor(() => seen() >= 1, 10_000, 'first good beat');
    const until = Date.now() + 3_000;
    let last = seen();
    while (Date.now() < until) {
      if (seen() > last) {
        last = seen();
        arrivals.push(Date.now());
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(w.beats('run-bad').length).toBeGreaterThanOrEqual(4); // it did fail, and retried
    // 300 ms ± 10%, plus the test's own polling and a loaded machine's slack.
    expect(gaps(arrivals)).toBeLessThan(700);
  });

  it("one failing run never makes the others' connections churn (rule 9 per pool)", async () => {
    const w = await world();
    for (const name of ['good', 'bad']) w.kube.server.set('pods', fleetPod({ name, status: RUNNING_STATUS }));
    w.tes.setRunReply('run-bad', { status: 503, body: {} });
    // A long interval: the bad run's retries come in a row between the good run's beats.
    const fleet = await w.fleet({ HEARTBEAT_INTERVAL: '2s' });
    await waitFor(() => w.beats('run-bad').length >= 6, 15_000, 'the bad run failing, again and again');
    expect(fleet.logs.some((l) => l.msg === RECYCLED)).toBe(false);
    const good = w.tes.requests.filter((r) => r.runId === 'run-good');
    // The two connections the first concurrent beats opened, and no fresh ones since.
    expect(new Set(good.map((r) => r.connection)).size).toBeLessThanOrEqual(2);
  });

  it('recycles the shared connections when attempts fail for every run', async () => {
    const w = await world();
    for (const name of ['x', 'y']) w.kube.server.set('pods', fleetPod({ name, status: RUNNING_STATUS }));
    w.tes.setFallback({ status: 503, body: {} });
    const fleet = await w.fleet({ HEARTBEAT_INTERVAL: '300ms', HEARTBEAT_TIMEOUT: '1s' });
    await fleet.logged(RECYCLED);
    // Three intervals without a success: HeartbeatFailing on each pod, naming the fleet, not an agent.
    const failing = await waitFor(
      () => w.kube.server.events.created.find((e) => e.reason === 'HeartbeatFailing'),
      10_000,
      'HeartbeatFailing',
    );
    expect(String(failing?.note)).toMatch(
      /since the fleet took the pod on .*HTTP 503.*see the fleet's logs\.$/,
    );
  });

  it('never has more than FLEET_MAX_IN_FLIGHT requests in flight, and every run still beats', async () => {
    const w = await world();
    for (const n of [1, 2, 3, 4, 5])
      w.kube.server.set('pods', fleetPod({ name: `p${n}`, status: RUNNING_STATUS }));
    w.tes.setFallback({ status: 200, body: {}, afterMs: 200 });
    await w.fleet({ FLEET_MAX_IN_FLIGHT: '2', HEARTBEAT_INTERVAL: '300ms' });
    await waitFor(
      () => [1, 2, 3, 4, 5].every((n) => w.beats(`run-p${n}`).length >= 2),
      10_000,
      'every run twice',
    );
    expect(w.tes.maxInFlight).toBe(2);
  });
});

describe('credentials and annotations', () => {
  it("a run's jwt is its own bearer; other runs keep the fleet's token; jwts and nonces never reach a log line", async () => {
    const w = await world();
    const { server } = w.kube;
    server.set(
      'pods',
      fleetPod({ name: 'a', status: RUNNING_STATUS, annotations: { 'tes-heartbeat/nonce': NONCE } }),
    );
    server.set('pods', fleetPod({ name: 'b', status: RUNNING_STATUS }));
    const JWT = 'jwt-issued-to-run-a-0a9b8c';
    w.tes.setRunReply('run-a', { status: 200, body: { jwt: JWT } });
    const fleet = await w.fleet({ TES_TOKEN: 'fleet-token-1234567', HEARTBEAT_INTERVAL: '300ms' });
    await waitFor(() => w.beats('run-a').length >= 3 && w.beats('run-b').length >= 3, 10_000, 'beats');
    const auth = (runId: string) =>
      w.tes.requests.filter((r) => r.runId === runId).map((r) => r.authorization);
    expect(auth('run-a')[0]).toBe('Bearer fleet-token-1234567');
    expect(
      auth('run-a')
        .slice(1)
        .every((a) => a === `Bearer ${JWT}`),
    ).toBe(true);
    expect(auth('run-b').every((a) => a === 'Bearer fleet-token-1234567')).toBe(true);
    // A TES that echoes what it was sent: the error is logged, scrubbed.
    w.tes.setRunReply('run-a', {
      status: 400,
      body: { code: 'BAD', message: `nonce ${NONCE} and ${JWT} refused` },
    });
    await fleet.logged('heartbeat failed');
    const text = fleet.stdout();
    expect(text).not.toContain(JWT);
    expect(text).not.toContain(NONCE);
    expect(text).not.toContain('fleet-token-1234567');
    expect(text).toContain('[redacted]');
  });

  it('tes-heartbeat/containers as WATCH_CONTAINERS: a list naming none falls back to the default set, with an error', async () => {
    const w = await world();
    const { server } = w.kube;
    server.set(
      'pods',
      fleetPod({
        name: 'w',
        containers: ['main', 'helper'],
        status: RUNNING_STATUS,
        annotations: { 'tes-heartbeat/containers': 'helper' },
      }),
    );
    server.set(
      'pods',
      fleetPod({ name: 't', status: RUNNING_STATUS, annotations: { 'tes-heartbeat/containers': 'mian' } }),
    );
    const fleet = await w.fleet();
    await waitFor(() => w.beats('run-w').length >= 1 && w.beats('run-t').length >= 1, 10_000, 'beats');
    expect(w.beats('run-w')[0]?.containerStatus?.map((c) => c.name)).toEqual(['helper']);
    expect(w.beats('run-t')[0]?.containerStatus?.map((c) => c.name)).toEqual(['main']);
    const error = await fleet.logged(/names none of the pod's containers/);
    expect(error).toMatchObject({ runId: 'run-t', podName: 't', containers: ['mian'] });
  });

  it('a nonce kept in a Secret is read with FLEET_NONCE_SECRETS=on; with it off the pod is skipped, with an Event', async () => {
    const w = await world();
    const { server } = w.kube;
    server.extend({
      serve: (request) =>
        request.path === '/api/v1/namespaces/tasks/secrets/nonce-s'
          ? {
              code: 200,
              body: {
                kind: 'Secret',
                data: { nonce: Buffer.from('secret-nonce-778899').toString('base64') },
              },
            }
          : undefined,
    });
    server.set(
      'pods',
      fleetPod({
        name: 's',
        status: RUNNING_STATUS,
        annotations: { 'tes-heartbeat/nonce-secret': 'nonce-s' },
      }),
    );
    const on = await w.fleet({ FLEET_NONCE_SECRETS: 'on' });
    await waitFor(() => w.beats('run-s').length >= 1, 10_000, 'a beat');
    expect(w.beats('run-s')[0]?.nonce).toBe('secret-nonce-778899');
    on.child.kill('SIGKILL');
    await on.exited;
    server.set(
      'pods',
      fleetPod({
        name: 's2',
        status: RUNNING_STATUS,
        annotations: { 'tes-heartbeat/nonce-secret': 'nonce-s' },
      }),
    );
    const before = w.tes.requests.length;
    await w.fleet({ FLEET_NONCE_SECRETS: 'off' });
    await waitFor(
      () => server.events.created.some((e) => e.reason === 'HeartbeatSkipped'),
      10_000,
      'the Event',
    );
    expect(String(server.events.created.find((e) => e.reason === 'HeartbeatSkipped')?.note)).toContain(
      'FLEET_NONCE_SECRETS',
    );
    expect(w.tes.requests.slice(before).some((r) => r.runId === 'run-s2')).toBe(false);
  });
});
