// The chart, rendered by a real helm (v4) and checked against the Kubernetes schemas, the
// contract (agent-spec "In the chart" and "Chart values") and the agent's exact API calls.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { mutatePod } from '../../src/webhook/mutate.ts';
import { parseTemplate, parseVolumes } from '../../src/webhook/template.ts';
import {
  APP_VERSION,
  chartDir,
  effectiveValues,
  findAll,
  findOne,
  FULLNAME,
  helm,
  type K8sObject,
  RELEASE,
  RELEASE_NAMESPACE,
  renderChart,
  renderNotes,
  renderValueSets,
  repoRoot,
} from '../support/helm-chart.ts';
import { validateContainer, validateObject } from '../support/k8s-schema-validate.ts';
import { pluginTokenVolume } from '../support/serviceaccount-admission.ts';

type Values = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const WEBHOOK = `${FULLNAME}-webhook`;

const CA_PEM = readFileSync(path.join(repoRoot, 'test/fixtures/tls/ca.crt'), 'utf8');

/**
 * The defaults (plus the one required value, a TES) and others that switch every optional
 * part on or off: the enterprise install (private CA, token file, pull secrets, the standard
 * pod knobs) and OpenShift (no fixed ids, an existing CA ConfigMap, no Events).
 */
const VALUE_SETS: Record<string, Values> = {
  defaults: { taskNamespaces: ['tasks'], tes: { url: 'https://tes.example.org' } },
  kind: { taskNamespaces: ['tes-tasks'], emulator: { enabled: true }, logLevel: 'debug' },
  production: {
    taskNamespaces: ['genomics', 'imaging'],
    taskServiceAccounts: ['tes-heartbeat', 'launcher'],
    tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token', key: 'jwt', optional: false } },
    image: { repository: 'registry.example.org/tes/tes-heartbeat', tag: '0.1.0-rc1', pullPolicy: 'Always' },
    imagePullSecrets: [{ name: 'registry' }],
    webhook: { failurePolicy: 'Fail', sidecarMode: 'native', certManager: { enabled: true } },
  },
  minimal: {
    taskNamespaces: ['tasks'],
    tes: { url: 'http://tes.tasks.svc:8080' },
    jobRetryCount: 3,
    rbac: { nodes: false },
    webhook: { enabled: false },
  },
  clusterIssuer: {
    taskNamespaces: ['tasks'],
    tes: { url: 'https://tes.example.org' },
    webhook: {
      sidecarMode: 'regular',
      certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } },
    },
  },
  enterprise: {
    taskNamespaces: ['genomics', 'imaging'],
    tes: {
      url: 'https://tes.corp.example',
      caBundle: CA_PEM,
      tokenSecret: { name: 'tes-token', key: 'jwt', asFile: true },
    },
    imagePullSecrets: [{ name: 'corp-registry' }, { name: 'mirror' }],
    sidecar: { guaranteedResources: { cpu: '500m', memory: '256Mi' } },
    webhook: {
      nodeSelector: { 'node-role.kubernetes.io/infra': '' },
      tolerations: [{ key: 'infra', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
            ],
          },
        },
      },
      priorityClassName: 'system-cluster-critical',
      podAnnotations: { 'example.org/owner': 'platform' },
      podLabels: { team: 'platform' },
    },
    emulator: {
      enabled: true,
      nodeSelector: { pool: 'dev' },
      tolerations: [{ key: 'dev', operator: 'Exists' }],
      affinity: { podAntiAffinity: {} },
      priorityClassName: 'low',
      podAnnotations: { 'example.org/owner': 'dev' },
      podLabels: { team: 'dev' },
    },
  },
  openshift: {
    taskNamespaces: ['batch'],
    tes: {
      url: 'https://tes.corp.example',
      caConfigMap: { name: 'corp-trust-bundle', key: 'ca-bundle.crt' },
    },
    securityContext: { runAsUser: null, runAsGroup: null },
    sidecar: { guaranteedResources: null },
    events: { enabled: false },
    emulator: { enabled: true },
  },
};

const render = renderValueSets(VALUE_SETS);

function taskNamespaces(values: Values): string[] {
  return effectiveValues(values).taskNamespaces as string[];
}

/** The TES token Secret the agents read: tes.tokenSecret, or the chart's emulator's (rule T7). */
function agentToken(v: Any): { name: string; key: string; optional: boolean; asFile: boolean } | undefined {
  if (v.tes.tokenSecret.name) return v.tes.tokenSecret;
  if (v.emulator.enabled && !v.tes.url)
    return {
      name: 'tes-heartbeat-emulator-token',
      key: 'token',
      optional: false,
      asFile: v.tes.tokenSecret.asFile,
    };
  return undefined;
}

