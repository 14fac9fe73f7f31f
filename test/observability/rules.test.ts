// `promtool test rules` on the chart's rendered alerts, with the unit tests of
// rules/tes-heartbeat-alerts.test.yaml: each alert fires when it should and stays quiet when
// it should not. Then each alert is sabotaged twice (always true, never true) to show the unit
// tests notice either.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { findAll, RELEASE, RELEASE_NAMESPACE, renderChart } from '../support/helm-chart.ts';
import { promtool } from '../support/prometheus.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
type Any = any;

const UNIT_TESTS = path.join(import.meta.dirname, 'rules', 'tes-heartbeat-alerts.test.yaml');
const ALERTS = ['TesHeartbeatFailing', 'TesHeartbeatStale', 'TesWebhookInjectionErrors', 'TesWebhookDown'];

// The unit tests' job names are the operator's for release `tes` in `tes-system`.
expect([RELEASE, RELEASE_NAMESPACE]).toEqual(['tes', 'tes-system']);
const rule = findAll(
  // The unit tests name the runbooks relative to the repository (the default is the published URL).
  renderChart({
    taskNamespaces: ['tasks'],
    tes: { url: 'https://tes.example.org' },
    metrics: { prometheusRule: { enabled: true, runbookBaseUrl: 'docs/operations.md' } },
  }),
  'PrometheusRule',
)[0] as Any;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'promtool-'));
  await copyFile(UNIT_TESTS, path.join(dir, 'alerts.test.yaml'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function unitTest(groups: Any): Promise<{ code: number; output: string }> {
  await writeFile(path.join(dir, 'rules.yaml'), stringify({ groups }));
  return promtool(['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
}

describe('promtool test rules', () => {
  test('every alert fires and stays quiet as the unit tests expect', async () => {
    const result = await unitTest(rule.spec.groups);
    expect(result.output).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  test.each(
    ALERTS.flatMap((alert) => [
      [alert, 'always', 'vector(1)'],
      [alert, 'never', 'vector(1) > 1'],
    ]),
  )('the unit tests fail when %s is %s true', async (alert, _, expr) => {
    const groups = structuredClone(rule.spec.groups);
    const target = groups.flatMap((g: Any) => g.rules).find((r: Any) => r.alert === alert);
    target.expr = expr;
    const result = await unitTest(groups);
    expect(result.output).toContain(`alertname: ${alert}`);
    expect(result.code).not.toBe(0);
  });
});
