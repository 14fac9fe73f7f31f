// Injection in real clusters (rules I1–I3, pull secrets): the chart renders its snippet and
// volumes for an enterprise install (private CA, token file, pull secrets); the webhook serves
// exactly those files over HTTPS; AdmissionReviews shaped as kube-apiserver sends them; each
// JSON Patch applied strictly (RFC 6902, fast-json-patch with validation) and the patched pod
// checked as the API server and the kubelet would: schema, volumes once, every mount
// resolving, the QoS class, the port clash warning.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { Agent } from 'undici';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { parseResourceList, podQosClass } from '../../src/webhook/qos.ts';
import { parseTemplate, parseVolumes } from '../../src/webhook/template.ts';
import { AGENT_TOKEN_VOLUME, agentTokenVolume, SERVICE_ACCOUNT_MOUNT_PATH } from '../../src/webhook/token.ts';
import { type RunningWebhook, startWebhook, type WebhookConfig } from '../../src/webhook/webhook.ts';
import { waitFor } from '../support/fake-clock.ts';
import { findOne, RELEASE_NAMESPACE, renderChart, repoRoot } from '../support/helm-chart.ts';
import {
  admissionReview,
  applyAnswer,
  httpsClient,
  jobPod,
  kubeletWrite,
  patchOf,
  type ReviewAnswer,
  review,
  silentLogger,
  tempDir,
  validatePod,
  webhookConfig,
} from '../support/webhook-helpers.ts';

const CA_PEM = readFileSync(path.join(repoRoot, 'test/fixtures/tls/ca.crt'), 'utf8');
const ENTERPRISE = {
  taskNamespaces: ['tasks'],
  tes: {
    url: 'https://tes.corp.example',
    caBundle: CA_PEM,
    tokenSecret: { name: 'tes-token', asFile: true },
  },
  imagePullSecrets: [{ name: 'corp-registry' }],
};

let client: Agent;
let dir: string;
let published: { sidecar: string; volumes: string; guaranteed: string; pullSecrets: string };
const running: RunningWebhook[] = [];

beforeAll(async () => {
  client = await httpsClient();
  const objects = renderChart(ENTERPRISE);
  const cm = findOne(objects, 'ConfigMap', 'tes-tes-heartbeat-sidecar', RELEASE_NAMESPACE) as unknown as {
    data: Record<string, string>;
  };
  const deployment = findOne(
    objects,
    'Deployment',
    'tes-tes-heartbeat-webhook',
    RELEASE_NAMESPACE,
  ) as unknown as {
    spec: { template: { spec: { containers: { env: { name: string; value: string }[] }[] } } };
  };
  const env = Object.fromEntries(
    deployment.spec.template.spec.containers[0]?.env.map((e) => [e.name, e.value]) ?? [],
  );
  published = {
    sidecar: cm.data['sidecar.yaml'] as string,
    volumes: cm.data['volumes.yaml'] as string,
    guaranteed: env.SIDECAR_GUARANTEED_RESOURCES as string,
    pullSecrets: env.SIDECAR_IMAGE_PULL_SECRETS as string,
  };
  // The ConfigMap as the kubelet mounts it into the webhook.
  dir = await tempDir('webhook-chart-');
  await kubeletWrite(dir, { 'sidecar.yaml': published.sidecar, 'volumes.yaml': published.volumes });
});
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop(1_000)));
  await client.close();
});

/** A webhook serving the chart's files, configured as the chart's Deployment configures it. */
async function start(overrides: Partial<WebhookConfig> = {}): Promise<RunningWebhook> {
  const sidecarFile = path.join(dir, 'sidecar.yaml');
  const volumesFile = path.join(dir, 'volumes.yaml');
  const guaranteed = parseResourceList(published.guaranteed);
  if (typeof guaranteed === 'string') throw new Error(guaranteed);
  const config = await webhookConfig({
    template: { file: sidecarFile, container: parseTemplate(sidecarFile, published.sidecar) },
    volumes: { file: volumesFile, volumes: parseVolumes(volumesFile, published.volumes) },
    guaranteedResources: guaranteed,
    imagePullSecrets: published.pullSecrets.split(','),
    ...overrides,
  });
  const webhook = await startWebhook(config, {
    clock: systemClock,
    logger: silentLogger,
    pollIntervalMs: 100,
    processMetrics: false,
  });
  running.push(webhook);
  return webhook;
}

