// Every chart object, Prometheus job and label the README and docs/ name exists in the chart
// as rendered by the README's own install line — with the README's release name and with
// another one (issue 16.1): an operator paged at night copies these names into kubectl.
//
// What counts as a name (the convention the docs follow, docs/verification.md):
// - a code span right after (or right before) a kind word: "the Secret `…`", "`…` ConfigMap";
// - a kubectl command line, in a code span or a shell block: `get`/`describe` resources and
//   names (`deploy,endpoints NAME`, `service/NAME`), and its `-l` selector;
// - "job `…`": a Prometheus job as the Prometheus operator names it (ServiceMonitor: the
//   Service's name; PodMonitor: `<namespace>/<name>`);
// - "label `k: v`" / "labelled `k=v`": a label the chart puts on an object or selects by.
// Placeholders: `<release>` is the release name, `<fullname>` the chart's base name (the
// release name when it contains `tes-heartbeat`, else `<release>-tes-heartbeat`),
// `<release namespace>` the release's namespace; a name with any other `<…>` is the user's
// (a pod, a task namespace) and not checked.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  codeSpans,
  docPages,
  fences,
  prose,
  readmeInstall,
  readPage,
  renderReadmeInstall,
  shellCommands,
  shellWords,
} from '../support/docs.ts';
import { chartDir, type K8sObject, repoRoot } from '../support/helm-chart.ts';

const install = readmeInstall();
const README_RELEASE = install[2] as string;
const OTHER_RELEASE = 'tasks-hb';
const namespaceOf = (words: string[]) => words[words.indexOf('--namespace') + 1] ?? 'default';
const RELEASE_NAMESPACE = namespaceOf(install);

const METRICS_ON =
  'metrics.podMonitor.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true';
/**
 * On top of the README's line: every optional object the docs talk about renders in one of
 * these. `without` drops the README's `--set` of those values (the emulator as the TES).
 */
const VARIANTS: (string[] | { without: string[]; extra: string[] })[] = [
  ['--set', METRICS_ON],
  ['--set', 'emulator.enabled=true'],
  { without: ['tes.url', 'tes.tokenSecret.name'], extra: ['--set', 'emulator.enabled=true'] },
  [
    '--set-file',
    `tes.caBundle=${path.join(repoRoot, 'test/fixtures/tls/ca.crt')}`,
    '--set',
    'tes.tokenSecret.asFile=true',
  ],
  ['--set', 'webhook.certManager.enabled=true'],
  ['--set', `mode=fleet,${METRICS_ON}`],
  ['--set', `mode=fleet,fleet.scope=cluster,fleet.finalizer=true,${METRICS_ON}`],
];

function render(release: string, variant: (typeof VARIANTS)[number]): K8sObject[] {
  return Array.isArray(variant)
    ? renderReadmeInstall(release, { extra: variant })
    : renderReadmeInstall(release, variant);
}

function fullname(release: string): string {
  return release.includes('tes-heartbeat') ? release : `${release}-tes-heartbeat`;
}

/** The doc's name under `release`, or undefined when it holds a placeholder of the user's. */
function expand(name: string, release: string): string | undefined {
  const expanded = name
    .replaceAll('<fullname>', fullname(release))
    .replaceAll('<release namespace>', RELEASE_NAMESPACE)
    .replaceAll('<release>', release);
  return expanded.includes('<') || expanded.includes('…') ? undefined : expanded;
}

const KIND_WORDS = [
  'MutatingWebhookConfiguration',
  'ClusterRoleBinding',
  'ClusterRole',
  'RoleBinding',
  'Role',
  'ServiceAccount',
  'ServiceMonitor',
  'PodMonitor',
  'PrometheusRule',
  'PodDisruptionBudget',
  'ConfigMap',
  'Secret',
  'Deployment',
  'DaemonSet',
  'Service',
  'Issuer',
  'Certificate',
  'Job',
  'Lease',
];

