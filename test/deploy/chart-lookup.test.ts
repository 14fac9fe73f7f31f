// The chart-generated webhook CA survives `helm upgrade`: its `lookup` reuses the Secret the
// cluster already has. helm renders against a loopback fake API server holding that Secret.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import {
  chartDir,
  findOne,
  helmAsync,
  type K8sObject,
  parseManifests,
  RELEASE,
  RELEASE_NAMESPACE,
} from '../support/helm-chart.ts';
import { type FakeApiServer, startFakeApiServer } from '../support/helm-fake-apiserver.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;
const WEBHOOK = `${RELEASE}-tes-heartbeat-webhook`;

let server: FakeApiServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function renderAgainst(
  stored: K8sObject[],
): Promise<{ objects: K8sObject[]; requests: string[]; text: string }> {
  dir = await mkdtemp(path.join(tmpdir(), 'chart-lookup-'));
  server = await startFakeApiServer(dir, stored);
  const result = await helmAsync(
    [
      'template',
      RELEASE,
      chartDir,
      '--namespace',
      RELEASE_NAMESPACE,
      '--dry-run=server',
      '--disable-openapi-validation',
    ],
    { tes: { url: 'https://tes.example.org' } },
    server.kubeconfig,
  );
  expect(result.stderr).not.toMatch(/^Error/m);
  expect(result.code).toBe(0);
  return { objects: parseManifests(result.stdout), requests: server.requests, text: result.stdout };
}

const existing: K8sObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  type: 'kubernetes.io/tls',
  // As the previous install left it: owned by this release.
  metadata: {
    name: `${WEBHOOK}-tls`,
    namespace: RELEASE_NAMESPACE,
    labels: { 'app.kubernetes.io/managed-by': 'Helm' },
    annotations: {
      'meta.helm.sh/release-name': RELEASE,
      'meta.helm.sh/release-namespace': RELEASE_NAMESPACE,
    },
  },
  data: {
    'ca.crt': Buffer.from('the existing CA').toString('base64'),
    'tls.crt': Buffer.from('the existing certificate').toString('base64'),
    'tls.key': Buffer.from('the existing key').toString('base64'),
  },
};

test('an existing TLS Secret is kept: same CA, certificate and key, and the same CA as caBundle', async () => {
  const { objects, requests, text } = await renderAgainst([existing]);
  // Reused, not generated: no GitOps warning on it.
  expect(text).not.toContain('GENERATED AT RENDER TIME');
  expect(requests).toContain(`GET /api/v1/namespaces/${RELEASE_NAMESPACE}/secrets/${WEBHOOK}-tls`);
  const secret = findOne(objects, 'Secret', `${WEBHOOK}-tls`, RELEASE_NAMESPACE) as Any;
  expect(secret.data).toEqual(existing.data);
  const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
  expect(mwc.webhooks[0].clientConfig.caBundle).toBe((existing.data as Any)['ca.crt']);
});

test('an incomplete existing Secret is replaced by a fresh CA', async () => {
  const partial = { ...existing, data: { 'tls.crt': (existing.data as Any)['tls.crt'] } };
  const { objects, text } = await renderAgainst([partial]);
  expect(text).toContain('GENERATED AT RENDER TIME');
  const secret = findOne(objects, 'Secret', `${WEBHOOK}-tls`, RELEASE_NAMESPACE) as Any;
  expect(Buffer.from(secret.data['ca.crt'], 'base64').toString()).toContain('BEGIN CERTIFICATE');
  expect(secret.data['tls.crt']).not.toBe((existing.data as Any)['tls.crt']);
});
