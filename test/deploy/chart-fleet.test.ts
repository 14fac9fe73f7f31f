// Fleet mode in the chart (agent-spec "Fleet mode" and the chart rows mode, fleet.*): rendered
// by the real helm per node and per cluster, checked against the Kubernetes schemas and the exact
// RBAC the contract lists, and nothing of the sidecar mode left in the task namespaces.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import {
  chartDir,
  effectiveValues,
  envOf,
  findAll,
  findOne,
  FULLNAME,
  helm,
  type K8sObject,
  RELEASE,
  RELEASE_NAMESPACE,
  renderChart,
  renderNotes,
  renderValueSets,
} from '../support/helm-chart.ts';
import { podInvariantErrors, podSpecOf, validateObject } from '../support/k8s-schema-validate.ts';
import { restrictedViolations } from '../support/pod-security.ts';
import { promtool } from '../support/prometheus.ts';

type Values = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const FLEET = `${FULLNAME}-fleet`;
const HOOK = `${FULLNAME}-fleet-release`;
const TASK_NS = ['genomics', 'imaging'];

const VALUE_SETS: Record<string, Values> = {
  node: {
    mode: 'fleet',
    taskNamespaces: TASK_NS,
    tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token', key: 'jwt' } },
  },
  nodePlaced: {
    mode: 'fleet',
    taskNamespaces: ['tasks'],
    tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token', asFile: true } },
    rbac: { nodes: false },
    events: { enabled: false },
    fleet: {
      finalizer: true,
      nodeSelector: { 'example.org/pool': 'tasks' },
      tolerations: [{ key: 'tasks', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
            ],
          },
        },
      },
      priorityClassName: 'system-node-critical',
      podAnnotations: { 'example.org/owner': 'platform' },
      podLabels: { team: 'platform' },
      maxUnavailable: '10%',
    },
  },
  cluster: {
    mode: 'fleet',
    taskNamespaces: TASK_NS,
    tes: { url: 'https://tes.example.org', tokenSecret: { name: 'tes-token' } },
    fleet: { scope: 'cluster', finalizer: true, nonceSecrets: true },
  },
  clusterEmulator: {
    mode: 'fleet',
    taskNamespaces: ['tasks'],
    emulator: { enabled: true },
    fleet: { scope: 'cluster', replicas: 3, lease: { name: 'tes-fleet', duration: '30s' } },
    securityContext: { runAsUser: null, runAsGroup: null },
  },
};

const render = renderValueSets(VALUE_SETS);

const isHook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'] !== undefined;
const workloadOf = (objects: K8sObject[], v: Any): Any =>
  findOne(objects, v.fleet.scope === 'cluster' ? 'Deployment' : 'DaemonSet', FLEET, RELEASE_NAMESPACE);

/** "Kind ns/name: group/resource verb" for every rule of every Role and ClusterRole. */
function grantsOf(objects: K8sObject[]): string[] {
  const grants: string[] = [];
  for (const role of [...findAll(objects, 'Role'), ...findAll(objects, 'ClusterRole')] as Any[]) {
    for (const rule of role.rules) {
      expect(rule.resourceNames).toBeUndefined();
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs)
            grants.push(
              `${role.kind} ${role.metadata.namespace ?? '-'}/${role.metadata.name}: ${group}/${resource} ${verb}`,
            );
    }
  }
  return grants.sort();
}

