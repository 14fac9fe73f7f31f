// Test helpers for the webhook: AdmissionReview requests shaped as the API
// server sends them, an HTTPS client trusting the test CA, JSON Patch
// application with a real JSON Patch library, and the pod checks the API
// server would make (the Kubernetes schema plus the rules it enforces beyond it).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { Agent, request } from 'undici';
import pino from 'pino';
import { parseTemplate } from '../../src/webhook/template.ts';
import type { K8sObject } from './helm-chart.ts';
import { validateObject } from './k8s-schema-validate.ts';
import {
  admitServiceAccount,
  type ServiceAccount,
  SERVICE_ACCOUNT_MOUNT_PATH,
} from './serviceaccount-admission.ts';
import type { WebhookConfig } from '../../src/webhook/webhook.ts';

export const fixtures = path.join(import.meta.dirname, '..', 'fixtures');
export const tlsDir = path.join(fixtures, 'tls');
export const templateFile = path.join(fixtures, 'webhook/sidecar.yaml');
/** The built webhook's settings on the test certificate: native mode, any port, no listener (a test overrides). */
export const webhookEnv = {
  SIDECAR_TEMPLATE: templateFile,
  WEBHOOK_TLS_CERT: path.join(tlsDir, 'server.crt'),
  WEBHOOK_TLS_KEY: path.join(tlsDir, 'server.key'),
  SIDECAR_MODE: 'native',
  WEBHOOK_ADDR: '127.0.0.1:0',
  HTTP_ADDR: 'off',
};

export async function readTls(name: 'server' | 'server2' | 'ca') {
  const cert = await readFile(path.join(tlsDir, `${name}.crt`), 'utf8');
  const key = name === 'ca' ? '' : await readFile(path.join(tlsDir, `${name}.key`), 'utf8');
  return { cert, key };
}

export async function loadTemplate(): Promise<V1Container> {
  return parseTemplate(templateFile, await readFile(templateFile, 'utf8'));
}

export async function tempDir(prefix = 'webhook-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** A logger that drops everything (pino with level silent). */
export const silentLogger = pino({ level: 'silent' });

export async function webhookConfig(overrides: Partial<WebhookConfig> = {}): Promise<WebhookConfig> {
  return {
    template: { file: templateFile, container: await loadTemplate() },
    volumes: undefined,
    guaranteedResources: undefined,
    imagePullSecrets: undefined,
    taskServiceAccounts: ['tes-heartbeat'],
    sidecarMode: 'native',
    self: 'tes-heartbeat',
    kubeconfig: undefined,
    addr: { host: '127.0.0.1', port: 0 },
    tlsCert: path.join(tlsDir, 'server.crt'),
    tlsKey: path.join(tlsDir, 'server.key'),
    httpAddr: { host: '127.0.0.1', port: 0 },
    logLevel: 'silent',
    logFormat: 'json',
    ...overrides,
  };
}

let uids = 0;

export interface JobPodOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string> | undefined;
  serviceAccountName?: string;
  initContainers?: V1Container[];
  automountServiceAccountToken?: boolean;
  /**
   * The pod's ServiceAccount as the ServiceAccount plugin reads it. Default: the chart's
   * task account, `automountServiceAccountToken: false` (rule T1).
   */
  account?: Omit<ServiceAccount, 'name'>;
}

/**
 * A Job's pod as the API server hands it to a mutating webhook: after defaulting and
 * the ServiceAccount plugin (which mounts the pod's token only when the pod, else its
 * account, automounts), with `generateName` and no name, uid, creationTimestamp or namespace.
 */
export function jobPod(options: JobPodOptions = {}): V1Pod {
  const pod = jobPodAsCreated(options);
  return admitServiceAccount(pod, {
    name: pod.spec?.serviceAccountName ?? 'default',
    ...(options.account ?? { automountServiceAccountToken: false }),
  });
}

