// The chart's part of the tenancy rules (agent-spec "Tenancy", T1-T8): what it refuses to
// install (T3), the emulator's token (T6/T7), the fleet's nonce Secrets (T2), and where the
// alerts' runbooks point (issue 16). Rendered by the real helm.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import {
  APP_VERSION,
  chartDir,
  envOf,
  findAll,
  findOne,
  FULLNAME,
  helm,
  type K8sObject,
  RELEASE_NAMESPACE,
  renderChart,
  repoRoot,
  templateChart,
} from '../support/helm-chart.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const TES = { tes: { url: 'https://tes.example.org' } };

describe('rule T3: where tasks may run — the install fails, naming the value', () => {
  test.each([
    ['no task namespace (no more "the release namespace by default")', {}, /taskNamespaces is required/],
    [
      'the release namespace, which holds the webhook key',
      { taskNamespaces: ['tasks', RELEASE_NAMESPACE] },
      /taskNamespaces must not contain the release namespace "tes-system"/,
    ],
    ['kube-system', { taskNamespaces: ['kube-system'] }, /taskNamespaces must not contain "kube-system"/],
    [
      'kube-public',
      { taskNamespaces: ['tasks', 'kube-public'] },
      /taskNamespaces must not contain "kube-public"/,
    ],
    [
      'kube-node-lease',
      { taskNamespaces: ['kube-node-lease'] },
      /taskNamespaces must not contain "kube-node-lease"/,
    ],
    [
      'default as a task service account',
      { taskNamespaces: ['tasks'], taskServiceAccounts: ['tes-heartbeat', 'default'] },
      /taskServiceAccounts must not contain "default"/,
    ],
  ])('%s', (_what, values, message) => {
    for (const mode of ['sidecar', 'fleet']) {
      const result = templateChart({ ...TES, ...values, mode });
      expect(result.code, mode).not.toBe(0);
      expect(result.stderr).toMatch(message);
    }
  });

  test('a namespace that merely looks alike is accepted; helm lint of the chart alone stays clean', () => {
    expect(templateChart({ ...TES, taskNamespaces: ['kube-systems', 'tes-system-tasks'] }).code).toBe(0);
    expect(templateChart({ ...TES, taskNamespaces: ['tasks'], taskServiceAccounts: ['defaults'] }).code).toBe(
      0,
    );
    // Template fails, not schema rules: lint reports them at info level and passes.
    const lint = helm(['lint', chartDir, '--strict'], {});
    expect(lint.code).toBe(0);
    expect(lint.stdout).toContain('0 chart(s) failed');
  });
});

