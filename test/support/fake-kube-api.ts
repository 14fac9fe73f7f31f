// The fake Kubernetes API server over HTTPS with the test CA, plus a kubeconfig file
// for it: what every test that needs "a cluster" starts.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeError } from '../../src/kube/api.ts';
import {
  FakeKubeApiServer,
  type FakeKubeApiOptions,
  type KubeconfigUser,
  type KubeObject,
} from '../../src/testing/fake-kube-api-server.ts';

export { FakeKubeApiServer };
export type {
  DeleteOptions,
  FakeKubeApiOptions,
  Failure,
  KubeconfigUser,
  KubeObject,
  KubeResource,
  RequestMatch,
  RequestRecord,
} from '../../src/testing/fake-kube-api-server.ts';

const tlsDir = path.join(import.meta.dirname, '..', 'fixtures', 'tls');

export const testTls = {
  cert: readFileSync(path.join(tlsDir, 'server.crt'), 'utf8'),
  key: readFileSync(path.join(tlsDir, 'server.key'), 'utf8'),
  ca: readFileSync(path.join(tlsDir, 'ca.crt'), 'utf8'),
};

export interface FakeKube {
  server: FakeKubeApiServer;
  /** A kubeconfig file for the server (CA data and bearer token inside). */
  kubeconfigPath: string;
  /**
   * Another kubeconfig file, for one more client with an identity of its own (each fleet
   * process of a test): a bearer token, accepted by the server from now on, or a token file.
   */
  kubeconfigFor(user: KubeconfigUser, namespace?: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts the fake API server on 127.0.0.1 with the test TLS material and writes its kubeconfig. */
export async function startFakeKube(options: Omit<FakeKubeApiOptions, 'tls'> = {}): Promise<FakeKube> {
  const server = await FakeKubeApiServer.start({ ...options, tls: testTls });
  const dir = await mkdtemp(path.join(tmpdir(), 'fake-kube-'));
  const kubeconfigPath = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfigPath, server.kubeconfig(), { mode: 0o600 });
  let written = 0;
  return {
    server,
    kubeconfigPath,
    async kubeconfigFor(user, namespace) {
      if (user.token !== undefined) server.addToken(user.token);
      const file = path.join(dir, `kubeconfig-${++written}`);
      await writeFile(file, server.kubeconfig(namespace, user), { mode: 0o600 });
      return file;
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal pod as the API returns it, with one container per name. */
export function testPod(options: {
  name?: string;
  namespace?: string;
  containers?: string[];
  nodeName?: string;
  owner?: { kind: string; name: string; apiVersion?: string };
  status?: KubeObject;
}): KubeObject {
  const containers = options.containers ?? ['main'];
  return {
    metadata: {
      name: options.name ?? 'task-pod',
      namespace: options.namespace ?? 'tasks',
      ...(options.owner && {
        ownerReferences: [
          {
            apiVersion: options.owner.apiVersion ?? 'batch/v1',
            kind: options.owner.kind,
            name: options.owner.name,
            uid: 'owner-uid',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      }),
    },
    spec: {
      restartPolicy: 'Never',
      ...(options.nodeName && { nodeName: options.nodeName }),
      containers: containers.map((name) => ({ name, image: 'busybox' })),
    },
    status: options.status ?? { phase: 'Pending' },
  };
}

export const RUNNING = { running: { startedAt: '2026-11-29T10:00:00Z' } };
export const COMPLETED = {
  terminated: {
    exitCode: 0,
    reason: 'Completed',
    startedAt: '2026-11-29T10:00:00Z',
    finishedAt: '2026-11-29T10:05:00Z',
  },
};

/** A container's status as the kubelet reports it. */
export function containerStatus(name: string, state: object = RUNNING): KubeObject {
  return { name, ready: true, restartCount: 0, image: 'busybox', imageID: '', state };
}

/** The KubeError a call must fail with (a test fails on a success or on another error). */
export async function kubeFailure(promise: Promise<unknown>): Promise<KubeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof KubeError)) {
    throw new Error(`expected a KubeError, got ${error === undefined ? 'a success' : String(error)}`);
  }
  return error;
}
