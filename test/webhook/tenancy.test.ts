// Tenancy (issue 15, rules T1, T2, T4) from the attacker's side: a task pod followed through
// admission as kube-apiserver runs it — (a) the ServiceAccount plugin, (b) our webhook over
// HTTPS, its JSON Patch applied strictly, (c) the ServiceAccount plugin again, because a
// webhook changed the pod (kubernetes/kubernetes #78080, since 1.15; #69733 is the report of
// a webhook's container that the first run could not see) — and then what each container can
// read: no task container gains a token, the agent holds exactly its own, and the pod still
// passes Pod Security "restricted".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Agent } from 'undici';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { SEPARATE_AGENT_UIDS } from '../../src/webhook/process-namespace.ts';
import { AGENT_TOKEN_VOLUME, agentTokenVolume } from '../../src/webhook/token.ts';
import { MAX_WARNING_LENGTH } from '../../src/webhook/warning.ts';
import { type RunningWebhook, startWebhook, type WebhookConfig } from '../../src/webhook/webhook.ts';
import { repoRoot } from '../support/helm-chart.ts';
import { restrictedViolations } from '../support/pod-security.ts';
import {
  admitServiceAccount,
  randomSuffix,
  SERVICE_ACCOUNT_MOUNT_PATH,
  type ServiceAccount,
} from '../support/serviceaccount-admission.ts';
import {
  admissionReview,
  applyAnswer,
  httpsClient,
  type JobPodOptions,
  jobPodAsCreated,
  loadTemplate,
  patchOf,
  type ReviewAnswer,
  reachableTokens,
  review,
  silentLogger,
  templateFile,
  tokenPathMounts,
  validatePod,
  webhookConfig,
} from '../support/webhook-helpers.ts';

const AGENT = 'tes-heartbeat';
const OWN_TOKEN = /its task containers can read every pod in the namespace/;
/** The task ServiceAccount the chart creates (rule T1). */
const CHART_ACCOUNT: ServiceAccount = { name: 'tes-heartbeat', automountServiceAccountToken: false };

const running: RunningWebhook[] = [];
async function start(overrides: Partial<WebhookConfig>): Promise<RunningWebhook> {
  const webhook = await startWebhook(await webhookConfig({ httpAddr: 'off', ...overrides }), {
    clock: systemClock,
    logger: silentLogger,
    processMetrics: false,
  });
  running.push(webhook);
  return webhook;
}

let client: Agent;
let template: V1Container;
let native: RunningWebhook;
let regular: RunningWebhook;
beforeAll(async () => {
  client = await httpsClient();
  template = await loadTemplate();
  [native, regular] = await Promise.all([
    start({ sidecarMode: 'native' }),
    start({ sidecarMode: 'regular' }),
  ]);
});
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop(1_000)));
  await client.close();
});

const HARDENED = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/** A task pod that passes Pod Security "restricted" on its own, as a platform team requires. */
function restrictedTaskPod(
  options: Omit<JobPodOptions, 'initContainers'> & { initContainers?: boolean } = {},
): V1Pod {
  const { initContainers, ...rest } = options;
  const pod = jobPodAsCreated({
    ...rest,
    ...(initContainers && {
      initContainers: [{ name: 'stage-in', image: 'busybox', command: ['true'], securityContext: HARDENED }],
    }),
  });
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  spec.securityContext = { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } };
  for (const c of spec.containers) c.securityContext = HARDENED;
  return pod;
}

interface Admitted {
  /** After the ServiceAccount plugin alone: what the task has without tes-heartbeat. */
  baseline: V1Pod;
  answer: ReviewAnswer;
  /** After the webhook's patch and the plugin's re-run: what the pod runs with. */
  final: V1Pod;
  /** The webhook's patch alone applied. */
  patched: V1Pod;
}

/** Admission as kube-apiserver runs it for a pod CREATE. */
async function admit(webhook: RunningWebhook, created: V1Pod, account: ServiceAccount): Promise<Admitted> {
  // A seeded generator: the plugin's names are random in a real cluster; nothing may depend on them.
  let seed = 7;
  const random = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const baseline = admitServiceAccount(created, account, { randomSuffix: randomSuffix(random) });
  const answer = await review(client, webhook.port, admissionReview(baseline));
  expect(answer.status).toBe(200);
  const patched = applyAnswer(baseline, answer);
  const final = admitServiceAccount(patched, account, { randomSuffix: randomSuffix(random) });
  return { baseline, answer, patched, final };
}

