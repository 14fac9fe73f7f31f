// Runs the real helm binary (extracted by scripts/helm.mjs from an npm package) against the
// chart, and parses what it renders.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const chartDir = path.join(repoRoot, 'charts/tes-heartbeat');

/** A Kubernetes object as rendered: only the fields every object has are typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

let helmBinary: string | undefined;

export function helmPath(): string {
  helmBinary ??= execFileSync(process.execPath, [path.join(repoRoot, 'scripts/helm.mjs'), '--path'], {
    encoding: 'utf8',
  }).trim();
  return helmBinary;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** An environment with no cluster and no user config: a clean, offline helm. */
function helmEnv(dir: string, kubeconfig?: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    HELM_CACHE_HOME: path.join(dir, 'cache'),
    HELM_CONFIG_HOME: path.join(dir, 'config'),
    HELM_DATA_HOME: path.join(dir, 'data'),
    KUBECONFIG: kubeconfig ?? path.join(dir, 'no-kubeconfig'),
  };
}

/** helm ARGS, with the values (if any) passed as a file. Never throws on a non-zero exit. */
export function helm(args: string[], values?: Record<string, unknown>): HelmResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'helm-values-'));
  try {
    const extra: string[] = [];
    if (values) {
      const file = path.join(dir, 'values.json');
      writeFileSync(file, JSON.stringify(values)); // JSON is YAML
      extra.push('--values', file);
    }
    const result = spawnSync(helmPath(), [...args, ...extra], { encoding: 'utf8', env: helmEnv(dir) });
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** helm ARGS without blocking the event loop (a fake API server in this process must answer). */
export async function helmAsync(
  args: string[],
  values: Record<string, unknown>,
  kubeconfig: string,
): Promise<HelmResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'helm-values-'));
  try {
    const file = path.join(dir, 'values.json');
    await writeFile(file, JSON.stringify(values));
    return await new Promise((resolve) => {
      execFile(
        helmPath(),
        [...args, '--values', file],
        { encoding: 'utf8', env: helmEnv(dir, kubeconfig) },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every non-empty YAML document of a multi-document text. */
export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && o !== undefined);
}

export const RELEASE = 'tes';
export const RELEASE_NAMESPACE = 'tes-system';
/** The chart's fullname for RELEASE: the prefix of every object it names. */
export const FULLNAME = `${RELEASE}-tes-heartbeat`;
/** The chart's appVersion (the package's version). */
export const APP_VERSION = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'))
  .version as string;

/** `helm template` of the chart, as a result (for installs that must fail). */
export function templateChart(values: Record<string, unknown>): HelmResult {
  return helm(['template', RELEASE, chartDir, '--namespace', RELEASE_NAMESPACE], values);
}

/** renderChart of named value sets, each rendered once (helm is slow). */
export function renderValueSets(
  sets: Record<string, Record<string, unknown>>,
): (name: string) => K8sObject[] {
  const rendered = new Map<string, K8sObject[]>();
  return (name) => {
    let objects = rendered.get(name);
    if (!objects) {
      objects = renderChart(sets[name]);
      rendered.set(name, objects);
    }
    return objects;
  };
}

/** Effective values: the chart's defaults with `values` merged over them (objects deeply). */
// biome-ignore lint/suspicious/noExplicitAny: values are walked dynamically
export function effectiveValues(values: Record<string, unknown>): any {
  const defaults = parse(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8'));
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const merge = (base: unknown, over: unknown): unknown => {
    if (!isObject(base) || !isObject(over)) return over;
    const out = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  };
  return merge(defaults, values);
}

/** A rendered container's env by name: the value, or its valueFrom. */
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are walked dynamically
export function envOf(container: any): Record<string, any> {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  return Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
}

/** `helm template` of the chart; throws with helm's message when it fails. */
export function renderChart(values: Record<string, unknown> = {}, extraArgs: string[] = []): K8sObject[] {
  const result = helm(
    ['template', RELEASE, chartDir, '--namespace', RELEASE_NAMESPACE, ...extraArgs],
    values,
  );
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

/** The NOTES text of an install, rendered client-side. */
export function renderNotes(values: Record<string, unknown> = {}): string {
  const result = helm(
    ['install', RELEASE, chartDir, '--namespace', RELEASE_NAMESPACE, '--dry-run=client', '--hide-secret'],
    values,
  );
  if (result.code !== 0) throw new Error(`helm install --dry-run failed: ${result.stderr}`);
  const at = result.stdout.indexOf('\nNOTES:\n');
  if (at < 0) throw new Error('no NOTES in the output');
  return result.stdout.slice(at + '\nNOTES:\n'.length);
}

export function findAll(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function findOne(objects: K8sObject[], kind: string, name: string, namespace?: string): K8sObject {
  const found = objects.filter(
    (o) =>
      o.kind === kind &&
      o.metadata.name === name &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind} ${namespace ?? '*'}/${name}, found ${found.length}`);
  return found[0] as K8sObject;
}
