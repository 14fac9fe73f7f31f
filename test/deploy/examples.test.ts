// deploy/: the example Jobs and the kind configuration, validated like the chart's objects,
// and the explicit sidecars checked against the snippet the chart publishes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import {
  effectiveValues,
  FULLNAME,
  findOne,
  type K8sObject,
  parseManifests,
  RELEASE_NAMESPACE,
  renderChart,
  repoRoot,
} from '../support/helm-chart.ts';
import { podInvariantErrors, podSpecOf, validateObject } from '../support/k8s-schema-validate.ts';
import { restrictedViolations } from '../support/pod-security.ts';
import { admitServiceAccount } from '../support/serviceaccount-admission.ts';
import { reachableTokens } from '../support/webhook-helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked dynamically
type Any = any;

const examplesDir = path.join(repoRoot, 'deploy/examples');
const WITH_TES = { taskNamespaces: ['tes-tasks'], tes: { url: 'https://tes.example.org' } };
const exampleFiles = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));
const load = (file: string): K8sObject[] =>
  parseManifests(readFileSync(path.join(examplesDir, file), 'utf8'));
const podOf = (file: string): Any => podSpecOf(load(file)[0] as K8sObject);
const templateOf = (file: string): Any => (load(file)[0] as Any).spec.template;