let native: RunningWebhook;
let regular: RunningWebhook;
beforeAll(async () => {
  native = await start({ sidecarMode: 'native' });
  regular = await start({ sidecarMode: 'regular' });
});

/** Reviews `pod`, applies the patch strictly, validates the result; returns it with the agent. */
async function inject(webhook: RunningWebhook, pod: V1Pod) {
  const answer = await review(client, webhook.port, admissionReview(pod));
  expect(answer.status).toBe(200);
  expect(answer.body.response.allowed).toBe(true);
  const patched = applyAnswer(pod, answer);
  await validatePod(patched);
  const spec = patched.spec as NonNullable<V1Pod['spec']>;
  const agent = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === 'tes-heartbeat');
  return { answer, patched, agent: agent as V1Container, warnings: answer.body.response.warnings ?? [] };
}

const envOf = (c: V1Container) =>
  Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
const volumeNames = (p: V1Pod) => (p.spec?.volumes ?? []).map((v) => v.name);

/** A task pod pinned like an HPC job: every container cpu and memory requests = limits. */
function guaranteedPod(options: { init?: boolean } = {}): V1Pod {
  const pod = jobPod();
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  const [task] = spec.containers as [V1Container];
  // Limits only: the API server's defaulting copied them into requests before the webhook.
  task.resources = { requests: { cpu: '4', memory: '16Gi' }, limits: { cpu: '4000m', memory: '16384Mi' } };
  if (options.init) {
    spec.initContainers = [
      {
        name: 'stage-in',
        image: 'docker.io/amazon/aws-cli:2.17.0',
        resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
      },
    ];
  }
  return pod;
}