/** The same pod as the Job controller creates it, before any admission plugin ran. */
export function jobPodAsCreated(options: JobPodOptions = {}): V1Pod {
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'task-8f2c-',
      labels: {
        'batch.kubernetes.io/controller-uid': '5f6d4b2a-1c3e-4d5f-8a9b-0c1d2e3f4a5b',
        'batch.kubernetes.io/job-name': 'task-8f2c',
        'controller-uid': '5f6d4b2a-1c3e-4d5f-8a9b-0c1d2e3f4a5b',
        'job-name': 'task-8f2c',
        'tes-heartbeat/inject': 'true',
        ...options.labels,
      },
      ...(options.annotations !== undefined
        ? Object.keys(options.annotations).length > 0
          ? { annotations: options.annotations }
          : {}
        : { annotations: { 'tes-heartbeat/run-id': 'run-0001' } }),
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          name: 'task-8f2c',
          uid: '5f6d4b2a-1c3e-4d5f-8a9b-0c1d2e3f4a5b',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...(options.initContainers && { initContainers: options.initContainers }),
      containers: [
        {
          name: 'task',
          image: 'docker.io/library/busybox:1.36',
          command: ['sh', '-c', 'echo working; sleep 1'],
          resources: {},
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: options.serviceAccountName ?? 'tes-heartbeat',
      serviceAccount: options.serviceAccountName ?? 'tes-heartbeat',
      ...(options.automountServiceAccountToken !== undefined && {
        automountServiceAccountToken: options.automountServiceAccountToken,
      }),
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
  };
  return pod;
}

/** An AdmissionReview v1 request for `pod`: the namespace in the request only. */
export function admissionReview(
  pod: unknown,
  options: {
    operation?: string;
    namespace?: string;
    oldObject?: unknown;
    dryRun?: boolean;
    uid?: string;
  } = {},
) {
  const operation = options.operation ?? 'CREATE';
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: options.uid ?? `0b5c4f3e-9d2a-4c1b-8e7f-${String(++uids).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: options.namespace ?? 'tasks',
      operation,
      userInfo: {
        username: 'system:serviceaccount:kube-system:job-controller',
        uid: 'c1b2a3d4-0000-4000-8000-000000000001',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: pod,
      oldObject: options.oldObject ?? null,
      dryRun: options.dryRun ?? false,
      options: {
        kind: operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions',
        apiVersion: 'meta.k8s.io/v1',
      },
    },
  };
}

/** An HTTPS client trusting the test CA, with keep-alive. */
export async function httpsClient() {
  const ca = (await readTls('ca')).cert;
  return new Agent({ connect: { ca, servername: 'localhost' } });
}

/** An answer's JSON: an AdmissionReview, or `{ error }` for a refused request. */
export interface AnswerBody {
  apiVersion?: string;
  kind?: string;
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; warnings?: string[] };
  error?: string;
}

export interface ReviewAnswer {
  status: number;
  contentType: string | undefined;
  body: AnswerBody;
}

export async function post(
  dispatcher: Agent,
  port: number,
  body: string,
  pathAndQuery = '/mutate?timeout=5s',
  method = 'POST',
): Promise<ReviewAnswer> {
  const res = await request(`https://127.0.0.1:${port}${pathAndQuery}`, {
    method: method as 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
  });
  const text = await res.body.text();
  let parsed: AnswerBody;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`answer ${res.statusCode} is not JSON: ${text.slice(0, 200)}`);
  }
  return {
    status: res.statusCode,
    contentType: res.headers['content-type'] as string | undefined,
    body: parsed,
  };
}

export async function review(dispatcher: Agent, port: number, reviewBody: unknown): Promise<ReviewAnswer> {
  return post(dispatcher, port, JSON.stringify(reviewBody));
}

/** The JSON Patch of an answer, decoded, or undefined when the answer carries none. */
export function patchOf(answer: ReviewAnswer): fastJsonPatch.Operation[] | undefined {
  const response = answer.body.response;
  if (response.patch === undefined) {
    if (response.patchType !== undefined) throw new Error('patchType without patch');
    return undefined;
  }
  if (response.patchType !== 'JSONPatch') throw new Error(`patchType ${response.patchType}`);
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[];
}

/** Applies the answer's patch to `pod` with fast-json-patch (validating each operation). */
export function applyAnswer(pod: V1Pod, answer: ReviewAnswer): V1Pod {
  const patch = patchOf(answer);
  if (!patch) return structuredClone(pod);
  return fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
}

/**
 * Validates `pod` against the Kubernetes schema and field lists (test/k8s-schema-validate.ts:
 * kubernetes-models' OpenAPI schemas, unknown fields refused) and the API server's rules
 * for what the webhook touches: unique container names, `restartPolicy` only on init
 * containers and only `Always`, probes and lifecycle only on such sidecars among init
 * containers, volume names unique and every volumeMount naming one, pull secrets once,
 * downward-API annotation paths in single quotes. Throws with every problem.
 */