function snippet(objects: K8sObject[], key = 'sidecar.yaml'): Any {
  const cm = findOne(objects, 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
  return parse(cm.data[key]);
}

/** volumes.yaml of the published ConfigMap, through the webhook's own parser. */
function publishedVolumes(objects: K8sObject[]): Any[] {
  const cm = findOne(objects, 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
  return parseVolumes('volumes.yaml', cm.data['volumes.yaml']);
}

const WEBHOOK_KINDS = [
  'MutatingWebhookConfiguration',
  'Deployment',
  'Service',
  'PodDisruptionBudget',
  'Issuer',
  'Certificate',
  'Secret',
];

describe('helm lint', () => {
  test.each(Object.keys(VALUE_SETS))('is clean with the %s values', (name) => {
    const result = helm(['lint', chartDir, '--strict'], VALUE_SETS[name]);
    expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe.each(Object.keys(VALUE_SETS))('rendered with the %s values', (name) => {
  const values = VALUE_SETS[name] as Values;

  test('every object validates against the Kubernetes schemas, strictly', async () => {
    const objects = render(name);
    expect(objects.length).toBeGreaterThanOrEqual(5);
    const errors = (await Promise.all(objects.map(validateObject))).flat();
    expect(errors).toEqual([]);
  });

  test('every object carries the app.kubernetes.io labels and a namespace when namespaced', () => {
    const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'];
    for (const o of render(name)) {
      expect(o.metadata.labels, `${o.kind} ${o.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'tes-heartbeat',
        'app.kubernetes.io/instance': RELEASE,
        'app.kubernetes.io/version': APP_VERSION,
        'app.kubernetes.io/managed-by': 'Helm',
      });
      if (clusterScoped.includes(o.kind)) expect(o.metadata.namespace).toBeUndefined();
      else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeTruthy();
    }
  });

  test('RBAC grants exactly what the agent and the webhook call, nothing on secrets, no wildcards', () => {
    const v = effectiveValues(values);
    const objects = render(name);
    const grants = new Set<string>();
    for (const role of [...findAll(objects, 'Role'), ...findAll(objects, 'ClusterRole')] as Any[]) {
      for (const rule of role.rules) {
        for (const group of rule.apiGroups)
          for (const resource of rule.resources)
            for (const verb of rule.verbs)
              grants.add(
                `${role.kind} ${role.metadata.namespace ?? '-'}/${role.metadata.name}: ${group}/${resource} ${verb}`,
              );
        expect(rule.resourceNames).toBeUndefined();
        expect(rule.nonResourceURLs).toBeUndefined();
      }
    }
    const expected = new Set<string>();
    for (const ns of taskNamespaces(values)) {
      for (const verb of ['get', 'list', 'watch']) expected.add(`Role ${ns}/tes-heartbeat: /pods ${verb}`);
      if (String(v.jobRetryCount) === 'auto') expected.add(`Role ${ns}/tes-heartbeat: batch/jobs get`);
      if (v.events.enabled) expected.add(`Role ${ns}/tes-heartbeat: events.k8s.io/events create`);
    }
    if (v.rbac.nodes) expected.add(`ClusterRole -/${FULLNAME}-agent-nodes: /nodes get`);
    if (v.webhook.enabled && v.webhook.sidecarMode === 'auto') {
      for (const verb of ['get', 'list', 'watch'])
        expected.add(`ClusterRole -/${WEBHOOK}-nodes: /nodes ${verb}`);
    }
    expect([...grants].sort()).toEqual([...expected].sort());
  });

  test('each task namespace has the ServiceAccount tes-heartbeat, the settings and bindings for every task service account', () => {
    const v = effectiveValues(values);
    const objects = render(name);
    for (const ns of taskNamespaces(values)) {
      const account = findOne(objects, 'ServiceAccount', 'tes-heartbeat', ns) as Any;
      // Rule T1: the task's containers get no token of an account that holds the agent's Role.
      expect(account.automountServiceAccountToken).toBe(false);
      expect(account.imagePullSecrets).toEqual(
        v.imagePullSecrets.length > 0 ? v.imagePullSecrets : undefined,
      );
      const binding = findOne(objects, 'RoleBinding', 'tes-heartbeat', ns) as Any;
      expect(binding.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'tes-heartbeat',
      });
      expect(binding.subjects).toEqual(
        v.taskServiceAccounts.map((sa: string) => ({ kind: 'ServiceAccount', name: sa, namespace: ns })),
      );
      const settings = findOne(objects, 'ConfigMap', 'tes-heartbeat-settings', ns) as Any;
      expect(settings.data).toMatchObject({
        HEARTBEAT_INTERVAL: v.heartbeat.interval,
        HEARTBEAT_TIMEOUT: v.heartbeat.timeout,
        HEARTBEAT_MIN_GAP: v.heartbeat.minGap,
        FINAL_HEARTBEAT_DEADLINE: v.heartbeat.finalDeadline,
        JOB_RETRY_COUNT: String(v.jobRetryCount),
        AGENT_CONTAINER_NAME: 'tes-heartbeat',
        EVENTS: v.events.enabled ? 'on' : 'off',
      });
      // The snippet's own env carries it: the webhook must see the port to keep it clear.
      expect(settings.data.HTTP_ADDR).toBeUndefined();
      // Never a token in a ConfigMap.
      expect(Object.keys(settings.data).filter((k) => /TOKEN|JWT/.test(k))).toEqual([]);
      const url =
        v.tes.url ||
        (v.emulator.enabled ? `http://${FULLNAME}-emulator.${RELEASE_NAMESPACE}.svc:8080` : undefined);
      expect(settings.data.TES_URL).toBe(url);
      // Rule T6: plain http allowed for the chart's own emulator alone.
      expect(settings.data.TES_ALLOW_HTTP).toBe(v.tes.url ? undefined : 'true');
    }
    const nodes = findAll(objects, 'ClusterRoleBinding').find(
      (b) => b.metadata.name === `${FULLNAME}-agent-nodes`,
    ) as Any;
    if (v.rbac.nodes) {
      expect(nodes.subjects).toHaveLength(taskNamespaces(values).length * v.taskServiceAccounts.length);
    } else {
      expect(nodes).toBeUndefined();
    }
  });

  test('the published sidecar is a valid, hardened container with requests, limits and the downward-API env', async () => {
    const v = effectiveValues(values);
    const objects = render(name);
    const container = snippet(objects);
    expect(await validateContainer(container)).toEqual([]);
    expect(container.name).toBe('tes-heartbeat');
    expect(container.image).toBe(`${v.image.repository}:${v.image.tag || APP_VERSION}`);
    expect(container.args).toEqual(['agent']);
    expect(container.restartPolicy).toBeUndefined();
    expect(container.resources).toEqual(v.sidecar.resources);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.envFrom).toEqual([{ configMapRef: { name: 'tes-heartbeat-settings' } }]);
    const env = Object.fromEntries(container.env.map((e: Any) => [e.name, e.valueFrom]));
    expect(env).toMatchObject({
      TES_RUN_ID: { fieldRef: { fieldPath: "metadata.annotations['tes-heartbeat/run-id']" } },
      TES_NONCE: { fieldRef: { fieldPath: "metadata.annotations['tes-heartbeat/nonce']" } },
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    const envValues = Object.fromEntries(container.env.map((e: Any) => [e.name, e.value]));
    const token = agentToken(v);
    if (token && !token.asFile) {
      expect(env.TES_TOKEN).toEqual({
        secretKeyRef: { name: token.name, key: token.key, optional: token.optional },
      });
    } else {
      expect(env.TES_TOKEN).toBeUndefined();
    }
    expect(snippet(objects, 'native-sidecar.yaml')).toEqual({ ...container, restartPolicy: 'Always' });

    // Items 2-4: every mount resolves to a volume of volumes.yaml, read by the webhook's own parser.
    const volumes = publishedVolumes(objects);
    const byName = Object.fromEntries(volumes.map((vol: Any) => [vol.name, vol]));
    expect(volumes.every((vol: Any) => vol.name.startsWith('tes-heartbeat-'))).toBe(true);
    const mounts = container.volumeMounts ?? [];
    expect(mounts.map((m: Any) => m.name).sort()).toEqual(Object.keys(byName).sort());
    for (const m of mounts) {
      expect(m.readOnly).toBe(true);
      expect(m.subPath).toBeUndefined();
    }
    const fileIn = (volume: string, file: string): string => {
      const mount = mounts.find((m: Any) => m.name === volume);
      return `${mount.mountPath}/${file}`;
    };
    // Rule T1: the agent's own API token, as the ServiceAccount admission plugin would mount it
    // (the task's account automounts none), for the agent alone.
    expect(byName['tes-heartbeat-kube-api-access']).toEqual(
      pluginTokenVolume('tes-heartbeat-kube-api-access'),
    );
    expect(mounts.find((m: Any) => m.name === 'tes-heartbeat-kube-api-access')).toEqual({
      name: 'tes-heartbeat-kube-api-access',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    const ca = v.tes.caBundle
      ? { name: 'tes-heartbeat-tes-ca', key: 'ca.crt' }
      : v.tes.caConfigMap.name
        ? v.tes.caConfigMap
        : undefined;
    if (ca) {
      const volume = byName['tes-heartbeat-tes-ca'];
      expect(volume.configMap).toEqual({ name: ca.name, items: [{ key: ca.key, path: ca.key }] });
      expect(envValues.TES_CA_FILE).toBe(fileIn('tes-heartbeat-tes-ca', ca.key));
    } else {
      expect(envValues.TES_CA_FILE).toBeUndefined();
      expect(byName['tes-heartbeat-tes-ca']).toBeUndefined();
    }
    if (token?.asFile) {
      // Never optional: the agent refuses a token file it cannot read.
      expect(byName['tes-heartbeat-tes-token'].secret).toEqual({
        secretName: token.name,
        items: [{ key: token.key, path: 'token' }],
      });
      expect(envValues.TES_TOKEN_FILE).toBe(fileIn('tes-heartbeat-tes-token', 'token'));
    } else {
      expect(envValues.TES_TOKEN_FILE).toBeUndefined();
      expect(byName['tes-heartbeat-tes-token']).toBeUndefined();
    }

    // Item 5: the listener port is in the snippet's env, named, and not a common one.
    const port = Number(envValues.HTTP_ADDR.split(':').at(-1));
    expect(envValues.HTTP_ADDR).toBe(v.sidecar.httpAddr);
    expect(container.ports).toEqual([{ name: 'tes-hb-metrics', containerPort: port, protocol: 'TCP' }]);
    expect([80, 443, 3000, 5000, 8000, 8080, 8443, 8888, 9000, 9090, 9100]).not.toContain(port);

    // Item 8: fixed ids unless null.
    if (v.securityContext.runAsUser === null) {
      expect(container.securityContext).not.toHaveProperty('runAsUser');
      expect(container.securityContext).not.toHaveProperty('runAsGroup');
    } else {
      expect(container.securityContext).toMatchObject({ runAsUser: 65532, runAsGroup: 65532 });
    }
  });

  test('a CA ConfigMap in every task namespace exactly when tes.caBundle is set', () => {
    const v = effectiveValues(values);
    const objects = render(name);
    const rendered = findAll(objects, 'ConfigMap').filter((c) => c.metadata.name === 'tes-heartbeat-tes-ca');
    if (!v.tes.caBundle) {
      expect(rendered).toEqual([]);
      return;
    }
    expect(rendered.map((c) => c.metadata.namespace).sort()).toEqual(taskNamespaces(values).sort());
    for (const c of rendered as Any[]) {
      expect(c.data['ca.crt'].trim()).toBe(v.tes.caBundle.trim());
      expect(new X509Certificate(c.data['ca.crt']).ca).toBe(true);
    }
  });

  test('OpenShift: no fixed runAsUser, runAsGroup or fsGroup anywhere when they are null; runAsNonRoot stays', () => {
    const v = effectiveValues(values);
    const text = JSON.stringify(render(name));
    // The snippet is YAML text inside a ConfigMap: match the key, quoted or not.
    const fixed = /(runAsUser|runAsGroup|fsGroup)\\?"?:/.test(text);
    expect(fixed).toBe(v.securityContext.runAsUser !== null);
    if (!fixed) expect(text).toContain('"runAsNonRoot":true');
  });

  test('the webhook objects are there exactly when webhook.enabled', () => {
    const v = effectiveValues(values);
    const objects = render(name);
    const webhookObjects = objects.filter(
      (o) => o.metadata.name.startsWith(WEBHOOK) && WEBHOOK_KINDS.includes(o.kind),
    );
    if (!v.webhook.enabled) {
      expect(webhookObjects).toEqual([]);
      expect(objects.filter((o) => o.metadata.name.includes('webhook'))).toEqual([]);
      return;
    }
    const kinds = webhookObjects.map((o) => o.kind).sort();
    const tls = v.webhook.certManager.enabled
      ? v.webhook.certManager.issuerRef.name
        ? ['Certificate']
        : ['Certificate', 'Issuer']
      : ['Secret'];
    expect(kinds).toEqual(
      ['Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Service', ...tls].sort(),
    );
  });

  test('the emulator is there exactly when emulator.enabled', () => {
    const objects = render(name);
    const emulator = objects.filter((o) => o.metadata.name === `${FULLNAME}-emulator`);
    if (effectiveValues(values).emulator.enabled) {
      expect(emulator.map((o) => o.kind).sort()).toEqual(['Deployment', 'Service']);
      const pod = (emulator.find((o) => o.kind === 'Deployment') as Any).spec.template.spec;
      expect(pod.containers[0].args.slice(0, 1)).toEqual(['emulator']);
      // Rule T7: always a token, from a Secret through env, never on the command line.
      expect(pod.containers[0].args.join(' ')).not.toMatch(/token/i);
      const tokenEnv = pod.containers[0].env.find((e: Any) => e.name === 'EMULATOR_TOKEN');
      expect(tokenEnv.valueFrom).toEqual({
        secretKeyRef: { name: `${FULLNAME}-emulator-token`, key: 'token' },
      });
      findOne(objects, 'Secret', `${FULLNAME}-emulator-token`, RELEASE_NAMESPACE);
      expect(pod.containers[0].resources.requests).toBeDefined();
      expect(pod.containers[0].resources.limits).toBeDefined();
    } else {
      expect(emulator).toEqual([]);
    }
  });
});

describe('the webhook', () => {
  const deploymentOf = (objects: K8sObject[]): Any =>
    findOne(objects, 'Deployment', WEBHOOK, RELEASE_NAMESPACE);

  test('Deployment: 2 replicas spread by hostname (ScheduleAnyway), PDB minAvailable 1, probes on the HTTP_ADDR port', () => {
    const objects = render('defaults');
    const deployment = deploymentOf(objects);
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: deployment.spec.selector.matchLabels },
      },
    ]);
    const pdb = findOne(objects, 'PodDisruptionBudget', WEBHOOK, RELEASE_NAMESPACE) as Any;
    expect(pdb.spec).toEqual({
      minAvailable: 1,
      selector: { matchLabels: deployment.spec.selector.matchLabels },
    });
    const [container] = pod.containers;
    const env = Object.fromEntries(container.env.map((e: Any) => [e.name, e.value]));
    const httpPort = Number(env.HTTP_ADDR.split(':').at(-1));
    const named = Object.fromEntries(container.ports.map((p: Any) => [p.name, p.containerPort]));
    expect(named[container.readinessProbe.httpGet.port]).toBe(httpPort);
    expect(named[container.livenessProbe.httpGet.port]).toBe(httpPort);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.args).toEqual(['webhook']);
    expect(container.resources).toEqual(effectiveValues({}).webhook.resources);
    // The same hardened securityContext as the sidecar.
    expect(container.securityContext).toEqual(snippet(objects).securityContext);
    const service = findOne(objects, 'Service', WEBHOOK, RELEASE_NAMESPACE) as Any;
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(named[service.spec.ports[0].targetPort]).toBe(Number(env.WEBHOOK_ADDR.split(':').at(-1)));
  });

  test('settings env: SIDECAR_TEMPLATE in the directory-mounted snippet ConfigMap, TLS files in the mounted Secret', () => {
    const objects = render('production');
    const pod = deploymentOf(objects).spec.template.spec;
    const [container] = pod.containers;
    const env = Object.fromEntries(container.env.map((e: Any) => [e.name, e.value]));
    expect(env).toEqual({
      SIDECAR_TEMPLATE: expect.any(String),
      SIDECAR_VOLUMES: expect.any(String),
      SIDECAR_GUARANTEED_RESOURCES: 'cpu=250m,memory=192Mi',
      SIDECAR_IMAGE_PULL_SECRETS: 'registry',
      TASK_SERVICE_ACCOUNTS: 'tes-heartbeat,launcher',
      SIDECAR_MODE: 'native',
      AGENT_CONTAINER_NAME: 'tes-heartbeat',
      WEBHOOK_ADDR: '0.0.0.0:8443',
      WEBHOOK_TLS_CERT: expect.any(String),
      WEBHOOK_TLS_KEY: expect.any(String),
      HTTP_ADDR: '0.0.0.0:9090',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
    });
    const volumes = Object.fromEntries(pod.volumes.map((v: Any) => [v.name, v]));
    const mountOf = (file: string): Any => {
      const mount = container.volumeMounts.find((m: Any) => path.dirname(file) === m.mountPath);
      expect(mount, file).toBeDefined();
      expect(mount.subPath).toBeUndefined();
      expect(mount.readOnly).toBe(true);
      return volumes[mount.name];
    };
    const template = mountOf(env.SIDECAR_TEMPLATE);
    expect(template.configMap.name).toBe(`${FULLNAME}-sidecar`);
    expect(mountOf(env.SIDECAR_VOLUMES)).toBe(template);
    const published = findOne(objects, 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
    expect(Object.keys(published.data)).toContain(path.basename(env.SIDECAR_TEMPLATE));
    expect(Object.keys(published.data)).toContain(path.basename(env.SIDECAR_VOLUMES));
    const cert = mountOf(env.WEBHOOK_TLS_CERT);
    expect(mountOf(env.WEBHOOK_TLS_KEY)).toBe(cert);
    expect(cert.secret.secretName).toBe(`${WEBHOOK}-tls`);
    expect([path.basename(env.WEBHOOK_TLS_CERT), path.basename(env.WEBHOOK_TLS_KEY)]).toEqual([
      'tls.crt',
      'tls.key',
    ]);
    // cert-manager writes the Secret the Deployment mounts.
    expect((findOne(objects, 'Certificate', WEBHOOK) as Any).spec.secretName).toBe(cert.secret.secretName);
  });

  test.each([
    ['defaults', ['tasks'], 'Ignore'],
    ['kind', ['tes-tasks'], 'Ignore'],
    ['production', ['genomics', 'imaging'], 'Fail'],
  ])(
    'MutatingWebhookConfiguration (%s): CREATE pods only, selectors, policy',
    (name, namespaces, failurePolicy) => {
      const objects = render(name);
      const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
      expect(mwc.webhooks).toHaveLength(1);
      const [hook] = mwc.webhooks;
      expect(hook).toMatchObject({
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy,
        timeoutSeconds: 5,
        reinvocationPolicy: 'Never',
        clientConfig: {
          service: { name: WEBHOOK, namespace: RELEASE_NAMESPACE, path: '/mutate', port: 443 },
        },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        objectSelector: { matchLabels: { 'tes-heartbeat/inject': 'true' } },
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: namespaces }],
        },
      });
      expect(hook.namespaceSelector.matchLabels).toBeUndefined();
    },
  );

  test('TLS without cert-manager: a kubernetes.io/tls Secret whose CA signs a certificate for the service names, the same CA as caBundle', () => {
    const objects = render('defaults');
    const secret = findOne(objects, 'Secret', `${WEBHOOK}-tls`, RELEASE_NAMESPACE) as Any;
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const pem = (key: string) => Buffer.from(secret.data[key], 'base64').toString('utf8');
    const ca = new X509Certificate(pem('ca.crt'));
    const cert = new X509Certificate(pem('tls.crt'));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    const names = (cert.subjectAltName ?? '').split(', ').sort();
    expect(names).toEqual(
      [WEBHOOK, `${WEBHOOK}.${RELEASE_NAMESPACE}`, `${WEBHOOK}.${RELEASE_NAMESPACE}.svc`]
        .map((n) => `DNS:${n}`)
        .sort(),
    );
    expect(pem('tls.key')).toContain('PRIVATE KEY');
    const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
    expect(mwc.webhooks[0].clientConfig.caBundle).toBe(secret.data['ca.crt']);
    expect(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBeUndefined();
  });

  // Reuse of an existing Secret through lookup: test/chart-lookup.test.ts.

  test('TLS with cert-manager: Issuer + Certificate for the service names, CA injected, no Secret of its own', async () => {
    const objects = render('production');
    expect(findAll(objects, 'Secret')).toEqual([]);
    const issuer = findOne(objects, 'Issuer', WEBHOOK, RELEASE_NAMESPACE) as Any;
    expect(issuer.spec).toEqual({ selfSigned: {} });
    const certificate = findOne(objects, 'Certificate', WEBHOOK, RELEASE_NAMESPACE) as Any;
    expect(certificate.apiVersion).toBe('cert-manager.io/v1');
    expect(certificate.spec.dnsNames).toEqual([
      WEBHOOK,
      `${WEBHOOK}.${RELEASE_NAMESPACE}`,
      `${WEBHOOK}.${RELEASE_NAMESPACE}.svc`,
    ]);
    expect(certificate.spec.issuerRef).toEqual({ group: 'cert-manager.io', kind: 'Issuer', name: WEBHOOK });
    const mwc = findOne(objects, 'MutatingWebhookConfiguration', WEBHOOK) as Any;
    expect(mwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(
      `${RELEASE_NAMESPACE}/${WEBHOOK}`,
    );
    expect(mwc.webhooks[0].clientConfig.caBundle).toBeUndefined();
    // The cert-manager CRD schema rejects a broken Certificate (the validator can fail).
    const broken = { ...certificate, spec: { ...certificate.spec, issuerRef: undefined, dnsNames: 'x' } };
    expect((await validateObject(broken)).length).toBeGreaterThan(0);
  });

  test('an existing ClusterIssuer replaces the chart Issuer', () => {
    const objects = render('clusterIssuer');
    expect(findAll(objects, 'Issuer')).toEqual([]);
    const certificate = findOne(objects, 'Certificate', WEBHOOK) as Any;
    expect(certificate.spec.issuerRef).toEqual({
      group: 'cert-manager.io',
      kind: 'ClusterIssuer',
      name: 'corp-ca',
    });
  });

  test.each([
    ['native', 'production', 'native-sidecar.yaml'],
    ['regular', 'clusterIssuer', 'sidecar.yaml'],
  ] as const)('the injected container (%s mode) equals the published snippet', (mode, name, key) => {
    const objects = render(name);
    const published = findOne(objects, 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
    // What the webhook reads: the key SIDECAR_TEMPLATE names in the mounted ConfigMap.
    const template = parseTemplate('sidecar.yaml', published.data['sidecar.yaml']);
    const result = mutatePod(
      {
        uid: 'u1',
        operation: 'CREATE',
        namespace: 'tasks',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        object: {
          metadata: {
            generateName: 'task-',
            labels: { 'tes-heartbeat/inject': 'true' },
            annotations: { 'tes-heartbeat/run-id': 'run-1', 'tes-heartbeat/nonce': 'n1' },
          },
          spec: { serviceAccountName: 'tes-heartbeat', containers: [{ name: 'task', image: 'busybox' }] },
        },
      },
      { template, mode, selfName: 'tes-heartbeat', taskServiceAccounts: ['tes-heartbeat'] },
    );
    expect(result.result).toBe('injected');
    const op = result.patch?.[0] as Any;
    const injected = Array.isArray(op.value) ? op.value[0] : op.value;
    expect(injected).toEqual(parse(published.data[key]));
  });
});

describe('real clusters (issue 10)', () => {
  test('item 1: no install without a TES: helm template and install fail naming tes.url; the emulator alone is enough', () => {
    for (const args of [
      ['template', RELEASE, chartDir],
      ['install', RELEASE, chartDir, '--dry-run=client'],
    ]) {
      const result = helm(args, { taskNamespaces: ['tasks'] });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/tes\.url is required: set tes\.url/);
    }
    // A template `fail`, not a schema rule: lint of the chart alone stays clean.
    const lint = helm(['lint', chartDir, '--strict'], {});
    expect(lint.code).toBe(0);
    expect(lint.stdout).toContain('0 chart(s) failed');
    const tasks = { taskNamespaces: ['tasks'] };
    expect(helm(['template', RELEASE, chartDir], { ...tasks, emulator: { enabled: true } }).code).toBe(0);
    expect(
      helm(['template', RELEASE, chartDir], { ...tasks, tes: { url: 'https://tes.example.org' } }).code,
    ).toBe(0);
  });

  test('a CA given both ways fails at helm time, naming both values', () => {
    const result = helm(['template', RELEASE, chartDir], {
      tes: { url: 'https://tes.example.org', caBundle: CA_PEM, caConfigMap: { name: 'bundle' } },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/tes\.caBundle and tes\.caConfigMap\.name are both set/);
  });

  test('item 6: SIDECAR_GUARANTEED_RESOURCES from sidecar.guaranteedResources; null leaves it to the limits', () => {
    const envOf = (name: string): Any =>
      Object.fromEntries(
        (
          findOne(render(name), 'Deployment', WEBHOOK, RELEASE_NAMESPACE) as Any
        ).spec.template.spec.containers[0].env.map((e: Any) => [e.name, e.value]),
      );
    expect(envOf('defaults').SIDECAR_GUARANTEED_RESOURCES).toBe('cpu=250m,memory=192Mi');
    expect(envOf('enterprise').SIDECAR_GUARANTEED_RESOURCES).toBe('cpu=500m,memory=256Mi');
    expect(envOf('openshift').SIDECAR_GUARANTEED_RESOURCES).toBeUndefined();
    expect(envOf('enterprise').SIDECAR_IMAGE_PULL_SECRETS).toBe('corp-registry,mirror');
    expect(envOf('defaults').SIDECAR_IMAGE_PULL_SECRETS).toBeUndefined();
  });

  test('item 9: the generated TLS Secret says in a comment that GitOps renders make a new CA; NOTES say what to use', () => {
    const result = helm(
      ['template', RELEASE, chartDir, '--namespace', RELEASE_NAMESPACE],
      VALUE_SETS.defaults,
    );
    expect(result.code).toBe(0);
    const doc = result.stdout.split('\n---\n').find((d) => /\nkind: Secret\n/.test(d)) ?? '';
    expect(doc).toMatch(/# GENERATED AT RENDER TIME: `lookup` found no usable Secret/);
    expect(doc).toMatch(/webhook\.certManager\.enabled=true/);
    expect(renderNotes(VALUE_SETS.defaults)).toMatch(/GitOps[\s\S]*webhook\.certManager\.enabled=true/);
    expect(renderNotes(VALUE_SETS.defaults)).toMatch(
      /last one year: run `helm upgrade` at least once a year/,
    );
    expect(renderNotes(VALUE_SETS.production)).not.toMatch(/GitOps/);
  });

  test('item 10: the standard pod knobs reach the webhook and emulator pods; the chart labels win over podLabels', () => {
    const objects = render('enterprise');
    const v = effectiveValues(VALUE_SETS.enterprise as Values);
    for (const [component, name] of [
      ['webhook', WEBHOOK],
      ['emulator', `${FULLNAME}-emulator`],
    ] as const) {
      const deployment = findOne(objects, 'Deployment', name, RELEASE_NAMESPACE) as Any;
      const knobs = v[component];
      const pod = deployment.spec.template;
      expect(pod.spec.nodeSelector).toEqual(knobs.nodeSelector);
      expect(pod.spec.tolerations).toEqual(knobs.tolerations);
      expect(pod.spec.affinity).toEqual(knobs.affinity);
      expect(pod.spec.priorityClassName).toBe(knobs.priorityClassName);
      expect(pod.spec.imagePullSecrets).toEqual(v.imagePullSecrets);
      expect(pod.metadata.annotations).toEqual(knobs.podAnnotations);
      expect(pod.metadata.labels).toMatchObject({
        ...knobs.podLabels,
        ...deployment.spec.selector.matchLabels,
      });
    }
    const overridden = renderChart({
      ...VALUE_SETS.defaults,
      webhook: { podLabels: { 'app.kubernetes.io/component': 'mine', team: 'a' } },
    });
    const pod = (findOne(overridden, 'Deployment', WEBHOOK, RELEASE_NAMESPACE) as Any).spec.template;
    expect(pod.metadata.labels).toMatchObject({ 'app.kubernetes.io/component': 'webhook', team: 'a' });
    // Defaults render none of them.
    const plain = (findOne(render('defaults'), 'Deployment', WEBHOOK, RELEASE_NAMESPACE) as Any).spec
      .template;
    for (const key of ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'imagePullSecrets']) {
      expect(plain.spec).not.toHaveProperty(key);
    }
    expect(plain.metadata).not.toHaveProperty('annotations');
  });
});

describe('NOTES', () => {
  test('print the sidecar snippet verbatim, as a native sidecar', () => {
    const notes = renderNotes(VALUE_SETS.production);
    const block = /\n {2}initContainers:\n([\s\S]*?)\n\n/.exec(notes)?.[1];
    expect(block).toBeDefined();
    const [container] = parse(block as string);
    expect(container).toEqual(snippet(render('production'), 'native-sidecar.yaml'));
    expect(notes).toContain('tes-heartbeat/inject: "true"');
    expect(notes).not.toContain('WARNING');
  });

  test('print volumes.yaml verbatim, the agent API token volume among them', () => {
    const notes = renderNotes(VALUE_SETS.enterprise);
    const block = /\n {2}volumes:\n([\s\S]*?)(\n\n|$)/.exec(notes)?.[1];
    expect(parse(block as string)).toEqual(publishedVolumes(render('enterprise')));
    expect(block).toContain('tes-heartbeat-kube-api-access');
  });

  test('name the TES CA and the token file', () => {
    const notes = renderNotes(VALUE_SETS.enterprise);
    expect(notes).toContain('TES CA: ConfigMap `tes-heartbeat-tes-ca`');
    expect(notes).toContain('mounted as TES_TOKEN_FILE');
  });
});

test('Chart.yaml states kubeVersion >= 1.29 and appVersion = package.json version; image.tag defaults to it', () => {
  const chart = parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'));
  expect(chart.appVersion).toBe(APP_VERSION);
  expect(chart.kubeVersion).toBe('>=1.29.0-0');
  const old = helm(['template', RELEASE, chartDir, '--kube-version', '1.28.9'], VALUE_SETS.defaults);
  expect(old.code).not.toBe(0);
  expect(old.stderr).toMatch(/kubeVersion|incompatible/i);
  expect(helm(['template', RELEASE, chartDir, '--kube-version', '1.29.0'], VALUE_SETS.defaults).code).toBe(0);
  const images = render('defaults')
    .filter((o) => o.kind === 'Deployment')
    .map((o: Any) => o.spec.template.spec.containers[0].image);
  expect(images).toEqual([`tes-heartbeat:${APP_VERSION}`]);
});

describe('values.schema.json rejects bad values with a message naming the value', () => {
  test.each([
    ['an unknown key (typo)', { webhok: { enabled: true } }, /additional properties 'webhok'/],
    ['an unknown nested key', { webhook: { certmanager: { enabled: true } } }, /\/webhook.*certmanager/],
    ['a value outside an enum', { webhook: { failurePolicy: 'Never' } }, /\/webhook\/failurePolicy/],
    ['an unknown sidecar mode', { webhook: { sidecarMode: 'sometimes' } }, /\/webhook\/sidecarMode/],
    ['a wrong type', { rbac: { nodes: 'yes' } }, /\/rbac\/nodes/],
    ['a bare number as a duration', { heartbeat: { interval: '30' } }, /\/heartbeat\/interval/],
    ['a number as a duration', { heartbeat: { timeout: 10 } }, /\/heartbeat\/timeout/],
    ['a bad namespace name', { taskNamespaces: ['Task_NS'] }, /\/taskNamespaces\/0/],
    ['a repeated namespace', { taskNamespaces: ['a', 'a'] }, /\/taskNamespaces/],
    ['no task service account', { taskServiceAccounts: [] }, /\/taskServiceAccounts/],
    ['a negative retry count', { jobRetryCount: -1 }, /\/jobRetryCount/],
    ['a retry count that is no number', { jobRetryCount: 'sometimes' }, /\/jobRetryCount/],
    ['a TES URL that is not http(s)', { tes: { url: 'tes.example.org' } }, /\/tes\/url/],
    // null removes a default (as `--set sidecar.resources.limits=null` does).
    ['resources without limits', { sidecar: { resources: { limits: null } } }, /\/sidecar\/resources/],
    [
      'requests without memory',
      { webhook: { resources: { requests: { memory: null } } } },
      /\/webhook\/resources\/requests/,
    ],
    [
      'a malformed quantity',
      { sidecar: { resources: { limits: { cpu: 'lots', memory: '1Gi' } } } },
      /\/sidecar\/resources\/limits\/cpu/,
    ],
    ['an empty image repository', { image: { repository: '' } }, /\/image\/repository/],
    ['zero webhook replicas', { webhook: { replicas: 0 } }, /\/webhook\/replicas/],
    ['a bad log level', { logLevel: 'loud' }, /\/logLevel/],
    ['a CA bundle that is no PEM', { tes: { caBundle: 'corp-ca' } }, /\/tes\/caBundle/],
    ['a CA ConfigMap key with a slash', { tes: { caConfigMap: { key: 'a/b' } } }, /\/tes\/caConfigMap\/key/],
    ['asFile as a string', { tes: { tokenSecret: { asFile: 'yes' } } }, /\/tes\/tokenSecret\/asFile/],
    [
      'guaranteed resources without memory',
      { sidecar: { guaranteedResources: { memory: null } } },
      /\/sidecar\/guaranteedResources/,
    ],
    ['a uid as a string', { securityContext: { runAsUser: '65532' } }, /\/securityContext\/runAsUser/],
    ['events.enabled as a string', { events: { enabled: 'on' } }, /\/events\/enabled/],
    ['a bad priority class', { webhook: { priorityClassName: 'High_Prio' } }, /\/webhook\/priorityClassName/],
    ['a nodeSelector with a number', { emulator: { nodeSelector: { pool: 1 } } }, /\/emulator\/nodeSelector/],
    ['pod labels as a list', { webhook: { podLabels: ['a'] } }, /\/webhook\/podLabels/],
    ['tolerations as an object', { emulator: { tolerations: { key: 'a' } } }, /\/emulator\/tolerations/],
  ])('%s', (_desc, values, message) => {
    const result = helm(['template', RELEASE, chartDir], values as Values);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toMatch(message);
  });
});