/** kubectl's resource names (plural, short) for the kinds. */
const KUBECTL_KINDS: Record<string, string> = {
  ...Object.fromEntries(
    KIND_WORDS.flatMap((k) => [
      [k.toLowerCase(), k],
      [`${k.toLowerCase()}s`, k],
    ]),
  ),
  cm: 'ConfigMap',
  sa: 'ServiceAccount',
  deploy: 'Deployment',
  ds: 'DaemonSet',
  svc: 'Service',
  pdb: 'PodDisruptionBudget',
  endpoints: 'Endpoints',
  ep: 'Endpoints',
  pod: 'Pod',
  pods: 'Pod',
  po: 'Pod',
};

interface Mention {
  page: string;
  what: string;
  kind: 'object' | 'job' | 'selector' | 'label';
  /** The object's kind, for `object`. */
  objectKind?: string;
  name: string;
}

/** kubectl command lines anywhere in a page: in code spans and in shell blocks. */
function kubectlLines(text: string): string[] {
  const lines = [
    ...codeSpans(text),
    ...fences(text)
      .filter((f) => /^(sh|bash|shell|console)?$/.test(f.info))
      .flatMap((f) => shellCommands(f.body)),
  ];
  return lines
    .filter((line) => /(^|[\s;&|(])kubectl\s/.test(line))
    .map((line) => line.slice(line.search(/kubectl\s/)).split('|')[0] as string);
}

const VALUE_FLAGS = new Set([
  '-n',
  '--namespace',
  '-l',
  '--selector',
  '-o',
  '--output',
  '-c',
  '--container',
  '--for',
  '-f',
]);

function kubectlMentions(page: string, line: string): Mention[] {
  const words = shellWords(line).slice(1);
  const mentions: Mention[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (VALUE_FLAGS.has(word)) {
      const value = words[++i] as string;
      if (word === '-l' || word === '--selector')
        mentions.push({ page, what: line, kind: 'selector', name: value });
    } else if (!word.startsWith('-')) positionals.push(word);
  }
  const [verb, resource, ...names] = positionals;
  const byName = (spec: string, name: string) => {
    for (const k of spec.split(',')) {
      const objectKind = KUBECTL_KINDS[k];
      if (!objectKind) throw new Error(`${page}: kubectl resource '${k}' unknown to this test: ${line}`);
      mentions.push({ page, what: line, kind: 'object', objectKind, name });
    }
  };
  if (verb === 'logs' || verb === 'port-forward' || verb === 'rollout') {
    for (const word of [resource, ...names])
      if (word?.includes('/')) byName(...(word.split('/') as [string, string]));
  } else if (verb === 'get' || verb === 'describe' || verb === 'edit' || verb === 'delete') {
    if (resource?.includes('/')) byName(...(resource.split('/') as [string, string]));
    else if (resource) for (const name of names) byName(resource, name);
  }
  return mentions;
}

function proseMentions(page: string, text: string): Mention[] {
  const body = prose(text);
  const mentions: Mention[] = [];
  const kinds = KIND_WORDS.join('|');
  for (const m of body.matchAll(new RegExp(`\\b(${kinds})s?\\s+\`([^\`]+)\``, 'g')))
    mentions.push({ page, what: m[0], kind: 'object', objectKind: m[1] as string, name: m[2] as string });
  for (const m of body.matchAll(new RegExp(`\`([^\`]+)\`\\s+(${kinds})\\b`, 'g')))
    mentions.push({ page, what: m[0], kind: 'object', objectKind: m[2] as string, name: m[1] as string });
  // A table row `| Kind, Kind | \`name\` | …`: the name of an object of each kind.
  for (const m of body.matchAll(/^\|([^|`]+)\|\s*`([^`]+)`\s*\|/gm)) {
    const words = (m[1] as string).split(/,|\band\b/).map((w) => w.trim().replace(/s$/, ''));
    if (words.every((w) => KIND_WORDS.includes(w)))
      for (const objectKind of words)
        mentions.push({ page, what: m[0], kind: 'object', objectKind, name: m[2] as string });
  }
  for (const m of body.matchAll(/\bjobs?\s+`([^`]+)`/g))
    mentions.push({ page, what: m[0], kind: 'job', name: m[1] as string });
  for (const m of body.matchAll(/\blabel(?:led|s)?\s+`([^`]+)`/g))
    mentions.push({ page, what: m[0], kind: 'label', name: m[1] as string });
  return mentions;
}

function mentions(): Mention[] {
  return docPages().flatMap((page) => {
    const text = readPage(page);
    return [
      ...proseMentions(page, text),
      ...kubectlLines(text).flatMap((line) => kubectlMentions(page, line)),
    ];
  });
}

/** `k=v,k2=v2`, `k: "v"` or a bare key, as pairs (a bare key has value undefined). */
function labelPairs(text: string): [string, string | undefined][] | undefined {
  const pairs: [string, string | undefined][] = [];
  for (const part of text.split(',')) {
    const m = /^\s*([a-z0-9./_-]+)\s*(?:(?:=|:)\s*"?([A-Za-z0-9._-]*)"?)?\s*$/i.exec(part);
    if (!m) return undefined;
    pairs.push([m[1] as string, m[2]]);
  }
  return pairs;
}

type Labels = Record<string, string>;

/** What one release renders, as the docs can name it. */
class Rendered {
  readonly objects: K8sObject[];
  constructor(release: string) {
    this.objects = VARIANTS.flatMap((extra) => render(release, extra));
  }

  has(kind: string, name: string): boolean {
    const lookFor = kind === 'Endpoints' ? 'Service' : kind; // a Service's Endpoints carry its name
    if (kind === 'Lease') return this.leaseNames().has(name);
    return this.objects.some((o) => o.kind === lookFor && o.metadata.name === name);
  }

  /** Leases are created by the fleet at run time: the name it is given and the RBAC for it. */
  private leaseNames(): Set<string> {
    const names = new Set<string>();
    for (const env of this.env()) if (env.name === 'FLEET_LEASE' && env.value) names.add(env.value);
    return names;
  }

  private env(): { name: string; value?: string }[] {
    return this.podSpecs().flatMap((spec) =>
      [...(spec.containers ?? []), ...(spec.initContainers ?? [])].flatMap((c) => c.env ?? []),
    );
  }

  private podSpecs(): {
    containers?: { env?: { name: string; value?: string }[] }[];
    initContainers?: { env?: { name: string; value?: string }[] }[];
  }[] {
    return this.objects.flatMap((o) => {
      const template = (o.spec as { template?: { spec?: unknown } } | undefined)?.template;
      return template?.spec ? [template.spec as never] : [];
    });
  }

  jobs(): Set<string> {
    const jobs = new Set<string>();
    for (const monitor of this.objects.filter((o) => o.kind === 'PodMonitor'))
      jobs.add(`${monitor.metadata.namespace}/${monitor.metadata.name}`);
    for (const monitor of this.objects.filter((o) => o.kind === 'ServiceMonitor')) {
      const selector = (monitor.spec as { selector?: { matchLabels?: Labels } }).selector?.matchLabels ?? {};
      for (const service of this.objects.filter((o) => o.kind === 'Service'))
        if (Object.entries(selector).every(([k, v]) => service.metadata.labels?.[k] === v))
          jobs.add(service.metadata.name);
    }
    return jobs;
  }

  /** Label sets on objects and pod templates, and the selectors the chart renders. */
  labelSets(): Labels[] {
    const sets: Labels[] = [];
    for (const o of this.objects) {
      if (o.metadata.labels) sets.push(o.metadata.labels);
      const spec = o.spec as Record<string, unknown> | undefined;
      const template = spec?.template as { metadata?: { labels?: Labels } } | undefined;
      if (template?.metadata?.labels) sets.push(template.metadata.labels);
      const selector = (spec?.selector as { matchLabels?: Labels } | undefined)?.matchLabels;
      if (selector) sets.push(selector);
      for (const webhook of (o as { webhooks?: { objectSelector?: { matchLabels?: Labels } }[] }).webhooks ??
        [])
        if (webhook.objectSelector?.matchLabels) sets.push(webhook.objectSelector.matchLabels);
    }
    for (const env of this.env())
      if (env.name === 'FLEET_SELECTOR' && env.value) {
        const pairs = labelPairs(env.value);
        if (pairs) sets.push(Object.fromEntries(pairs.map(([k, v]) => [k, v ?? ''])));
      }
    return sets;
  }

  /** Pod labels a selector can select: pod templates, and the task pods the chart selects. */
  selectable(pairs: [string, string | undefined][]): boolean {
    return this.labelSets().some((labels) =>
      pairs.every(([k, v]) => k in labels && (v === undefined || labels[k] === v)),
    );
  }
}

/** Every key path of values.yaml (`fleet.lease.name`), so that a value named after a kind word is not taken for an object. */
const VALUE_KEYS = new Set<string>();
(function collect(value: unknown, prefix: string) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  for (const [key, child] of Object.entries(value)) {
    VALUE_KEYS.add(`${prefix}${key}`);
    collect(child, `${prefix}${key}.`);
  }
})(parse(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')), '');

const releases = [README_RELEASE, OTHER_RELEASE].map((release) => ({
  release,
  rendered: new Rendered(release),
}));

/** The mentions that do not hold under `release`, described. */
function problems(all: Mention[], release: string, rendered: Rendered): string[] {
  const wrong: string[] = [];
  const jobs = rendered.jobs();
  for (const mention of all) {
    const name = expand(mention.name, release);
    if (name === undefined) continue;
    const where = `${mention.page}: ${mention.what} → '${name}'`;
    switch (mention.kind) {
      case 'object':
        // A value path (`fleet.lease.name`) is not a name.
        if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || VALUE_KEYS.has(name)) break;
        if (!rendered.has(mention.objectKind as string, name))
          wrong.push(`${where}: no ${mention.objectKind} of that name`);
        break;
      case 'job':
        if (!jobs.has(name)) wrong.push(`${where}: no such Prometheus job (${[...jobs].join(', ')})`);
        break;
      case 'selector':
      case 'label': {
        const pairs = labelPairs(name);
        if (pairs && !rendered.selectable(pairs))
          wrong.push(`${where}: no rendered object, pod template or selector has it`);
        break;
      }
    }
  }
  return wrong;
}

describe('names in the docs are the chart’s', () => {
  const all = mentions();

  it('reads the README’s install line and finds names to check on every page', () => {
    expect(install.slice(0, 2)).toEqual(['helm', 'install']);
    expect(README_RELEASE).toBe('tes-heartbeat');
    expect(all.filter((m) => m.kind === 'object').length).toBeGreaterThan(10);
    expect(all.filter((m) => m.kind === 'job').length).toBeGreaterThanOrEqual(2);
    expect(new Set(all.map((m) => m.page))).toEqual(expect.objectContaining({ size: expect.any(Number) }));
  });

  it.each(releases)(
    'every object, job and label named exists with release $release',
    ({ release, rendered }) => {
      expect(problems(all, release, rendered)).toEqual([]);
    },
  );

  it('catches a name that does not render, and one right for the README’s release only', () => {
    const [readme, other] = releases as [(typeof releases)[0], (typeof releases)[0]];
    const wrong = (name: string, objectKind = 'Secret'): Mention[] => [
      { page: 'x.md', what: 'probe', kind: 'object', objectKind, name },
    ];
    expect(problems(wrong('<fullname>-webhook-tls'), readme.release, readme.rendered)).toEqual([]);
    expect(
      problems(wrong('<release>-tes-heartbeat-webhook-tls'), readme.release, readme.rendered),
    ).toHaveLength(1);
    expect(problems(wrong('tes-heartbeat-webhook-tls'), other.release, other.rendered)).toHaveLength(1);
    expect(problems(wrong('<fullname>-webhook', 'Pod'), readme.release, readme.rendered)).toHaveLength(1);
    expect(
      problems(
        [{ page: 'x.md', what: 'probe', kind: 'job', name: '<fullname>-tes-heartbeat-webhook' }],
        readme.release,
        readme.rendered,
      ),
    ).toHaveLength(1);
    expect(
      problems(
        [{ page: 'x.md', what: 'probe', kind: 'selector', name: 'app.kubernetes.io/component=webhooks' }],
        readme.release,
        readme.rendered,
      ),
    ).toHaveLength(1);
  });
});
