// Every alert's runbook_url opens its runbook (issue 16.2): by default the published
// docs/operations.md of the chart's own version, at a heading that exists there (GitHub's
// anchors); with metrics.prometheusRule.runbookBaseUrl, the operator's mirror of that page.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { anchors, readPage, renderReadmeInstall } from '../support/docs.ts';
import { chartDir, type K8sObject } from '../support/helm-chart.ts';

const chart = parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as {
  home: string;
  appVersion: string;
};

interface Alert {
  alert: string;
  annotations: Record<string, string>;
}

function alerts(objects: K8sObject[]): Alert[] {
  return objects
    .filter((o) => o.kind === 'PrometheusRule')
    .flatMap((o) => (o.spec as { groups: { rules: Alert[] }[] }).groups.flatMap((g) => g.rules))
    .filter((rule) => rule.alert !== undefined);
}

const RULES_ON = ['--set', 'metrics.prometheusRule.enabled=true'];

describe('runbook links', () => {
  const sections = anchors(readPage('docs/operations.md'));

  it.each<[string, string[], number]>([
    ['sidecar mode (four alerts)', RULES_ON, 4],
    ['fleet mode (no webhook alerts)', [...RULES_ON, '--set', 'mode=fleet'], 2],
  ])(
    '%s: every runbook_url is the published docs/operations.md of this version, at one of its headings',
    (_, extra, count) => {
      const rendered = alerts(renderReadmeInstall('tes-heartbeat', { extra }));
      expect(rendered).toHaveLength(count);
      const published = `${chart.home.replace(/\/$/, '')}/blob/v${chart.appVersion}/docs/operations.md`;
      expect(published).toMatch(/^https:\/\//);
      for (const { alert, annotations } of rendered) {
        const [page, anchor] = (annotations.runbook_url ?? '').split('#');
        expect(page, alert).toBe(published);
        expect(sections, `${alert}: #${anchor} is no heading of docs/operations.md`).toContain(anchor);
      }
    },
  );

  it('points at a mirror when runbookBaseUrl is set, keeping the anchors', () => {
    const mirror = 'https://wiki.example.org/ops/tes-heartbeat.html';
    const rendered = alerts(
      renderReadmeInstall('tes-heartbeat', {
        extra: [...RULES_ON, '--set', `metrics.prometheusRule.runbookBaseUrl=${mirror}`],
      }),
    );
    for (const { alert, annotations } of rendered) {
      const [page, anchor] = (annotations.runbook_url ?? '').split('#');
      expect(page, alert).toBe(mirror);
      expect(sections).toContain(anchor);
    }
  });

  it('knows a heading that is not there', () => {
    expect(sections).toContain('teswebhookdown');
    expect(sections).not.toContain('tes-webhook-down');
  });
});