export async function validatePod(pod: V1Pod): Promise<void> {
  // A pod created from generateName has no name yet; the schema check wants one.
  const named = { ...pod, metadata: { name: 'task-8f2c-x7k2p', ...pod.metadata } };
  const schema = await validateObject(named as unknown as K8sObject);
  if (schema.length > 0) throw new Error(`invalid pod:\n${schema.join('\n')}`);
  const problems: string[] = [];
  const spec = pod.spec;
  if (!spec) throw new Error('pod without spec');
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const names = all.map((c) => c.name);
  if (new Set(names).size !== names.length) problems.push(`container names not unique: ${names.join(', ')}`);
  for (const c of spec.containers) {
    if (c.restartPolicy !== undefined) problems.push(`containers[${c.name}].restartPolicy: not allowed`);
  }
  for (const c of spec.initContainers ?? []) {
    if (c.restartPolicy !== undefined && c.restartPolicy !== 'Always') {
      problems.push(`initContainers[${c.name}].restartPolicy: only Always`);
    }
    if (
      c.restartPolicy !== 'Always' &&
      (c.livenessProbe || c.readinessProbe || c.startupProbe || c.lifecycle)
    ) {
      problems.push(`initContainers[${c.name}]: probes and lifecycle only on restartable init containers`);
    }
  }
  // Volumes once each (the API server refuses duplicates), every mount resolving to one.
  const volumes = (spec.volumes ?? []).map((v) => v.name);
  if (new Set(volumes).size !== volumes.length)
    problems.push(`volume names not unique: ${volumes.join(', ')}`);
  for (const c of all) {
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.includes(m.name)) problems.push(`${c.name}: volumeMount ${m.name} has no volume`);
    }
  }
  const pullSecrets = (spec.imagePullSecrets ?? []).map((s) => s.name);
  if (new Set(pullSecrets).size !== pullSecrets.length)
    problems.push(`imagePullSecrets repeated: ${pullSecrets.join(', ')}`);
  for (const c of all) {
    for (const e of c.env ?? []) {
      const fieldPath = e.valueFrom?.fieldRef?.fieldPath;
      if (
        fieldPath?.startsWith('metadata.annotations') &&
        !/^metadata\.annotations\['[^'"]+'\]$/.test(fieldPath)
      ) {
        problems.push(`${c.name}: env ${e.name}: bad fieldPath ${fieldPath}`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`invalid pod:\n${problems.join('\n')}`);
}

/**
 * Writes `files` into `dir` the way the kubelet updates a Secret or ConfigMap
 * volume: a fresh timestamped directory, then an atomic swap of the `..data`
 * symlink the visible names point through.
 */
export async function kubeletWrite(dir: string, files: Record<string, string>): Promise<void> {
  const { mkdir, rename, symlink, writeFile, lstat } = await import('node:fs/promises');
  const version = `..${Date.now()}_${Math.random().toString(36).slice(2)}`;
  await mkdir(path.join(dir, version));
  for (const [name, content] of Object.entries(files))
    await writeFile(path.join(dir, version, name), content);
  await symlink(version, path.join(dir, '..data_tmp'));
  await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const name of Object.keys(files)) {
    const exists = await lstat(path.join(dir, name)).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(path.join('..data', name), path.join(dir, name));
  }
}

/** The serial number of the certificate a TLS server presents for `localhost`. */
export async function servedSerial(port: number): Promise<string> {
  const { connect } = await import('node:tls');
  const ca = (await readTls('ca')).cert;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

/**
 * The API tokens a container of `pod` can read, by the volume (or `env:<secret>`) that holds
 * each: a volume it mounts with a projected serviceAccountToken source, or a Secret volume or
 * projection, or env, naming one of `tokenSecrets` (legacy `kubernetes.io/service-account-token`
 * Secrets). With `shareProcessNamespace`, also what every other container running as the same
 * user holds (readable through /proc/<pid>/root and environ). A container's user is its own
 * runAsUser, else the pod's, else its image's (`imageUsers`, by container name); a user
 * nobody knows may be anyone's, so it counts as the same.
 */
export function reachableTokens(
  pod: V1Pod,
  containerName: string,
  options: { tokenSecrets?: ReadonlySet<string>; imageUsers?: Record<string, number> } = {},
): string[] {
  const tokenSecrets = options.tokenSecrets ?? new Set<string>();
  const spec = pod.spec;
  if (!spec) return [];
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const self = all.find((c) => c.name === containerName);
  if (!self) throw new Error(`no container ${containerName}`);
  const uid = (c: V1Container) =>
    c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser ?? options.imageUsers?.[c.name];
  const sameUser = (a: V1Container, b: V1Container) =>
    uid(a) === undefined || uid(b) === undefined || uid(a) === uid(b);
  const readers =
    spec.shareProcessNamespace === true ? all.filter((c) => c === self || sameUser(c, self)) : [self];
  const holdsToken = (volume: V1Volume | undefined) =>
    volume !== undefined &&
    ((volume.secret?.secretName !== undefined && tokenSecrets.has(volume.secret.secretName)) ||
      (volume.projected?.sources ?? []).some(
        (s) =>
          s.serviceAccountToken !== undefined ||
          (s.secret?.name !== undefined && tokenSecrets.has(s.secret.name)),
      ));
  const found = new Set<string>();
  for (const c of readers) {
    for (const m of c.volumeMounts ?? []) {
      if (holdsToken(spec.volumes?.find((v) => v.name === m.name))) found.add(m.name);
    }
    for (const e of c.env ?? []) {
      const secret = e.valueFrom?.secretKeyRef?.name;
      if (secret !== undefined && tokenSecrets.has(secret)) found.add(`env:${secret}`);
    }
    for (const e of c.envFrom ?? []) {
      const secret = e.secretRef?.name;
      if (secret !== undefined && tokenSecrets.has(secret)) found.add(`env:${secret}`);
    }
  }
  return [...found].sort();
}

/** The containers of `pod` mounting something at the well-known token path, and what. */
export function tokenPathMounts(pod: V1Pod): Record<string, string> {
  const spec = pod.spec;
  const out: Record<string, string> = {};
  for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
    const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH);
    if (mount) out[c.name] = mount.name;
  }
  return out;
}

/**
 * One TLS handshake with the webhook offering only what `options` allow (ciphers, versions):
 * the protocol and suite agreed, or the error that refused it.
 */
export async function handshake(
  port: number,
  options: import('node:tls').ConnectionOptions,
): Promise<{ protocol: string | null; cipher: string } | Error> {
  const { connect } = await import('node:tls');
  const ca = (await readTls('ca')).cert;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options }, () => {
      const agreed = { protocol: socket.getProtocol(), cipher: socket.getCipher().name };
      socket.end();
      resolve(agreed);
    });
    socket.on('error', (error) => resolve(error));
  });
}

