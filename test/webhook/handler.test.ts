// The webhook over real HTTPS (test CA), answering AdmissionReview v1 requests
// shaped as the API server sends them; each patch is applied with a JSON Patch
// library and the result validated as the API server would.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { type RunningWebhook, startWebhook, type WebhookConfig } from '../../src/webhook/webhook.ts';
import { waitFor } from '../support/fake-clock.ts';
import {
  admissionReview,
  applyAnswer,
  httpsClient,
  jobPod,
  kubeletWrite,
  loadTemplate,
  patchOf,
  post,
  readTls,
  review,
  servedSerial,
  silentLogger,
  tempDir,
  tlsDir,
  validatePod,
  webhookConfig,
} from '../support/webhook-helpers.ts';

const running: RunningWebhook[] = [];
async function start(overrides: Partial<WebhookConfig> = {}): Promise<RunningWebhook> {
  const webhook = await startWebhook(await webhookConfig(overrides), {
    clock: systemClock,
    logger: silentLogger,
    pollIntervalMs: 100,
    processMetrics: false,
  });
  running.push(webhook);
  return webhook;
}

let client: Agent;
let template: V1Container;
beforeAll(async () => {
  client = await httpsClient();
  template = await loadTemplate();
});
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop(1_000)));
  await client.close();
});

