// The demo's task pod, stage by stage, shaped as the API server serves it: the
// scheduler first finds no room, then the kubelet pulls and starts the task
// container, which exits 0. The agent runs beside it as a regular sidecar; with
// `demo --fleet` the pods carry no container of ours, only the fleet's label and
// their run's annotations.
import { FLEET_LABEL, INJECT_LABEL, NONCE_ANNOTATION, RUN_ID_ANNOTATION } from '../kube/annotations.ts';
import type { KubeObject } from '../testing/fake-kube-api-server.ts';

export const NAMESPACE = 'tes-demo';
export const POD_NAME = 'task-demo-x7k2p';
export const NODE_NAME = 'kind-worker';
const JOB_NAME = 'task-demo';

/** Now, at the second, as the API server writes timestamps. */
export function kubeNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export interface Stage {
  /** Milliseconds after the agent started. */
  atMs: number;
  title: string;
  pod(startedAt: string): KubeObject;
}

const taskContainer = {
  name: 'task',
  image: 'ghcr.io/example/bwa:0.7.18',
  command: ['bwa', 'mem', '/data/ref.fa', '/data/reads.fq'],
  resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } },
};
const agentContainer = {
  name: 'tes-heartbeat',
  image: 'tes-heartbeat:0.1.0',
  args: ['agent'],
  resources: { requests: { cpu: '10m', memory: '96Mi' }, limits: { cpu: '1', memory: '192Mi' } },
};

/** Which task pod: the sidecar demo's (the agent beside the task), or one of the fleet demo's. */
export interface TaskPodOptions {
  name: string;
  /** With the agent container (sidecar) or with the fleet's label and annotations (fleet). */
  mode: 'sidecar' | 'fleet';
  runId: string;
  nonce: string;
}

const SIDECAR_POD: TaskPodOptions = { name: POD_NAME, mode: 'sidecar', runId: 'demo', nonce: '' };

function containersOf(o: TaskPodOptions) {
  return o.mode === 'sidecar' ? [taskContainer, agentContainer] : [taskContainer];
}

function pod(o: TaskPodOptions, spec: Record<string, unknown>, status: Record<string, unknown>): KubeObject {
  const containers = containersOf(o);
  return {
    metadata: {
      name: o.name,
      generateName: `${JOB_NAME}-`,
      namespace: NAMESPACE,
      labels:
        o.mode === 'sidecar'
          ? { 'batch.kubernetes.io/job-name': JOB_NAME, [INJECT_LABEL]: 'true' }
          : { 'batch.kubernetes.io/job-name': JOB_NAME, [FLEET_LABEL]: 'true' },
      annotations:
        o.mode === 'sidecar'
          ? { [RUN_ID_ANNOTATION]: o.runId }
          : { [RUN_ID_ANNOTATION]: o.runId, [NONCE_ANNOTATION]: o.nonce },
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          name: JOB_NAME,
          uid: 'f0e1d2c3-0000-4000-8000-000000000001',
          controller: true,
        },
      ],
    },
    spec: { restartPolicy: 'Never', serviceAccountName: 'tes-heartbeat', containers, ...spec },
    status,
  };
}

const running = (name: string, startedAt: string) => ({
  name,
  ready: true,
  restartCount: 0,
  started: true,
  image: name,
  imageID: '',
  containerID: `containerd://${name}-0001`,
  state: { running: { startedAt } },
  lastState: {},
});

/** The task pod's stages; `o` says which pod (default: the sidecar demo's). */
export function stages(o: TaskPodOptions = SIDECAR_POD): Stage[] {
  const containers = containersOf(o);
  return [
    {
      atMs: 0,
      title: 'Pending: no node has room',
      pod: () =>
        pod(
          o,
          {},
          {
            phase: 'Pending',
            qosClass: 'Burstable',
            conditions: [
              {
                type: 'PodScheduled',
                status: 'False',
                reason: 'Unschedulable',
                message:
                  '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.',
                lastTransitionTime: kubeNow(),
              },
            ],
          },
        ),
    },
    {
      atMs: 1_500,
      title: 'scheduled: the kubelet creates the containers',
      pod: () =>
        pod(
          o,
          { nodeName: NODE_NAME },
          {
            phase: 'Pending',
            qosClass: 'Burstable',
            hostIP: '172.18.0.2',
            conditions: [{ type: 'PodScheduled', status: 'True' }],
            containerStatuses: containers.map((c) => ({
              name: c.name,
              ready: false,
              restartCount: 0,
              started: false,
              image: c.image,
              imageID: '',
              state: { waiting: { reason: 'ContainerCreating' } },
              lastState: {},
            })),
          },
        ),
    },
    {
      atMs: 3_000,
      title: 'running',
      pod: (startedAt) =>
        startedPod(
          o,
          startedAt,
          true,
          containers.map((c) => running(c.name, startedAt)),
        ),
    },
    {
      atMs: 6_000,
      title: 'the task exits 0',
      pod: (startedAt) =>
        startedPod(o, startedAt, false, [
          {
            name: 'task',
            ready: false,
            restartCount: 0,
            started: false,
            image: taskContainer.image,
            imageID: '',
            containerID: 'containerd://task-0001',
            state: {
              terminated: {
                exitCode: 0,
                reason: 'Completed',
                startedAt,
                finishedAt: kubeNow(),
                containerID: 'containerd://task-0001',
              },
            },
            lastState: {},
          },
          ...(o.mode === 'sidecar' ? [running('tes-heartbeat', startedAt)] : []),
        ]),
    },
  ];
}

/** The pod once its containers have started: `ready` until the task exits. */
function startedPod(
  o: TaskPodOptions,
  startedAt: string,
  ready: boolean,
  containerStatuses: unknown[],
): KubeObject {
  return pod(
    o,
    { nodeName: NODE_NAME },
    {
      phase: 'Running',
      qosClass: 'Burstable',
      hostIP: '172.18.0.2',
      podIP: '10.244.0.7',
      startTime: startedAt,
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
      ],
      containerStatuses,
    },
  );
}

export const node: KubeObject = {
  metadata: {
    name: NODE_NAME,
    labels: {
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/os': 'linux',
      'node.kubernetes.io/instance-type': 'm6i.2xlarge',
      'topology.kubernetes.io/region': 'us-east-1',
      'topology.kubernetes.io/zone': 'us-east-1a',
    },
  },
  status: {
    capacity: { cpu: '8', memory: '32386524Ki', pods: '110', 'ephemeral-storage': '102626232Ki' },
    allocatable: { cpu: '7910m', memory: '31369692Ki', pods: '110', 'ephemeral-storage': '94580335255' },
    nodeInfo: {
      architecture: 'amd64',
      operatingSystem: 'linux',
      osImage: 'Debian GNU/Linux 12 (bookworm)',
      kernelVersion: '6.8.0-1019-aws',
      containerRuntimeVersion: 'containerd://1.7.24',
      kubeletVersion: 'v1.31.4',
      kubeProxyVersion: 'v1.31.4',
      machineID: '',
      systemUUID: '',
      bootID: '',
    },
  },
};

export const job: KubeObject = {
  metadata: { name: JOB_NAME, namespace: NAMESPACE },
  spec: { backoffLimit: 3, template: { spec: { containers: [] } } },
  status: { active: 1, failed: 1 },
};
