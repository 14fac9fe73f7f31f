// Rule T1 in KubeApi: a kubeconfig user's `tokenFile` (kubectl's field, which
// client-node ignores) is read, read again once its copy is a minute old, and at once
// after a 401 — the call then made once more with the new token, never in a loop.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { KubeApi, KubeError } from '../../src/kube/api.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { type FakeKube, startFakeKube, testPod } from '../support/fake-kube-api.ts';

const NS = 'tasks';
const call = { timeoutMs: 5_000 };
let kube: FakeKube;
let api: KubeApi | undefined;
let tokenFile: string;
let clock: FakeClock;

beforeEach(async () => {
  kube = await startFakeKube();
  kube.server.set('pods', testPod({ name: 'task-pod', namespace: NS }));
  kube.server.addToken('token-a');
  kube.server.addToken('token-b');
  // A relative `tokenFile` is resolved against the kubeconfig's own directory.
  const dir = path.join(path.dirname(kube.kubeconfigPath), 'sa');
  await mkdir(dir);
  tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, 'token-a\n');
  clock = new FakeClock();
  api = KubeApi.load({ kubeconfig: await kube.kubeconfigFor({ tokenFile: 'sa/token' }), clock });
});
afterEach(async () => {
  await api?.close();
  await kube.close();
});

const tokensSent = () => kube.server.requests.map((r) => r.token);

it('reads the token file, and again once its copy is a minute old', async () => {
  await api?.getPod(NS, 'task-pod', call);
  await writeFile(tokenFile, 'token-b');
  await clock.advance(59_000);
  await api?.getPod(NS, 'task-pod', call);
  await clock.advance(1_000);
  await api?.getPod(NS, 'task-pod', call);
  expect(tokensSent()).toEqual(['token-a', 'token-a', 'token-b']);
});

it('a 401 makes it read the file at once and make the call once more with the new token', async () => {
  await api?.getPod(NS, 'task-pod', call);
  await writeFile(tokenFile, 'token-b');
  kube.server.revokeToken('token-a');
  const pod = await api?.getPod(NS, 'task-pod', call);
  expect(pod?.metadata?.name).toBe('task-pod');
  expect(tokensSent()).toEqual(['token-a', 'token-a', 'token-b']);
});

it('a 401 while the file still holds the refused token is the error, without a second try', async () => {
  kube.server.revokeToken('token-a');
  const error = await api?.getPod(NS, 'task-pod', call).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KubeError);
  expect(error).toMatchObject({ status: 401, message: expect.not.stringContaining('token-a') });
  expect(tokensSent()).toEqual(['token-a']);
});
