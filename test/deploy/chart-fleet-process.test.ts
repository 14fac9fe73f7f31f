// The chart's fleet settings, run: the env of the rendered DaemonSet, Deployment and uninstall
// hook Job, resolved as the kubelet would (downward API, the token Secret), given to the built
// `tes-heartbeat fleet` against the fake Kubernetes API and the fault TES. A setting the chart
// names wrongly, or a value the fleet refuses, shows up here as a process that exits 2.
import { describe, expect, test } from 'vitest';
import { waitFor } from '../support/fake-clock.ts';
import {
  COMPLETED_STATUS,
  fleetPod,
  fleetWorlds,
  metaOf,
  NODE,
  RUNNING_STATUS,
} from '../support/fleet-harness.ts';
import { findOne, type K8sObject, RELEASE, RELEASE_NAMESPACE, renderChart } from '../support/helm-chart.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const world = fleetWorlds();
const FLEET = `${RELEASE}-tes-heartbeat-fleet`;
const TOKEN = 'fleet-bearer-token';
const FINALIZER = 'tes-heartbeat/final-heartbeat';
const VALUES = {
  mode: 'fleet',
  taskNamespaces: ['tasks', 'imaging'],
  tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token', key: 'jwt' } },
  fleet: { finalizer: true },
};

/**
 * A container's env as the kubelet gives it: values, the downward API of a pod named POD
 * on NODE in the release namespace, and the token Secret. TES_URL and HTTP_ADDR are left to
 * the harness (the test's TES and a free port); anything else unknown fails the test.
 */
function kubeletEnv(container: Any): Record<string, string> {
  const fields: Record<string, string> = {
    'metadata.name': 'fleet-abc12',
    'metadata.namespace': RELEASE_NAMESPACE,
    'spec.nodeName': NODE,
  };
  const secrets: Record<string, string> = { 'tes-token/jwt': TOKEN };
  const env: Record<string, string> = {};
  for (const e of container.env as Any[]) {
    if (e.name === 'TES_URL' || e.name === 'HTTP_ADDR') continue;
    const ref = e.valueFrom?.fieldRef?.fieldPath ?? e.valueFrom?.secretKeyRef;
    const value =
      e.value ??
      (typeof ref === 'string' ? fields[ref] : ref ? secrets[`${ref.name}/${ref.key}`] : undefined);
    if (value === undefined) throw new Error(`the test cannot resolve env ${e.name}: ${JSON.stringify(e)}`);
    env[e.name] = value;
  }
  return env;
}

const containerOf = (objects: K8sObject[], kind: string, name: string): Any =>
  (findOne(objects, kind, name, RELEASE_NAMESPACE) as Any).spec.template.spec.containers[0];

describe.each([
  ['node', 'DaemonSet'],
  ['cluster', 'Deployment'],
])('the %s scope', (scope, kind) => {
  test(`the fleet runs with the ${kind}'s settings: ready, heartbeats with the Secret's bearer for its task namespaces only, holds and releases its finalizer`, async () => {
    const objects = renderChart({ ...VALUES, fleet: { ...VALUES.fleet, scope } });
    const container = containerOf(objects, kind, FLEET);
    expect(container.args).toEqual(['fleet']);
    const w = await world();
    const { server } = w.kube;
    server.set('pods', fleetPod({ name: 'a', namespace: 'tasks', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'b', namespace: 'imaging', status: RUNNING_STATUS }));
    server.set('pods', fleetPod({ name: 'c', namespace: 'elsewhere', status: RUNNING_STATUS }));
    const fleet = await w.fleet(kubeletEnv(container));
    await waitFor(
      () => w.beats('run-a').length > 0 && w.beats('run-b').length > 0,
      10_000,
      'first heartbeats',
    );
    expect(new Set(w.tes.requests.map((r) => r.authorization))).toEqual(new Set([`Bearer ${TOKEN}`]));
    expect(w.beats('run-c')).toEqual([]);
    expect((await fleet.get('/readyz')).status).toBe(200);
    expect(metaOf(server.get('pods', 'tasks', 'a')).finalizers).toContain(FINALIZER);
    // The task ends: one final, the mark, the finalizer gone in the same patch.
    server.set('pods', { ...server.get('pods', 'tasks', 'a'), status: COMPLETED_STATUS });
    await waitFor(
      () => metaOf(server.get('pods', 'tasks', 'a')).annotations?.[FINALIZER]?.endsWith(' sent'),
      10_000,
      'final heartbeat marked',
    );
    expect(metaOf(server.get('pods', 'tasks', 'a')).finalizers ?? []).not.toContain(FINALIZER);
    expect(w.beats('run-a').filter((b) => b.lastHeartbeat)).toHaveLength(1);
  });
});

test("the uninstall hook Job's command and settings release every pod still held in the task namespaces, and exit 0", async () => {
  const objects = renderChart(VALUES);
  const container = containerOf(objects, 'Job', `${RELEASE}-tes-heartbeat-fleet-release`);
  const [command, ...args] = container.args as string[];
  expect(command).toBe('fleet');
  const w = await world();
  const { server } = w.kube;
  for (const [name, namespace] of [
    ['held-1', 'tasks'],
    ['held-2', 'imaging'],
  ] as const) {
    const pod = fleetPod({ name, namespace, status: RUNNING_STATUS });
    pod.metadata = { ...pod.metadata, finalizers: [FINALIZER] };
    server.set('pods', pod);
  }
  const hook = await w.fleet(kubeletEnv(container), args);
  expect((await hook.exited).code).toBe(0);
  for (const [name, namespace] of [
    ['held-1', 'tasks'],
    ['held-2', 'imaging'],
  ] as const)
    expect(metaOf(server.get('pods', namespace, name)).finalizers ?? [], name).toEqual([]);
  expect(w.tes.requests).toEqual([]);
});