const taskContainers = (pod: V1Pod) =>
  [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
    .map((c) => c.name)
    .filter((name) => name !== AGENT);

describe('T1: no API token for the task, through the ServiceAccount plugin and its re-run', () => {
  const automount = [true, false, undefined] as const;
  const cases = automount.flatMap((account) =>
    automount.flatMap((pod) =>
      (['native', 'regular'] as const).flatMap((mode) =>
        [false, true].map((initContainers) => ({ account, pod, mode, initContainers })),
      ),
    ),
  );

  it.each(cases)(
    'account automount $account, pod automount $pod, $mode, init containers: $initContainers',
    async ({ account, pod, mode, initContainers }) => {
      const created = restrictedTaskPod({
        initContainers,
        ...(pod !== undefined && { automountServiceAccountToken: pod }),
      });
      const sa: ServiceAccount = {
        name: 'tes-heartbeat',
        ...(account !== undefined && { automountServiceAccountToken: account }),
      };
      const { baseline, answer, patched, final } = await admit(
        mode === 'native' ? native : regular,
        created,
        sa,
      );
      const podAutomounts = pod ?? account ?? true;

      // The plugin's re-run finds a mount at the path in every container: it changes nothing.
      expect(final).toEqual(patched);
      await validatePod(final);

      // The agent holds its own token, exactly, at the path clients read.
      expect(reachableTokens(final, AGENT)).toEqual([AGENT_TOKEN_VOLUME]);
      expect(final.spec?.volumes?.find((v) => v.name === AGENT_TOKEN_VOLUME)).toEqual(agentTokenVolume());
      const mounts = tokenPathMounts(final);
      expect(mounts[AGENT]).toBe(AGENT_TOKEN_VOLUME);

      // No task container gains anything; without the pod's own automount it holds nothing.
      for (const name of taskContainers(final)) {
        expect(reachableTokens(final, name), name).toEqual(reachableTokens(baseline, name));
        expect(reachableTokens(final, name), name).toEqual(
          podAutomounts ? [expect.stringMatching(/^kube-api-access-/)] : [],
        );
        expect(mounts[name], name).not.toBe(AGENT_TOKEN_VOLUME);
      }
      // The pod's own token mount is the pod's: never removed.
      expect(patchOf(answer)?.every((op) => op.op === 'add')).toBe(true);

      const warnings = answer.body.response.warnings ?? [];
      expect(warnings.some((w) => OWN_TOKEN.test(w))).toBe(podAutomounts);
      for (const w of warnings) expect(w.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);

      expect(restrictedViolations(baseline)).toEqual([]);
      expect(restrictedViolations(final)).toEqual([]);
    },
  );

  it('the simulation is the real hazard: a container injected without a mount of its own gets the pod token on the re-run', async () => {
    const sa: ServiceAccount = { name: 'tes-heartbeat' };
    const baseline = admitServiceAccount(restrictedTaskPod(), sa);
    const injected = structuredClone(baseline);
    injected.spec?.containers.push({ name: 'naive-sidecar', image: 'x' });
    const rerun = admitServiceAccount(injected, sa);
    expect(reachableTokens(rerun, 'naive-sidecar')).toEqual(['kube-api-access-x7k2p']);
    // And a pod whose account automounts nothing gets no volume at all.
    const none = admitServiceAccount(restrictedTaskPod(), { ...sa, automountServiceAccountToken: false });
    expect(none.spec?.volumes).toBeUndefined();
  });

  it('keeps a legacy token Secret the task mounts itself, and the agent never reaches it', async () => {
    const created = restrictedTaskPod({ automountServiceAccountToken: false });
    const spec = created.spec as NonNullable<V1Pod['spec']>;
    spec.volumes = [{ name: 'ci-token', secret: { secretName: 'ci-token-abcde' } }];
    const [task] = spec.containers;
    if (task) task.volumeMounts = [{ name: 'ci-token', mountPath: '/ci' }];
    const tokens = new Set(['ci-token-abcde']);
    const { final, answer } = await admit(native, created, CHART_ACCOUNT);
    expect(reachableTokens(final, 'task', { tokenSecrets: tokens })).toEqual(['ci-token']);
    expect(reachableTokens(final, AGENT, { tokenSecrets: tokens })).toEqual([AGENT_TOKEN_VOLUME]);
    expect(answer.body.response.warnings ?? []).toEqual([]);
  });

  it('the restricted checker refuses what Pod Security would', () => {
    const pod = restrictedTaskPod();
    expect(restrictedViolations(pod)).toEqual([]);
    const spec = pod.spec as NonNullable<V1Pod['spec']>;
    spec.containers.push({ name: 'loose', image: 'x' });
    spec.volumes = [{ name: 'host', hostPath: { path: '/' } }];
    spec.securityContext = {};
    expect(restrictedViolations(pod)).toEqual([
      'volume host: type hostPath not allowed',
      'container loose: allowPrivilegeEscalation must be false',
      'container loose: runAsNonRoot must be true (on the container or the pod)',
      'container loose: seccompProfile must be RuntimeDefault or Localhost, is unset',
      'container loose: must drop ALL capabilities',
    ]);
  });
});

describe('T2: the nonce from a Secret', () => {
  const nonceEnv = (agent: V1Container | undefined) =>
    (agent?.env ?? []).filter((e) => e.name === 'TES_NONCE');
  const agentOf = (pod: V1Pod) =>
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === AGENT);
  const secretRef = {
    valueFrom: { secretKeyRef: { name: 'run-0001-nonce', key: 'nonce', optional: false } },
  };

  it('makes TES_NONCE a secretKeyRef to the named Secret, key nonce, not optional', async () => {
    const created = restrictedTaskPod({
      annotations: { 'tes-heartbeat/run-id': 'run-0001', 'tes-heartbeat/nonce-secret': 'run-0001-nonce' },
    });
    for (const webhook of [native, regular]) {
      const { final, answer } = await admit(webhook, created, CHART_ACCOUNT);
      expect(nonceEnv(agentOf(final))).toEqual([{ name: 'TES_NONCE', ...secretRef }]);
      expect(answer.body.response.warnings ?? []).toEqual([]);
      // Only the agent reads the Secret.
      for (const name of taskContainers(final)) {
        const c = [...(final.spec?.initContainers ?? []), ...(final.spec?.containers ?? [])].find(
          (x) => x.name === name,
        );
        expect(JSON.stringify(c)).not.toContain('run-0001-nonce');
      }
    }
  });

  it('with both annotations the Secret wins and the review says the annotation is readable', async () => {
    const created = restrictedTaskPod({
      annotations: {
        'tes-heartbeat/run-id': 'run-0001',
        'tes-heartbeat/nonce': 'n-visible',
        'tes-heartbeat/nonce-secret': 'run-0001-nonce',
      },
    });
    const { final, answer } = await admit(native, created, CHART_ACCOUNT);
    expect(nonceEnv(agentOf(final))).toEqual([{ name: 'TES_NONCE', ...secretRef }]);
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(
        /Secret 'run-0001-nonce'.*tes-heartbeat\/nonce annotation: it is readable by anyone who can read pods/,
      ),
    ]);
  });

  it("replaces the template's own TES_NONCE (the chart's reads the annotation) where it stood", async () => {
    const chartLike: V1Container = {
      ...template,
      env: [
        {
          name: 'TES_RUN_ID',
          valueFrom: { fieldRef: { fieldPath: "metadata.annotations['tes-heartbeat/run-id']" } },
        },
        {
          name: 'TES_NONCE',
          valueFrom: { fieldRef: { fieldPath: "metadata.annotations['tes-heartbeat/nonce']" } },
        },
        ...(template.env ?? []),
      ],
    };
    const webhook = await start({
      sidecarMode: 'regular',
      template: { file: templateFile, container: chartLike },
    });
    const created = restrictedTaskPod({
      annotations: { 'tes-heartbeat/run-id': 'run-0001', 'tes-heartbeat/nonce-secret': 'run-0001-nonce' },
    });
    const { final } = await admit(webhook, created, CHART_ACCOUNT);
    const env = agentOf(final)?.env ?? [];
    expect(env.map((e) => e.name)).toEqual([
      'TES_RUN_ID',
      'TES_NONCE',
      'TES_TOKEN',
      'POD_NAME',
      'POD_NAMESPACE',
    ]);
    expect(env[1]).toEqual({ name: 'TES_NONCE', ...secretRef });
    // Without the Secret annotation the template's entry stays as it is.
    const plain = await admit(webhook, restrictedTaskPod(), CHART_ACCOUNT);
    expect(nonceEnv(agentOf(plain.final))).toEqual([chartLike.env?.[1]]);
  });

  it.each(['', 'Run_0001', 'a'.repeat(254), '../etc'])(
    'does not inject for a nonce-secret that is no Secret name (%j): the pod still starts',
    async (name) => {
      const created = restrictedTaskPod({
        annotations: { 'tes-heartbeat/run-id': 'run-0001', 'tes-heartbeat/nonce-secret': name },
      });
      const { answer } = await admit(native, created, CHART_ACCOUNT);
      expect(answer.body.response.allowed).toBe(true);
      expect(patchOf(answer)).toBeUndefined();
      expect(answer.body.response.warnings).toEqual([
        expect.stringMatching(/^tes-heartbeat: not injected: the tes-heartbeat\/nonce-secret annotation '/),
      ]);
    },
  );
});

