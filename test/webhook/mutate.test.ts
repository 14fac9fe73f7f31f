// The pure part of injection: pod → JSON Patch, with no HTTP (as vault-k8s tests Mutate).
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeReview, encodeResponse } from '../../src/webhook/handler.ts';
import { chooseMode, parseKubeVersion } from '../../src/webhook/mode.ts';
import {
  type AdmissionRequestV1,
  type MutateOptions,
  mutatePod,
  type NonceSource,
  sidecarContainer,
} from '../../src/webhook/mutate.ts';
import {
  AGENT_TOKEN_VOLUME,
  agentTokenVolume,
  OWN_TOKEN_WARNING,
  SERVICE_ACCOUNT_MOUNT_PATH,
  withAgentToken,
  withAgentTokenVolume,
} from '../../src/webhook/token.ts';
import { MAX_WARNING_LENGTH } from '../../src/webhook/warning.ts';
import { parseTemplate, TemplateError } from '../../src/webhook/template.ts';
import { pluginTokenVolume } from '../support/serviceaccount-admission.ts';
import { admissionReview, jobPod, loadTemplate, validatePod } from '../support/webhook-helpers.ts';

const ANNOTATION: NonceSource = { from: 'annotation' };
const NONE: NonceSource = { from: 'none' };

let template: V1Container;
beforeAll(async () => {
  template = await loadTemplate();
});

const options = (overrides: Partial<MutateOptions> = {}): MutateOptions => ({
  template,
  mode: 'native',
  selfName: 'tes-heartbeat',
  taskServiceAccounts: ['tes-heartbeat'],
  ...overrides,
});

const requestFor = (pod: unknown, extra: Partial<AdmissionRequestV1> = {}): AdmissionRequestV1 => ({
  ...(admissionReview(pod).request as unknown as AdmissionRequestV1),
  ...extra,
});

function apply(pod: V1Pod, patch: fastJsonPatch.Operation[] | undefined): V1Pod {
  return patch ? fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument : pod;
}

describe('sidecarContainer', () => {
  it('forces the name and sets restartPolicy Always in native mode', () => {
    const c = sidecarContainer({ ...template, restartPolicy: 'OnFailure' }, 'native', 'agent-x', ANNOTATION);
    expect(c.name).toBe('agent-x');
    expect(c.restartPolicy).toBe('Always');
  });

  it('removes restartPolicy in regular mode, even when the template has one', () => {
    const c = sidecarContainer(
      { ...template, restartPolicy: 'Always' },
      'regular',
      'tes-heartbeat',
      ANNOTATION,
    );
    expect(c).not.toHaveProperty('restartPolicy');
  });

  it('adds the four downward-API variables after the template env, TES_NONCE only with a nonce', () => {
    const withNonce = sidecarContainer(template, 'native', 'tes-heartbeat', ANNOTATION);
    expect(withNonce.env?.map((e) => e.name)).toEqual([
      'TES_TOKEN',
      'TES_RUN_ID',
      'TES_NONCE',
      'POD_NAME',
      'POD_NAMESPACE',
    ]);
    expect(withNonce.env?.slice(1).map((e) => e.valueFrom?.fieldRef?.fieldPath)).toEqual([
      "metadata.annotations['tes-heartbeat/run-id']",
      "metadata.annotations['tes-heartbeat/nonce']",
      'metadata.name',
      'metadata.namespace',
    ]);
    const withoutNonce = sidecarContainer(template, 'native', 'tes-heartbeat', NONE);
    expect(withoutNonce.env?.map((e) => e.name)).not.toContain('TES_NONCE');
  });

  it('keeps variables the template already sets, unchanged', () => {
    const own = {
      ...template,
      env: [
        { name: 'POD_NAME', value: 'fixed' },
        { name: 'TES_NONCE', value: 'n' },
      ],
    };
    const c = sidecarContainer(own, 'regular', 'tes-heartbeat', NONE);
    expect(c.env?.filter((e) => e.name === 'POD_NAME')).toEqual([{ name: 'POD_NAME', value: 'fixed' }]);
    expect(c.env?.filter((e) => e.name === 'TES_NONCE')).toEqual([{ name: 'TES_NONCE', value: 'n' }]);
    expect(c.env?.map((e) => e.name)).toEqual(['POD_NAME', 'TES_NONCE', 'TES_RUN_ID', 'POD_NAMESPACE']);
  });

  it('does not modify the template', () => {
    const before = structuredClone(template);
    sidecarContainer(template, 'native', 'tes-heartbeat', ANNOTATION);
    expect(template).toEqual(before);
  });
});

