// The built `tes-heartbeat fleet` as a process against the fake Kubernetes API (HTTPS,
// selectors, merge patches, finalizers) and the fault-injecting TES, with task pods
// labelled for the fleet: what every test in test/fleet starts.
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { type AgentProcess, freePort, getListener, startCli, stopAfterEach } from './agent-harness.ts';
import {
  COMPLETED,
  containerStatus,
  type FakeKube,
  type KubeObject,
  RUNNING,
  startFakeKube,
  testPod,
} from './fake-kube-api.ts';
import { FaultTes } from './fault-tes.ts';

export const NODE = 'node-1';
export const FLEET_LABEL = { 'tes-heartbeat/fleet': 'true' };

/** A task pod's status: its one container running, or exited 0. */
export const RUNNING_STATUS = { phase: 'Running', containerStatuses: [containerStatus('main', RUNNING)] };
export const COMPLETED_STATUS = {
  phase: 'Succeeded',
  containerStatuses: [containerStatus('main', COMPLETED)],
};

/** A pod's metadata as the fake server holds it: what the fleet patches (finalizers, annotations). */
export const metaOf = (pod: KubeObject | undefined) =>
  (pod?.metadata ?? {}) as { finalizers?: string[]; annotations?: Record<string, string> };
/** The fleet's final-heartbeat mark on a pod (`<time> sent|failed`), if any. */
export const markOf = (pod: KubeObject | undefined) =>
  metaOf(pod).annotations?.['tes-heartbeat/final-heartbeat'];

export interface FleetWorld {
  kube: FakeKube;
  tes: FaultTes;
  /** Starts the built fleet (killed after the test if still running). */
  fleet(env?: Record<string, string | undefined>, args?: string[]): Promise<FleetProcess>;
  /** The heartbeat bodies one run received, oldest first. */
  beats(runId: string): HeartbeatTaskRunRequest[];
}

export interface FleetProcess extends AgentProcess {
  port: number;
  get(path: string): Promise<{ status: number; body: string }>;
}

/** Call once at the top of a test file: `const world = fleetWorlds();` then `await world()` per test. */
export function fleetWorlds(): () => Promise<FleetWorld> {
  const stops = stopAfterEach();
  return async () => {
    const kube = await startFakeKube();
    const tes = await new FaultTes().start();
    stops.defer(
      () => kube.close(),
      () => tes.close(),
    );
    kube.server.set('nodes', {
      metadata: { name: NODE, labels: { 'node.kubernetes.io/instance-type': 'm6i.large' } },
    });
    return {
      kube,
      tes,
      beats: (runId) => tes.requests.filter((r) => r.runId === runId).map((r) => r.body),
      async fleet(env = {}, args = []) {
        const port = await freePort();
        const child = startCli(
          'fleet',
          {
            TES_URL: tes.url,
            KUBECONFIG: kube.kubeconfigPath,
            POD_NAME: 'fleet-abc12',
            FLEET_NODE_NAME: NODE,
            HEARTBEAT_INTERVAL: '1s',
            HEARTBEAT_MIN_GAP: '100ms',
            HEARTBEAT_TIMEOUT: '2s',
            FINAL_HEARTBEAT_DEADLINE: '2s',
            HTTP_ADDR: `127.0.0.1:${port}`,
            LOG_LEVEL: 'debug',
            ...env,
          },
          args,
        );
        stops.defer(async () => {
          if (child.child.exitCode === null) child.child.kill('SIGKILL');
          await child.exited;
        });
        return Object.assign(child, { port, get: (path: string) => getListener(port, path) });
      },
    };
  };
}

/** A task pod the fleet selects: labelled, annotated with its run id, bound to NODE unless told otherwise. */
export function fleetPod(options: {
  name: string;
  runId?: string | undefined;
  namespace?: string;
  nodeName?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: string[];
  status?: KubeObject;
  owner?: { kind: string; name: string };
}): KubeObject {
  const pod = testPod({
    name: options.name,
    namespace: options.namespace ?? 'tasks',
    ...(options.nodeName !== null ? { nodeName: options.nodeName ?? NODE } : {}),
    ...(options.containers ? { containers: options.containers } : {}),
    ...(options.status ? { status: options.status } : {}),
    ...(options.owner ? { owner: options.owner } : {}),
  });
  const runId = 'runId' in options ? options.runId : `run-${options.name}`;
  pod.metadata = {
    ...pod.metadata,
    labels: options.labels ?? FLEET_LABEL,
    annotations: {
      ...(runId !== undefined ? { 'tes-heartbeat/run-id': runId } : {}),
      ...options.annotations,
    },
  };
  return pod;
}
