// What the chart generates survives `helm upgrade` through `lookup`: the webhook CA (until 30
// days before its end, rule T8) and the emulator's token (rule T7). helm renders against a
// loopback fake API server holding the Secrets a previous install left.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
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

const VALUES = { taskNamespaces: ['tasks'], tes: { url: 'https://tes.example.org' } };
const DAY = 86_400_000;

async function renderAgainst(
  stored: K8sObject[],
  values: Record<string, unknown> = VALUES,
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
    values,
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
      // Generated 100 days ago: 265 days left.
      'tes-heartbeat/not-after': new Date(Date.now() + 265 * DAY).toISOString().replace(/\.\d+Z$/, 'Z'),
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

/** The Secret as a previous install left it, its annotated end `daysLeft` days away (or none). */
function existingEnding(daysLeft: number | undefined, ca: string): K8sObject {
  const annotations: Record<string, string> = { ...existing.metadata.annotations };
  delete annotations['tes-heartbeat/not-after'];
  if (daysLeft !== undefined)
    annotations['tes-heartbeat/not-after'] = new Date(Date.now() + daysLeft * DAY).toISOString();
  return {
    ...existing,
    metadata: { ...existing.metadata, annotations },
    data: { ...(existing.data as Any), 'ca.crt': Buffer.from(ca).toString('base64') },
  };
}

const OLD_CA = '-----BEGIN CERTIFICATE-----\nb2xkIENB\n-----END CERTIFICATE-----';

test.each([
  ['29 days left', 29],
  ['already ended', -3],
  ['no end recorded (an older chart: ten years)', undefined],
])(
  'rule T8: a certificate with %s is renewed by helm upgrade, and the caBundle trusts both CAs meanwhile',
  async (_d, daysLeft) => {
    const { objects, text } = await renderAgainst([existingEnding(daysLeft, OLD_CA)]);
    expect(text).toContain('GENERATED AT RENDER TIME');
    const secret = findOne(objects, 'Secret', `${WEBHOOK}-tls`, RELEASE_NAMESPACE) as Any;
    const pem = (key: string) => Buffer.from(secret.data[key], 'base64').toString('utf8');
    expect(secret.data['tls.crt']).not.toBe((existing.data as Any)['tls.crt']);
    const ca = new X509Certificate(pem('ca.crt'));
    expect(new X509Certificate(pem('tls.crt')).verify(ca.publicKey)).toBe(true);
    // The webhook's pods pick up the new files within a kubelet sync: until then the API server
    // must still trust the certificate they serve, signed by the old CA.
    const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
    const bundle = Buffer.from(mwc.webhooks[0].clientConfig.caBundle, 'base64').toString('utf8');
    expect(bundle).toContain(pem('ca.crt').trim());
    expect(bundle).toContain(OLD_CA);
    const notAfter = Date.parse(secret.metadata.annotations['tes-heartbeat/not-after']);
    expect(Math.abs(notAfter - Date.parse(ca.validTo))).toBeLessThan(60_000);
  },
);

test('rule T8: with 31 days left the certificate is kept, and the caBundle is its CA alone', async () => {
  const { objects, text } = await renderAgainst([existingEnding(31, OLD_CA)]);
  expect(text).not.toContain('GENERATED AT RENDER TIME');
  const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
  expect(Buffer.from(mwc.webhooks[0].clientConfig.caBundle, 'base64').toString()).toBe(OLD_CA);
});

test('rule T8: a generated CA and certificate last one year at most, and the Secret records their end', async () => {
  const { objects } = await renderAgainst([]);
  const secret = findOne(objects, 'Secret', `${WEBHOOK}-tls`, RELEASE_NAMESPACE) as Any;
  const pem = (key: string) => Buffer.from(secret.data[key], 'base64').toString('utf8');
  for (const key of ['ca.crt', 'tls.crt']) {
    const cert = new X509Certificate(pem(key));
    expect(Date.parse(cert.validTo) - Date.now(), key).toBeLessThanOrEqual(365 * DAY + 60_000);
    expect(Date.parse(cert.validTo) - Date.now(), key).toBeGreaterThan(364 * DAY);
  }
  const notAfter = Date.parse(secret.metadata.annotations['tes-heartbeat/not-after']);
  expect(Math.abs(notAfter - Date.parse(new X509Certificate(pem('tls.crt')).validTo))).toBeLessThan(60_000);
});

describe("rule T7: the emulator's token", () => {
  const EMULATOR = { taskNamespaces: ['tasks', 'imaging'], emulator: { enabled: true } };
  const tokenSecret: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...existing.metadata,
      name: `${RELEASE}-tes-heartbeat-emulator-token`,
      namespace: RELEASE_NAMESPACE,
    },
    data: { token: Buffer.from('the-kept-token').toString('base64') },
  };
  const tokens = (objects: K8sObject[]) =>
    objects
      .filter((o) => o.kind === 'Secret' && o.metadata.name.endsWith('emulator-token'))
      .map((o: Any) => [o.metadata.namespace, Buffer.from(o.data.token, 'base64').toString()]);

  test("is kept across upgrades, in the emulator's Secret and the agents' copies in every task namespace", async () => {
    const { objects, requests } = await renderAgainst([tokenSecret], EMULATOR);
    expect(requests).toContain(
      `GET /api/v1/namespaces/${RELEASE_NAMESPACE}/secrets/${RELEASE}-tes-heartbeat-emulator-token`,
    );
    expect(tokens(objects).sort()).toEqual(
      [
        [RELEASE_NAMESPACE, 'the-kept-token'],
        ['imaging', 'the-kept-token'],
        ['tasks', 'the-kept-token'],
      ].sort(),
    );
  });

  test('is generated once per render when none exists: long, random, the same everywhere', async () => {
    const { objects } = await renderAgainst([], EMULATOR);
    const found = tokens(objects);
    expect(found).toHaveLength(3);
    const values = new Set(found.map(([, token]) => token));
    expect(values.size).toBe(1);
    expect([...values][0]).toMatch(/^[A-Za-z0-9]{40}$/);
    const again = tokens((await renderAgainst([], EMULATOR)).objects);
    expect(again[0]?.[1]).not.toBe(found[0]?.[1]);
  });
});