describe('mutatePod', () => {
  const cases: {
    desc: string;
    pod: () => V1Pod;
    extra?: Partial<AdmissionRequestV1>;
    result: string;
    warns?: RegExp;
  }[] = [
    { desc: 'labelled Job pod', pod: () => jobPod(), result: 'injected' },
    { desc: 'no label', pod: () => jobPod({ labels: { 'tes-heartbeat/inject': 'yes' } }), result: 'skipped' },
    {
      desc: 'label removed entirely',
      pod: () => {
        const p = jobPod();
        delete p.metadata?.labels?.['tes-heartbeat/inject'];
        return p;
      },
      result: 'skipped',
    },
    { desc: 'UPDATE', pod: () => jobPod(), extra: { operation: 'UPDATE' }, result: 'skipped' },
    { desc: 'DELETE', pod: () => jobPod(), extra: { operation: 'DELETE' }, result: 'skipped' },
    {
      desc: 'agent already an init container',
      pod: () => jobPod({ initContainers: [{ name: 'tes-heartbeat', image: 'x' }] }),
      result: 'skipped',
    },
    {
      desc: 'agent already a container',
      pod: () => {
        const p = jobPod();
        p.spec?.containers.push({ name: 'tes-heartbeat', image: 'x' });
        return p;
      },
      result: 'skipped',
    },
    {
      desc: 'no annotations at all',
      pod: () => jobPod({ annotations: {} }),
      result: 'skipped',
      warns: /run-id/,
    },
    {
      desc: 'empty run id',
      pod: () => jobPod({ annotations: { 'tes-heartbeat/run-id': '' } }),
      result: 'skipped',
      warns: /no tes-heartbeat\/run-id annotation/,
    },
    {
      desc: 'not a pod',
      pod: () => jobPod(),
      extra: { kind: { group: 'batch', version: 'v1', kind: 'Job' } },
      result: 'error',
      warns: /batch\/Job, not a Pod/,
    },
    {
      desc: 'no object',
      pod: () => jobPod(),
      extra: { object: null },
      result: 'error',
      warns: /no pod object/,
    },
    {
      desc: 'containers not a list',
      pod: () => jobPod(),
      extra: {
        object: { metadata: { labels: { 'tes-heartbeat/inject': 'true' } }, spec: { containers: 'x' } },
      },
      result: 'error',
      warns: /spec.containers/,
    },
    {
      desc: 'labels not a map',
      pod: () => jobPod(),
      extra: { object: { metadata: { labels: ['x'] }, spec: { containers: [] } } },
      result: 'error',
      warns: /labels/,
    },
  ];
  for (const c of cases) {
    it(`${c.desc} → ${c.result}`, () => {
      const out = mutatePod(requestFor(c.pod(), c.extra), options());
      expect(out.result).toBe(c.result);
      expect(out.patch === undefined).toBe(c.result !== 'injected');
      if (c.warns) expect(out.warnings.join('\n')).toMatch(c.warns);
      else if (c.result !== 'injected') expect(out.warnings).toEqual([]);
    });
  }

  it('native: creates initContainers when the pod has none', async () => {
    const pod = jobPod();
    const out = mutatePod(requestFor(pod), options());
    expect(out.patch).toEqual([
      { op: 'add', path: '/spec/initContainers', value: [expect.any(Object)] },
      { op: 'add', path: '/spec/volumes', value: [expect.objectContaining({ name: AGENT_TOKEN_VOLUME })] },
    ]);
    const patched = apply(pod, out.patch as fastJsonPatch.Operation[]);
    await validatePod(patched);
    expect(patched.spec?.initContainers?.map((c) => c.name)).toEqual(['tes-heartbeat']);
  });

  it('native: puts the agent first among existing init containers', async () => {
    const pod = jobPod({ initContainers: [{ name: 'fetch-inputs', image: 'busybox' }] });
    const out = mutatePod(requestFor(pod), options());
    expect(out.patch?.[0]?.path).toBe('/spec/initContainers/0');
    const patched = apply(pod, out.patch as fastJsonPatch.Operation[]);
    await validatePod(patched);
    expect(patched.spec?.initContainers?.map((c) => c.name)).toEqual(['tes-heartbeat', 'fetch-inputs']);
  });

  it('native: an initContainers null is treated as absent', () => {
    const pod = { ...jobPod(), spec: { ...jobPod().spec, initContainers: null } };
    const out = mutatePod(requestFor(pod), options());
    expect(out.patch?.[0]?.path).toBe('/spec/initContainers');
    const patched = apply(pod as unknown as V1Pod, out.patch as fastJsonPatch.Operation[]);
    expect(patched.spec?.initContainers?.length).toBe(1);
  });

  it('regular: appends the agent after the task containers', async () => {
    const pod = jobPod({ initContainers: [{ name: 'fetch-inputs', image: 'busybox' }] });
    const out = mutatePod(requestFor(pod), options({ mode: 'regular' }));
    expect(out.patch).toEqual([
      { op: 'add', path: '/spec/containers/-', value: expect.any(Object) },
      { op: 'add', path: '/spec/volumes', value: [expect.objectContaining({ name: AGENT_TOKEN_VOLUME })] },
    ]);
    const patched = apply(pod, out.patch as fastJsonPatch.Operation[]);
    await validatePod(patched);
    expect(patched.spec?.containers.map((c) => c.name)).toEqual(['task', 'tes-heartbeat']);
    expect(patched.spec?.initContainers?.map((c) => c.name)).toEqual(['fetch-inputs']);
  });

  it('warns about an unbound service account, naming it and the namespace of the request', () => {
    const out = mutatePod(requestFor(jobPod({ serviceAccountName: 'pipeline-runner' })), options());
    expect(out.result).toBe('injected');
    expect(out.warnings).toHaveLength(1);
    expect(out.warnings[0]).toMatch(/service account 'pipeline-runner' in namespace 'tasks'/);
  });

  it('treats a pod without serviceAccountName as running under default', () => {
    const pod = jobPod();
    delete pod.spec?.serviceAccountName;
    delete pod.spec?.serviceAccount;
    const out = mutatePod(requestFor(pod), options());
    expect(out.warnings.join()).toMatch(/'default'/);
    expect(mutatePod(requestFor(pod), options({ taskServiceAccounts: ['default'] })).warnings).toEqual([]);
  });

  it('does not warn when the pod turns off the service-account token: the agent brings its own (T1)', () => {
    const out = mutatePod(requestFor(jobPod({ automountServiceAccountToken: false })), options());
    expect(out.result).toBe('injected');
    expect(out.warnings).toEqual([]);
  });

  it('keeps every warning to one line of at most 256 characters', () => {
    const name = `sa-${'x'.repeat(300)}\nsecond-line`;
    const out = mutatePod(requestFor(jobPod({ serviceAccountName: name })), options());
    expect(out.warnings[0]?.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
    expect(out.warnings[0]).not.toMatch(/\n/);
  });

  it('answers dryRun reviews like any other', () => {
    expect(mutatePod(requestFor(jobPod(), { dryRun: true }), options()).result).toBe('injected');
  });

  it('applied twice changes nothing the second time (reinvocation)', () => {
    const pod = jobPod();
    const once = apply(pod, mutatePod(requestFor(pod), options()).patch as fastJsonPatch.Operation[]);
    const second = mutatePod(requestFor(once), options());
    expect(second).toEqual({ result: 'skipped', warnings: [] });
  });
});

describe('decodeReview / encodeResponse', () => {
  it('reads a v1 review and refuses what has no uid', () => {
    expect(decodeReview(JSON.stringify(admissionReview(jobPod()))).kind).toBe('request');
    expect(decodeReview('not json')).toMatchObject({ kind: 'invalid' });
    expect(decodeReview('[]')).toMatchObject({ kind: 'invalid' });
    expect(decodeReview('{"request":{"uid":""}}')).toMatchObject({ kind: 'invalid' });
  });

  it('answers other versions by uid, as undecodable', () => {
    const v1beta1 = { ...admissionReview(jobPod()), apiVersion: 'admission.k8s.io/v1beta1' };
    expect(decodeReview(JSON.stringify(v1beta1))).toMatchObject({
      kind: 'undecodable',
      uid: v1beta1.request.uid,
    });
    const noOp = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u' } };
    expect(decodeReview(JSON.stringify(noOp))).toMatchObject({ kind: 'undecodable', uid: 'u' });
  });

  it('sets patchType only with a patch', () => {
    expect(encodeResponse('u', { warnings: [] }).response).toEqual({ uid: 'u', allowed: true });
    const patched = encodeResponse('u', { patch: [{ op: 'remove', path: '/x' }], warnings: ['w'] }).response;
    expect(patched.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(patched.patch as string, 'base64').toString())).toEqual([
      { op: 'remove', path: '/x' },
    ]);
    expect(patched.warnings).toEqual(['w']);
  });
});

