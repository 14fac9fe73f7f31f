// A real Prometheus scrapes a real agent (the built CLI against a fault-injecting TES and the
// fake Kubernetes API) and a real webhook on loopback, with the chart's rendered rules
// (windows shortened through values) and the job names the Prometheus operator would give the
// chart's PodMonitor and ServiceMonitor. It checks that no alert fires while all is healthy,
// that TesHeartbeatFailing fires while the TES fails and not before, that the other alerts fire
// on their cause, and that every dashboard query evaluates and names only exposed metrics.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, freePort, startAgent } from '../support/agent-harness.ts';
import { type FakeKube, startFakeKube, testPod } from '../support/fake-kube-api.ts';
import { FaultTes } from '../support/fault-tes.ts';
import { findAll, findOne, type K8sObject, RELEASE_NAMESPACE, renderChart } from '../support/helm-chart.ts';
import {
  exposedNames,
  metricNamesOf,
  poll,
  type Prometheus,
  type PromAlert,
  startPrometheus,
} from '../support/prometheus.ts';
import { admissionReview, httpsClient, jobPod, review, webhookEnv } from '../support/webhook-helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const TASK_NS = 'tasks';
const POD = 'task-pod';
/** Metrics Prometheus makes itself for every target. */
const SYNTHETIC = new Set(['up']);

const objects = renderChart({
  tes: { url: 'https://tes.example.org' },
  taskNamespaces: [TASK_NS],
  metrics: {
    podMonitor: { enabled: true },
    serviceMonitor: { enabled: true },
    prometheusRule: {
      enabled: true,
      runbookBaseUrl: 'docs/operations.md',
      heartbeatFailing: { window: '5s', for: '2s' },
      heartbeatStale: { after: '8s', for: '1s' },
      webhookInjectionErrors: { window: '10s', for: '0s' },
      webhookDown: { for: '2s' },
    },
    dashboard: { enabled: true },
  },
});
const podMonitor = findAll(objects, 'PodMonitor')[0] as Any;
const serviceMonitor = findAll(objects, 'ServiceMonitor')[0] as Any;
const ruleGroups: Any[] = (findAll(objects, 'PrometheusRule')[0] as Any).spec.groups;
const dashboard = JSON.parse(
  (findAll(objects, 'ConfigMap').find((c) => c.metadata.labels?.grafana_dashboard === '1') as Any).data[
    'tes-heartbeat.json'
  ],
);

/** The operator's job names: a PodMonitor's `<namespace>/<name>`, a ServiceMonitor's Service name. */
const agentsJob = `${podMonitor.metadata.namespace}/${podMonitor.metadata.name}`;
const webhookService = findAll(objects, 'Service').find((s: K8sObject) =>
  Object.entries(serviceMonitor.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v),
) as K8sObject;
const webhookJob = webhookService.metadata.name;

