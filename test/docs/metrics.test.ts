// The metric names in docs/ are the ones served (issue 16.3): every `tes_*`, `process_*` or
// `nodejs_*` name the docs write in code is served by the built agent, webhook or fleet, with
// the labels the docs give it; and every `tes_*` family they serve is in the docs.
// prom-client's standard process metrics need not be listed one by one, but the docs must
// say they are served ("the standard process metrics").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, getListener, startCli, stopAfterEach } from '../support/agent-harness.ts';
import { codeSpans, docPages, prose, readPage } from '../support/docs.ts';
import { waitFor } from '../support/fake-clock.ts';
import { containerStatus, type FakeKube, startFakeKube, testPod } from '../support/fake-kube-api.ts';
import { FaultTes } from '../support/fault-tes.ts';
import { webhookEnv } from '../support/webhook-helpers.ts';

const after = stopAfterEach();

/** A metric as the docs write it: `name` or `name{label="a"|"b", other}`. */
interface DocMetric {
  page: string;
  name: string;
  labels: string[];
}

const METRIC = /^((?:tes|process|nodejs)_[a-z0-9_]+)(?:\{([^}]*)\})?$/;

function docMetrics(): DocMetric[] {
  return docPages().flatMap((page) => {
    const text = readPage(page);
    const inCode = codeSpans(text).flatMap((span) => {
      const m = METRIC.exec(span);
      if (!m) return [];
      const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*=/g)].map((l) => l[1] as string);
      return [{ page, name: m[1] as string, labels }];
    });
    // A metrics table: `| \`name\` | type | \`label\`: values | …`.
    const inTables = [...prose(text).matchAll(/^\|\s*`([a-z0-9_]+)`\s*\|[^|]*\|([^|]*)\|/gm)].flatMap((m) =>
      METRIC.test(m[1] as string)
        ? [
            {
              page,
              name: m[1] as string,
              labels: [...(m[2] as string).matchAll(/`([a-zA-Z_][a-zA-Z0-9_]*)`:/g)].map(
                (l) => l[1] as string,
              ),
            },
          ]
        : [],
    );
    return [...inCode, ...inTables];
  });
}

/** What one process serves: each family with the label names seen on its samples. */
type Served = Map<string, Set<string>>;

function parseExposition(text: string): Served {
  const served: Served = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) served.set(m[1] as string, new Set());
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!m) continue;
    const family = [...served.keys()].find(
      (f) =>
        m[1] === f ||
        (/^_(bucket|sum|count|total)$/.test((m[1] as string).slice(f.length)) &&
          (m[1] as string).startsWith(f)),
    );
    if (!family) continue;
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g))
      if (l[1] !== 'le') served.get(family)?.add(l[1] as string);
  }
  return served;
}

/** A doc name as its family: a histogram's `_bucket`, `_sum`, `_count` belong to it. */
function familyOf(name: string, served: Served): string | undefined {
  if (served.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return served.has(base) ? base : undefined;
}

let tes: FaultTes;
let kube: FakeKube;
beforeAll(async () => {
  tes = await new FaultTes().start();
  kube = await startFakeKube();
  kube.server.set(
    'pods',
    testPod({
      name: 'task-pod',
      namespace: 'tasks',
      containers: ['main', 'tes-heartbeat'],
      nodeName: 'node-1',
      status: {
        phase: 'Running',
        containerStatuses: ['main', 'tes-heartbeat'].map((n) => containerStatus(n)),
      },
    }),
  );
});
afterAll(async () => {
  await tes?.close();
  await kube?.close();
});

const common = (port: number) => ({
  KUBECONFIG: kube.kubeconfigPath,
  TES_URL: tes.url,
  HEARTBEAT_INTERVAL: '200ms',
  HEARTBEAT_MIN_GAP: '0s',
  HTTP_ADDR: `127.0.0.1:${port}`,
  HARDWARE_DETAILS: 'off',
  JOB_RETRY_COUNT: '0',
});

/** Starts one component and returns its /metrics once it has counted something. */
const components: Record<string, () => Promise<string>> = {
  agent: async () => {
    const port = await freePort();
    after.agent({ ...common(port), TES_RUN_ID: 'run-metrics', POD_NAME: 'task-pod', POD_NAMESPACE: 'tasks' });
    await waitFor(() => tes.requests.some((r) => r.runId === 'run-metrics'), 10_000, 'a heartbeat');
    return (await getListener(port, '/metrics')).body;
  },
  webhook: async () => {
    const port = await freePort();
    const child = spawnChild(['webhook'], { ...webhookEnv, HTTP_ADDR: `127.0.0.1:${port}` });
    return waitFor(
      async () =>
        child.exitCode === null && (await getListener(port, '/metrics').catch(() => undefined))?.body,
      10_000,
      'the webhook serving /metrics',
    ) as Promise<string>;
  },
  fleet: async () => {
    const port = await freePort();
    spawnChild(['fleet'], {
      ...common(port),
      FLEET_NODE_NAME: 'node-1',
      FLEET_NAMESPACES: 'tasks',
      POD_NAME: 'fleet-pod',
      POD_NAMESPACE: 'tes-heartbeat',
    });
    return waitFor(
      async () => (await getListener(port, '/metrics').catch(() => undefined))?.body,
      10_000,
      'the fleet serving /metrics',
    ) as Promise<string>;
  },
};

/** The built CLI running `args`, killed after the test. */
function spawnChild([command = '', ...args]: string[], env: Record<string, string>) {
  const { child, exited } = startCli(command, env, args);
  after.defer(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  return child;
}

describe('metric names in the docs are the served ones', () => {
  const documented = docMetrics();
  const served = new Map<string, Served>();

  beforeAll(async () => {
    for (const [name, start] of Object.entries(components)) served.set(name, parseExposition(await start()));
  }, 60_000);

  it('finds metric names in the docs and serves some from each component', () => {
    expect(documented.length).toBeGreaterThan(5);
    for (const [name, families] of served)
      expect(
        [...families.keys()].some((f) => f.startsWith('tes_')),
        name,
      ).toBe(true);
    expect(served.has('fleet')).toBe(true);
  });

  it('every metric the docs name is served, with the labels they give it', () => {
    const wrong: string[] = [];
    for (const metric of documented) {
      const where = [...served].flatMap(([component, families]) => {
        const family = familyOf(metric.name, families);
        return family ? [{ component, family, labels: families.get(family) as Set<string> }] : [];
      });
      if (where.length === 0) {
        wrong.push(`${metric.page}: ${metric.name} is not served`);
        continue;
      }
      for (const label of metric.labels)
        if (!where.some((w) => w.labels.size === 0 || w.labels.has(label)))
          wrong.push(
            `${metric.page}: ${metric.name} has no label ${label} (served: ${where.map((w) => [...w.labels].join(',')).join(' | ')})`,
          );
    }
    expect(wrong).toEqual([]);
  });

  it('every tes_* metric served is in the docs; the standard process metrics are said to be there', () => {
    const names = new Set(documented.map((m) => m.name.replace(/_(bucket|sum|count)$/, '')));
    const missing = [...served].flatMap(([component, families]) =>
      [...families.keys()]
        .filter((f) => f.startsWith('tes_') && !names.has(f))
        .map((f) => `${component}: ${f}`),
    );
    expect(missing).toEqual([]);
    const processMetrics = [...served.values()]
      .flatMap((f) => [...f.keys()])
      .filter((f) => /^(process|nodejs)_/.test(f));
    expect(processMetrics.length).toBeGreaterThan(0);
    expect(docPages().some((page) => /the standard process metrics/.test(readPage(page)))).toBe(true);
  });
});