describe('I1: volumes travel with the injection', () => {
  it('adds the CA and token volumes to a Job pod, once, and every mount of the agent resolves', async () => {
    for (const webhook of [native, regular]) {
      const pod = jobPod();
      const { patched, agent } = await inject(webhook, pod);
      expect(volumeNames(patched).sort()).toEqual([
        'tes-heartbeat-kube-api-access',
        'tes-heartbeat-tes-ca',
        'tes-heartbeat-tes-token',
      ]);
      expect(agent.volumeMounts?.map((m) => m.name).sort()).toEqual([
        'tes-heartbeat-kube-api-access',
        'tes-heartbeat-tes-ca',
        'tes-heartbeat-tes-token',
      ]);
      const env = envOf(agent);
      expect(env.TES_CA_FILE).toBe('/etc/tes-heartbeat/tes-ca/ca.crt');
      expect(env.TES_TOKEN_FILE).toBe('/etc/tes-heartbeat/tes-token/token');
      expect(env).not.toHaveProperty('TES_TOKEN');
      const volumes = Object.fromEntries((patched.spec?.volumes ?? []).map((v) => [v.name, v]));
      expect(volumes['tes-heartbeat-tes-ca']?.configMap?.name).toBe('tes-heartbeat-tes-ca');
      expect(volumes['tes-heartbeat-tes-token']?.secret?.secretName).toBe('tes-token');
    }
  });

  it('creates spec.volumes on a pod that has none (its account automounts no token)', async () => {
    const pod = jobPod({ automountServiceAccountToken: false });
    expect(pod.spec?.volumes).toBeUndefined();
    const { answer, patched, warnings } = await inject(native, pod);
    expect(patchOf(answer)?.find((op) => op.path.startsWith('/spec/volumes'))).toMatchObject({
      op: 'add',
      path: '/spec/volumes',
    });
    expect(volumeNames(patched).sort()).toEqual([
      'tes-heartbeat-kube-api-access',
      'tes-heartbeat-tes-ca',
      'tes-heartbeat-tes-token',
    ]);
    expect(warnings).toEqual([]);
  });

  it("publishes the agent's token volume exactly as the webhook adds it, and the snippet mounts it alone (T1)", async () => {
    const volumes = parseVolumes('volumes.yaml', published.volumes);
    expect(volumes.filter((v) => v.name === AGENT_TOKEN_VOLUME)).toEqual([agentTokenVolume()]);
    const snippet = parseTemplate('sidecar.yaml', published.sidecar);
    expect(snippet.volumeMounts?.filter((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH)).toEqual([
      { name: AGENT_TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true },
    ]);
  });

  it('keeps a volume the pod already has by that name (a snippet added by hand), never a duplicate', async () => {
    const pod = jobPod();
    const own: V1Volume = { name: 'tes-heartbeat-tes-ca', configMap: { name: 'my-own-ca' } };
    if (pod.spec) pod.spec.volumes = [own];
    const { patched } = await inject(regular, pod);
    expect(volumeNames(patched).sort()).toEqual([
      'tes-heartbeat-kube-api-access',
      'tes-heartbeat-tes-ca',
      'tes-heartbeat-tes-token',
    ]);
    expect(patched.spec?.volumes?.[0]).toEqual(own);
  });

  it('does not inject (and says why) when a mount would name a volume nobody provides: the pod still starts', async () => {
    const webhook = await start({ sidecarMode: 'native', volumes: undefined });
    const pod = jobPod();
    const answer = await review(client, webhook.port, admissionReview(pod));
    expect(answer.status).toBe(200);
    expect(answer.body.response.allowed).toBe(true);
    expect(patchOf(answer)).toBeUndefined();
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(/not injected: .*tes-heartbeat-tes-ca, tes-heartbeat-tes-token/),
    ]);
  });

  it('follows a rewritten volumes.yaml (the kubelet swaps the ConfigMap), like the template', async () => {
    const own = await tempDir('webhook-volumes-');
    await kubeletWrite(own, { 'sidecar.yaml': published.sidecar, 'volumes.yaml': published.volumes });
    const volumesFile = path.join(own, 'volumes.yaml');
    const webhook = await start({
      sidecarMode: 'regular',
      volumes: { file: volumesFile, volumes: parseVolumes(volumesFile, published.volumes) },
    });
    const changed = published.volumes.replace('secretName: tes-token', 'secretName: tes-token-v2');
    await kubeletWrite(own, { 'sidecar.yaml': published.sidecar, 'volumes.yaml': changed });
    await waitFor(
      async () => {
        const { patched } = await inject(webhook, jobPod());
        return (
          patched.spec?.volumes?.find((v) => v.name === 'tes-heartbeat-tes-token')?.secret?.secretName ===
          'tes-token-v2'
        );
      },
      5_000,
      'the new volumes in use',
    );
    // A broken rewrite keeps the last good list.
    await kubeletWrite(own, { 'sidecar.yaml': published.sidecar, 'volumes.yaml': '- name: not-prefixed\n' });
    await new Promise((r) => setTimeout(r, 400));
    const { patched } = await inject(webhook, jobPod());
    expect(volumeNames(patched)).toContain('tes-heartbeat-tes-token');
  });
});

