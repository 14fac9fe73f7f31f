// Rule T7 through the chart: the built emulator started with the rendered Deployment's args and
// env (EMULATOR_TOKEN resolved from the chart's Secret, as the kubelet would) refuses calls
// without the token and accepts the token the chart copied into the task namespaces for the
// agents. Only the listening address is the test's (loopback, a free port).
import { expect, test } from 'vitest';
import { startCli, stopAfterEach } from '../support/agent-harness.ts';
import { send } from '../support/emulator-http.ts';
import { FULLNAME, findOne, RELEASE_NAMESPACE, renderChart } from '../support/helm-chart.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const stops = stopAfterEach();

test("the chart's emulator requires its token, and the agents' Secret in each task namespace holds it", async () => {
  const objects = renderChart({ taskNamespaces: ['tasks', 'imaging'], emulator: { enabled: true } });
  const secretValue = (name: string, namespace: string) =>
    Buffer.from((findOne(objects, 'Secret', name, namespace) as Any).data.token, 'base64').toString();
  const container = (findOne(objects, 'Deployment', `${FULLNAME}-emulator`, RELEASE_NAMESPACE) as Any).spec
    .template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const e of container.env as Any[]) {
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = e.value ?? secretValue(ref.name, RELEASE_NAMESPACE);
  }
  const [command, ...args] = container.args as string[];
  expect(command).toBe('emulator');
  const listen = args.map((a, i) =>
    args[i - 1] === '--host' ? '127.0.0.1' : args[i - 1] === '--port' ? '0' : a,
  );
  expect(listen).not.toEqual(args); // the chart's --host and --port, replaced
  const emulator = startCli('emulator', env, listen);
  stops.defer(async () => {
    if (emulator.child.exitCode === null) emulator.child.kill('SIGTERM');
    await emulator.exited;
  });
  const { url } = (await emulator.logged('emulator listening')) as { url: string };
  expect(JSON.stringify(emulator.child.spawnargs)).not.toContain(env.EMULATOR_TOKEN);

  expect((await send(url, '/v1/tasks/runs')).status).toBe(401);
  expect((await send(url, '/v1/tasks/runs', { token: 'a-guess' })).status).toBe(401);
  for (const namespace of ['tasks', 'imaging']) {
    const agents = secretValue('tes-heartbeat-emulator-token', namespace);
    expect((await send(url, '/v1/tasks/runs', { token: agents })).status, namespace).toBe(200);
  }
});