let tes: FaultTes;
let kube: FakeKube;
let agentPort: number;
let webhookPort: number;
let webhookHttpPort: number;
let webhook: ChildProcess;
let prometheus: Prometheus;
const stops: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  tes = await new FaultTes().start();
  stops.push(() => tes.close());
  kube = await startFakeKube();
  stops.push(() => kube.close());
  kube.server.set(
    'pods',
    testPod({
      name: POD,
      namespace: TASK_NS,
      containers: ['main', 'tes-heartbeat'],
      status: {
        phase: 'Running',
        containerStatuses: ['main', 'tes-heartbeat'].map((name) => ({
          name,
          ready: true,
          restartCount: 0,
          image: 'busybox',
          imageID: '',
          state: { running: { startedAt: '2026-11-29T10:00:00Z' } },
        })),
      },
    }),
  );
  [agentPort, webhookPort, webhookHttpPort] = [await freePort(), await freePort(), await freePort()];

  const agent = startAgent({
    TES_URL: tes.url,
    TES_RUN_ID: 'run-observed',
    POD_NAME: POD,
    POD_NAMESPACE: TASK_NS,
    KUBECONFIG: kube.kubeconfigPath,
    JOB_RETRY_COUNT: '0',
    HEARTBEAT_INTERVAL: '1s',
    HEARTBEAT_MIN_GAP: '0s',
    HTTP_ADDR: `127.0.0.1:${agentPort}`,
    LOG_LEVEL: 'warn',
  });
  stops.push(() => agent.child.kill('SIGKILL'));

  webhook = spawn(process.execPath, [CLI, 'webhook'], {
    env: {
      PATH: process.env.PATH ?? '',
      ...webhookEnv,
      WEBHOOK_ADDR: `127.0.0.1:${webhookPort}`,
      HTTP_ADDR: `127.0.0.1:${webhookHttpPort}`,
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  stops.push(() => webhook.kill('SIGKILL'));

  await poll(
    async () => (await metricsOf(agentPort)) && (await metricsOf(webhookHttpPort)),
    15_000,
    'the agent and the webhook serving /metrics',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nagent: ${agent.stderr()}${agent.stdout().slice(-2000)}`);
  });
  const client = await httpsClient();
  stops.push(() => client.close());
  for (let i = 0; i < 3; i++) {
    const answer = await review(client, webhookPort, admissionReview(jobPod()));
    expect(answer.body.response.allowed).toBe(true);
  }

  prometheus = await startPrometheus({
    ruleGroups,
    targets: [
      {
        job: agentsJob,
        address: `127.0.0.1:${agentPort}`,
        path: podMonitor.spec.podMetricsEndpoints[0].path,
        labels: {
          namespace: TASK_NS,
          pod: POD,
          container: 'tes-heartbeat',
          endpoint: podMonitor.spec.podMetricsEndpoints[0].port,
        },
      },
      {
        job: webhookJob,
        address: `127.0.0.1:${webhookHttpPort}`,
        path: serviceMonitor.spec.endpoints[0].path,
        labels: {
          namespace: webhookService.metadata.namespace ?? RELEASE_NAMESPACE,
          service: webhookJob,
          pod: `${webhookJob}-0`,
          endpoint: serviceMonitor.spec.endpoints[0].port,
        },
      },
    ],
  });
  stops.push(() => prometheus.stop());
}, 40_000);

afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function metricsOf(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

const now = () => Date.now() / 1000;

async function firing(alertname: string): Promise<PromAlert | undefined> {
  return (await prometheus.alerts()).find((a) => a.labels.alertname === alertname && a.state === 'firing');
}

/** Grafana's value for a variable used in a regex matcher (=~"$var"). */
const regexOf = (values: string[]) =>
  values.length === 1
    ? (values[0] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    : `(${values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`;

function substitute(expr: string, variables: Map<string, string>): string {
  // Grafana's $__rate_interval with a 1 s scrape interval: four scrapes.
  return expr
    .replaceAll('$__rate_interval', '4s')
    .replace(/\$\{?(\w+)\}?/g, (whole, name: string) => variables.get(name) ?? whole);
}

describe("the chart's alerts and dashboard on a real Prometheus", () => {
  let healthySince = 0;
  let tesFailingSince = 0;
  let exposed = new Set<string>();

  test('the metric names parsed out of PromQL', () => {
    expect(
      metricNamesOf(
        'sum without (result) (increase(tes_heartbeats_total{job="a/b", result="x"}[5m])) > 0 and on (pod) ' +
          'time() - (last_success > 0 or process_start_time_seconds offset 1m) > 1e3 or absent(up{job="w"})',
      ).sort(),
    ).toEqual(['last_success', 'process_start_time_seconds', 'tes_heartbeats_total', 'up']);
  });

  test('both targets are scraped, under the job names the operator gives them', async () => {
    await poll(
      async () => {
        const up = await prometheus.query('up == 1');
        return up.length === 2;
      },
      20_000,
      'both targets up',
    );
    const jobs = (await prometheus.query('up')).map((s) => s.metric.job).sort();
    expect(jobs).toEqual([agentsJob, webhookJob].sort());
    healthySince = now();
    exposed = new Set([
      ...exposedNames((await metricsOf(agentPort)) ?? ''),
      ...exposedNames((await metricsOf(webhookHttpPort)) ?? ''),
    ]);
    expect(exposed.has('tes_heartbeats_total')).toBe(true);
  });

  test('every alert names only metrics the agent or the webhook exposes', () => {
    for (const rule of ruleGroups.flatMap((g) => g.rules)) {
      const names = metricNamesOf(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) {
        expect(exposed.has(name) || SYNTHETIC.has(name), `${rule.alert}: ${name} is not exposed`).toBe(true);
      }
    }
  });

  test('every dashboard query evaluates, returns data and names only exposed metrics', async () => {
    // Eight seconds of scrapes: every rate window of the dashboard has samples.
    await poll(
      async () => (await prometheus.query(`count_over_time(up{job="${agentsJob}"}[1m]) >= 8`)).length === 1,
      20_000,
      'eight scrapes',
    );
    const variables = new Map<string, string>();
    for (const variable of dashboard.templating.list) {
      if (variable.type === 'custom') variables.set(variable.name, variable.current.value);
      if (variable.type !== 'query') continue;
      const query = substitute(variable.query.query, variables);
      const match = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
      expect(match, `${variable.name}: ${query}`).not.toBeNull();
      const [, selector, label] = match as unknown as [string, string, string];
      for (const name of metricNamesOf(selector))
        expect(exposed.has(name), `${variable.name}: ${name}`).toBe(true);
      const values = await prometheus.api<string[]>(
        `/api/v1/label/${label}/values?match[]=${encodeURIComponent(selector)}`,
      );
      expect(values, `variable ${variable.name}`).not.toEqual([]);
      variables.set(variable.name, regexOf(values));
    }
    expect(variables.get('agent_job')).toBe(regexOf([agentsJob]));
    expect(variables.get('webhook_job')).toBe(regexOf([webhookJob]));

    const panels = dashboard.panels.filter((p: Any) => p.type !== 'row');
    let queries = 0;
    for (const panel of panels) {
      for (const target of panel.targets) {
        const expr = substitute(target.expr, variables);
        expect(expr, panel.title).not.toMatch(/\$/);
        for (const name of metricNamesOf(expr)) {
          expect(exposed.has(name) || SYNTHETIC.has(name), `${panel.title}: ${name} is not exposed`).toBe(
            true,
          );
        }
        const result = await prometheus.query(expr);
        expect(result.length, `${panel.title}: ${expr} returned nothing`).toBeGreaterThan(0);
        queries++;
      }
    }
    expect(queries).toBeGreaterThanOrEqual(panels.length);
    const mode = await prometheus.query(
      substitute(panels.find((p: Any) => p.title === 'Sidecar mode').targets[0].expr, variables),
    );
    expect(mode.map((s) => s.metric.mode)).toEqual(['native']);
  });

  test('nothing fires while the agent and the webhook are healthy', async () => {
    // At least the failing window plus its `for` of healthy rule evaluations.
    await poll(() => now() - healthySince > 8, 20_000, 'a healthy stretch');
    const range = (expr: string) =>
      prometheus.queryRange(expr, Math.ceil(healthySince) + 1, Math.floor(now()), 1);
    expect((await range('ALERTS{alertstate="firing"}')).map((a) => a.metric)).toEqual([]);
    // Not even pending: a healthy agent's counters never meet the condition. (The webhook's
    // `up` may blip once on a loaded machine; a blip is what `for` is there to absorb.)
    expect((await range('ALERTS{alertname=~"TesHeartbeat.*"}')).map((a) => a.metric)).toEqual([]);
    expect((await prometheus.alerts()).filter((a) => a.state === 'firing')).toEqual([]);
  });

  test('TesHeartbeatFailing fires while the TES fails, not before, and resolves when it answers again', async () => {
    tesFailingSince = now();
    tes.setFallback({ status: 503, body: { code: 'UNAVAILABLE', message: 'maintenance' } });

    const alert = await poll(() => firing('TesHeartbeatFailing'), 30_000, 'TesHeartbeatFailing firing');
    expect(alert.labels).toMatchObject({ job: agentsJob, namespace: TASK_NS, pod: POD, severity: 'warning' });
    expect(alert.labels.result).toBeUndefined();
    expect(alert.annotations.summary).toBe(`Heartbeats of ${TASK_NS}/${POD} keep failing`);
    expect(alert.annotations.runbook_url).toBe('docs/operations.md#tesheartbeatfailing');

    const series = await prometheus.queryRange(
      'ALERTS{alertname="TesHeartbeatFailing"}',
      Math.ceil(healthySince) + 1,
      Math.ceil(now()),
      1,
    );
    const first = Math.min(...series.flatMap((s) => (s.values ?? []).map(([t]) => t)));
    expect(first).toBeGreaterThan(tesFailingSince);

    const stale = await poll(() => firing('TesHeartbeatStale'), 30_000, 'TesHeartbeatStale firing');
    expect(stale.labels).toMatchObject({ job: agentsJob, namespace: TASK_NS, pod: POD });

    tes.setFallback({ status: 200, body: {} });
    await poll(
      async () => !(await prometheus.alerts()).some((a) => a.labels.alertname === 'TesHeartbeatFailing'),
      30_000,
      'TesHeartbeatFailing resolved',
    );
  }, 60_000);

  test('TesWebhookInjectionErrors fires on a review the webhook could not use', async () => {
    const client = await httpsClient();
    try {
      const broken = admissionReview(jobPod()) as Any;
      delete broken.request.operation;
      const answer = await review(client, webhookPort, broken);
      expect(answer.body.response.allowed).toBe(true);
    } finally {
      await client.close();
    }
    const alert = await poll(() => firing('TesWebhookInjectionErrors'), 20_000, 'TesWebhookInjectionErrors');
    expect(alert.labels).toMatchObject({ job: webhookJob, namespace: RELEASE_NAMESPACE });
  });

  test('TesWebhookDown fires when no webhook replica answers', async () => {
    expect(await firing('TesWebhookDown')).toBeUndefined();
    webhook.kill('SIGTERM');
    const alert = await poll(() => firing('TesWebhookDown'), 20_000, 'TesWebhookDown firing');
    expect(alert.labels).toMatchObject({
      job: webhookJob,
      namespace: RELEASE_NAMESPACE,
      severity: 'critical',
    });
    expect(findOne(objects, 'Service', webhookJob).metadata.namespace).toBe(RELEASE_NAMESPACE);
  });
});
