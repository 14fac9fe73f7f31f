// KUBECONFIG with kubectl's meaning, the same for the agent, the webhook and
// kube/api.ts: a list of files, missing ones skipped, merged with the first file
// winning, over HTTPS to the fake API server.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfigFiles, kubeconfigSetting } from '../../src/config/kubeconfig.ts';
import { Problem } from '../../src/config/settings.ts';
import { KubeApi } from '../../src/kube/api.ts';
import { type FakeKube, startFakeKube, testPod, testTls } from '../support/fake-kube-api.ts';

const call = { timeoutMs: 5_000 };
let kube: FakeKube;
let dir: string;

beforeAll(async () => {
  kube = await startFakeKube();
  kube.server.set('pods', testPod({ name: 'task-pod' }));
  dir = await mkdtemp(path.join(tmpdir(), 'kubeconfig-'));
});
afterAll(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

/** A kubeconfig file made of the given YAML sections. */
async function file(name: string, ...sections: string[]): Promise<string> {
  const where = path.join(dir, name);
  await writeFile(where, ['apiVersion: v1', 'kind: Config', ...sections, ''].join('\n'), { mode: 0o600 });
  return where;
}

const cluster = (name: string, server: string) =>
  [
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(testTls.ca).toString('base64')}`,
  ].join('\n');
const user = (name: string, token: string) =>
  ['users:', `- name: ${name}`, '  user:', `    token: ${token}`].join('\n');
const context = (name: string, clusterName: string, userName: string) =>
  ['contexts:', `- name: ${name}`, `  context: {cluster: ${clusterName}, user: ${userName}}`].join('\n');

const list = (...files: string[]) => files.join(path.delimiter);

async function podName(kubeconfig: string): Promise<string | undefined> {
  const api = KubeApi.load({ kubeconfig });
  try {
    return (await api.getPod('tasks', 'task-pod', call)).metadata?.name;
  } finally {
    await api.close();
  }
}

describe('KUBECONFIG as kubectl reads it', () => {
  it('merges a list of files: contexts from one, clusters and users from another', async () => {
    const contexts = await file('contexts', context('work', 'fake', 'me'), 'current-context: work');
    const credentials = await file(
      'credentials',
      cluster('fake', kube.server.url),
      user('me', kube.server.token),
    );
    expect(await podName(list(contexts, credentials))).toBe('task-pod');
  });

  it('the first file to name a cluster, a user or the current context wins (client-node would let the last win)', async () => {
    const good = await file(
      'good',
      cluster('fake', kube.server.url),
      user('me', kube.server.token),
      context('work', 'fake', 'me'),
      'current-context: work',
    );
    const shadowed = await file(
      'shadowed',
      cluster('fake', 'https://127.0.0.1:9'),
      user('me', 'wrong-token'),
      context('other', 'fake', 'me'),
      'current-context: other',
    );
    expect(await podName(list(good, shadowed))).toBe('task-pod');
    const api = KubeApi.load({ kubeconfig: list(good, shadowed) });
    expect(api.server).toBe(kube.server.url);
    await api.close();
  });

  it('skips files of the list that do not exist', async () => {
    expect(await podName(list(path.join(dir, 'absent'), kube.kubeconfigPath))).toBe('task-pod');
  });

  it.each([
    { desc: 'empty', value: '', want: [] },
    { desc: 'only separators', value: `${path.delimiter}${path.delimiter}`, want: [] },
  ])('an $desc value means unset', ({ value, want }) => {
    expect(kubeconfigFiles(value)).toStrictEqual(want);
    expect(kubeconfigSetting.parse(value)).toBeUndefined();
  });

  it('names each file once, in order', () => {
    const value = list(kube.kubeconfigPath, path.join(dir, 'absent'), kube.kubeconfigPath);
    expect(kubeconfigFiles(value)).toStrictEqual([kube.kubeconfigPath]);
    expect(kubeconfigSetting.parse(value)).toBe(value);
  });

  it.each([
    { desc: 'one missing file', files: ['/nonexistent/a'], message: 'cannot read /nonexistent/a: ENOENT' },
    {
      desc: 'no file of the list exists',
      files: ['/nonexistent/a', '/nonexistent/b'],
      message: 'none of /nonexistent/a, /nonexistent/b exists',
    },
  ])('$desc is a problem', ({ files, message }) => {
    expect(kubeconfigFiles(list(...files))).toStrictEqual(new Problem(message));
    expect(() => KubeApi.load({ kubeconfig: list(...files) })).toThrow(`KUBECONFIG: ${message}`);
  });

  it('a directory, or a file that exists but cannot be read, is a problem', async () => {
    const sub = path.join(dir, 'sub');
    await mkdir(sub, { recursive: true });
    expect(kubeconfigFiles(list(sub, kube.kubeconfigPath))).toStrictEqual(
      new Problem(`${sub} is a directory, not a kubeconfig file`),
    );
    if (process.getuid?.() === 0) return; // root reads any file
    const locked = await file('locked', 'clusters: []');
    await chmod(locked, 0o000);
    expect(kubeconfigFiles(locked)).toStrictEqual(new Problem(`cannot read ${locked}: EACCES`));
  });
});