describe('I2: the agent never takes the task port', () => {
  const withPort = (pod: V1Pod, where: 'containers' | 'initContainers', port: number, name = 'metrics') => {
    const spec = pod.spec as NonNullable<V1Pod['spec']>;
    const target = where === 'containers' ? spec.containers[0] : spec.initContainers?.[0];
    if (!target) throw new Error('no container');
    target.ports = [{ name, containerPort: port, protocol: 'TCP' }];
    return pod;
  };

  it('by default listens on the chart port, named tes-hb-metrics, with no warning', async () => {
    const { agent, warnings } = await inject(native, jobPod());
    expect(envOf(agent).HTTP_ADDR).toBe('0.0.0.0:29090');
    expect(agent.ports).toEqual([{ name: 'tes-hb-metrics', containerPort: 29090, protocol: 'TCP' }]);
    expect(warnings).toEqual([]);
  });

  it.each([
    ['a task container', 'containers', 'native'],
    ['a task container', 'containers', 'regular'],
    ['an init container', 'initContainers', 'native'],
  ] as const)(
    '%s declaring the agent port (%s… %s mode): HTTP_ADDR=off, no port entry, a warning naming the port',
    async (_d, where, mode) => {
      const pod =
        where === 'initContainers'
          ? jobPod({ initContainers: [{ name: 'stage-in', image: 'busybox' }] })
          : jobPod();
      withPort(pod, where, 29090);
      const { agent, warnings, patched } = await inject(mode === 'native' ? native : regular, pod);
      expect(envOf(agent).HTTP_ADDR).toBe('off');
      expect(agent.ports).toBeUndefined();
      expect(agent.livenessProbe ?? agent.readinessProbe ?? agent.startupProbe).toBeUndefined();
      expect(warnings).toEqual([
        expect.stringMatching(/declares port 29090, the agent's listener port.*HTTP_ADDR=off/),
      ]);
      expect(warnings[0]?.length).toBeLessThanOrEqual(256);
      // The task keeps its port.
      const all = [...(patched.spec?.initContainers ?? []), ...(patched.spec?.containers ?? [])];
      expect(all.flatMap((c) => c.ports ?? []).map((p) => p.containerPort)).toEqual([29090]);
    },
  );

  it('a task on 9090 (the agent default) keeps 9090 and the agent keeps its chart port', async () => {
    const { agent, warnings } = await inject(native, withPort(jobPod(), 'containers', 9090));
    expect(envOf(agent).HTTP_ADDR).toBe('0.0.0.0:29090');
    expect(warnings).toEqual([]);
  });

  it('a template without HTTP_ADDR means the agent default 9090: a task on 9090 turns the listener off', async () => {
    const template = parseTemplate('t', published.sidecar);
    template.env = (template.env ?? []).filter((e) => e.name !== 'HTTP_ADDR');
    template.ports = [{ name: 'tes-hb-metrics', containerPort: 9090 }];
    template.livenessProbe = { httpGet: { path: '/healthz', port: 'tes-hb-metrics' } };
    const webhook = await start({ sidecarMode: 'native', template: { file: 'unused', container: template } });
    const { agent, warnings } = await inject(webhook, withPort(jobPod(), 'containers', 9090));
    expect(envOf(agent).HTTP_ADDR).toBe('off');
    expect(agent.ports).toBeUndefined();
    expect(agent.livenessProbe).toBeUndefined();
    expect(warnings[0]).toMatch(/port 9090/);
  });

  it('hostNetwork: the node shares its ports: HTTP_ADDR=off and a warning', async () => {
    const pod = jobPod();
    (pod.spec as NonNullable<V1Pod['spec']>).hostNetwork = true;
    const { agent, warnings } = await inject(regular, pod);
    expect(envOf(agent).HTTP_ADDR).toBe('off');
    expect(agent.ports).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/hostNetwork/)]);
  });

  it('a task port already named tes-hb-metrics: the agent port goes without the name', async () => {
    const { agent, warnings } = await inject(
      native,
      withPort(jobPod(), 'containers', 8000, 'tes-hb-metrics'),
    );
    expect(agent.ports).toEqual([{ containerPort: 29090, protocol: 'TCP' }]);
    expect(envOf(agent).HTTP_ADDR).toBe('0.0.0.0:29090');
    expect(warnings).toEqual([]);
  });
});