describe.each(Object.keys(VALUE_SETS))('mode fleet, %s values', (name) => {
  const values = VALUE_SETS[name] as Values;
  const v = effectiveValues(values);
  const cluster = v.fleet.scope === 'cluster';

  test('helm lint is clean', () => {
    const result = helm(['lint', chartDir, '--strict'], values);
    expect(result.stdout).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  test('every object validates against the Kubernetes schemas, strictly, and keeps the pod rules', async () => {
    const objects = render(name);
    expect((await Promise.all(objects.map(validateObject))).flat()).toEqual([]);
    expect(objects.flatMap(podInvariantErrors)).toEqual([]);
  });

  test('every pod passes Pod Security "restricted"', () => {
    const pods = render(name).filter((o) => podSpecOf(o));
    expect(pods.length).toBeGreaterThanOrEqual(1);
    for (const o of pods)
      expect(restrictedViolations({ spec: podSpecOf(o) }), `${o.kind} ${o.metadata.name}`).toEqual([]);
  });

  test('RBAC is exactly the contract list for the scope, nothing more', () => {
    const objects = render(name);
    const expected: string[] = [];
    for (const ns of v.taskNamespaces) {
      for (const verb of ['get', 'list', 'watch', 'patch'])
        expected.push(`Role ${ns}/${FLEET}: /pods ${verb}`);
      expected.push(`Role ${ns}/${FLEET}: batch/jobs get`);
      if (v.events.enabled) expected.push(`Role ${ns}/${FLEET}: events.k8s.io/events create`);
      if (v.fleet.nonceSecrets) expected.push(`Role ${ns}/${FLEET}: /secrets get`);
      if (v.fleet.finalizer)
        for (const verb of ['list', 'patch']) expected.push(`Role ${ns}/${HOOK}: /pods ${verb}`);
    }
    if (cluster) {
      for (const verb of ['get', 'list', 'watch'])
        expected.push(`ClusterRole -/${FLEET}-nodes: /nodes ${verb}`);
      for (const verb of ['get', 'create', 'update'])
        expected.push(`Role ${RELEASE_NAMESPACE}/${FLEET}-lease: coordination.k8s.io/leases ${verb}`);
    } else if (v.rbac.nodes) {
      expected.push(`ClusterRole -/${FLEET}-nodes: /nodes get`);
    }
    expect(grantsOf(objects)).toEqual(expected.sort());
  });

  test('each binding gives its Role to the fleet (or the hook) account in the release namespace alone', () => {
    const objects = render(name);
    for (const binding of [
      ...findAll(objects, 'RoleBinding'),
      ...findAll(objects, 'ClusterRoleBinding'),
    ] as Any[]) {
      const account = binding.metadata.name.startsWith(HOOK) ? HOOK : FLEET;
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: account, namespace: RELEASE_NAMESPACE },
      ]);
      expect(binding.roleRef.name).toBe(binding.metadata.name);
    }
  });

  test('no webhook, no sidecar snippet, nothing of the sidecar mode in the task namespaces', () => {
    const objects = render(name);
    expect(findAll(objects, 'MutatingWebhookConfiguration')).toEqual([]);
    expect(objects.filter((o) => o.metadata.name.includes('webhook'))).toEqual([]);
    expect(objects.filter((o) => o.metadata.name === `${FULLNAME}-sidecar`)).toEqual([]);
    expect(objects.filter((o) => o.metadata.name.startsWith(`${FULLNAME}-agent`))).toEqual([]);
    const inTaskNamespaces = objects
      .filter((o) => v.taskNamespaces.includes(o.metadata.namespace))
      .map((o) => `${o.kind}/${o.metadata.name}`);
    const expected = ['Role', 'RoleBinding'].map((k) => `${k}/${FLEET}`);
    if (v.fleet.finalizer) expected.push(...['Role', 'RoleBinding'].map((k) => `${k}/${HOOK}`));
    expect([...new Set(inTaskNamespaces)].sort()).toEqual(expected.sort());
  });

  test('its own ServiceAccount, its token mounted into the fleet pods only; hardened like the agent', () => {
    const objects = render(name);
    const account = findOne(objects, 'ServiceAccount', FLEET, RELEASE_NAMESPACE) as Any;
    expect(account.automountServiceAccountToken).toBe(false);
    const pod = workloadOf(objects, v).spec.template.spec;
    expect(pod.serviceAccountName).toBe(FLEET);
    expect(pod.automountServiceAccountToken).toBe(true);
    const [container] = pod.containers;
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.hostNetwork).toBeUndefined();
    expect(container.resources).toEqual(v.fleet.resources);
    if (v.securityContext.runAsUser === null) expect(JSON.stringify(pod)).not.toMatch(/runAsUser|fsGroup/);
  });

  test('settings: the contract env, the token from the release namespace, listener and probes', () => {
    const objects = render(name);
    const pod = workloadOf(objects, v).spec.template.spec;
    const [container] = pod.containers;
    expect(container.args).toEqual(['fleet']);
    const env = envOf(container);
    const fieldRef = (fieldPath: string) => ({ fieldRef: { fieldPath } });
    const ownEmulator = v.emulator.enabled && !v.tes.url;
    const expected: Record<string, Any> = {
      TES_URL: v.tes.url || `http://${FULLNAME}-emulator.${RELEASE_NAMESPACE}.svc:8080`,
      HEARTBEAT_INTERVAL: v.heartbeat.interval,
      HEARTBEAT_TIMEOUT: v.heartbeat.timeout,
      HEARTBEAT_MIN_GAP: v.heartbeat.minGap,
      FINAL_HEARTBEAT_DEADLINE: v.heartbeat.finalDeadline,
      HARDWARE_DETAILS: v.hardwareDetails,
      AGENT_CONTAINER_NAME: v.sidecar.containerName,
      EVENTS: v.events.enabled ? 'on' : 'off',
      HTTP_ADDR: v.fleet.httpAddr,
      LOG_LEVEL: v.logLevel,
      LOG_FORMAT: v.logFormat,
      POD_NAME: fieldRef('metadata.name'),
      POD_NAMESPACE: fieldRef('metadata.namespace'),
      FLEET_NAMESPACES: v.taskNamespaces.join(','),
      FLEET_SELECTOR: v.fleet.selector,
      FLEET_MAX_IN_FLIGHT: String(v.fleet.maxInFlight),
      FLEET_FINALIZER: v.fleet.finalizer ? 'on' : 'off',
      FLEET_FINALIZER_TIMEOUT: v.fleet.finalizerTimeout,
      FLEET_NONCE_SECRETS: v.fleet.nonceSecrets ? 'on' : 'off',
    };
    if (cluster) {
      Object.assign(expected, {
        FLEET_LEASE: v.fleet.lease.name,
        FLEET_LEASE_DURATION: v.fleet.lease.duration,
        FLEET_RENEW_DEADLINE: v.fleet.lease.renewDeadline,
        FLEET_RETRY_PERIOD: v.fleet.lease.retryPeriod,
      });
    } else {
      expected.FLEET_NODE_NAME = fieldRef('spec.nodeName');
    }
    if (ownEmulator) {
      expected.TES_ALLOW_HTTP = 'true';
      // Rule T7: the emulator's own Secret, in the release namespace beside the fleet.
      expected.TES_TOKEN = {
        secretKeyRef: { name: `${FULLNAME}-emulator-token`, key: 'token', optional: false },
      };
    } else if (v.tes.tokenSecret.asFile) {
      expected.TES_TOKEN_FILE = '/etc/tes-heartbeat/tes-token/token';
    } else {
      expected.TES_TOKEN = {
        secretKeyRef: {
          name: v.tes.tokenSecret.name,
          key: v.tes.tokenSecret.key,
          optional: v.tes.tokenSecret.optional,
        },
      };
    }
    expect(env).toEqual(expected);
    if (expected.TES_TOKEN_FILE) {
      const mount = container.volumeMounts.find((m: Any) =>
        expected.TES_TOKEN_FILE.startsWith(`${m.mountPath}/`),
      );
      expect(mount.readOnly).toBe(true);
      const volume = pod.volumes.find((vol: Any) => vol.name === mount.name);
      expect(volume.secret).toEqual({
        secretName: v.tes.tokenSecret.name,
        items: [{ key: v.tes.tokenSecret.key, path: 'token' }],
      });
    }
    // The probes and the PodMonitor reach the listener by its port name.
    const port = Number(v.fleet.httpAddr.split(':').at(-1));
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: port, protocol: 'TCP' }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  });

  test('the uninstall hook exactly when fleet.finalizer is on', () => {
    const hooks = render(name).filter(isHook);
    if (!v.fleet.finalizer) {
      expect(hooks).toEqual([]);
      expect(envOf(workloadOf(render(name), v).spec.template.spec.containers[0]).FLEET_FINALIZER).toBe('off');
      return;
    }
    expect(hooks.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual(
      [
        `ServiceAccount ${RELEASE_NAMESPACE}/${HOOK}`,
        `Job ${RELEASE_NAMESPACE}/${HOOK}`,
        ...v.taskNamespaces.flatMap((ns: string) => [`Role ${ns}/${HOOK}`, `RoleBinding ${ns}/${HOOK}`]),
      ].sort(),
    );
    for (const hook of hooks) {
      // After the release (and so every fleet that could add the finalizer again) is gone; the
      // RBAC runs first (lower weight) and everything goes once the Job succeeded.
      expect(hook.metadata.annotations?.['helm.sh/hook']).toBe('post-delete');
      expect(hook.metadata.annotations?.['helm.sh/hook-delete-policy']).toBe(
        'before-hook-creation,hook-succeeded',
      );
      expect(Number(hook.metadata.annotations?.['helm.sh/hook-weight'])).toBe(hook.kind === 'Job' ? 0 : -10);
    }
  });
});

