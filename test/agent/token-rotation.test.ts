// Rule T1, agent side: the built agent follows its API token file as it rotates. The
// kubeconfig's user reads a token file (kubectl's `tokenFile`); the file is rewritten
// with a new token and the old one revoked (its open watch ends, every request with it
// is a 401). The agent reads the file again at once on the 401 — not only when its copy
// is a minute old — so its pod watch resumes within seconds and a container change made
// after the rotation still reaches the TES.
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/server.ts';
import { stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus, startFakeKube, testPod } from '../support/fake-kube-api.ts';

const NS = 'tasks';
const TES_TOKEN = 'tes-secret-token-t1';
const after = stopAfterEach();

const pod = (main: object) =>
  testPod({
    name: 'task-pod',
    namespace: NS,
    containers: ['main', 'tes-heartbeat'],
    nodeName: 'node-1',
    status: {
      phase: 'Running',
      containerStatuses: [containerStatus('main', main), containerStatus('tes-heartbeat')],
    },
  });

it('a rotated token file: after a 401 the agent reads it again and its watch and reads go on with the new token', async () => {
  const emulator = await startEmulator({ token: TES_TOKEN });
  const kube = await startFakeKube();
  after.defer(
    () => emulator.close(),
    () => kube.close(),
  );
  const tokenFile = path.join(path.dirname(kube.kubeconfigPath), 'token');
  await writeFile(tokenFile, 'token-a\n');
  kube.server.addToken('token-a');
  const kubeconfig = await kube.kubeconfigFor({ tokenFile }, NS);
  const runId = emulator.store.create({ name: 'rotation' }).id as string;
  kube.server.set('pods', pod({ running: { startedAt: '2026-11-29T10:00:00Z' } }));

  const agent = after.agent({
    TES_URL: emulator.url,
    TES_RUN_ID: runId,
    TES_TOKEN,
    TES_ALLOW_HTTP: 'true',
    POD_NAME: 'task-pod',
    POD_NAMESPACE: NS,
    KUBECONFIG: kubeconfig,
    HEARTBEAT_INTERVAL: '1s',
    HEARTBEAT_MIN_GAP: '0s',
    HTTP_ADDR: 'off',
    EVENTS: 'off',
    LOG_LEVEL: 'debug',
  });
  await waitFor(() => emulator.heartbeats(runId).length >= 1, 10_000, 'first heartbeat');
  await waitFor(() => kube.server.openWatches === 1, 10_000, 'the pod watch');
  const tokens = () => new Set(kube.server.requests.map((r) => r.token));
  expect(tokens()).toEqual(new Set(['token-a']));

  // The kubelet's rotation: a new file swapped in, then the old token stops working.
  kube.server.addToken('token-b');
  await writeFile(`${tokenFile}.new`, 'token-b');
  await rename(`${tokenFile}.new`, tokenFile);
  const rotatedAt = kube.server.requests.length;
  kube.server.revokeToken('token-a');

  // Well within the minute after which the copy would be re-read anyway.
  await waitFor(() => kube.server.openWatches === 1, 8_000, 'the pod watch again, with the new token');
  kube.server.set(
    'pods',
    pod({
      terminated: {
        exitCode: 0,
        reason: 'Completed',
        startedAt: '2026-11-29T10:00:00Z',
        finishedAt: '2026-11-29T10:05:00Z',
      },
    }),
  );
  expect((await agent.exited).code).toBe(0);

  const last = emulator.heartbeats(runId).at(-1);
  expect(last?.containerStatus?.find((c) => c.name === 'main')?.state).toMatchObject({
    terminated: { exitCode: 0 },
  });
  const afterRotation = kube.server.requests.slice(rotatedAt);
  expect(afterRotation.filter((r) => r.token === 'token-b').length).toBeGreaterThan(0);
  // One 401 per call at most: each call with the old token was retried once with the new one.
  expect(afterRotation.filter((r) => r.token === 'token-a').length).toBeLessThanOrEqual(2);
});