async function metricsText(webhook: RunningWebhook): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${webhook.healthPort}/metrics`);
  return res.text();
}

function expectAgentEnv(agent: V1Container | undefined, nonce: boolean): void {
  const byName = Object.fromEntries((agent?.env ?? []).map((e) => [e.name, e]));
  expect(byName.TES_RUN_ID?.valueFrom?.fieldRef?.fieldPath).toBe(
    "metadata.annotations['tes-heartbeat/run-id']",
  );
  expect(byName.POD_NAME?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  expect(byName.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  if (nonce) {
    expect(byName.TES_NONCE?.valueFrom?.fieldRef?.fieldPath).toBe(
      "metadata.annotations['tes-heartbeat/nonce']",
    );
  } else {
    expect(byName).not.toHaveProperty('TES_NONCE');
  }
  // The template's own entries stay.
  expect(byName.TES_TOKEN).toEqual(template.env?.[0]);
}

describe('native mode over HTTPS', () => {
  let webhook: RunningWebhook;
  beforeAll(async () => {
    webhook = await start({ sidecarMode: 'native' });
  });

  it('injects a Job pod as the first init container with restartPolicy Always', async () => {
    const pod = jobPod({
      annotations: { 'tes-heartbeat/run-id': 'run-42', 'tes-heartbeat/nonce': 'n-1' },
      initContainers: [{ name: 'stage-in', image: 'busybox', command: ['true'] }],
    });
    const request = admissionReview(pod);
    const answer = await review(client, webhook.port, request);

    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/json');
    expect(answer.body.apiVersion).toBe('admission.k8s.io/v1');
    expect(answer.body.kind).toBe('AdmissionReview');
    expect(answer.body.response.uid).toBe(request.request.uid);
    expect(answer.body.response.allowed).toBe(true);
    expect(answer.body.response.patchType).toBe('JSONPatch');
    expect(answer.body.response).not.toHaveProperty('warnings');

    const patched = applyAnswer(pod, answer);
    await validatePod(patched);
    const [agent, stageIn, ...rest] = patched.spec?.initContainers ?? [];
    expect(rest).toEqual([]);
    expect(stageIn?.name).toBe('stage-in');
    expect(agent?.name).toBe('tes-heartbeat');
    expect(agent?.restartPolicy).toBe('Always');
    expect(agent?.image).toBe(template.image);
    expect(agent?.resources).toEqual(template.resources);
    expect(agent?.securityContext).toEqual(template.securityContext);
    expect(agent?.envFrom).toEqual(template.envFrom);
    expectAgentEnv(agent, true);
    // Nothing else changed but the agent's own token volume (rule T1).
    expect(patched.spec?.volumes?.map((v) => v.name)).toEqual(['tes-heartbeat-kube-api-access']);
    const { volumes: _, ...others } = patched.spec ?? { containers: [] };
    expect({ ...patched, spec: { ...others, initContainers: [stageIn] } }).toEqual(pod);
  });

  it('creates the initContainers array for a pod that has none, and omits TES_NONCE without the annotation', async () => {
    const pod = jobPod();
    const answer = await review(client, webhook.port, admissionReview(pod));
    expect(patchOf(answer)?.map((op) => op.path)).toEqual(['/spec/initContainers', '/spec/volumes']);
    const patched = applyAnswer(pod, answer);
    await validatePod(patched);
    expect(patched.spec?.initContainers?.map((c) => c.name)).toEqual(['tes-heartbeat']);
    expect(patched.spec?.containers).toEqual(pod.spec?.containers);
    expectAgentEnv(patched.spec?.initContainers?.[0], false);
  });

  it('never patches a pod without the label', async () => {
    const pod = jobPod({ labels: { 'tes-heartbeat/inject': 'false' } });
    const answer = await review(client, webhook.port, admissionReview(pod));
    expect(answer.status).toBe(200);
    expect(answer.body.response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('never patches an UPDATE', async () => {
    const pod = { ...jobPod(), metadata: { ...jobPod().metadata, name: 'task-8f2c-abcde', uid: 'u-1' } };
    const answer = await review(
      client,
      webhook.port,
      admissionReview(pod, { operation: 'UPDATE', oldObject: pod }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('leaves a pod that already has the agent unchanged (the patch applied twice gives the same pod)', async () => {
    const pod = jobPod();
    const once = applyAnswer(pod, await review(client, webhook.port, admissionReview(pod)));
    const again = await review(client, webhook.port, admissionReview(once));
    expect(patchOf(again)).toBeUndefined();
    expect(applyAnswer(once, again)).toEqual(once);
    expect(once.spec?.initContainers).toHaveLength(1);
  });

  it('admits a labelled pod without a run id unchanged, with a warning saying why', async () => {
    const answer = await review(client, webhook.port, admissionReview(jobPod({ annotations: {} })));
    expect(answer.status).toBe(200);
    expect(answer.body.response.allowed).toBe(true);
    expect(patchOf(answer)).toBeUndefined();
    expect(answer.body.response.warnings).toEqual([
      expect.stringMatching(/no tes-heartbeat\/run-id annotation/),
    ]);
  });

  it('warns about a service account the chart does not bind, naming it', async () => {
    const pod = jobPod({ serviceAccountName: 'pipeline-runner' });
    const answer = await review(client, webhook.port, admissionReview(pod, { namespace: 'team-a' }));
    expect(patchOf(answer)).toBeDefined();
    const warnings = answer.body.response.warnings ?? [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/'pipeline-runner' in namespace 'team-a'/);
    expect(warnings[0]?.length).toBeLessThanOrEqual(256);
  });

  it('answers an undecodable review allowed, without a patch, with a warning, and stays up', async () => {
    const base = admissionReview(jobPod());
    const bodies = [
      { ...base, apiVersion: 'admission.k8s.io/v1beta1' },
      { ...base, request: { uid: base.request.uid } },
      { ...base, request: { ...base.request, object: 'not a pod' } },
      { ...base, request: { ...base.request, object: { metadata: {}, spec: { containers: 7 } } } },
    ];
    for (const body of bodies) {
      const answer = await review(client, webhook.port, body);
      expect(answer.status).toBe(200);
      expect(answer.body.response.uid).toBe(base.request.uid);
      expect(answer.body.response.allowed).toBe(true);
      expect(answer.body.response).not.toHaveProperty('patch');
      expect(answer.body.response.warnings).toHaveLength(1);
    }
    // Not an AdmissionReview at all: no uid to echo.
    for (const raw of ['{', 'null', '{"request":{}}', '']) {
      const answer = await post(client, webhook.port, raw);
      expect(answer.status).toBe(400);
    }
    expect((await post(client, webhook.port, '', '/mutate', 'GET')).status).toBe(405);
    expect((await post(client, webhook.port, '{}', '/validate')).status).toBe(404);
    // Still serving.
    const after = await review(client, webhook.port, admissionReview(jobPod()));
    expect(patchOf(after)).toBeDefined();
  });

  it('counts admissions by result and reports the mode', async () => {
    const text = await metricsText(webhook);
    const value = (result: string) =>
      Number(new RegExp(`tes_webhook_admissions_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1]);
    expect(value('injected')).toBeGreaterThanOrEqual(5);
    expect(value('skipped')).toBeGreaterThanOrEqual(4);
    expect(value('error')).toBeGreaterThanOrEqual(8);
    expect(text).toMatch(/tes_webhook_admission_duration_seconds_count \d+/);
    expect(text).toContain('tes_webhook_sidecar_mode{mode="native"} 1');
    expect(text).toContain('tes_webhook_sidecar_mode{mode="regular"} 0');
    const ready = await fetch(`http://127.0.0.1:${webhook.healthPort}/readyz`);
    expect(ready.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${webhook.healthPort}/healthz`)).status).toBe(200);
  });
});

describe('regular mode over HTTPS', () => {
  it('appends the agent to the containers, without restartPolicy', async () => {
    const webhook = await start({ sidecarMode: 'regular' });
    const pod = jobPod({ initContainers: [{ name: 'stage-in', image: 'busybox' }] });
    const answer = await review(client, webhook.port, admissionReview(pod));
    const patched = applyAnswer(pod, answer);
    await validatePod(patched);
    expect(patched.spec?.initContainers).toEqual(pod.spec?.initContainers);
    const names = patched.spec?.containers.map((c) => c.name);
    expect(names).toEqual(['task', 'tes-heartbeat']);
    const agent = patched.spec?.containers[1];
    expect(agent).not.toHaveProperty('restartPolicy');
    expect(agent?.resources).toEqual(template.resources);
    expect(agent?.securityContext).toEqual(template.securityContext);
    expectAgentEnv(agent, false);
    expect(await metricsText(webhook)).toContain('tes_webhook_sidecar_mode{mode="regular"} 1');
  });

  it('uses AGENT_CONTAINER_NAME for the container and for recognising an injected pod', async () => {
    const webhook = await start({ sidecarMode: 'regular', self: 'heartbeat' });
    const pod = jobPod();
    const once = applyAnswer(pod, await review(client, webhook.port, admissionReview(pod)));
    expect(once.spec?.containers.map((c) => c.name)).toEqual(['task', 'heartbeat']);
    expect(patchOf(await review(client, webhook.port, admissionReview(once)))).toBeUndefined();
  });
});

describe('files changing under a running webhook', () => {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.stop(1_000)));
  });

  it('serves a rewritten certificate without a restart (kubelet ..data swap, twice)', async () => {
    const dir = await tempDir();
    const first = await readTls('server');
    const second = await readTls('server2');
    await kubeletWrite(dir, { 'tls.crt': first.cert, 'tls.key': first.key });
    const webhook = await start({ tlsCert: path.join(dir, 'tls.crt'), tlsKey: path.join(dir, 'tls.key') });
    const firstSerial = await servedSerial(webhook.port);
    await kubeletWrite(dir, { 'tls.crt': second.cert, 'tls.key': second.key });
    const secondSerial = await waitFor(
      async () => {
        const serial = await servedSerial(webhook.port);
        return serial !== firstSerial && serial;
      },
      5_000,
      'the rotated certificate served',
    );
    expect(secondSerial).not.toBe(firstSerial);
    // A second rotation: an fs.watch on the file would miss this one.
    await kubeletWrite(dir, { 'tls.crt': first.cert, 'tls.key': first.key });
    await waitFor(
      async () => (await servedSerial(webhook.port)) === firstSerial,
      5_000,
      'the second rotation',
    );
    // Reviews still answered over the new certificate.
    expect((await review(client, webhook.port, admissionReview(jobPod()))).status).toBe(200);
  });

  it('keeps serving the old certificate while a new one is half written', async () => {
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    const first = await readTls('server');
    await writeFile(path.join(dir, 'tls.crt'), first.cert);
    await writeFile(path.join(dir, 'tls.key'), first.key);
    const webhook = await start({ tlsCert: path.join(dir, 'tls.crt'), tlsKey: path.join(dir, 'tls.key') });
    const firstSerial = await servedSerial(webhook.port);
    const second = await readTls('server2');
    await writeFile(path.join(dir, 'tls.crt'), second.cert); // key not yet
    await new Promise((r) => setTimeout(r, 300));
    expect(await servedSerial(webhook.port)).toBe(firstSerial);
    await writeFile(path.join(dir, 'tls.key'), second.key);
    await waitFor(async () => (await servedSerial(webhook.port)) !== firstSerial, 5_000, 'the new pair');
  });

  it('starts without certificate files, not ready, and serves once they appear', async () => {
    const dir = await tempDir();
    const webhook = await start({ tlsCert: path.join(dir, 'tls.crt'), tlsKey: path.join(dir, 'tls.key') });
    const notReady = await fetch(`http://127.0.0.1:${webhook.healthPort}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ reason: expect.stringMatching(/certificate/) });
    const first = await readTls('server');
    await kubeletWrite(dir, { 'tls.crt': first.cert, 'tls.key': first.key });
    await waitFor(() => webhook.readiness().ready, 5_000, 'ready');
    expect((await fetch(`http://127.0.0.1:${webhook.healthPort}/readyz`)).status).toBe(200);
    expect((await review(client, webhook.port, admissionReview(jobPod()))).status).toBe(200);
  });

  it('uses a rewritten sidecar template, and keeps the last good one when the new one is broken', async () => {
    const dir = await tempDir();
    const original = await readFile(path.join(tlsDir, '../webhook/sidecar.yaml'), 'utf8');
    await kubeletWrite(dir, { 'sidecar.yaml': original });
    const file = path.join(dir, 'sidecar.yaml');
    const base = await webhookConfig();
    const webhook = await start({ template: { file, container: base.template.container } });
    const imageOf = async () => {
      const pod = jobPod();
      const patched: V1Pod = applyAnswer(pod, await review(client, webhook.port, admissionReview(pod)));
      return patched.spec?.initContainers?.[0]?.image;
    };
    expect(await imageOf()).toBe(template.image);
    await kubeletWrite(dir, {
      'sidecar.yaml': original.replace(/^image: .*$/m, 'image: registry.example/agent:2.0'),
    });
    await waitFor(async () => (await imageOf()) === 'registry.example/agent:2.0', 5_000, 'new template');
    await kubeletWrite(dir, { 'sidecar.yaml': 'image: [broken' });
    await new Promise((r) => setTimeout(r, 400));
    expect(await imageOf()).toBe('registry.example/agent:2.0');
  });
});

describe('admission handler', () => {
  it('answers allowed with a warning when mutating throws, and keeps serving', async () => {
    const { createServer } = await import('node:http');
    const { createAdmissionHandler } = await import('../../src/webhook/handler.ts');
    const { createWebhookMetrics } = await import('../../src/webhook/metrics.ts');
    let calls = 0;
    const handler = createAdmissionHandler({
      mutateOptions: () => {
        calls++;
        throw new Error('boom');
      },
      metrics: createWebhookMetrics({ processMetrics: false }),
      logger: silentLogger,
      closing: () => false,
    });
    const server = createServer(handler).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    try {
      for (let i = 0; i < 2; i++) {
        const request = admissionReview(jobPod());
        const res = await fetch(`http://127.0.0.1:${port}/mutate`, {
          method: 'POST',
          body: JSON.stringify(request),
        });
        expect(res.status).toBe(200);
        const body = await res.json();
        expect(body.response).toEqual({
          uid: request.request.uid,
          allowed: true,
          warnings: ['tes-heartbeat: not injected: internal error'],
        });
      }
      expect(calls).toBe(2);
    } finally {
      server.close();
    }
  });
});