describe('per node', () => {
  test('a DaemonSet placed by fleet.nodeSelector/tolerations/affinity, updated one node at a time, never surging', () => {
    const objects = render('nodePlaced');
    const v = effectiveValues(VALUE_SETS.nodePlaced as Values);
    const daemonSet = findOne(objects, 'DaemonSet', FLEET, RELEASE_NAMESPACE) as Any;
    const pod = daemonSet.spec.template;
    expect(pod.spec.nodeSelector).toEqual(v.fleet.nodeSelector);
    expect(pod.spec.tolerations).toEqual(v.fleet.tolerations);
    expect(pod.spec.affinity).toEqual(v.fleet.affinity);
    expect(pod.spec.priorityClassName).toBe('system-node-critical');
    expect(pod.metadata.annotations).toEqual(v.fleet.podAnnotations);
    expect(pod.metadata.labels).toMatchObject({ team: 'platform', ...daemonSet.spec.selector.matchLabels });
    // Two fleets on one node would both send for its runs: no surge.
    expect(daemonSet.spec.updateStrategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: '10%', maxSurge: 0 },
    });
    expect(findAll(objects, 'Deployment')).toEqual([]);
    expect(findAll(objects, 'PodDisruptionBudget')).toEqual([]);
    expect(findAll(objects, 'Role').filter((r) => r.metadata.name.endsWith('-lease'))).toEqual([]);
    // Defaults: one node at a time, no placement of its own.
    const plain = findOne(render('node'), 'DaemonSet', FLEET, RELEASE_NAMESPACE) as Any;
    expect(plain.spec.updateStrategy.rollingUpdate).toEqual({ maxUnavailable: 1, maxSurge: 0 });
    for (const key of ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName'])
      expect(plain.spec.template.spec).not.toHaveProperty(key);
  });
});

