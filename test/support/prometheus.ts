// A real Prometheus server (Debian's `prometheus`, installed by ./dev test) for the tests:
// started on a loopback port with its storage in a temporary directory, queried through its
// HTTP API; and PromQL's metric names, for checking that queries name what is exposed.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './agent-harness.ts';

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface ScrapeTarget {
  job: string;
  address: string;
  /** The metrics path (the monitor's `path`). */
  path: string;
  /** Target labels, as the Prometheus operator's relabelling would set them. */
  labels: Record<string, string>;
}

export interface Prometheus {
  url: string;
  /** An instant query; throws with Prometheus's error (a bad expression, an unknown function). */
  query(expr: string): Promise<PromSample[]>;
  /** A range query, `step` in seconds, times in Unix seconds. */
  queryRange(expr: string, start: number, end: number, step: number): Promise<PromSample[]>;
  /** GET an API path (`/api/v1/...`) and return its `data`. */
  api<T>(pathAndQuery: string): Promise<T>;
  alerts(): Promise<PromAlert[]>;
  stderr(): string;
  stop(): Promise<void>;
}

export function promtool(args: string[]): { code: number; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`promtool: ${result.error.message} (./dev test installs it)`);
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/**
 * Starts Prometheus with a 1 s scrape and evaluation interval, the given rule groups and one
 * static job per target, and waits until it answers queries.
 */
export async function startPrometheus(options: {
  targets: ScrapeTarget[];
  ruleGroups: unknown[];
}): Promise<Prometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'prometheus-'));
  await writeFile(path.join(dir, 'rules.yaml'), stringify({ groups: options.ruleGroups }));
  await writeFile(
    path.join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [path.join(dir, 'rules.yaml')],
      scrape_configs: options.targets.map((t) => ({
        job_name: t.job,
        metrics_path: t.path,
        static_configs: [{ targets: [t.address], labels: t.labels }],
      })),
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.on('error', (error) => {
    stderr += `${error.message} (./dev test installs prometheus)\n`;
  });

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  const prometheus: Prometheus = {
    url,
    api,
    query: async (expr) =>
      (await api<{ result: PromSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    queryRange: async (expr, start, end, step) =>
      (
        await api<{ result: PromSample[] }>(
          `/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${step}`,
        )
      ).result,
    alerts: async () => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await poll(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
        return fetch(`${url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      20_000,
      'Prometheus ready',
    );
  } catch (error) {
    await prometheus.stop();
    throw error;
  }
  return prometheus;
}

/**
 * Polls `check` every 250 ms (Prometheus evaluates once a second; no need to hammer it) until
 * it returns a truthy value; fails after `timeoutMs` naming `what`.
 */
export async function poll<T>(
  check: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Metric names exposed in a Prometheus text exposition (histogram and summary series included). */
export function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

const NOT_METRICS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects. A small lexer, not a parser: strings, label
 * matchers, ranges and grouping label lists are removed first; what is left that is neither a
 * keyword nor a function call nor part of a number is a metric name.
 */
export function metricNamesOf(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(m[1] as string);
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ');
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const at = m.index ?? 0;
    const word = m[0];
    if (NOT_METRICS.has(word.toLowerCase())) continue;
    if (at > 0 && /[0-9.]/.test(bare.charAt(at - 1))) continue; // 1e3, 0x1f
    if (/^\s*\(/.test(bare.slice(at + word.length))) continue; // a function call
    names.add(word);
  }
  return [...names];
}
