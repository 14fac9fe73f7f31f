// Tables for the decisions the heartbeat loop takes from a pod: which containers
// are reported, when a change warrants a heartbeat (rule 3), when the task is done (rule 7).
import type { Container, ContainerStatus, Pod } from '../../src/kube/types.ts';
import { describe, expect, it } from 'vitest';
import {
  isTaskComplete,
  type MappingOptions,
  stateSignature,
  watchedContainers,
} from '../../src/heartbeat/mapping.ts';
import { loadPod, type PodFixture } from '../support/k8s-fixtures.ts';

const options: MappingOptions = { podName: 'p', selfName: 'tes-heartbeat', hardwareDetails: false };

type Mutable = Record<string, unknown>;
const mainStatus = (pod: Pod) => pod.status?.containerStatuses?.[0] as ContainerStatus;
const raw = (value: unknown) => value as Mutable;

describe('watchedContainers', () => {
  it.each([
    {
      desc: 'default: regular containers only, not the native sidecars',
      fixture: 'istio-native-sidecar',
      watch: undefined,
      names: ['main'],
      missing: [],
    },
    {
      desc: 'default: the agent as a regular container is excluded',
      fixture: 'container-creating',
      watch: undefined,
      names: ['main'],
      missing: [],
    },
    {
      desc: 'default: several regular containers in spec order',
      fixture: 'sigterm-exit',
      watch: undefined,
      names: ['main', 'log-shipper'],
      missing: [],
    },
    {
      desc: 'configured order does not matter: spec order',
      fixture: 'sigterm-exit',
      watch: ['log-shipper', 'main'],
      names: ['main', 'log-shipper'],
      missing: [],
    },
    {
      desc: 'a subset',
      fixture: 'sigterm-exit',
      watch: ['log-shipper'],
      names: ['log-shipper'],
      missing: [],
    },
    {
      desc: 'selfName excluded even when listed',
      fixture: 'container-creating',
      watch: ['tes-heartbeat', 'main'],
      names: ['main'],
      missing: [],
    },
    {
      desc: 'selfName listed but absent is not reported missing',
      fixture: 'sigterm-exit',
      watch: ['main', 'tes-heartbeat'],
      names: ['main'],
      missing: [],
    },
    {
      desc: 'names absent from the spec reported once each, in configured order',
      fixture: 'running-native-agent',
      watch: ['qc', 'main', 'aligner', 'qc'],
      names: ['main'],
      missing: ['qc', 'aligner'],
    },
    {
      desc: 'duplicates reported once',
      fixture: 'running-native-agent',
      watch: ['main', 'main'],
      names: ['main'],
      missing: [],
    },
    {
      desc: 'empty names ignored',
      fixture: 'running-native-agent',
      watch: ['', 'main'],
      names: ['main'],
      missing: [],
    },
    {
      desc: 'rule 19: no name known (a typo): the default set, the unknown names for the error',
      fixture: 'sigterm-exit',
      watch: ['mian', 'qc'],
      names: ['main', 'log-shipper'],
      missing: ['mian', 'qc'],
      fellBack: true,
    },
    {
      desc: 'rule 19: only the agent itself named: the default set',
      fixture: 'container-creating',
      watch: ['tes-heartbeat'],
      names: ['main'],
      missing: [],
      fellBack: true,
    },
    {
      desc: 'rule 19: an init container is a known name, no fallback',
      fixture: 'istio-native-sidecar',
      watch: ['istio-init', 'typo'],
      names: ['istio-init'],
      missing: ['typo'],
    },
    {
      desc: 'empty list: the default set',
      fixture: 'running-native-agent',
      watch: [],
      names: ['main'],
      missing: [],
      fellBack: true,
    },
    {
      desc: 'init containers may be named, and come first as in the spec',
      fixture: 'istio-native-sidecar',
      watch: ['main', 'istio-proxy', 'istio-init'],
      names: ['istio-init', 'istio-proxy', 'main'],
      missing: [],
    },
  ] satisfies {
    desc: string;
    fixture: PodFixture;
    watch: string[] | undefined;
    names: string[];
    missing: string[];
    fellBack?: boolean;
  }[])('$desc', ({ fixture, watch, names, missing, fellBack = false }) => {
    const opts: MappingOptions = watch === undefined ? options : { ...options, watchContainers: watch };
    expect(watchedContainers(loadPod(fixture), opts)).toStrictEqual({ names, missing, fellBack });
  });

  it('a pod without a spec (a status fragment): nothing watched, no name blamed', () => {
    expect(watchedContainers({}, { ...options, watchContainers: ['main', 'qc'] })).toStrictEqual({
      names: [],
      missing: [],
      fellBack: false,
    });
    expect(watchedContainers({}, options)).toStrictEqual({ names: [], missing: [], fellBack: false });
  });

  it('honours another selfName', () => {
    expect(watchedContainers(loadPod('sigterm-exit'), { ...options, selfName: 'main' }).names).toStrictEqual([
      'log-shipper',
    ]);
  });
});