test('the grace period covers the finals due at SIGTERM (heartbeat.finalDeadline), at least 30 s', () => {
  const graceOf = (finalDeadline: string) =>
    (
      findOne(
        renderChart({ ...VALUE_SETS.node, heartbeat: { finalDeadline } }),
        'DaemonSet',
        FLEET,
        RELEASE_NAMESPACE,
      ) as Any
    ).spec.template.spec.terminationGracePeriodSeconds;
  expect(graceOf('10s')).toBe(30);
  expect(graceOf('1m')).toBe(65);
  expect(graceOf('1m30s')).toBe(95);
  expect(graceOf('1m0.5s')).toBe(66);
});

describe('per cluster', () => {
  test('a Deployment of fleet.replicas spread by hostname (ScheduleAnyway) with a PodDisruptionBudget (minAvailable 1)', () => {
    for (const [name, replicas] of [
      ['cluster', 2],
      ['clusterEmulator', 3],
    ] as const) {
      const objects = render(name);
      const deployment = findOne(objects, 'Deployment', FLEET, RELEASE_NAMESPACE) as Any;
      expect(deployment.spec.replicas).toBe(replicas);
      expect(deployment.spec.template.spec.topologySpreadConstraints).toEqual([
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: deployment.spec.selector.matchLabels },
        },
      ]);
      const pdb = findOne(objects, 'PodDisruptionBudget', FLEET, RELEASE_NAMESPACE) as Any;
      expect(pdb.spec).toEqual({
        minAvailable: 1,
        selector: { matchLabels: deployment.spec.selector.matchLabels },
      });
      expect(findAll(objects, 'DaemonSet')).toEqual([]);
    }
  });

  test('nothing else differs from the node scope but the workload, the Lease settings and the nodes verbs', () => {
    const node = renderChart({
      ...VALUE_SETS.cluster,
      fleet: { ...(VALUE_SETS.cluster as Any).fleet, scope: 'node' },
    });
    const cluster = render('cluster');
    const podOf = (objects: K8sObject[], kind: string): Any => {
      const spec = structuredClone(
        (findOne(objects, kind, FLEET, RELEASE_NAMESPACE) as Any).spec.template.spec,
      );
      delete spec.topologySpreadConstraints;
      const [c] = spec.containers;
      c.env = c.env.filter(
        (e: Any) => !/^FLEET_(NODE_NAME|LEASE|LEASE_DURATION|RENEW_DEADLINE|RETRY_PERIOD)$/.test(e.name),
      );
      return spec;
    };
    expect(podOf(cluster, 'Deployment')).toEqual(podOf(node, 'DaemonSet'));
    const kinds = (objects: K8sObject[]) =>
      objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort();
    const onlyCluster = kinds(cluster).filter((k) => !kinds(node).includes(k));
    expect(onlyCluster).toEqual(
      [
        `Deployment/${RELEASE_NAMESPACE}/${FLEET}`,
        `PodDisruptionBudget/${RELEASE_NAMESPACE}/${FLEET}`,
        `Role/${RELEASE_NAMESPACE}/${FLEET}-lease`,
        `RoleBinding/${RELEASE_NAMESPACE}/${FLEET}-lease`,
      ].sort(),
    );
  });
});