/** The chart's published snippet with default values and a TES (the examples use the default image). */
function publishedSnippet(key: string): Any {
  const cm = findOne(renderChart(WITH_TES), 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
  return parse(cm.data[key]);
}

test('the four examples are there', () => {
  expect(exampleFiles.sort()).toEqual([
    'job-fleet.yaml',
    'job-injected.yaml',
    'job-native-sidecar.yaml',
    'job-regular-sidecar.yaml',
  ]);
});

describe.each(exampleFiles)('%s', (file) => {
  test('validates against the Kubernetes schemas, strictly', async () => {
    const objects = load(file);
    expect(objects.map((o) => o.kind)).toEqual(['Job']);
    expect((await Promise.all(objects.map(validateObject))).flat()).toEqual([]);
  });

  test('keeps the pod rules: native sidecar placement, downward-API quoting, resources, hardened securityContext', () => {
    expect(load(file).flatMap(podInvariantErrors)).toEqual([]);
  });

  test('passes Pod Security "restricted" (a task namespace may enforce it)', () => {
    expect(restrictedViolations({ spec: podOf(file) })).toEqual([]);
  });

  test('passes the run id and nonce as pod annotations and runs as the chart-bound service account', () => {
    const template = templateOf(file);
    expect(Object.keys(template.metadata.annotations).sort()).toEqual([
      'tes-heartbeat/nonce',
      'tes-heartbeat/run-id',
    ]);
    // Fleet mode has no account of ours in the task namespaces: the task gets no token at all.
    if (file === 'job-fleet.yaml') expect(template.spec.automountServiceAccountToken).toBe(false);
    else expect(template.spec.serviceAccountName).toBe('tes-heartbeat');
    expect(template.spec.restartPolicy).toBe('Never');
  });

  test('a task container never runs as the agent (rule T4: /proc of a process of the same uid is readable)', () => {
    const pod = podOf(file);
    const agentUid = effectiveValues({}).securityContext.runAsUser;
    for (const c of [...(pod.initContainers ?? []), ...pod.containers].filter(
      (c: Any) => c.name !== 'tes-heartbeat',
    ))
      expect(c.securityContext.runAsUser, c.name).not.toBe(agentUid);
  });
});

test("the hand-written sidecars carry volumes.yaml verbatim (the agent's own API token, rule T1)", () => {
  const published = publishedSnippet('volumes.yaml');
  for (const file of ['job-native-sidecar.yaml', 'job-regular-sidecar.yaml'])
    expect(podOf(file).volumes, file).toEqual(published);
});

test.each(['job-native-sidecar.yaml', 'job-regular-sidecar.yaml'])(
  'rule T1, %s: after the ServiceAccount plugin, the task reaches no API token and the agent its own',
  (file) => {
    const objects = renderChart(WITH_TES);
    const account = findOne(objects, 'ServiceAccount', 'tes-heartbeat', 'tes-tasks') as Any;
    const pod = admitServiceAccount(
      { metadata: { name: 'task' }, spec: podOf(file) },
      { name: 'tes-heartbeat', automountServiceAccountToken: account.automountServiceAccountToken },
    );
    expect(reachableTokens(pod, 'task')).toEqual([]);
    expect(reachableTokens(pod, 'tes-heartbeat')).toEqual(['tes-heartbeat-kube-api-access']);
  },
);

test("fleet example: the fleet label of the chart's default selector and the two annotations, nothing of ours", () => {
  const template = templateOf('job-fleet.yaml');
  const [key, value] = effectiveValues({}).fleet.selector.split('=');
  expect(template.metadata.labels[key]).toBe(value);
  expect(template.metadata.labels['tes-heartbeat/inject']).toBeUndefined();
  expect(template.spec.containers.map((c: Any) => c.name)).toEqual(['task']);
  expect(template.spec.initContainers).toBeUndefined();
  expect(template.spec.volumes).toBeUndefined();
});

test('native example: the agent is the first init container, restartPolicy Always, exactly the published native snippet', () => {
  const pod = podOf('job-native-sidecar.yaml');
  expect(pod.initContainers[0]).toEqual(publishedSnippet('native-sidecar.yaml'));
  expect(pod.containers.map((c: Any) => c.name)).toEqual(['task']);
});

test('regular example: the agent is a regular container without restartPolicy, exactly the published snippet', () => {
  const pod = podOf('job-regular-sidecar.yaml');
  expect(pod.initContainers).toBeUndefined();
  expect(pod.containers.map((c: Any) => c.name)).toEqual(['task', 'tes-heartbeat']);
  expect(pod.containers[1]).toEqual(publishedSnippet('sidecar.yaml'));
});

test('injection example: the label and two annotations, no agent of its own', () => {
  const template = templateOf('job-injected.yaml');
  expect(template.metadata.labels['tes-heartbeat/inject']).toBe('true');
  const names = [...(template.spec.initContainers ?? []), ...template.spec.containers].map(
    (c: Any) => c.name,
  );
  expect(names).toEqual(['task']);
  const explicit = templateOf('job-native-sidecar.yaml');
  expect(explicit.metadata.labels['tes-heartbeat/inject']).toBeUndefined();
});

test('the pod invariants catch what they claim to (a broken pod fails each check)', () => {
  const broken = load('job-regular-sidecar.yaml')[0] as Any;
  const agent = broken.spec.template.spec.containers[1];
  agent.restartPolicy = 'Always';
  agent.env[0].valueFrom.fieldRef.fieldPath = 'metadata.annotations["tes-heartbeat/run-id"]';
  agent.volumeMounts = [{ name: 'snippet', mountPath: '/etc/x/sidecar.yaml', subPath: 'sidecar.yaml' }];
  delete agent.resources.requests;
  agent.securityContext.readOnlyRootFilesystem = false;
  const errors = podInvariantErrors(broken).join('\n');
  for (const expected of [
    'restartPolicy',
    'single quotes',
    'subPath',
    'no cpu requests',
    'writable root filesystem',
  ]) {
    expect(errors).toContain(expected);
  }
});

test('every chart object with a pod keeps the same pod rules and passes Pod Security "restricted"', () => {
  const sets = [
    WITH_TES,
    { taskNamespaces: ['tes-tasks'], emulator: { enabled: true } },
    // Fleet mode: the DaemonSet, the Deployment and the uninstall hook's Job.
    { ...WITH_TES, mode: 'fleet', fleet: { finalizer: true } },
    {
      taskNamespaces: ['tes-tasks'],
      emulator: { enabled: true },
      mode: 'fleet',
      fleet: { scope: 'cluster' },
    },
    { ...WITH_TES, webhook: { certManager: { enabled: true } } },
    // Every optional volume and knob on, OpenShift ids.
    {
      taskNamespaces: ['tes-tasks'],
      tes: {
        url: 'https://tes.example.org',
        caBundle: readFileSync(path.join(repoRoot, 'test/fixtures/tls/ca.crt'), 'utf8'),
        tokenSecret: { name: 'tes-token', asFile: true },
      },
      securityContext: { runAsUser: null, runAsGroup: null },
      emulator: { enabled: true },
    },
  ];
  for (const values of sets) {
    const objects = renderChart(values);
    expect(objects.flatMap(podInvariantErrors)).toEqual([]);
    for (const o of objects.filter((o) => podSpecOf(o)))
      expect(restrictedViolations({ spec: podSpecOf(o) }), `${o.kind} ${o.metadata.name}`).toEqual([]);
  }
});

test('kind cluster config: one kind.x-k8s.io/v1alpha4 Cluster with a control-plane node', () => {
  const config = parse(readFileSync(path.join(repoRoot, 'deploy/kind/cluster.yaml'), 'utf8'));
  expect(config).toMatchObject({
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: 'tes-heartbeat',
  });
  expect(config.nodes.map((n: Any) => n.role)).toContain('control-plane');
});
