// The chart's Prometheus operator objects and Grafana dashboard (metrics.*), rendered by the
// real helm: their shape, that they point at what the chart really exposes (the sidecar's named
// port, the webhook Service's port), the job names the alerts select, the runbooks they link,
// and `promtool check rules` on the rendered rules.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  chartDir,
  findAll,
  findOne,
  FULLNAME,
  helm,
  type K8sObject,
  RELEASE,
  RELEASE_NAMESPACE,
  renderChart,
  repoRoot,
} from '../support/helm-chart.ts';
import { validateObject } from '../support/k8s-schema-validate.ts';
import { monitoringObjectErrors } from '../support/monitoring-schemas.ts';
import { promtool } from '../support/prometheus.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const ALERTS = ['TesHeartbeatFailing', 'TesHeartbeatStale', 'TesWebhookInjectionErrors', 'TesWebhookDown'];
const MONITORING_KINDS = ['PodMonitor', 'ServiceMonitor', 'PrometheusRule'];

const ALL_ON = {
  tes: { url: 'https://tes.example.org' },
  taskNamespaces: ['genomics', 'imaging'],
  metrics: {
    labels: { release: 'kube-prometheus-stack' },
    podMonitor: { enabled: true, interval: '30s', labels: { team: 'platform' } },
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    dashboard: { enabled: true, annotations: { grafana_folder: 'Platform' } },
  },
};

const objects = renderChart(ALL_ON);
const podMonitor = findAll(objects, 'PodMonitor')[0] as Any;
const serviceMonitor = findAll(objects, 'ServiceMonitor')[0] as Any;
const rule = findAll(objects, 'PrometheusRule')[0] as Any;
const dashboardMap = findOne(objects, 'ConfigMap', `${FULLNAME}-dashboard`, RELEASE_NAMESPACE) as Any;

/** What the Prometheus operator sets as `job`: a PodMonitor's `<namespace>/<name>`. */
const agentsJob = `${podMonitor.metadata.namespace}/${podMonitor.metadata.name}`;

function rules(from: Any = rule): Any[] {
  return from.spec.groups.flatMap((g: Any) => g.rules);
}