describe('T4: shared process namespace', () => {
  /**
   * The project's own example (deploy/examples/job-injected.yaml) as the Job controller creates
   * its pod; `taskUid` as issue 15 found it: the task ran as 65532, the agent's uid.
   */
  function examplePod(taskUid?: number): V1Pod {
    const job = parse(readFileSync(path.join(repoRoot, 'deploy/examples/job-injected.yaml'), 'utf8'));
    const podTemplate = job.spec.template;
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'tes-task-injected-', ...podTemplate.metadata },
      spec: podTemplate.spec,
    };
    const task = pod.spec?.containers.find((c) => c.name === 'task');
    if (!task?.securityContext) throw new Error('the example has no task container with a securityContext');
    if (taskUid !== undefined) task.securityContext.runAsUser = taskUid;
    return pod;
  }
  const agentOf = (pod: V1Pod) =>
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === AGENT);

  it('the example with its task at 65532: without shareProcessNamespace nothing is shared, nothing moves', async () => {
    const { final, answer } = await admit(native, examplePod(65532), {
      name: 'tes-heartbeat',
      automountServiceAccountToken: false,
    });
    expect(agentOf(final)?.securityContext?.runAsUser).toBe(65532);
    expect(reachableTokens(final, 'task')).toEqual([]);
    expect(answer.body.response.warnings ?? []).toEqual([]);
  });

  it('with shareProcessNamespace: true the agent moves to user and group 65531, and the task reaches nothing', async () => {
    const created = examplePod(65532);
    (created.spec as NonNullable<V1Pod['spec']>).shareProcessNamespace = true;
    for (const webhook of [native, regular]) {
      const { final, answer } = await admit(webhook, created, {
        name: 'tes-heartbeat',
        automountServiceAccountToken: false,
      });
      const agent = agentOf(final);
      expect(agent?.securityContext).toEqual({
        ...template.securityContext,
        runAsUser: 65531,
        runAsGroup: 65531,
      });
      expect(reachableTokens(final, 'task')).toEqual([]);
      expect(reachableTokens(final, AGENT)).toEqual([AGENT_TOKEN_VOLUME]);
      expect(answer.body.response.warnings).toEqual([
        expect.stringMatching(
          /shareProcessNamespace: true.*container 'task' runs as 65532.*the agent runs as user 65531/,
        ),
      ]);
      expect(restrictedViolations(final)).toEqual([]);
    }
  });

  it('the example as shipped (task uid 1000): the agent stays 65532, and the review still names the setting', async () => {
    const created = examplePod();
    (created.spec as NonNullable<V1Pod['spec']>).shareProcessNamespace = true;
    const { final, answer } = await admit(native, created, CHART_ACCOUNT);
    expect(agentOf(final)?.securityContext).toEqual(template.securityContext);
    expect(reachableTokens(final, 'task')).toEqual([]);
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(/shareProcessNamespace: true: no container runs as the agent's user 65532/),
    ]);
  });

  it('without the move the task could read the agent through /proc (what the check guards)', () => {
    const pod = examplePod(65532);
    const spec = pod.spec as NonNullable<V1Pod['spec']>;
    spec.shareProcessNamespace = true;
    spec.volumes = [agentTokenVolume()];
    spec.containers.push({
      ...template,
      name: AGENT,
      volumeMounts: [{ name: AGENT_TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true }],
    });
    expect(reachableTokens(pod, 'task')).toEqual([AGENT_TOKEN_VOLUME]);
  });

  it.each([
    {
      desc: "the pod's runAsUser is the agent's",
      pod: { runAsUser: 65532 },
      task: {},
      uid: 65531,
      why: /container 'task' runs as 65532/,
    },
    {
      desc: 'a task runs as the first free id too',
      pod: {},
      task: { runAsUser: 65532 },
      init: { runAsUser: 65531 },
      uid: 65530,
      why: /container 'task' runs as 65532/,
    },
    {
      desc: 'a task whose user the pod does not set (its image may say 65532)',
      pod: {},
      task: {},
      uid: 65531,
      why: /container 'task' runs as its image's user, which may be 65532/,
    },
  ])('moves the agent when $desc', async ({ pod, task, init, uid, why }) => {
    const created = restrictedTaskPod({ initContainers: init !== undefined });
    const spec = created.spec as NonNullable<V1Pod['spec']>;
    spec.shareProcessNamespace = true;
    spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, ...pod };
    const [first] = spec.containers;
    if (first) first.securityContext = { ...HARDENED, ...task };
    const stageIn = spec.initContainers?.[0];
    if (stageIn) stageIn.securityContext = { ...HARDENED, ...init };
    const { final, answer } = await admit(native, created, {
      name: 'tes-heartbeat',
      automountServiceAccountToken: false,
    });
    expect(agentOf(final)?.securityContext?.runAsUser).toBe(uid);
    expect(agentOf(final)?.securityContext?.runAsGroup).toBe(uid);
    expect(answer.body.response.warnings?.join('\n')).toMatch(why);
    // The agent's image runs as 65532 and so may a task image that names no user (distroless `nonroot`).
    const imageUsers = { [AGENT]: 65532, task: 65532, 'stage-in': 65532 };
    for (const name of taskContainers(final)) {
      expect(reachableTokens(final, name, { imageUsers }), name).toEqual([]);
    }
  });

  it('keeps the agent where it is when no task can be it, and still warns naming the setting', async () => {
    const created = restrictedTaskPod();
    (created.spec as NonNullable<V1Pod['spec']>).shareProcessNamespace = true;
    const { final, answer } = await admit(native, created, {
      name: 'tes-heartbeat',
      automountServiceAccountToken: false,
    });
    expect(agentOf(final)?.securityContext).toEqual(template.securityContext);
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(/shareProcessNamespace: true: no container runs as the agent's user 65532/),
    ]);
  });

  it('with a template that names no user (OpenShift assigns one to every container) it only warns', async () => {
    const { runAsUser: _, ...unset } = template.securityContext ?? {};
    const webhook = await start({
      sidecarMode: 'native',
      template: { file: templateFile, container: { ...template, securityContext: unset } },
    });
    const created = restrictedTaskPod();
    (created.spec as NonNullable<V1Pod['spec']>).shareProcessNamespace = true;
    const { final, answer } = await admit(webhook, created, {
      name: 'tes-heartbeat',
      automountServiceAccountToken: false,
    });
    expect(agentOf(final)?.securityContext).toEqual(unset);
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(
        /shareProcessNamespace: true and the agent's user id is assigned by the platform/,
      ),
    ]);
  });

  it('chooses from a documented range: 65531 down to 65500', () => {
    expect(SEPARATE_AGENT_UIDS[0]).toBe(65531);
    expect(SEPARATE_AGENT_UIDS.at(-1)).toBe(65500);
    expect(SEPARATE_AGENT_UIDS).not.toContain(65532);
    expect(SEPARATE_AGENT_UIDS).not.toContain(65534);
  });
});