describe('the uninstall hook Job', () => {
  test('runs `fleet --release-finalizers` on the task namespaces with its own account, no TES token, no listener, hardened', () => {
    const objects = render('cluster');
    const job = findOne(objects, 'Job', HOOK, RELEASE_NAMESPACE) as Any;
    const pod = job.spec.template.spec;
    expect(pod.serviceAccountName).toBe(HOOK);
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.restartPolicy).toBe('Never');
    expect(findOne(objects, 'ServiceAccount', HOOK, RELEASE_NAMESPACE)).toMatchObject({
      automountServiceAccountToken: false,
    });
    const [container] = pod.containers;
    expect(container.args).toEqual(['fleet', '--release-finalizers']);
    const env = envOf(container);
    expect(env).toMatchObject({
      FLEET_NAMESPACES: TASK_NS.join(','),
      FLEET_SELECTOR: 'tes-heartbeat/fleet=true',
      FLEET_FINALIZER: 'on',
      HTTP_ADDR: 'off',
      EVENTS: 'off',
    });
    expect(env.TES_TOKEN).toBeUndefined();
    expect(env.TES_TOKEN_FILE).toBeUndefined();
    expect(env.FLEET_NODE_NAME).toBeUndefined();
    const fleet = (findOne(objects, 'Deployment', FLEET, RELEASE_NAMESPACE) as Any).spec.template.spec
      .containers[0];
    expect(container.image).toBe(fleet.image);
    expect(container.securityContext).toEqual(fleet.securityContext);
    // Bad settings (exit 2) fail the Job at once; an unreachable API server (exit 1) is retried.
    expect(job.spec.podFailurePolicy.rules).toEqual([
      { action: 'FailJob', onExitCodes: { containerName: container.name, operator: 'In', values: [2] } },
    ]);
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });
});