describe('I3: Guaranteed pods stay Guaranteed', () => {
  it.each([
    ['native', false],
    ['native', true],
    ['regular', false],
  ] as const)(
    '%s mode (init container: %s): the agent gets requests = limits = sidecar.guaranteedResources',
    async (mode, init) => {
      const pod = guaranteedPod({ init });
      expect(podQosClass(pod)).toBe('Guaranteed');
      const { patched, agent } = await inject(mode === 'native' ? native : regular, pod);
      expect(podQosClass(patched)).toBe('Guaranteed');
      expect(agent.resources).toEqual({
        requests: { cpu: '250m', memory: '192Mi' },
        limits: { cpu: '250m', memory: '192Mi' },
      });
    },
  );

  it('without guaranteedResources the template limits become the requests', async () => {
    const webhook = await start({ sidecarMode: 'native', guaranteedResources: undefined });
    const { patched, agent } = await inject(webhook, guaranteedPod());
    expect(podQosClass(patched)).toBe('Guaranteed');
    expect(agent.resources).toEqual({
      requests: { cpu: '1', memory: '192Mi' },
      limits: { cpu: '1', memory: '192Mi' },
    });
  });

  it('a Burstable or BestEffort pod gets the template resources as they are', async () => {
    const template = parse(published.sidecar) as V1Container;
    const { patched, agent } = await inject(native, jobPod());
    expect(podQosClass(jobPod())).toBe('BestEffort');
    expect(podQosClass(patched)).toBe('Burstable');
    expect(agent.resources).toEqual(template.resources);
    const burstable = guaranteedPod();
    const task = burstable.spec?.containers[0] as V1Container;
    task.resources = { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '1Gi' } };
    expect((await inject(native, burstable)).agent.resources).toEqual(template.resources);
  });

  it('a pod with pod-level resources: the agent shares the pod budget (no limits of its own that could exceed it)', async () => {
    const pod = jobPod();
    (pod.spec as unknown as Record<string, unknown>).resources = {
      requests: { cpu: '2', memory: '4Gi' },
      limits: { cpu: '2', memory: '4Gi' },
    };
    const answer = await review(client, native.port, admissionReview(pod));
    const patched = applyAnswer(pod, answer);
    const agent = patched.spec?.initContainers?.[0];
    expect(agent?.name).toBe('tes-heartbeat');
    expect(agent).not.toHaveProperty('resources');
    expect(podQosClass(patched)).toBe('Guaranteed');
  });

  it('without the fix the pod would drop to Burstable (the template as it is)', () => {
    const template = parse(published.sidecar) as V1Container;
    const pod = guaranteedPod();
    pod.spec?.containers.push({ ...template, name: 'tes-heartbeat' });
    expect(podQosClass(pod)).toBe('Burstable');
  });
});

describe('pull secrets for the agent image', () => {
  it('are added to a pod without any, and only the missing ones to a pod with its own', async () => {
    const plain = await inject(native, jobPod());
    expect(plain.patched.spec?.imagePullSecrets).toEqual([{ name: 'corp-registry' }]);
    const pod = jobPod();
    (pod.spec as NonNullable<V1Pod['spec']>).imagePullSecrets = [{ name: 'task-registry' }];
    const own = await inject(native, pod);
    expect(own.patched.spec?.imagePullSecrets).toEqual([
      { name: 'task-registry' },
      { name: 'corp-registry' },
    ]);
    const already = structuredClone(pod);
    (already.spec as NonNullable<V1Pod['spec']>).imagePullSecrets = [{ name: 'corp-registry' }];
    const again = await inject(native, already);
    expect(again.patched.spec?.imagePullSecrets).toEqual([{ name: 'corp-registry' }]);
    const ops = (patchOf(again.answer as ReviewAnswer) ?? []).map((op) => op.path);
    expect(ops.some((p) => p.startsWith('/spec/imagePullSecrets'))).toBe(false);
  });
});

describe('a pod patched twice', () => {
  it('is injected once: the second review changes nothing (volumes, pull secrets included)', async () => {
    const once = (await inject(native, guaranteedPod())).patched;
    const answer = await review(client, native.port, admissionReview(once));
    expect(patchOf(answer)).toBeUndefined();
  });
});