describe('stateSignature', () => {
  const changes: {
    desc: string;
    fixture: PodFixture;
    mutate: (pod: Pod) => void;
    changed: boolean;
    watch?: string[];
  }[] = [
    {
      desc: 'waiting → running',
      fixture: 'container-creating',
      mutate: (pod) => (raw(mainStatus(pod)).state = { running: { startedAt: '2026-11-20T09:14:31Z' } }),
      changed: true,
    },
    {
      desc: 'running → terminated',
      fixture: 'running-native-agent',
      mutate: (pod) => (raw(mainStatus(pod)).state = { terminated: { exitCode: 0, reason: 'Completed' } }),
      changed: true,
    },
    {
      desc: 'waiting reason ErrImagePull → ImagePullBackOff',
      fixture: 'err-image-pull',
      mutate: (pod) =>
        (raw(mainStatus(pod)).state = {
          waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' },
        }),
      changed: true,
    },
    {
      desc: 'terminated exit code 143 → 137, same reason',
      fixture: 'sigterm-exit',
      mutate: (pod) => (raw(raw(mainStatus(pod).state).terminated).exitCode = 137),
      changed: true,
    },
    {
      desc: 'terminated reason Error → OOMKilled, same exit code',
      fixture: 'evicted',
      mutate: (pod) => (raw(raw(mainStatus(pod).state).terminated).reason = 'OOMKilled'),
      changed: true,
    },
    {
      desc: 'no status → a status (scheduled and creating)',
      fixture: 'pending-unschedulable',
      mutate: (pod) => {
        raw(pod.status).conditions = [{ type: 'PodScheduled', status: 'True' }];
        raw(pod.status).containerStatuses = [
          { name: 'main', state: { waiting: { reason: 'ContainerCreating' } } },
        ];
      },
      changed: true,
    },
    {
      desc: 'Unschedulable → scheduled, no status yet (Pending)',
      fixture: 'pending-unschedulable',
      mutate: (pod) => (raw(pod.status).conditions = [{ type: 'PodScheduled', status: 'True' }]),
      changed: true,
    },
    {
      desc: 'a watched native sidecar restarting',
      fixture: 'istio-native-sidecar',
      watch: ['main', 'istio-proxy'],
      mutate: (pod) =>
        (raw(pod.status?.initContainerStatuses?.[1]).state = { waiting: { reason: 'CrashLoopBackOff' } }),
      changed: true,
    },
    {
      desc: 'stable: waiting message changes (back-off timer)',
      fixture: 'crash-loop-backoff',
      mutate: (pod) =>
        (raw(raw(mainStatus(pod).state).waiting).message = 'back-off 2m40s restarting failed container=main'),
      changed: false,
    },
    {
      desc: 'stable: the scheduler message changes',
      fixture: 'pending-unschedulable',
      mutate: (pod) =>
        (raw(pod.status?.conditions?.[0]).message =
          '0/4 nodes are available: 4 Insufficient nvidia.com/gpu.'),
      changed: false,
    },
    {
      desc: 'stable: restartCount, lastState, ready and started change',
      fixture: 'crash-loop-backoff',
      mutate: (pod) => {
        const s = raw(mainStatus(pod));
        s.restartCount = 4;
        s.ready = true;
        s.started = true;
        s.lastState = { terminated: { exitCode: 2, reason: 'Error' } };
      },
      changed: false,
    },
    {
      desc: 'stable: terminated message and times change',
      fixture: 'oom-killed',
      mutate: (pod) => {
        const t = raw(raw(mainStatus(pod).state).terminated);
        t.message = 'other log tail';
        t.finishedAt = '2026-11-20T09:31:59Z';
      },
      changed: false,
    },
    {
      desc: 'stable: an unwatched container changes (the agent, istio-proxy)',
      fixture: 'istio-native-sidecar',
      mutate: (pod) => {
        raw(pod.status?.initContainerStatuses?.[1]).state = {
          terminated: { exitCode: 0, reason: 'Completed' },
        };
        raw(pod.status?.containerStatuses?.[1]).state = { waiting: { reason: 'CrashLoopBackOff' } };
      },
      changed: false,
    },
    {
      desc: 'stable: pod conditions, phase, IPs and resourceVersion change',
      fixture: 'running-native-agent',
      mutate: (pod) => {
        raw(pod.metadata).resourceVersion = '48219999';
        raw(pod.status).phase = 'Running';
        raw(pod.status).conditions = [];
        raw(pod.status).podIP = '10.0.13.202';
      },
      changed: false,
    },
    {
      desc: 'stable: raw strings vs Date objects for the same times',
      fixture: 'running-native-agent',
      mutate: (pod) => (raw(raw(mainStatus(pod).state).running).startedAt = new Date('2026-11-20T09:14:31Z')),
      changed: false,
    },
  ];

  it.each(changes)('$desc', ({ fixture, mutate, changed, watch }) => {
    const opts: MappingOptions = watch ? { ...options, watchContainers: watch } : options;
    const before = loadPod(fixture);
    const after = loadPod(fixture);
    mutate(after);
    expect(stateSignature(before, opts)).toBe(stateSignature(loadPod(fixture), opts));
    if (changed) expect(stateSignature(after, opts)).not.toBe(stateSignature(before, opts));
    else expect(stateSignature(after, opts)).toBe(stateSignature(before, opts));
  });

  it('differs between every fixture whose reported states differ', () => {
    const fixtures: PodFixture[] = [
      'pending-unschedulable',
      'container-creating',
      'pod-initializing',
      'image-pull-backoff',
      'err-image-pull',
      'create-container-config-error',
      'crash-loop-backoff',
      'oom-killed',
      'completed',
      'running-native-agent',
    ];
    const signatures = new Set(fixtures.map((f) => stateSignature(loadPod(f), options)));
    expect(signatures.size).toBe(fixtures.length);
  });
});