describe('metrics in fleet mode', () => {
  const values = {
    ...VALUE_SETS.cluster,
    metrics: {
      podMonitor: { enabled: true },
      serviceMonitor: { enabled: true },
      prometheusRule: { enabled: true },
    },
  };
  const objects = renderChart(values);

  test("the PodMonitor scrapes the fleet's pods by their metrics port; no webhook ServiceMonitor", () => {
    const podMonitor = findOne(objects, 'PodMonitor', FLEET, RELEASE_NAMESPACE) as Any;
    const deployment = findOne(objects, 'Deployment', FLEET, RELEASE_NAMESPACE) as Any;
    expect(podMonitor.spec.namespaceSelector).toEqual({ matchNames: [RELEASE_NAMESPACE] });
    expect(podMonitor.spec.selector).toEqual({ matchLabels: deployment.spec.selector.matchLabels });
    const ports = deployment.spec.template.spec.containers[0].ports.map((p: Any) => p.name);
    expect(ports).toContain(podMonitor.spec.podMetricsEndpoints[0].port);
    expect(findAll(objects, 'ServiceMonitor')).toEqual([]);
  });

  test('the agent alerts select the fleet job; Stale only for a leader with runs; no webhook alerts', () => {
    const rule = findAll(objects, 'PrometheusRule')[0] as Any;
    expect(rule.spec.groups.map((g: Any) => g.name)).toEqual(['tes-heartbeat.agents']);
    const [failing, stale] = rule.spec.groups[0].rules;
    const job = `${RELEASE_NAMESPACE}/${FLEET}`;
    expect(failing.expr).toContain(`job="${job}"`);
    expect(stale.expr).toContain(`tes_fleet_runs{job="${job}"} > 0`);
    expect(stale.expr).toContain(`tes_fleet_leader{job="${job}"} == 1`);
    expect(failing.annotations.description).toMatch(/^The fleet pod /);
  });
});

