// Exact heartbeat bodies for pods as Kubernetes serves them, and their validity
// against the TES definition.
import { describe, expect, it } from 'vitest';
import { heartbeatBody, type MappingOptions, timestamp } from '../../src/heartbeat/mapping.ts';
import { validateAgainstDefinition } from '../../src/tes/definition.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { loadNode, loadPod, POD_FIXTURES, type PodFixture, withDates } from '../support/k8s-fixtures.ts';

const options: MappingOptions = {
  podName: 'from-pod-name-setting',
  nonce: 'n-5c1e0b7a',
  selfName: 'tes-heartbeat',
  hardwareDetails: false,
};

const UNSCHEDULABLE =
  '0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.';

interface Case {
  desc: string;
  fixture: PodFixture;
  jobRetryCount?: number;
  last?: boolean;
  want: HeartbeatTaskRunRequest;
}

const cases: Case[] = [
  {
    desc: 'Pending and unschedulable: no status yet, the scheduler says why',
    fixture: 'pending-unschedulable',
    want: {
      podName: 'tes-run-a1f3c-q7wzd',
      podUID: '6f1d2c3b-8a9e-4f70-b1c2-d3e4f5a6b7c8',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        { name: 'main', state: { waiting: { reason: 'Unschedulable', message: UNSCHEDULABLE } } },
      ],
    },
  },
  {
    desc: 'ContainerCreating, the agent a regular container and not reported',
    fixture: 'container-creating',
    want: {
      podName: 'tes-run-b7d20-m5n6p',
      podUID: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'main', state: { waiting: { reason: 'ContainerCreating' } } }],
    },
  },
  {
    desc: 'PodInitializing behind a running init container',
    fixture: 'pod-initializing',
    want: {
      podName: 'tes-run-c93e1-t4r2s',
      podUID: '3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'main', state: { waiting: { reason: 'PodInitializing' } } }],
    },
  },
  {
    desc: 'ImagePullBackOff with the pull error',
    fixture: 'image-pull-backoff',
    want: {
      podName: 'tes-run-d41a7-k2j8h',
      podUID: '5e6f7a8b-9c0d-4e1f-8a2b-4c5d6e7f8a9b',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            waiting: {
              reason: 'ImagePullBackOff',
              message:
                'Back-off pulling image "registry.example.com/genomics/bwa-mem2:2.2.9": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "registry.example.com/genomics/bwa-mem2:2.2.9": failed to resolve reference "registry.example.com/genomics/bwa-mem2:2.2.9": registry.example.com/genomics/bwa-mem2:2.2.9: not found',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'ErrImagePull',
    fixture: 'err-image-pull',
    want: {
      podName: 'tes-run-e58b2-p9l4x',
      podUID: '7a8b9c0d-1e2f-4a3b-9c4d-6e7f8a9b0c1d',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            waiting: {
              reason: 'ErrImagePull',
              message:
                'failed to pull and unpack image "private.registry.example.com/genomics/bwa-mem2:2.2.1": failed to resolve reference "private.registry.example.com/genomics/bwa-mem2:2.2.1": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'CreateContainerConfigError for a missing secret',
    fixture: 'create-container-config-error',
    want: {
      podName: 'tes-run-f62c9-v3b7n',
      podUID: '9c0d1e2f-3a4b-4c5d-8e6f-8a9b0c1d2e3f',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            waiting: {
              reason: 'CreateContainerConfigError',
              message: 'secret "aligner-credentials" not found',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'CrashLoopBackOff: the current state only, not lastState or restartCount',
    fixture: 'crash-loop-backoff',
    jobRetryCount: 2,
    want: {
      podName: 'tes-run-a07d3-c6x1z',
      podUID: '1e2f3a4b-5c6d-4e7f-9a8b-0c1d2e3f4a5b',
      jobRetryCount: 2,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            waiting: {
              reason: 'CrashLoopBackOff',
              message:
                'back-off 1m20s restarting failed container=main pod=tes-run-a07d3-c6x1z_tes-tasks(1e2f3a4b-5c6d-4e7f-9a8b-0c1d2e3f4a5b)',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'OOMKilled, exit 137, while the agent sidecar still runs',
    fixture: 'oom-killed',
    want: {
      podName: 'tes-run-b19e4-d8f2g',
      podUID: '3a4b5c6d-7e8f-4a9b-8c0d-2e3f4a5b6c7d',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            terminated: {
              exitCode: 137,
              reason: 'OOMKilled',
              message:
                '[M::process] read 1600000 sequences (240000000 bp)...\n[M::mem_pestat] # candidate unique pairs for (FF, FR, RF, RR): (41, 297154, 52, 38)\n',
              startedAt: '2026-11-20T09:14:31Z',
              finishedAt: '2026-11-20T09:31:16Z',
              containerID: 'containerd://dc809543add7a5edc34b3c7fe2d2cc1dc2f6e8af46c12c99dcbf363278135050',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'exit 143 after SIGTERM (reason Error) beside a completed container, final heartbeat',
    fixture: 'sigterm-exit',
    last: true,
    want: {
      lastHeartbeat: true,
      podName: 'tes-run-c24f5-h6j3k',
      podUID: '5c6d7e8f-9a0b-4c1d-9e2f-4a5b6c7d8e9f',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            terminated: {
              exitCode: 143,
              reason: 'Error',
              message:
                '[M::mem_process_seqs] Processed 1600000 reads in 301.212 CPU sec, 38.006 real sec\nTerminated\n',
              startedAt: '2026-11-20T09:14:31Z',
              finishedAt: '2026-11-20T10:02:44Z',
              containerID: 'containerd://849277d37c38887b88789dfc89fc7fee34b4a232cc2955e347a349efc0815e0d',
            },
          },
        },
        {
          name: 'log-shipper',
          state: {
            terminated: {
              exitCode: 0,
              reason: 'Completed',
              startedAt: '2026-11-20T09:14:30Z',
              finishedAt: '2026-11-20T10:02:45Z',
              containerID: 'containerd://eb3ca88442bc9d362f0f9871b40bb741d5cec6b90638a9c339ecabda114024e8',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'Completed, phase Succeeded, final heartbeat',
    fixture: 'completed',
    last: true,
    want: {
      lastHeartbeat: true,
      podName: 'tes-run-d35a6-n1m4l',
      podUID: '7e8f9a0b-1c2d-4e3f-8a4b-6c7d8e9f0a1b',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            terminated: {
              exitCode: 0,
              reason: 'Completed',
              startedAt: '2026-11-20T09:14:31Z',
              finishedAt: '2026-11-20T10:41:07Z',
              containerID: 'containerd://57dad9c406e61638533a2910b3388a357e76308f2174e226cf6085f15cbcc9c6',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'Evicted: exit 137, and ContainerStatusUnknown whose null times are left out',
    fixture: 'evicted',
    last: true,
    want: {
      lastHeartbeat: true,
      podName: 'tes-run-e46b7-g5h8j',
      podUID: '9a0b1c2d-3e4f-4a5b-9c6d-8e9f0a1b2c3d',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [
        {
          name: 'main',
          state: {
            terminated: {
              exitCode: 137,
              reason: 'Error',
              startedAt: '2026-11-20T09:14:31Z',
              finishedAt: '2026-11-20T11:06:22Z',
              containerID: 'containerd://c68737c8e375ea2f65d934f9dcebb56f4ddb9bd973f6080a789663114163070e',
            },
          },
        },
        {
          name: 'metrics',
          state: {
            terminated: {
              exitCode: 137,
              reason: 'ContainerStatusUnknown',
              message: 'The container could not be located when the pod was terminated',
            },
          },
        },
      ],
    },
  },
  {
    desc: 'running, the agent itself a native sidecar and not reported',
    fixture: 'running-native-agent',
    want: {
      podName: 'tes-run-f57c8-b3n9m',
      podUID: '1c2d3e4f-5a6b-4c7d-8e8f-0a1b2c3d4e5f',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'main', state: { running: { startedAt: '2026-11-20T09:14:31Z' } } }],
    },
  },
  {
    desc: 'istio-proxy a native sidecar (not a regular container), the agent a regular one',
    fixture: 'istio-native-sidecar',
    want: {
      podName: 'tes-run-a68d9-s7d4f',
      podUID: '3e4f5a6b-7c8d-4e9f-8a0b-2c3d4e5f6a7b',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'main', state: { running: { startedAt: '2026-11-20T09:14:31Z' } } }],
    },
  },
  {
    desc: 'real, Kubernetes 1.33 (kind): a list item without apiVersion/kind, with status.resources, user, volumeMounts',
    fixture: 'kind-1.33-list-item',
    want: {
      podName: 'myapp',
      podUID: '130201cc-db71-4342-988c-30b0bfc4997c',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'hello-server', state: { running: { startedAt: '2026-06-28T09:03:48Z' } } }],
    },
  },
  {
    desc: 'real, kubeadm 1.31: an init container in CrashLoopBackOff keeps the task PodInitializing',
    fixture: 'kubeadm-init-crash-loop',
    want: {
      podName: 'orange',
      podUID: '6fef656e-cf16-479a-a809-740c02376fcb',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [{ name: 'orange-container', state: { waiting: { reason: 'PodInitializing' } } }],
    },
  },
  {
    desc: 'real status fragment (in-place resize docs): no metadata, no spec, a status with no state',
    fixture: 'resize-status-fragment',
    want: {
      podName: 'from-pod-name-setting',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
      containerStatus: [],
    },
  },
];

describe('heartbeatBody from real pod shapes', () => {
  it('has a case for every fixture', () => {
    expect(cases.map((c) => c.fixture).sort()).toStrictEqual([...POD_FIXTURES].sort());
  });

  it.each(cases)('$desc', ({ fixture, jobRetryCount = 0, last = false, want }) => {
    const body = heartbeatBody({ pod: loadPod(fixture), jobRetryCount }, options, last);
    expect(body).toStrictEqual(want);
    // What goes on the wire is the same object: no undefined keys to vanish, no nulls.
    expect(JSON.parse(JSON.stringify(body))).toStrictEqual(want);
  });

  it.each(cases)(
    'same body when client-node has turned timestamps into Dates: $fixture',
    ({ fixture, want }) => {
      const body = heartbeatBody(
        { pod: withDates(loadPod(fixture)), jobRetryCount: want.jobRetryCount ?? 0 },
        options,
        false,
      );
      const { lastHeartbeat: _last, ...rest } = want;
      expect(body).toStrictEqual(rest);
    },
  );

  it.each(
    POD_FIXTURES.flatMap((fixture) => [
      { fixture, hardware: false, last: false },
      { fixture, hardware: true, last: true },
    ]),
  )(
    'validates against HeartbeatTaskRunRequest: $fixture (hardware $hardware)',
    ({ fixture, hardware, last }) => {
      const facts = { pod: loadPod(fixture), node: loadNode('eks-gpu'), jobRetryCount: 1 };
      const body = heartbeatBody(facts, { ...options, hardwareDetails: hardware }, last);
      expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
    },
  );

  it('the validator used above does reject a broken body', () => {
    const broken = {
      podName: 'p',
      containerStatus: [{ name: 'main', state: { running: { startedAt: null } } }],
    };
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', broken)).not.toStrictEqual([]);
  });
});

describe('real objects are messier than our fixtures', () => {
  it('an init container named in WATCH_CONTAINERS is reported from initContainerStatuses (real kubeadm capture)', () => {
    const body = heartbeatBody(
      { pod: loadPod('kubeadm-init-crash-loop'), jobRetryCount: 0 },
      { ...options, watchContainers: ['init-myservice', 'orange-container'] },
      false,
    );
    expect(body.containerStatus).toStrictEqual([
      {
        name: 'init-myservice',
        state: {
          waiting: {
            reason: 'CrashLoopBackOff',
            message:
              'back-off 40s restarting failed container=init-myservice pod=orange_default(6fef656e-cf16-479a-a809-740c02376fcb)',
          },
        },
      },
      { name: 'orange-container', state: { waiting: { reason: 'PodInitializing' } } },
    ]);
  });

  it('1.33+ container status fields (allocatedResources, resources, user, volumeMounts, stopSignal) stay out of the body', () => {
    const pod = loadPod('kind-1.33-list-item');
    // ContainerStatus.stopSignal (1.33, ContainerStopSignals) from the API reference: no capture found.
    Object.assign(pod.status?.containerStatuses?.[0] ?? {}, {
      stopSignal: 'SIGTERM',
      allocatedResources: { cpu: '700m', memory: '200Mi' },
    });
    const body = heartbeatBody(
      { pod, node: loadNode('kubeadm-controlplane-1.31'), jobRetryCount: 0 },
      { ...options, hardwareDetails: true },
      true,
    );
    const wire = JSON.stringify(body);
    for (const field of [
      'stopSignal',
      'allocatedResources',
      'supplementalGroups',
      'recursiveReadOnly',
      'null',
    ])
      expect(wire).not.toContain(field);
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
    expect(JSON.parse(body.podHardwareDetails as string)).toStrictEqual({
      nodeName: 'kind-control-plane',
      qosClass: 'BestEffort',
      containers: [{ name: 'hello-server' }],
      node: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Ubuntu 22.04.4 LTS',
        kernelVersion: '5.4.0-1106-gcp',
        containerRuntimeVersion: 'containerd://1.6.26',
        kubeletVersion: 'v1.31.0',
        capacity: {
          cpu: '36',
          'ephemeral-storage': '1016057248Ki',
          'hugepages-1Gi': '0',
          'hugepages-2Mi': '0',
          memory: '214587056Ki',
          pods: '110',
        },
        allocatable: {
          cpu: '36',
          'ephemeral-storage': '936398358207',
          'hugepages-1Gi': '0',
          'hugepages-2Mi': '0',
          memory: '214484656Ki',
          pods: '110',
        },
      },
    });
  });

  it('a status fragment: hardware details carry what there is, nothing null', () => {
    const body = heartbeatBody(
      { pod: loadPod('resize-status-fragment'), jobRetryCount: 0 },
      { ...options, hardwareDetails: true },
      false,
    );
    expect(JSON.parse(body.podHardwareDetails as string)).toStrictEqual({
      qosClass: 'Guaranteed',
      containers: [],
    });
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
  });
});

describe('heartbeatBody without a pod (contract rule 1)', () => {
  it('carries podName from the setting, nonce and jobRetryCount only', () => {
    const body = heartbeatBody({ jobRetryCount: 3 }, options, false);
    expect(body).toStrictEqual({ podName: 'from-pod-name-setting', jobRetryCount: 3, nonce: 'n-5c1e0b7a' });
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
  });

  it('adds lastHeartbeat when it is the final one', () => {
    expect(heartbeatBody({ jobRetryCount: 0 }, options, true)).toStrictEqual({
      lastHeartbeat: true,
      podName: 'from-pod-name-setting',
      jobRetryCount: 0,
      nonce: 'n-5c1e0b7a',
    });
  });

  it('ignores the node and hardware details without a pod', () => {
    const body = heartbeatBody(
      { node: loadNode('eks-gpu'), jobRetryCount: 0 },
      { ...options, hardwareDetails: true },
      false,
    );
    expect(body).toStrictEqual({ podName: 'from-pod-name-setting', jobRetryCount: 0, nonce: 'n-5c1e0b7a' });
  });

  it.each([
    { desc: 'undefined nonce', nonce: undefined },
    { desc: 'empty nonce', nonce: '' },
  ])('omits the nonce: $desc', ({ nonce }) => {
    const { nonce: _n, ...rest } = options;
    const opts: MappingOptions = nonce === undefined ? rest : { ...rest, nonce };
    const body = heartbeatBody({ jobRetryCount: 0 }, opts, false);
    expect(body).toStrictEqual({ podName: 'from-pod-name-setting', jobRetryCount: 0 });
    expect(Object.keys(body)).not.toContain('nonce');
  });
});

describe('heartbeatBody details', () => {
  it('adds podHardwareDetails when enabled, with the node', () => {
    const body = heartbeatBody(
      { pod: loadPod('running-native-agent'), node: loadNode('eks-gpu'), jobRetryCount: 0 },
      { ...options, hardwareDetails: true },
      false,
    );
    expect(body.podHardwareDetails).toBe(
      JSON.stringify({
        nodeName: 'ip-10-0-12-34.ec2.internal',
        qosClass: 'Burstable',
        containers: [
          {
            name: 'main',
            requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' },
            limits: { memory: '16Gi', 'nvidia.com/gpu': '1' },
          },
        ],
        node: {
          instanceType: 'g5.2xlarge',
          zone: 'us-east-1a',
          region: 'us-east-1',
          architecture: 'amd64',
          operatingSystem: 'linux',
          osImage: 'Amazon Linux 2',
          kernelVersion: '5.10.226-214.880.amzn2.x86_64',
          containerRuntimeVersion: 'containerd://1.7.22',
          kubeletVersion: 'v1.31.2-eks-94953ac',
          capacity: {
            cpu: '8',
            'ephemeral-storage': '104845292Ki',
            'hugepages-1Gi': '0',
            'hugepages-2Mi': '0',
            memory: '32386544Ki',
            'nvidia.com/gpu': '1',
            pods: '58',
          },
          allocatable: {
            cpu: '7910m',
            'ephemeral-storage': '95551679124',
            'hugepages-1Gi': '0',
            'hugepages-2Mi': '0',
            memory: '31369712Ki',
            'nvidia.com/gpu': '1',
            pods: '58',
          },
        },
      }),
    );
    expect(Object.keys(body)).toStrictEqual([
      'podName',
      'podUID',
      'podHardwareDetails',
      'jobRetryCount',
      'nonce',
      'containerStatus',
    ]);
  });

  it('sends the pod part alone when the node is unknown', () => {
    const body = heartbeatBody(
      { pod: loadPod('pending-unschedulable'), jobRetryCount: 0 },
      { ...options, hardwareDetails: true },
      false,
    );
    expect(body.podHardwareDetails).toBe(
      JSON.stringify({
        qosClass: 'Burstable',
        containers: [
          {
            name: 'main',
            requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' },
            limits: { memory: '16Gi', 'nvidia.com/gpu': '1' },
          },
        ],
      }),
    );
  });

  it('falls back to POD_NAME and leaves podUID out when the pod lacks them', () => {
    const pod = loadPod('running-native-agent');
    delete pod.metadata;
    const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, false);
    expect(body.podName).toBe('from-pod-name-setting');
    expect(Object.keys(body)).not.toContain('podUID');
  });

  it('reports an explicitly watched native sidecar from initContainerStatuses', () => {
    const body = heartbeatBody(
      { pod: loadPod('istio-native-sidecar'), jobRetryCount: 0 },
      { ...options, watchContainers: ['main', 'istio-proxy'] },
      false,
    );
    expect(body.containerStatus).toStrictEqual([
      { name: 'istio-proxy', state: { running: { startedAt: '2026-11-20T09:14:05Z' } } },
      { name: 'main', state: { running: { startedAt: '2026-11-20T09:14:31Z' } } },
    ]);
  });

  it('reports the default set when WATCH_CONTAINERS names none of the pod containers (rule 19)', () => {
    const body = heartbeatBody(
      { pod: loadPod('running-native-agent'), jobRetryCount: 0 },
      { ...options, watchContainers: ['absent'] },
      false,
    );
    expect(body.containerStatus?.map((c) => c.name)).toStrictEqual(['main']);
  });

  it.each([
    { desc: 'no status entry, scheduled', status: undefined, want: { waiting: { reason: 'Pending' } } },
    { desc: 'empty state {}', status: {}, want: { waiting: { reason: 'Pending' } } },
    { desc: 'waiting with neither reason nor message', status: { waiting: {} }, want: { waiting: {} } },
    { desc: 'running without startedAt', status: { running: {} }, want: { running: {} } },
    {
      desc: 'terminated with a signal',
      status: { terminated: { exitCode: 137, signal: 9, reason: 'Error' } },
      want: { terminated: { exitCode: 137, signal: 9, reason: 'Error' } },
    },
    {
      desc: 'empty strings count as absent (Kubernetes omits empty fields)',
      status: { terminated: { exitCode: 2, reason: '', message: '', containerID: '' } },
      want: { terminated: { exitCode: 2 } },
    },
    {
      desc: 'exit code outside int32 left out',
      status: { terminated: { exitCode: 2 ** 32, reason: 'Error' } },
      want: { terminated: { reason: 'Error' } },
    },
    {
      desc: 'two kinds at once (never served): the most final one',
      status: {
        running: { startedAt: '2026-11-20T09:14:31Z' },
        terminated: { exitCode: 0, reason: 'Completed' },
      },
      want: { terminated: { exitCode: 0, reason: 'Completed' } },
    },
  ])('maps a container state: $desc', ({ status, want }) => {
    const pod = loadPod('running-native-agent');
    const statuses = pod.status?.containerStatuses ?? [];
    if (status === undefined) statuses.length = 0;
    else (statuses[0] as { state: unknown }).state = status;
    const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, false);
    expect(body.containerStatus).toStrictEqual([{ name: 'main', state: want }]);
    expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
  });

  it('uses the PodScheduled=False reason, or Pending when the condition has none', () => {
    const pod = loadPod('pending-unschedulable');
    const condition = pod.status?.conditions?.[0];
    if (condition) delete condition.reason;
    const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, false);
    expect(body.containerStatus).toStrictEqual([
      { name: 'main', state: { waiting: { reason: 'Pending', message: UNSCHEDULABLE } } },
    ]);
  });

  it.each([
    {
      desc: 'rejected by the kubelet (OutOfcpu)',
      reason: 'OutOfcpu',
      message:
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 7600, capacity: 7910",
    },
    { desc: 'evicted before starting', reason: 'Evicted', message: 'The node was low on resource: memory. ' },
    {
      desc: 'rejected for node affinity',
      reason: 'NodeAffinity',
      message:
        "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
    },
    {
      desc: 'past activeDeadlineSeconds',
      reason: 'DeadlineExceeded',
      message: 'Pod was active on the node longer than the specified deadline',
    },
    { desc: 'a reason without a message', reason: 'Evicted', message: undefined },
    { desc: 'a message without a reason: Pending', reason: undefined, message: 'waiting for a volume' },
  ])(
    "a container that never started in a pod the kubelet gave up on: the pod's own reason ($desc)",
    ({ reason, message }) => {
      const pod = loadPod('pending-unschedulable');
      pod.spec = {
        ...pod.spec,
        containers: pod.spec?.containers ?? [],
        nodeName: 'ip-10-0-12-34.ec2.internal',
      };
      pod.status = {
        phase: reason ? 'Failed' : 'Pending',
        ...(reason && { reason }),
        ...(message && { message }),
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-11-20T09:14:02Z' }],
        startTime: '2026-11-20T09:14:03Z',
      };
      const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, true);
      const waiting = { reason: reason ?? 'Pending', ...(message && { message }) };
      expect(body.containerStatus).toStrictEqual([{ name: 'main', state: { waiting } }]);
      expect(validateAgainstDefinition('HeartbeatTaskRunRequest', body)).toStrictEqual([]);
    },
  );

  it('PodScheduled=False wins over the pod reason', () => {
    const pod = loadPod('pending-unschedulable');
    pod.status = { ...pod.status, reason: 'SchedulingGated', message: 'ignored' };
    const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, false);
    expect(body.containerStatus?.[0]?.state?.waiting?.reason).toBe('Unschedulable');
  });
});

describe('timestamp', () => {
  it.each([
    { desc: 'Kubernetes form kept', input: '2026-11-20T09:14:31Z', want: '2026-11-20T09:14:31Z' },
    { desc: 'offset normalised to Z', input: '2026-11-20T10:14:31+01:00', want: '2026-11-20T09:14:31Z' },
    {
      desc: 'negative offset across midnight',
      input: '2026-11-19T23:30:00-10:00',
      want: '2026-11-20T09:30:00Z',
    },
    {
      desc: 'fraction truncated to the second',
      input: '2026-11-20T09:14:31.987654321Z',
      want: '2026-11-20T09:14:31Z',
    },
    { desc: 'lower-case t and z', input: '2026-11-20t09:14:31z', want: '2026-11-20T09:14:31Z' },
    { desc: 'Date object', input: new Date('2026-11-20T09:14:31Z'), want: '2026-11-20T09:14:31Z' },
    {
      desc: 'Date with milliseconds',
      input: new Date('2026-11-20T09:14:31.999Z'),
      want: '2026-11-20T09:14:31Z',
    },
    { desc: 'null (zero time)', input: null, want: undefined },
    { desc: 'no zone', input: '2026-11-20T09:14:31', want: undefined },
    { desc: 'not a date', input: 'yesterday', want: undefined },
    { desc: 'empty string', input: '', want: undefined },
    { desc: 'invalid Date', input: new Date('nope'), want: undefined },
    { desc: 'a number', input: 1_763_630_071_000, want: undefined },
  ])('$desc', ({ input, want }) => {
    expect(timestamp(input)).toBe(want);
  });

  it('normalises every timestamp of the body', () => {
    const pod = loadPod('oom-killed');
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated as unknown as Record<
      string,
      unknown
    >;
    terminated.startedAt = '2026-11-20T10:14:31.5+01:00';
    terminated.finishedAt = new Date('2026-11-20T09:31:16.250Z');
    const body = heartbeatBody({ pod, jobRetryCount: 0 }, options, false);
    expect(body.containerStatus?.[0]?.state?.terminated).toMatchObject({
      startedAt: '2026-11-20T09:14:31Z',
      finishedAt: '2026-11-20T09:31:16Z',
    });
  });
});
