// Rule 16's pod refresh after SIGTERM, with the agent in this process on a fake clock: when
// its 2 s are up before the timer that says so has fired (a late timer, a GET failing just
// after the deadline), the refresh ends — it never sleeps a negative time. That negative sleep
// was issue 16's TimeoutNegativeWarning, printed by Node among the agent's JSON logs.
import { afterEach, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { loadAgentConfig } from '../../src/config/agent.ts';
import { createLogger } from '../../src/log.ts';
import { Secrets } from '../../src/secrets.ts';
import { FakeClock, settle, waitFor } from '../support/fake-clock.ts';
import { containerStatus, type FakeKube, startFakeKube, testPod } from '../support/fake-kube-api.ts';
import { FaultTes } from '../support/fault-tes.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('a pod read failing after the refresh’s deadline ends the refresh instead of sleeping a negative time', async () => {
  const tes = await new FaultTes().start();
  const kube: FakeKube = await startFakeKube();
  cleanups.push(
    () => tes.close(),
    () => kube.close(),
  );
  kube.server.set(
    'pods',
    testPod({
      name: 'task-pod',
      namespace: 'tasks',
      containers: ['main', 'tes-heartbeat'],
      status: {
        phase: 'Running',
        containerStatuses: ['main', 'tes-heartbeat'].map((n) => containerStatus(n)),
      },
    }),
  );
  const loaded = loadAgentConfig([], {
    TES_URL: tes.url,
    TES_RUN_ID: 'run-last-word',
    POD_NAME: 'task-pod',
    POD_NAMESPACE: 'tasks',
    KUBECONFIG: kube.kubeconfigPath,
    HTTP_ADDR: 'off',
    EVENTS: 'off',
    JOB_RETRY_COUNT: '0',
    HARDWARE_DETAILS: 'off',
  });
  if (loaded.kind !== 'ok') throw new Error(`settings: ${JSON.stringify(loaded)}`);
  const clock = new FakeClock();
  const log = await createLogger({ level: 'silent', format: 'json' }, { write: () => true });
  const agent = new Agent(loaded.config, { clock, log, secrets: new Secrets([]) });
  const done = agent.start();
  await waitFor(() => tes.requests.length > 0, 5_000, 'the first heartbeat');

  // The pod's GETs fail at once (a dropped connection), as against an API server going away.
  const podGet = { method: 'GET', path: '/api/v1/namespaces/tasks/pods/task-pod', watch: false };
  kube.server.failNext(podGet, 'drop', 1_000);
  const gets = () => kube.server.requests.filter((r) => r.method === 'GET' && r.path === podGet.path).length;
  agent.stop();
  // The refresh has taken its deadline (2 s from now) and sent its first GET; before that GET
  // fails, the clock runs past the deadline without the refresh's timer firing.
  await new Promise((resolve) => setImmediate(resolve));
  clock.stall(2_100);
  await waitFor(() => gets() >= 1, 5_000, 'the refresh reading the pod');
  await settle(20);

  expect(clock.requestedSleeps.filter((ms) => ms < 0)).toEqual([]);
  expect(gets()).toBe(1); // no more reads after the deadline
  await clock.advance(0); // the late timers fire (with a negative sleep, the refresh would loop until now)
  await waitFor(() => tes.requests.some((r) => r.body.lastHeartbeat === true), 5_000, 'the final heartbeat');
  // The exit's own short waits (connections closing) run on the fake clock too.
  let finished = false;
  void done.then(() => {
    finished = true;
  });
  for (let i = 0; i < 20 && !finished; i++) await clock.advance(1_000);
  await done;
});