describe('the fleet alerts, run by promtool', () => {
  // Fleet pods as the operator labels them; each an hour-old process that never succeeded
  // unless said otherwise. Only the one that holds runs and sends may be stale.
  const job = `${RELEASE_NAMESPACE}/${FLEET}`;
  const series = (name: string, pod: string, values: string) => ({
    series: `${name}{job="${job}",namespace="${RELEASE_NAMESPACE}",pod="${pod}"}`,
    values,
  });
  const fleetPod = (
    pod: string,
    { runs, leader, success }: { runs: number; leader: number; success: string },
  ) => [
    series('tes_fleet_runs', pod, `${runs}x40`),
    series('tes_fleet_leader', pod, `${leader}x40`),
    series('tes_heartbeat_last_success_timestamp_seconds', pod, success),
    series('process_start_time_seconds', pod, '0x40'),
  ];

  test.each([
    ['a leader with runs and no success', { runs: 5, leader: 1, success: '0x40' }, true],
    ['a standby (not the leader)', { runs: 5, leader: 0, success: '0x40' }, false],
    ['a node fleet without task pods', { runs: 0, leader: 1, success: '0x40' }, false],
    ['a leader whose heartbeats succeed', { runs: 5, leader: 1, success: '0+30x40' }, false],
  ])('TesHeartbeatStale for %s: %s', (_what, pod, fires) => {
    const rule = findAll(
      renderChart({ ...VALUE_SETS.cluster, metrics: { prometheusRule: { enabled: true } } }),
      'PrometheusRule',
    )[0] as Any;
    const dir = mkdtempSync(path.join(tmpdir(), 'fleet-rules-'));
    try {
      writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
      const expected = fires
        ? [
            {
              exp_labels: { severity: 'warning', job, namespace: RELEASE_NAMESPACE, pod: 'fleet-a' },
              // $value is the staleness itself, not the gates' values.
              exp_annotations: {
                summary: `No heartbeat of ${RELEASE_NAMESPACE}/fleet-a succeeded recently`,
                description: `The fleet pod ${RELEASE_NAMESPACE}/fleet-a has had no successful heartbeat for 10m 0s (threshold 5m).`,
                runbook_url: rule.spec.groups[0].rules[1].annotations.runbook_url,
              },
            },
          ]
        : [];
      writeFileSync(
        path.join(dir, 'test.yaml'),
        stringify({
          rule_files: ['rules.yaml'],
          evaluation_interval: '30s',
          tests: [
            {
              interval: '30s',
              input_series: fleetPod('fleet-a', pod),
              alert_rule_test: [{ eval_time: '10m', alertname: 'TesHeartbeatStale', exp_alerts: expected }],
            },
          ],
        }),
      );
      const result = promtool(['test', 'rules', path.join(dir, 'test.yaml')]);
      expect(result.output).toContain('SUCCESS');
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('NOTES say what fleet mode installed and what a task pod needs', () => {
  const notes = renderNotes(VALUE_SETS.cluster);
  expect(notes).toContain(`Fleet mode, per cluster: the Deployment ${FLEET} (2 replicas`);
  expect(notes).toContain('tes-heartbeat/fleet: "true"');
  expect(notes).toContain(`helm uninstall\` runs the Job ${HOOK}`);
  expect(notes).not.toContain('tes-heartbeat/inject');
  const node = renderNotes(VALUE_SETS.node);
  expect(node).toContain(`the DaemonSet ${FLEET}`);
  expect(node).not.toContain('uninstall');
});

test.each([
  ['a renew deadline as long as the lease', { duration: '10s' }],
  ['a retry period as long as the renew deadline', { retryPeriod: '10s' }],
  ['a renew deadline within the jitter of the retry period (1.2 x)', { renewDeadline: '2.4s' }],
  ['a renew deadline longer than the lease', { duration: '1m', renewDeadline: '1.5m' }],
])('the install fails on elector timing the fleet refuses: %s', (_what, lease) => {
  const result = helm(['template', RELEASE, chartDir], {
    ...VALUE_SETS.cluster,
    fleet: { scope: 'cluster', lease },
  });
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(
    /fleet\.lease: duration \(.*\) > renewDeadline \(.*\) > 1\.2 x retryPeriod \(.*\) must hold/,
  );
});

test('sub-second and compound elector timing that holds is accepted', () => {
  const values = {
    ...VALUE_SETS.cluster,
    fleet: { scope: 'cluster', lease: { duration: '1m', renewDeadline: '2.5s', retryPeriod: '2s' } },
  };
  expect(helm(['template', RELEASE, chartDir], values).code).toBe(0);
});

describe('values.schema.json refuses bad fleet values, naming them', () => {
  test.each([
    ['an unknown mode', { mode: 'daemon' }, /\/mode/],
    ['an unknown scope', { fleet: { scope: 'zone' } }, /\/fleet\/scope/],
    ['zero replicas', { fleet: { replicas: 0 } }, /\/fleet\/replicas/],
    ['maxInFlight as a string', { fleet: { maxInFlight: '64' } }, /\/fleet\/maxInFlight/],
    ['finalizer as a string', { fleet: { finalizer: 'on' } }, /\/fleet\/finalizer/],
    ['nonceSecrets as a string', { fleet: { nonceSecrets: 'on' } }, /\/fleet\/nonceSecrets/],
    [
      'a bare number as a lease duration',
      { fleet: { lease: { duration: '15' } } },
      /\/fleet\/lease\/duration/,
    ],
    ['an unknown fleet key', { fleet: { replica: 2 } }, /additional properties 'replica'/],
    ['an empty selector', { fleet: { selector: '' } }, /\/fleet\/selector/],
    ['a percentage over 100', { fleet: { maxUnavailable: '150%' } }, /\/fleet\/maxUnavailable/],
    ['resources without limits', { fleet: { resources: { limits: null } } }, /\/fleet\/resources/],
    [
      'an emulator token Secret with a bad name',
      { emulator: { tokenSecret: { name: 'Tok_en' } } },
      /\/emulator\/tokenSecret\/name/,
    ],
  ])('%s', (_what, values, message) => {
    const result = helm(['template', RELEASE, chartDir], values as Values);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toMatch(message);
  });
});