describe('rules T6/T7: the in-cluster emulator always runs with a token', () => {
  const emulatorPod = (objects: K8sObject[]): Any =>
    (findOne(objects, 'Deployment', `${FULLNAME}-emulator`, RELEASE_NAMESPACE) as Any).spec.template.spec;

  test("its own emulator: the agents' token Secret in every task namespace holds the emulator's token, plain http allowed", () => {
    const objects = renderChart({ taskNamespaces: ['tasks', 'imaging'], emulator: { enabled: true } });
    const emulatorSecret = findOne(objects, 'Secret', `${FULLNAME}-emulator-token`, RELEASE_NAMESPACE) as Any;
    const container = emulatorPod(objects).containers[0];
    expect(envOf(container).EMULATOR_TOKEN).toEqual({
      secretKeyRef: { name: `${FULLNAME}-emulator-token`, key: 'token' },
    });
    expect(JSON.stringify(container.args)).not.toContain(
      Buffer.from(emulatorSecret.data.token, 'base64').toString(),
    );
    for (const ns of ['tasks', 'imaging']) {
      const copy = findOne(objects, 'Secret', 'tes-heartbeat-emulator-token', ns) as Any;
      expect(copy.data).toEqual(emulatorSecret.data);
      const settings = findOne(objects, 'ConfigMap', 'tes-heartbeat-settings', ns) as Any;
      expect(settings.data.TES_ALLOW_HTTP).toBe('true');
      expect(settings.data.TES_URL).toMatch(/^http:\/\//);
    }
  });

  test('an emulator beside a real TES: the agents keep the real TES, no copy of the token, no plain http', () => {
    const objects = renderChart({
      taskNamespaces: ['tasks'],
      tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token' } },
      emulator: { enabled: true },
    });
    expect(envOf(emulatorPod(objects).containers[0]).EMULATOR_TOKEN).toBeDefined();
    expect(findAll(objects, 'Secret').map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).not.toContain(
      'tasks/tes-heartbeat-emulator-token',
    );
    const settings = findOne(objects, 'ConfigMap', 'tes-heartbeat-settings', 'tasks') as Any;
    expect(settings.data.TES_ALLOW_HTTP).toBeUndefined();
  });

  test('emulator.tokenSecret.name: the existing Secret is used, none rendered; the agents must be given theirs', () => {
    const values = {
      taskNamespaces: ['tasks'],
      emulator: { enabled: true, tokenSecret: { name: 'dev-tes-token' } },
      tes: { tokenSecret: { name: 'dev-tes-token' } },
    };
    const objects = renderChart(values);
    expect(findAll(objects, 'Secret').filter((s) => s.metadata.name.includes('emulator-token'))).toEqual([]);
    expect(envOf(emulatorPod(objects).containers[0]).EMULATOR_TOKEN).toEqual({
      secretKeyRef: { name: 'dev-tes-token', key: 'token' },
    });
    const refused = templateChart({ ...values, tes: {} });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/emulator\.tokenSecret\.name is set but tes\.tokenSecret\.name is not/);
    // The fleet sits beside the emulator in the release namespace: it reads that same Secret.
    const fleet = renderChart({ ...values, tes: {}, mode: 'fleet' });
    const daemonSet = findOne(fleet, 'DaemonSet', `${FULLNAME}-fleet`, RELEASE_NAMESPACE) as Any;
    expect(envOf(daemonSet.spec.template.spec.containers[0]).TES_TOKEN).toEqual({
      secretKeyRef: { name: 'dev-tes-token', key: 'token', optional: false },
    });
  });

  test('a token for a plain-http TES is refused at helm time (the agents would exit 2)', () => {
    const result = templateChart({
      taskNamespaces: ['tasks'],
      tes: { url: 'http://tes.internal:8080', tokenSecret: { name: 'tes-token' } },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/tes\.url is http:\/\/ while tes\.tokenSecret\.name is set/);
  });
});

describe('rule T2: the fleet reads nonce Secrets only while fleet.nonceSecrets is on', () => {
  const fleetRoles = (objects: K8sObject[]) =>
    findAll(objects, 'Role').filter((r) => r.metadata.name === `${FULLNAME}-fleet`) as Any[];
  const fleetEnv = (objects: K8sObject[]) =>
    envOf((findOne(objects, 'DaemonSet', `${FULLNAME}-fleet`) as Any).spec.template.spec.containers[0]);

  test.each([
    [false, 'off'],
    [true, 'on'],
  ])(
    'nonceSecrets %s: FLEET_NONCE_SECRETS=%s, secrets get in every task namespace exactly then',
    (on, flag) => {
      const objects = renderChart({
        ...TES,
        taskNamespaces: ['tasks', 'imaging'],
        mode: 'fleet',
        fleet: { nonceSecrets: on },
      });
      expect(fleetEnv(objects).FLEET_NONCE_SECRETS).toBe(flag);
      const roles = fleetRoles(objects);
      expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['imaging', 'tasks']);
      for (const role of roles) {
        const secrets = role.rules.filter((r: Any) => r.resources.includes('secrets'));
        expect(secrets).toEqual(on ? [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] : []);
      }
      // Never anywhere else.
      const elsewhere = [...findAll(objects, 'Role'), ...findAll(objects, 'ClusterRole')].filter(
        (r: Any) => !roles.includes(r) && r.rules.some((rule: Any) => rule.resources.includes('secrets')),
      );
      expect(elsewhere).toEqual([]);
    },
  );
});

describe('runbook URLs (issue 16): absolute, the published docs of the chart own version', () => {
  const alerts = (values: Record<string, unknown>) =>
    (findAll(renderChart(values), 'PrometheusRule')[0] as Any).spec.groups.flatMap((g: Any) => g.rules);

  test("Chart.yaml's home and sources are the image's org.opencontainers.image.source", () => {
    const chart = parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'));
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const source = /^ARG SOURCE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(dockerfile).toMatch(/org\.opencontainers\.image\.source="\$\{SOURCE\}"/);
    expect(source).toMatch(/^https:\/\//);
    expect(chart.home).toBe(source);
    expect(chart.sources).toEqual([source]);
  });

  test.each(['sidecar', 'fleet'])(
    '%s mode: every runbook_url is <home>/blob/v<appVersion>/docs/operations.md#<alert>',
    (mode) => {
      const { home } = parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'));
      const rules = alerts({
        ...TES,
        taskNamespaces: ['tasks'],
        mode,
        metrics: { prometheusRule: { enabled: true } },
      });
      expect(rules.length).toBeGreaterThanOrEqual(2);
      for (const r of rules) {
        expect(r.annotations.runbook_url).toBe(
          `${home}/blob/v${APP_VERSION}/docs/operations.md#${r.alert.toLowerCase()}`,
        );
      }
    },
  );

  test('runbookBaseUrl points them at an internal mirror', () => {
    const base = 'https://git.example.org/mirror/tes-heartbeat/-/blob/v0.1.0/docs/operations.md';
    for (const r of alerts({
      ...TES,
      taskNamespaces: ['tasks'],
      metrics: { prometheusRule: { enabled: true, runbookBaseUrl: base } },
    }))
      expect(r.annotations.runbook_url).toBe(`${base}#${r.alert.toLowerCase()}`);
  });
});