describe('sidecar mode', () => {
  it.each([
    ['v1.29.0', { major: 1, minor: 29 }],
    ['v1.28.15-eks-a1b2c3d', { major: 1, minor: 28 }],
    ['v1.31.2+k3s1', { major: 1, minor: 31 }],
    ['1.30', { major: 1, minor: 30 }],
    ['', undefined],
    ['garbage', undefined],
  ])('parses %j', (text, expected) => {
    expect(parseKubeVersion(text)).toEqual(expected);
  });

  it.each([
    { desc: 'all new', server: 'v1.30.1', kubelets: ['v1.30.1', 'v1.29.0'], mode: 'native' },
    { desc: 'no nodes', server: 'v1.29.0', kubelets: [], mode: 'native' },
    { desc: 'one old kubelet', server: 'v1.30.1', kubelets: ['v1.30.1', 'v1.28.15-eks-1'], mode: 'regular' },
    { desc: 'old API server', server: 'v1.28.9', kubelets: ['v1.30.1'], mode: 'regular' },
    { desc: 'unknown API server', server: undefined, kubelets: ['v1.30.1'], mode: 'regular' },
    { desc: 'unreadable kubelet', server: 'v1.30.1', kubelets: [''], mode: 'regular' },
    { desc: 'major 2', server: 'v2.0.0', kubelets: ['v2.1.0'], mode: 'native' },
  ])('$desc → $mode', ({ server, kubelets, mode }) => {
    expect(chooseMode(server, kubelets)).toBe(mode);
  });
});