export interface OversizedSend {
  /** Bytes of the body the client managed to hand to its socket before the server closed it. */
  written: number;
  /** Whether every byte of the body was written before the connection closed. */
  finished: boolean;
  /** What the server answered, as raw HTTP. */
  answer: string;
}

/**
 * POSTs a body of `total` bytes to /mutate in `chunk`-sized pieces (chunked transfer encoding,
 * so the server learns the size only by reading), waiting for the socket to drain between
 * pieces as a real client does, until all is written or the server closes the connection.
 */
export async function sendOversized(port: number, total: number, chunk = 64 * 1024): Promise<OversizedSend> {
  const { connect } = await import('node:tls');
  const ca = (await readTls('ca')).cert;
  const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  let answer = '';
  let closed = false;
  socket.on('data', (d: Buffer) => {
    answer += d.toString('latin1');
  });
  socket.on('error', () => {});
  const done = new Promise<void>((resolve) =>
    socket.on('close', () => {
      closed = true;
      resolve();
    }),
  );
  socket.write(
    'POST /mutate?timeout=5s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
  );
  const piece = Buffer.concat([
    Buffer.from(`${chunk.toString(16)}\r\n`),
    Buffer.alloc(chunk, 0x20),
    Buffer.from('\r\n'),
  ]);
  let written = 0;
  while (written < total && !closed) {
    const more = socket.write(piece);
    written += chunk;
    if (!more) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), done]);
    }
  }
  const finished = written >= total && !closed;
  if (finished) socket.end('0\r\n\r\n');
  await done;
  return { written: Math.min(written, total), finished, answer };
}