/** Anchors of docs/operations.md's headings, as GitHub makes them. */
function docAnchors(): Set<string> {
  const text = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  return new Set(
    [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      (m[1] as string)
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('metrics.* values', () => {
  test('all default to off: no monitoring object, no dashboard', () => {
    const defaults = renderChart({ taskNamespaces: ['tasks'], tes: { url: 'https://tes.example.org' } });
    for (const kind of MONITORING_KINDS) expect(findAll(defaults, kind)).toEqual([]);
    expect(defaults.filter((o) => o.metadata.labels?.grafana_dashboard)).toEqual([]);
    expect(defaults.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com'))).toEqual([]);
  });

  test('each object has the shape of the operator CRDs, the dashboard ConfigMap the Kubernetes schema', async () => {
    const monitoring = objects.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1');
    expect(monitoring.map((o) => o.kind).sort()).toEqual([...MONITORING_KINDS].sort());
    expect(monitoring.flatMap(monitoringObjectErrors)).toEqual([]);
    expect(await validateObject(dashboardMap as K8sObject)).toEqual([]);
  });

  test('helm lint --strict is clean with all of them on', () => {
    const result = helm(['lint', chartDir, '--strict'], ALL_ON);
    expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  test('the shape check catches a broken object', () => {
    const broken = structuredClone(podMonitor);
    broken.spec.podMetricsEndpoints[0].interval = '1.5m';
    broken.spec.podMetricsEndpoints[0].targetPort = 9091;
    delete broken.spec.selector;
    expect(monitoringObjectErrors(broken)).toEqual([
      expect.stringMatching(/spec\.selector: required/),
      expect.stringMatching(/interval: '1\.5m' does not match/),
      expect.stringMatching(/targetPort: unknown field/),
    ]);
  });

  test("every object carries metrics.labels for the operator's selectors, and its own labels", () => {
    for (const o of [podMonitor, serviceMonitor, rule, dashboardMap]) {
      expect(o.metadata.labels.release, o.kind).toBe('kube-prometheus-stack');
    }
    expect(podMonitor.metadata.labels.team).toBe('platform');
    expect(serviceMonitor.metadata.labels.team).toBeUndefined();
  });

  test('the values schema refuses durations Prometheus cannot read and unknown keys', () => {
    const refused = (metrics: unknown) =>
      helm(['template', RELEASE, chartDir], { tes: { url: 'https://tes.example.org' }, metrics });
    for (const [metrics, where] of [
      [{ podMonitor: { interval: '1.5m' } }, '/metrics/podMonitor/interval'],
      [
        { prometheusRule: { heartbeatFailing: { window: '5 minutes' } } },
        '/metrics/prometheusRule/heartbeatFailing/window',
      ],
      [
        { prometheusRule: { heartbeatStale: { after: '90' } } },
        '/metrics/prometheusRule/heartbeatStale/after',
      ],
      [{ podMonitor: { enabeld: true } }, '/metrics/podMonitor'],
    ] as const) {
      const result = refused(metrics);
      expect(result.code, JSON.stringify(metrics)).not.toBe(0);
      expect(result.stderr).toContain(where);
    }
  });
});

describe('PodMonitor', () => {
  test('selects the labelled pods in every task namespace', () => {
    expect(podMonitor.metadata.namespace).toBe(RELEASE_NAMESPACE);
    expect(podMonitor.spec.namespaceSelector).toEqual({ matchNames: ['genomics', 'imaging'] });
    expect(podMonitor.spec.selector).toEqual({ matchLabels: { 'tes-heartbeat/inject': 'true' } });
    expect(podMonitor.spec.podMetricsEndpoints).toEqual([
      { port: 'tes-hb-metrics', path: '/metrics', scheme: 'http', interval: '30s' },
    ]);
  });

  test('selects the task namespaces only, never the release namespace', () => {
    expect(podMonitor.spec.namespaceSelector).toEqual({ matchNames: ['genomics', 'imaging'] });
    expect(podMonitor.spec.namespaceSelector.matchNames).not.toContain(RELEASE_NAMESPACE);
  });

  test("scrapes a port the published sidecar declares by that name, the listener's HTTP_ADDR port", () => {
    const sidecarMap = findOne(objects, 'ConfigMap', `${FULLNAME}-sidecar`, RELEASE_NAMESPACE) as Any;
    const sidecar = parse(sidecarMap.data['sidecar.yaml']);
    const portName = podMonitor.spec.podMetricsEndpoints[0].port;
    const port = (sidecar.ports ?? []).find((p: Any) => p.name === portName);
    expect(port, `the sidecar has no port named ${portName}`).toBeDefined();
    const settings = findOne(objects, 'ConfigMap', 'tes-heartbeat-settings', 'genomics') as Any;
    const httpAddr: string =
      sidecar.env?.find((e: Any) => e.name === 'HTTP_ADDR')?.value ?? settings.data.HTTP_ADDR;
    expect(port.containerPort).toBe(Number(httpAddr.split(':').at(-1)));
  });
});

describe('ServiceMonitor', () => {
  test("selects the webhook's Service alone, through its port named metrics, which reaches the listener", () => {
    const services = findAll(objects, 'Service').filter(
      (s) =>
        serviceMonitor.spec.namespaceSelector.matchNames.includes(s.metadata.namespace) &&
        Object.entries(serviceMonitor.spec.selector.matchLabels).every(
          ([k, v]) => s.metadata.labels?.[k] === v,
        ),
    ) as Any[];
    expect(services.map((s) => s.metadata.name)).toEqual([`${FULLNAME}-webhook`]);
    const service = services[0];
    expect(serviceMonitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', scheme: 'http' }]);
    const servicePort = service.spec.ports.find((p: Any) => p.name === 'metrics');
    expect(servicePort).toBeDefined();
    const deployment = findOne(objects, 'Deployment', `${FULLNAME}-webhook`, RELEASE_NAMESPACE) as Any;
    const container = deployment.spec.template.spec.containers[0];
    const target = container.ports.find((p: Any) =>
      typeof servicePort.targetPort === 'string'
        ? p.name === servicePort.targetPort
        : p.containerPort === servicePort.targetPort,
    );
    const httpAddr: string = container.env.find((e: Any) => e.name === 'HTTP_ADDR').value;
    expect(target?.containerPort).toBe(Number(httpAddr.split(':').at(-1)));
  });

  test('is not rendered without the webhook, nor are its alerts', () => {
    const off = renderChart({ ...ALL_ON, webhook: { enabled: false } });
    expect(findAll(off, 'ServiceMonitor')).toEqual([]);
    expect(rules(findAll(off, 'PrometheusRule')[0]).map((r: Any) => r.alert)).toEqual([
      'TesHeartbeatFailing',
      'TesHeartbeatStale',
    ]);
  });
});

describe('PrometheusRule', () => {
  test('has the four alerts, each with summary, description, severity and a runbook in docs/operations.md', () => {
    expect(rules().map((r: Any) => r.alert)).toEqual(ALERTS);
    const anchors = docAnchors();
    for (const r of rules()) {
      expect(Object.keys(r.annotations).sort(), r.alert).toEqual(['description', 'runbook_url', 'summary']);
      expect(r.labels.severity, r.alert).toMatch(/^(warning|critical)$/);
      const [page, anchor] = r.annotations.runbook_url.split('#');
      // Absolute: the published docs of the chart's own version (an alert UI opens no relative path).
      expect(page).toMatch(
        /^https:\/\/github\.com\/tes-heartbeat\/tes-heartbeat\/blob\/v\d+\.\d+\.\d+\/docs\/operations\.md$/,
      );
      expect(anchors.has(anchor), `docs/operations.md has no section #${anchor}`).toBe(true);
    }
  });

  test("selects the job names the operator gives the PodMonitor's and the ServiceMonitor's targets", () => {
    const jobs = (g: Any) => [...JSON.stringify(g.rules).matchAll(/job=\\"([^\\"]+)\\"/g)].map((m) => m[1]);
    const [agents, webhook] = rule.spec.groups;
    expect(new Set(jobs(agents))).toEqual(new Set([agentsJob]));
    // A ServiceMonitor's job is the name of the Service it scrapes.
    expect(new Set(jobs(webhook))).toEqual(new Set([`${FULLNAME}-webhook`]));
    expect(agentsJob).toBe(`${RELEASE_NAMESPACE}/${FULLNAME}-agents`);
  });

  test('windows, severities, the runbook base URL and extra labels come from the values', () => {
    const custom = findAll(
      renderChart({
        taskNamespaces: ['tasks'],
        tes: { url: 'https://tes.example.org' },
        metrics: {
          prometheusRule: {
            enabled: true,
            runbookBaseUrl: 'https://wiki.example.org/tes/operations',
            additionalLabels: { team: 'genomics-platform' },
            heartbeatFailing: { window: '15m', for: '10m', severity: 'critical' },
            heartbeatStale: { after: '1h30m5s' },
          },
        },
      }),
      'PrometheusRule',
    )[0] as Any;
    const [failing, stale] = rules(custom);
    expect(failing.expr).toContain('[15m]');
    expect(failing.for).toBe('10m');
    expect(failing.labels).toEqual({ severity: 'critical', team: 'genomics-platform' });
    expect(failing.annotations.runbook_url).toBe(
      'https://wiki.example.org/tes/operations#tesheartbeatfailing',
    );
    expect(stale.expr).toMatch(/\) > 5405$/);
  });

  test('promtool check rules accepts the rendered rules, and refuses a broken one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rules-'));
    try {
      const file = path.join(dir, 'rules.yaml');
      await writeFile(file, stringify(rule.spec));
      const ok = promtool(['check', 'rules', file]);
      expect(ok.output).toContain('SUCCESS: 4 rules found');
      expect(ok.code).toBe(0);

      const broken = structuredClone(rule.spec);
      broken.groups[0].rules[0].expr = 'increase(tes_heartbeats_total[5m] > 0';
      await writeFile(file, stringify(broken));
      expect(promtool(['check', 'rules', file]).code).not.toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(dashboardMap.data['tes-heartbeat.json']);
  const panels: Any[] = dashboard.panels.filter((p: Any) => p.type !== 'row');

  test('is a ConfigMap for the Grafana sidecar, holding the dashboard JSON of the chart', () => {
    expect(dashboardMap.metadata.labels.grafana_dashboard).toBe('1');
    expect(dashboardMap.metadata.annotations).toEqual({ grafana_folder: 'Platform' });
    const file = JSON.parse(readFileSync(path.join(chartDir, 'dashboards/tes-heartbeat.json'), 'utf8'));
    expect(dashboard).toEqual(file);
    expect(dashboard.uid).toBe('tes-heartbeat');
  });

  test('shows what the issue lists, each panel on the selectable data source', () => {
    const titles = panels.map((p) => p.title);
    for (const wanted of [
      /^Heartbeats by result$/,
      /^Failure ratio/,
      /^Attempt latency$/,
      /stale heartbeats/,
      /watch restarts/,
      /^Admissions by result$/,
      /^Admission latency$/,
      /^Sidecar mode$/,
      /memory/,
      /CPU/,
    ]) {
      expect(
        titles.some((t) => wanted.test(t)),
        `no panel ${wanted}`,
      ).toBe(true);
    }
    for (const p of panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.expr, p.title).toMatch(/\S/);
    }
    const ids = dashboard.panels.map((p: Any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('lays its panels out without overlap, on a 24-column grid', () => {
    const boxes = dashboard.panels.map((p: Any) => ({ title: p.title, ...p.gridPos }));
    for (const [i, a] of boxes.entries()) {
      expect(a.x + a.w, a.title).toBeLessThanOrEqual(24);
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${a.title} overlaps ${b.title}`).toBe(false);
      }
    }
  });

  test('keeps grafana_dashboard: "1" whatever the extra labels say', () => {
    const relabelled = renderChart({
      ...ALL_ON,
      metrics: { dashboard: { enabled: true, labels: { grafana_dashboard: '0', team: 'platform' } } },
    });
    const map = findOne(relabelled, 'ConfigMap', `${FULLNAME}-dashboard`);
    expect(map.metadata.labels).toMatchObject({ grafana_dashboard: '1', team: 'platform' });
  });

  test('can be moved to the namespace Grafana watches', () => {
    const moved = renderChart({
      ...ALL_ON,
      metrics: { dashboard: { enabled: true, namespace: 'monitoring' } },
    });
    expect(findOne(moved, 'ConfigMap', `${FULLNAME}-dashboard`).metadata.namespace).toBe('monitoring');
  });
});