describe('parseTemplate', () => {
  it('reads JSON and YAML alike', () => {
    expect(parseTemplate('t.json', '{"image":"x","name":"a"}')).toEqual({ image: 'x', name: 'a' });
    expect(parseTemplate('t.yaml', 'image: x\n')).toEqual({ image: 'x', name: '' });
  });

  it.each([
    ['image: [unclosed', /not YAML or JSON/],
    ['- a\n- b\n', /does not hold a Container/],
    ['name: a\n', /no image/],
    ['image: x\nenv: {}\n', /env is not a list/],
    ['image: x\nenv: [{value: a}]\n', /env entries need a name/],
  ])('refuses %j', (text, message) => {
    expect(() => parseTemplate('t.yaml', text)).toThrow(TemplateError);
    expect(() => parseTemplate('t.yaml', text)).toThrow(message);
  });
});

describe("the agent's own token (T1)", () => {
  const mount = { name: AGENT_TOKEN_VOLUME, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true };
  const ca = { name: 'tes-heartbeat-tes-ca', mountPath: '/etc/tes-heartbeat/tes-ca', readOnly: true };

  it.each([
    { desc: 'no mounts', mounts: undefined, expected: [mount] },
    { desc: 'other mounts', mounts: [ca], expected: [ca, mount] },
    { desc: "the chart's mount first", mounts: [mount, ca], expected: [mount, ca] },
    {
      desc: 'something else at the token path',
      mounts: [ca, { name: 'kube-api-access-abcde', mountPath: SERVICE_ACCOUNT_MOUNT_PATH }],
      expected: [ca, mount],
    },
    {
      desc: 'our volume mounted elsewhere',
      mounts: [{ name: AGENT_TOKEN_VOLUME, mountPath: '/x' }],
      expected: [mount],
    },
  ])('mounts the token read-only at the path, once: $desc', ({ mounts, expected }) => {
    const container = withAgentToken({ name: 'a', image: 'x', ...(mounts && { volumeMounts: mounts }) });
    expect(container.volumeMounts).toEqual(expected);
  });

  it('adds the volume to SIDECAR_VOLUMES, or puts it in place of a same-named one', () => {
    const caVolume = { name: 'tes-heartbeat-tes-ca', configMap: { name: 'ca' } };
    expect(withAgentTokenVolume([])).toEqual([agentTokenVolume()]);
    expect(withAgentTokenVolume([caVolume])).toEqual([caVolume, agentTokenVolume()]);
    const stale = { name: AGENT_TOKEN_VOLUME, projected: { sources: [] } };
    expect(withAgentTokenVolume([stale, caVolume, stale])).toEqual([agentTokenVolume(), caVolume]);
  });

  it('is the ServiceAccount plugin volume under another name: no audience, 3607 s, CA and namespace', () => {
    const { name, ...source } = agentTokenVolume();
    const { name: _, ...plugin } = pluginTokenVolume('kube-api-access-abcde');
    expect(name).toBe('tes-heartbeat-kube-api-access');
    // The plugin takes the first volume named kube-api-access-* for the pod's own: never ours.
    expect(name.startsWith('kube-api-access-')).toBe(false);
    expect(source).toEqual(plugin);
  });

  it.each([
    { desc: 'nothing of its own', pod: () => jobPod(), holds: false },
    {
      desc: 'automountServiceAccountToken: true',
      pod: () => jobPod({ automountServiceAccountToken: true }),
      holds: true,
    },
    { desc: 'its account automounts', pod: () => jobPod({ account: {} }), holds: true },
    {
      desc: 'a token mount of its own in a task container',
      pod: () => {
        const p = jobPod();
        const [task] = p.spec?.containers ?? [];
        if (task) task.volumeMounts = [{ name: 'own', mountPath: SERVICE_ACCOUNT_MOUNT_PATH }];
        return p;
      },
      holds: true,
    },
  ])('warns that the tasks can read every pod when the pod holds its own token: $desc', ({ pod, holds }) => {
    const out = mutatePod(requestFor(pod()), options());
    expect(out.result).toBe('injected');
    expect(out.warnings).toEqual(holds ? [OWN_TOKEN_WARNING] : []);
    expect(OWN_TOKEN_WARNING.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
  });
});