/** A pod with one container `main` per state, for the completion table. */
function podWith(spec: {
  restartPolicy?: string;
  phase?: string;
  main?: Mutable | undefined;
  container?: Partial<Container>;
}): Pod {
  const pod: Pod = {
    spec: {
      containers: [{ name: 'main', image: 'busybox', ...spec.container }],
      initContainers: [{ name: 'tes-heartbeat', image: 'agent', restartPolicy: 'Always' }],
    },
    status: {
      phase: spec.phase ?? 'Running',
      initContainerStatuses: [
        {
          name: 'tes-heartbeat',
          image: 'agent',
          imageID: '',
          ready: true,
          restartCount: 0,
          state: { running: {} },
        },
      ],
      containerStatuses: spec.main
        ? [{ name: 'main', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: spec.main }]
        : [],
    },
  };
  if (spec.restartPolicy && pod.spec) pod.spec.restartPolicy = spec.restartPolicy;
  return pod;
}

const exited = (exitCode: number) => ({
  terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' },
});

describe('isTaskComplete', () => {
  it.each([
    { desc: 'Never, exit 0', pod: podWith({ restartPolicy: 'Never', main: exited(0) }), want: true },
    { desc: 'Never, exit 1', pod: podWith({ restartPolicy: 'Never', main: exited(1) }), want: true },
    { desc: 'Never, exit 137', pod: podWith({ restartPolicy: 'Never', main: exited(137) }), want: true },
    { desc: 'OnFailure, exit 0', pod: podWith({ restartPolicy: 'OnFailure', main: exited(0) }), want: true },
    {
      desc: 'OnFailure, exit 1 restarts',
      pod: podWith({ restartPolicy: 'OnFailure', main: exited(1) }),
      want: false,
    },
    {
      desc: 'OnFailure, exit code missing: assume it restarts',
      pod: podWith({ restartPolicy: 'OnFailure', main: { terminated: { reason: 'Error' } } }),
      want: false,
    },
    {
      desc: 'Always, exit 0 restarts',
      pod: podWith({ restartPolicy: 'Always', main: exited(0) }),
      want: false,
    },
    {
      desc: 'Always, exit 1 restarts',
      pod: podWith({ restartPolicy: 'Always', main: exited(1) }),
      want: false,
    },
    { desc: 'no restartPolicy means Always', pod: podWith({ main: exited(0) }), want: false },
    {
      desc: 'Never, still running',
      pod: podWith({ restartPolicy: 'Never', main: { running: {} } }),
      want: false,
    },
    {
      desc: 'Never, waiting',
      pod: podWith({ restartPolicy: 'Never', main: { waiting: { reason: 'ContainerCreating' } } }),
      want: false,
    },
    { desc: 'Never, no status yet', pod: podWith({ restartPolicy: 'Never', main: undefined }), want: false },
    { desc: 'Never, empty state', pod: podWith({ restartPolicy: 'Never', main: {} }), want: false },
    {
      desc: 'phase Succeeded decides',
      pod: podWith({ phase: 'Succeeded', restartPolicy: 'Always', main: { running: {} } }),
      want: true,
    },
    { desc: 'phase Failed without statuses', pod: podWith({ phase: 'Failed', main: undefined }), want: true },
    {
      desc: 'phase Pending',
      pod: podWith({ phase: 'Pending', restartPolicy: 'Never', main: undefined }),
      want: false,
    },
    {
      desc: 'phase Unknown',
      pod: podWith({ phase: 'Unknown', restartPolicy: 'Never', main: { running: {} } }),
      want: false,
    },
    {
      desc: 'container restartPolicy Never overrides pod Always',
      pod: podWith({ restartPolicy: 'Always', main: exited(1), container: { restartPolicy: 'Never' } }),
      want: true,
    },
    {
      desc: 'restart rule In [42] matches: restarts despite Never',
      pod: podWith({
        restartPolicy: 'Never',
        main: exited(42),
        container: {
          restartPolicy: 'Never',
          restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [42] } }],
        },
      }),
      want: false,
    },
    {
      desc: 'restart rule In [42] does not match exit 1',
      pod: podWith({
        restartPolicy: 'Never',
        main: exited(1),
        container: {
          restartPolicy: 'Never',
          restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [42] } }],
        },
      }),
      want: true,
    },
    {
      desc: 'restart rule NotIn [0] matches exit 3',
      pod: podWith({
        restartPolicy: 'Never',
        main: exited(3),
        container: {
          restartPolicy: 'Never',
          restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'NotIn', values: [0] } }],
        },
      }),
      want: false,
    },
  ])('$desc → $want', ({ pod, want }) => {
    expect(isTaskComplete(pod, options)).toBe(want);
  });

  it.each([
    { desc: 'Pending, unschedulable', fixture: 'pending-unschedulable', want: false },
    { desc: 'ContainerCreating', fixture: 'container-creating', want: false },
    { desc: 'PodInitializing', fixture: 'pod-initializing', want: false },
    { desc: 'ImagePullBackOff', fixture: 'image-pull-backoff', want: false },
    { desc: 'CrashLoopBackOff', fixture: 'crash-loop-backoff', want: false },
    {
      desc: 'OOMKilled under Never while the native agent sidecar still runs',
      fixture: 'oom-killed',
      want: true,
    },
    { desc: 'exit 143, phase Failed', fixture: 'sigterm-exit', want: true },
    { desc: 'Completed, phase Succeeded', fixture: 'completed', want: true },
    { desc: 'Evicted, phase Failed', fixture: 'evicted', want: true },
    { desc: 'running', fixture: 'running-native-agent', want: false },
    { desc: 'running beside istio-proxy', fixture: 'istio-native-sidecar', want: false },
  ] satisfies { desc: string; fixture: PodFixture; want: boolean }[])(
    'fixture: $desc → $want',
    ({ fixture, want }) => {
      expect(isTaskComplete(loadPod(fixture), options)).toBe(want);
    },
  );

  it('one of two containers still running: not complete; both done: complete', () => {
    const pod = loadPod('sigterm-exit');
    raw(pod.status).phase = 'Running';
    expect(isTaskComplete(pod, options)).toBe(true);
    raw(pod.status?.containerStatuses?.[1]).state = { running: { startedAt: '2026-11-20T09:14:30Z' } };
    expect(isTaskComplete(pod, options)).toBe(false);
    // Watching only the finished one is enough.
    expect(isTaskComplete(pod, { ...options, watchContainers: ['main'] })).toBe(true);
  });

  it('no watched container: complete only when the phase says so', () => {
    const pod = loadPod('oom-killed');
    const none = { ...options, selfName: 'main' }; // the pod's only container is the agent's own
    expect(isTaskComplete(pod, none)).toBe(false);
    raw(pod.status).phase = 'Failed';
    expect(isTaskComplete(pod, none)).toBe(true);
  });

  it('rule 19: a WATCH_CONTAINERS typo still sees the task end (the default set is watched)', () => {
    const pod = loadPod('oom-killed');
    raw(pod.status).phase = 'Running';
    expect(isTaskComplete(pod, { ...options, watchContainers: ['mian'] })).toBe(true);
  });

  it.each([
    {
      desc: 'classic init container exit 0 under pod Always',
      state: exited(0),
      policy: 'Always',
      native: false,
      want: true,
    },
    {
      desc: 'classic init container exit 1 under pod Always (acts as OnFailure)',
      state: exited(1),
      policy: 'Always',
      native: false,
      want: false,
    },
    {
      desc: 'classic init container exit 1 under pod Never',
      state: exited(1),
      policy: 'Never',
      native: false,
      want: true,
    },
    {
      desc: 'watched native sidecar terminated: it restarts',
      state: exited(0),
      policy: 'Never',
      native: true,
      want: false,
    },
  ])('watched init container: $desc → $want', ({ state, policy, native, want }) => {
    const pod: Pod = {
      spec: {
        restartPolicy: policy,
        initContainers: [{ name: 'stage', image: 'x', ...(native ? { restartPolicy: 'Always' } : {}) }],
        containers: [{ name: 'main', image: 'y' }],
      },
      status: {
        phase: 'Running',
        initContainerStatuses: [
          { name: 'stage', image: 'x', imageID: '', ready: false, restartCount: 0, state },
        ],
        containerStatuses: [
          { name: 'main', image: 'y', imageID: '', ready: true, restartCount: 0, state: { running: {} } },
        ],
      },
    };
    expect(isTaskComplete(pod, { ...options, watchContainers: ['stage'] })).toBe(want);
  });
});
