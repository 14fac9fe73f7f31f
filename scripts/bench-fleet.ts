// Fleet mode at scale: the built `tes-heartbeat fleet`, as the image runs it (the
// Dockerfile's node flags and malloc settings), against the fake Kubernetes API server
// (in this process, over HTTPS) holding N task pods spread over namespaces and nodes,
// and a TES stub in a child process that answers every heartbeat 200 `{}` and records
// per run the monotonic arrival time of each one (and the bearer it came with). The
// fleet is the only thing in its process, so its /proc figures are its own.
//
// Scenarios (`--scenario a,b,…`, default all but fast-10000: about 18 minutes;
// `--quick` shortens each):
//   node-110        110 pods on one node (FLEET_NODE_NAME), 30 s interval, plus
//                   restarts of the fleet: how long a DaemonSet rollout pauses a node
//   engine-1000     1,000 pods, one process, 30 s interval
//   engine-10000    10,000 pods, one process, 30 s interval
//   fast-110, fast-1000, fast-10000   the same at a 2 s interval (`--fast-interval`)
//   failover        per cluster: 10,000 pods, a leader and a standby (FLEET_FINALIZER
//                   off; `--finalizer`: on), the leader
//                   killed with SIGKILL just after some pods complete
//   sidecars        the same harness on a few sidecars (the agent), for comparison
// Per scenario: resident (VmRSS, VmHWM) and private (RssAnon) memory, CPU over the
// steady window, every run's largest gap between heartbeats (p50/p99/max), and
// pod change → heartbeat received at the TES for a sample of pods.
// Run: `node scripts/bench-fleet.ts [--quick] [--scenario node-110,fast-1000]` after
// `npm run build`; `--memory-limit <MiB>` (root) runs each fleet under a pod-like memory limit. Prints one JSON object; docs/performance.md ("Fleet") quotes it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeObject } from '../src/testing/fake-kube-api-server.ts';
import {
  cli,
  cpuSeconds,
  imageEnv,
  imageFlags,
  percentile,
  procStatus,
  root,
  round,
  tls,
  triedEnv,
} from './bench-support.ts';

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every process of this machine. */
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const HEARTBEAT_PATH = /^\/v1\/tasks\/runs\/([^/]+):heartbeat$/;
const MARKER = /BenchChange-(\d+)/;

// ---- the TES stub (child process) ----

interface StubReport {
  /** Per run: arrival times (ms, monotonic), the index of the bearer each came with, finals received. */
  runs: Record<string, { t: number[]; bearer: number[]; finals: number }>;
  /** Bearer tokens in index order. */
  bearers: string[];
  /** Change marker → first arrival carrying it. */
  markers: Record<string, number>;
  other: number;
}

function tesStub(): void {
  let report: StubReport = { runs: {}, bearers: [], markers: {}, other: 0 };
  const server = createServer((req, res) => {
    const t = mono();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const match = HEARTBEAT_PATH.exec(req.url ?? '');
      if (!match) report.other++;
      else {
        const runId = decodeURIComponent(match[1] as string);
        const body = Buffer.concat(chunks).toString();
        const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        let b = report.bearers.indexOf(bearer);
        if (b < 0) b = report.bearers.push(bearer) - 1;
        let run = report.runs[runId];
        if (!run) {
          run = { t: [], bearer: [], finals: 0 };
          report.runs[runId] = run;
        }
        run.t.push(t);
        run.bearer.push(b);
        if (body.includes('"lastHeartbeat":true')) run.finals++;
        const marker = MARKER.exec(body)?.[1];
        if (marker !== undefined) report.markers[marker] ??= t;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  // A TES behind a load balancer keeps idle connections about a minute.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ type: 'listening', port: (server.address() as { port: number }).port });
  });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'reset') {
      report = { runs: {}, bearers: [], markers: {}, other: 0 };
      process.send?.({ type: 'reset' });
    } else if (message.type === 'count') {
      process.send?.({ type: 'count', runs: Object.keys(report.runs).length });
    } else if (message.type === 'report') process.send?.({ type: 'report', report });
  });
  process.on('disconnect', () => process.exit(0));
}

class Stub {
  private readonly child: ChildProcess;
  readonly url: string;
  private constructor(child: ChildProcess, url: string) {
    this.child = child;
    this.url = url;
  }

  static async start(): Promise<Stub> {
    const child = spawn(process.execPath, [import.meta.filename, '--tes-stub'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve) =>
      child.once('message', (m: { port: number }) => resolve(m.port)),
    );
    return new Stub(child, `http://127.0.0.1:${port}`);
  }

  private ask<T>(type: string): Promise<T> {
    return new Promise((resolve) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== type) return;
        this.child.off('message', onMessage);
        resolve(m as T);
      };
      this.child.on('message', onMessage);
      this.child.send({ type });
    });
  }

  reset = () => this.ask('reset');
  runsSeen = async () => (await this.ask<{ runs: number }>('count')).runs;
  report = async () => (await this.ask<{ report: StubReport }>('report')).report;
  close = () => this.child.disconnect();
}

// ---- the cluster: pods, their Jobs, nodes ----

const NAMESPACES = 10;
const FLEET_NAMESPACE = 'tes-heartbeat';
// A real capture (test/fixtures/pods/README.md) with a Job owner, the fleet's label and
// annotations, and managedFields, as the API server serves a pod by default: ~7 KB.
const capture = JSON.parse(
  readFileSync(path.join(root, 'test/fixtures/pods/kind-1.33-list-item.json'), 'utf8'),
) as KubeObject;
const nodeTemplate = JSON.parse(JSON.stringify((await import('../src/demo/scenario.ts')).node)) as KubeObject;

function nodeObject(name: string): KubeObject {
  return { ...structuredClone(nodeTemplate), metadata: { ...nodeTemplate.metadata, name } };
}

/**
 * A run's nonce as a TES would issue it: random-looking from its first character. (With
 * a common prefix — `nonce-<i>`, as this benchmark first had — the scrubber files every
 * nonce under the same 6-character key: src/secrets.ts.) `--nonce-prefix P` tries that.
 */
const noncePrefix = process.argv.includes('--nonce-prefix')
  ? (process.argv[process.argv.indexOf('--nonce-prefix') + 1] ?? '')
  : '';
const nonce = (i: number) =>
  noncePrefix + createHash('sha256').update(`nonce ${i}`).digest('base64url').slice(0, 22);

function taskPod(i: number, namespace: string, nodeName: string, jobUid: string, startedAt: string) {
  const pod = structuredClone(capture) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
    status: { containerStatuses: { state: unknown; name: string }[] } & Record<string, unknown>;
  };
  const name = `task-${i}`;
  const { uid: _uid, resourceVersion: _rv, ...metadata } = pod.metadata;
  pod.metadata = {
    ...metadata,
    name,
    namespace,
    generateName: `${name}-`,
    labels: { 'batch.kubernetes.io/job-name': name, 'tes-heartbeat/fleet': 'true' },
    annotations: {
      ...(metadata.annotations as Record<string, string>),
      'tes-heartbeat/run-id': `run-${i}`,
      'tes-heartbeat/nonce': nonce(i),
    },
    ownerReferences: [
      { apiVersion: 'batch/v1', kind: 'Job', name, uid: jobUid, controller: true, blockOwnerDeletion: true },
    ],
    managedFields: managedFields(startedAt),
  };
  pod.spec.nodeName = nodeName;
  pod.spec.restartPolicy = 'Never';
  for (const status of pod.status.containerStatuses) status.state = { running: { startedAt } };
  pod.status.startTime = startedAt;
  return pod as unknown as KubeObject;
}

function managedFields(time: string): unknown[] {
  const fields = (keys: string[]) => Object.fromEntries(keys.map((k) => [`f:${k}`, {}]));
  return [
    {
      manager: 'kube-controller-manager',
      operation: 'Update',
      apiVersion: 'v1',
      time,
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:labels': fields(['batch.kubernetes.io/job-name', 'tes-heartbeat/fleet']) },
        'f:spec': { 'f:containers': fields(['image', 'name', 'ports', 'resources', 'command', 'env']) },
      },
    },
    {
      manager: 'kubelet',
      operation: 'Update',
      apiVersion: 'v1',
      time,
      fieldsType: 'FieldsV1',
      subresource: 'status',
      fieldsV1: {
        'f:status': fields([
          'conditions',
          'containerStatuses',
          'hostIP',
          'hostIPs',
          'phase',
          'podIP',
          'podIPs',
        ]),
      },
    },
  ];
}

interface Cluster {
  kube: import('../src/testing/fake-kube-api-server.ts').FakeKubeApiServer;
  kubeconfig: string;
  close(): Promise<void>;
}

/** `onNode` pods on node-0 and `elsewhere` on other nodes (spread over `nodes` nodes), over 10 namespaces. */
async function cluster(options: { onNode: number; elsewhere: number; nodes: number }): Promise<Cluster> {
  const { FakeKubeApiServer } = await import('../src/testing/fake-kube-api-server.ts');
  const kube = await FakeKubeApiServer.start({
    tls: { cert: tls('server.crt'), key: tls('server.key'), ca: tls('ca.crt') },
    historyLimit: 50_000,
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-fleet-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, kube.kubeconfig(FLEET_NAMESPACE));
  for (let n = 0; n < options.nodes; n++) kube.set('nodes', nodeObject(`node-${n}`));
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const total = options.onNode + options.elsewhere;
  for (let i = 0; i < total; i++) {
    const namespace = `tasks-${i % NAMESPACES}`;
    const nodeName = i < options.onNode ? 'node-0' : `node-${1 + (i % Math.max(1, options.nodes - 1))}`;
    const job = kube.set('jobs', {
      metadata: { name: `task-${i}`, namespace },
      spec: { backoffLimit: 3, template: { spec: { containers: [] } } },
      status: { active: 1 },
    });
    kube.set('pods', taskPod(i, namespace, nodeName, job.metadata?.uid as string, startedAt));
  }
  return {
    kube,
    kubeconfig,
    close: async () => {
      await kube.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---- the processes measured ----

interface Measured {
  name: string;
  child: ChildProcess;
  pid: number;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  logFile: string;
}

/** `--profile`: fleets write a CPU profile on exit and a heap snapshot on SIGUSR2, into bench/results/. */
const profileDir = process.argv.includes('--profile') ? path.join(root, 'bench/results') : undefined;

/** Every process started, killed at the end if still running (a scenario that fails leaves none behind). */
const started = new Set<ChildProcess>();

/**
 * `--memory-limit <MiB>` (root, cgroup v1 memory controller): each fleet runs in a memory
 * cgroup with that limit, below this process's own, as a pod's limit would put it — Node
 * sizes V8's heap from it (uv_get_constrained_memory).
 */
const memoryLimitMiB = process.argv.includes('--memory-limit')
  ? Number(process.argv[process.argv.indexOf('--memory-limit') + 1])
  : undefined;
const memoryCgroup = memoryLimitMiB
  ? `/sys/fs/cgroup/memory/${/:memory:\/(.*)/.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? ''}/tes-heartbeat-bench-fleet`.replace(
      /\/+/g,
      '/',
    )
  : undefined;
if (memoryCgroup && memoryLimitMiB) {
  mkdirSync(memoryCgroup, { recursive: true });
  writeFileSync(`${memoryCgroup}/memory.limit_in_bytes`, String(memoryLimitMiB * 2 ** 20));
}

function startProcess(name: string, command: string, env: Record<string, string>, logDir: string): Measured {
  const logFile = path.join(logDir, `${name}.log`);
  const log = openSync(logFile, 'w');
  const startedAt = mono();
  const profile =
    profileDir && command === 'fleet'
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--heapsnapshot-signal=SIGUSR2']
      : [];
  const argv = [...imageFlags, ...profile, cli, command];
  // In the cgroup: the shell joins it and execs Node, so the pid measured is the fleet's.
  const [file, args] = memoryCgroup
    ? [
        '/bin/sh',
        ['-c', `echo $$ > ${memoryCgroup}/cgroup.procs && exec "$0" "$@"`, process.execPath, ...argv],
      ]
    : [process.execPath, argv];
  const child = spawn(file, args, {
    ...(profileDir ? { cwd: profileDir } : {}),
    stdio: ['ignore', log, log],
    env: {
      PATH: process.env.PATH ?? '',
      ...imageEnv,
      HTTP_ADDR: 'off',
      LOG_LEVEL: 'warn',
      ...triedEnv,
      ...env,
    },
  });
  closeSync(log);
  started.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: mono() })),
  );
  return { name, child, pid: child.pid as number, startedAt, exited, logFile };
}

function startFleet(
  name: string,
  world: { stub: Stub; cluster: Cluster; logDir: string },
  env: Record<string, string>,
): Measured {
  return startProcess(
    name,
    'fleet',
    {
      TES_URL: world.stub.url,
      TES_TOKEN: `bench-token-${name}`, // each process its own: the stub tells senders apart
      KUBECONFIG: world.cluster.kubeconfig,
      POD_NAME: name,
      POD_NAMESPACE: FLEET_NAMESPACE,
      ...env,
    },
    world.logDir,
  );
}

async function stopProcess(p: Measured): Promise<{ code: number | null; exitMs: number }> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return { code: p.child.exitCode, exitMs: 0 };
  const t0 = mono();
  p.child.kill('SIGTERM');
  const { code, at } = await p.exited;
  return { code, exitMs: round(at - t0) };
}

async function logTail(p: Measured): Promise<string[]> {
  return (await readFile(p.logFile, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).slice(-5);
}

/** What the processes asked of the API server: connections (TLS handshakes) and requests by kind. */
function kubeApiUse(cl: Cluster) {
  const kinds: Record<string, number> = {};
  for (const r of cl.kube.requests) {
    const kind = `${r.method} ${r.path.replace(/\/namespaces\/[^/]+/, '/namespaces/*').replace(/\/(pods|jobs|nodes|events|leases)\/[^/]+$/, '/$1/*')}${r.watch ? ' (watch)' : ''}`;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return { connections: cl.kube.connections, requests: kinds };
}

/** VmRSS, RssAnon and CPU every `everyMs`, from /proc. */
class Sampler {
  readonly samples: { t: number; rssMiB: number; rssAnonMiB: number; cpuS: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly pid: number;
  constructor(pid: number, everyMs = 2_000) {
    this.pid = pid;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    try {
      this.samples.push({ t: mono(), ...procStatus(this.pid), cpuS: cpuSeconds(this.pid) });
    } catch {
      // the process is gone
    }
  }
  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
  /** Memory and CPU between two monotonic times. */
  window(from: number, to: number) {
    const inside = this.samples.filter((s) => s.t >= from && s.t <= to);
    const first = inside[0];
    const last = inside.at(-1);
    if (!first || !last || last === first) return undefined;
    return {
      seconds: round((last.t - first.t) / 1000),
      cpuCores: round((last.cpuS - first.cpuS) / ((last.t - first.t) / 1000), 4),
      residentMiB: {
        mean: round(inside.reduce((s, x) => s + x.rssMiB, 0) / inside.length),
        max: round(Math.max(...inside.map((s) => s.rssMiB))),
      },
      privateRssAnonMiB: {
        mean: round(inside.reduce((s, x) => s + x.rssAnonMiB, 0) / inside.length),
        max: round(Math.max(...inside.map((s) => s.rssAnonMiB))),
      },
    };
  }
}

/** SIGUSR2 (--heapsnapshot-signal): waits until the snapshot file stops growing. */
async function heapSnapshot(p: Measured): Promise<void> {
  const dir = profileDir as string;
  const before = new Set(await readdir(dir));
  p.child.kill('SIGUSR2');
  let size = -1;
  for (;;) {
    await sleep(2_000);
    const file = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    const now = file ? (await stat(path.join(dir, file))).size : -1;
    if (file && now === size) {
      process.stderr.write(
        `bench-fleet: heap snapshot ${path.join(dir, file)} (${round(now / 2 ** 20)} MiB)\n`,
      );
      return;
    }
    size = now;
  }
}

function highWaterMiB(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? round(Number(kb) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = mono() + timeoutMs;
  while (!(await check())) {
    if (mono() > deadline) throw new Error(`bench-fleet: timed out waiting for ${what}`);
    await sleep(200);
  }
}

const stats = (xs: number[], digits = 0) =>
  xs.length === 0
    ? undefined
    : {
        p50: round(percentile(xs, 50), digits),
        p99: round(percentile(xs, 99), digits),
        max: round(Math.max(...xs), digits),
        samples: xs.length,
      };

/** Each run's largest gap between heartbeats in [from, to] (the silence until `to` counts). */
function largestGaps(report: StubReport, from: number, to: number, bearer?: number): number[] {
  return Object.values(report.runs).map((run) => {
    const times = run.t.filter(
      (t, i) => t >= from && t <= to && (bearer === undefined || run.bearer[i] === bearer),
    );
    let largest = 0;
    let previous = from;
    for (const t of times) {
      largest = Math.max(largest, t - previous);
      previous = t;
    }
    return Math.max(largest, to - previous);
  });
}

function firstBeats(report: StubReport): number[] {
  return Object.values(report.runs).map((run) => run.t[0] as number);
}

// ---- scenarios ----

interface World {
  stub: Stub;
  logDir: string;
}

const quick = process.argv.includes('--quick');
const option = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const fastIntervalS = Number(option('--fast-interval') ?? 2);
const slowSteadyS = Number(option('--steady') ?? (quick ? 65 : 160));

/**
 * One fleet for `pods` pods (per node: all on node-0), from its start until every run
 * has beaten, then a steady window at `intervalS` during which `changes` pods change a
 * container state one after another.
 */
async function steadyScenario(
  world: World,
  options: { pods: number; intervalS: number; steadyS: number; changes: number; restarts?: number },
) {
  const { pods, intervalS } = options;
  // Per node, pods on other nodes too: the field selector must leave them on the server.
  const cl = await cluster({
    onNode: pods,
    elsewhere: pods <= 110 ? 2 * pods : 0,
    nodes: pods <= 110 ? 3 : 1,
  });
  const w = { ...world, cluster: cl };
  const env = { FLEET_NODE_NAME: 'node-0', HEARTBEAT_INTERVAL: `${intervalS}s` };
  try {
    // DaemonSet rollouts: SIGTERM the running fleet, start the next one when it has gone
    // (maxSurge 0), time until every run has its first heartbeat from the new process.
    const rollouts: { exitMs: number; startToAllFirstMs: number; cpuS: number; longestPauseMs: number }[] =
      [];
    let fleet = startFleet('fleet-0', w, env);
    let coldStartMs = 0;
    for (let r = 0; r <= (options.restarts ?? 0); r++) {
      if (r > 0) {
        await sleep(1_000 + Math.random() * 2_000);
        await world.stub.reset();
        const lastBefore = mono();
        const stopped = await stopProcess(fleet);
        fleet = startFleet(`fleet-${r}`, w, env);
        await waitUntil('every run beating', async () => (await world.stub.runsSeen()) >= pods, 120_000);
        const report = await world.stub.report();
        const firsts = firstBeats(report);
        rollouts.push({
          exitMs: stopped.exitMs,
          startToAllFirstMs: round(Math.max(...firsts) - fleet.startedAt),
          cpuS: round(cpuSeconds(fleet.pid), 2),
          longestPauseMs: round(Math.max(...firsts) - lastBefore),
        });
      } else {
        await waitUntil('every run beating', async () => (await world.stub.runsSeen()) >= pods, 300_000);
        coldStartMs = round(Math.max(...firstBeats(await world.stub.report())) - fleet.startedAt);
      }
    }
    await world.stub.reset();
    const sampler = new Sampler(fleet.pid);
    // Everything from here on is steady state: every run has been seen.
    const from = mono();
    const changeTimes: number[] = [];
    const changeEvery = (options.steadyS * 1000 - 4_000) / Math.max(1, options.changes);
    const order = [...Array(pods).keys()].sort(() => Math.random() - 0.5);
    await sleep(2_000);
    for (let c = 0; c < options.changes; c++) {
      const i = order[c % order.length] as number;
      const pod = structuredClone(cl.kube.get('pods', `tasks-${i % NAMESPACES}`, `task-${i}`) as KubeObject);
      const status = pod.status as { containerStatuses: { state: unknown }[] };
      (status.containerStatuses[0] as { state: unknown }).state = {
        waiting: { reason: `BenchChange-${c}`, message: 'back-off restarting failed container' },
      };
      changeTimes.push(mono());
      cl.kube.set('pods', pod);
      await sleep(changeEvery);
    }
    await sleep(Math.max(0, from + options.steadyS * 1000 - mono()));
    const to = mono();
    sampler.stop();
    const report = await world.stub.report();
    const highWater = highWaterMiB(fleet.pid);
    const steady = sampler.window(from + 2_000, to);
    if (profileDir) await heapSnapshot(fleet);
    const stopped = await stopProcess(fleet);
    const latencies = changeTimes.flatMap((t, c) => {
      const seen = report.markers[String(c)];
      return seen === undefined ? [] : [seen - t];
    });
    const beats = Object.values(report.runs).reduce((n, run) => n + run.t.length, 0);
    return {
      pods,
      intervalS,
      steadyS: round((to - from) / 1000),
      runsBeating: Object.keys(report.runs).length,
      startToAllFirstMs: coldStartMs,
      heartbeatsPerSecond: round(beats / ((to - from) / 1000)),
      ...steady,
      highWaterResidentMiB: highWater,
      cpuMsPerHeartbeat: steady ? round((steady.cpuCores * steady.seconds * 1000) / beats, 3) : undefined,
      largestGapPerRunMs: stats(largestGaps(report, from, to)),
      changeToTesMs: { ...stats(latencies, 1), lost: changeTimes.length - latencies.length },
      ...(rollouts.length > 0 ? { rollouts } : {}),
      kubeApi: kubeApiUse(cl),
      exit: stopped,
      logTail: stopped.code === 0 ? undefined : await logTail(fleet),
    };
  } finally {
    await cl.close();
  }
}

/**
 * Per cluster, 10,000 pods: leader A and standby B with the contract's lease timings;
 * some pods complete, then A is killed with SIGKILL. Takeover = first heartbeat with
 * B's bearer after the kill; every run's largest gap across it; finals per run.
 */
async function failoverScenario(world: World, options: { pods: number; completing: number }) {
  const cl = await cluster({ onNode: 0, elsewhere: options.pods, nodes: 100 });
  const w = { ...world, cluster: cl };
  const env = {
    HEARTBEAT_INTERVAL: '30s',
    FLEET_FINALIZER: process.argv.includes('--finalizer') ? 'on' : 'off',
  };
  try {
    const leader = startFleet('fleet-a', w, env);
    await waitUntil('every run beating', async () => (await world.stub.runsSeen()) >= options.pods, 300_000);
    const standby = startFleet('fleet-b', w, env);
    const sampler = new Sampler(standby.pid);
    await sleep(quick ? 20_000 : 40_000); // the standby lists and watches
    const standbyReady = sampler.samples.at(-1);
    // Pods complete 5 s before the kill (their finals and marks are done by then: the
    // standby must not repeat them) and 50 ms before it (the leader dies between their
    // finals and the marks: the contract lets a crash repeat those once).
    const complete = (from: number, count: number) => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      for (let c = from; c < from + count; c++) {
        const pod = structuredClone(
          cl.kube.get('pods', `tasks-${c % NAMESPACES}`, `task-${c}`) as KubeObject,
        );
        const status = pod.status as { phase: string; containerStatuses: { state: unknown }[] };
        status.phase = 'Succeeded';
        for (const s of status.containerStatuses)
          s.state = { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } };
        cl.kube.set('pods', pod);
      }
    };
    complete(0, options.completing);
    await sleep(5_000);
    complete(options.completing, options.completing);
    await sleep(50);
    const killedAt = mono();
    leader.child.kill('SIGKILL');
    await leader.exited;
    await sleep(quick ? 40_000 : 60_000);
    const to = mono();
    sampler.stop();
    const report = await world.stub.report();
    const b = report.bearers.indexOf('bench-token-fleet-b');
    const a = report.bearers.indexOf('bench-token-fleet-a');
    const byB = Object.values(report.runs).flatMap((run) => run.t.filter((_, i) => run.bearer[i] === b));
    const firstByB = byB.length > 0 ? Math.min(...byB) : undefined;
    const afterKillByA = Object.values(report.runs).flatMap((run) =>
      run.t.filter((t, i) => run.bearer[i] === a && t > killedAt),
    );
    // The runs that did not complete (a completed run's silence is no gap).
    const stillRunning = Object.entries(report.runs).filter(
      ([id]) => Number(id.slice('run-'.length)) >= 2 * options.completing,
    );
    const gaps = largestGaps({ ...report, runs: Object.fromEntries(stillRunning) }, killedAt - 30_000, to);
    const finals = Object.entries(report.runs).filter(([, run]) => run.finals > 0);
    const finalsOf = (r: StubReport, from: number, count: number) => {
      const runs = [...Array(count).keys()].map((c) => r.runs[`run-${from + c}`]);
      return {
        pods: count,
        oneFinal: runs.filter((run) => run?.finals === 1).length,
        twoFinals: runs.filter((run) => (run?.finals ?? 0) > 1).length,
        noFinal: runs.filter((run) => !run?.finals).length,
      };
    };
    const stopped = await stopProcess(standby);
    return {
      pods: options.pods,
      leaseTimings: '15s/10s/2s',
      takeoverMs: firstByB === undefined ? undefined : round(firstByB - killedAt),
      goalMs: 15_000 + 2.5 * 2_000,
      allRunsBeatenByStandbyMs: (() => {
        const firsts = stillRunning.map(([, run]) =>
          run.t.find((t, i) => run.bearer[i] === b && t > killedAt),
        );
        return firsts.every((t) => t !== undefined)
          ? round(Math.max(...(firsts as number[])) - killedAt)
          : undefined;
      })(),
      heartbeatsFromKilledLeaderAfterKill: afterKillByA.length,
      largestGapPerRunMs: stats(gaps),
      longestGapAnyRunMs: round(Math.max(...gaps)),
      completed5sBeforeKill: finalsOf(report, 0, options.completing),
      completed50msBeforeKill: finalsOf(report, options.completing, options.completing),
      runsWithTwoFinals: finals.filter(([, run]) => run.finals > 1).length,
      standbyBeforeTakeover: standbyReady,
      kubeApi: kubeApiUse(cl),
      standbyAfter: sampler.window(killedAt + 20_000, to),
      exit: stopped,
      logTail: await logTail(standby),
    };
  } finally {
    await cl.close();
  }
}

/** The same harness on `count` sidecars at the default interval: per-process figures today. */
async function sidecarsScenario(world: World, options: { count: number; steadyS: number }) {
  const cl = await cluster({ onNode: options.count, elsewhere: 0, nodes: 1 });
  try {
    const agents = [];
    for (let i = 0; i < options.count; i++) {
      agents.push(
        startProcess(
          `agent-${i}`,
          'agent',
          {
            TES_URL: world.stub.url,
            TES_TOKEN: 'bench-token-agent',
            TES_RUN_ID: `run-${i}`,
            TES_NONCE: nonce(i),
            POD_NAME: `task-${i}`,
            POD_NAMESPACE: `tasks-${i % NAMESPACES}`,
            KUBECONFIG: cl.kubeconfig,
          },
          world.logDir,
        ),
      );
      await sleep(1_000);
    }
    await waitUntil(
      'every agent beating',
      async () => (await world.stub.runsSeen()) >= options.count,
      60_000,
    );
    await sleep(3_000);
    const samplers = agents.map((a) => new Sampler(a.pid, 5_000));
    const from = mono();
    await sleep(options.steadyS * 1000);
    const to = mono();
    const windows = samplers.map((s) => {
      s.stop();
      return s.window(from, to);
    });
    for (const a of agents) await stopProcess(a);
    const mean = (f: (w: NonNullable<(typeof windows)[number]>) => number) =>
      windows.reduce((s, w) => s + (w ? f(w) : 0), 0) / windows.length;
    return {
      sidecars: options.count,
      intervalS: 30,
      steadyS: round((to - from) / 1000),
      perSidecar: {
        cpuMillicores: round(mean((w) => w.cpuCores) * 1000, 2),
        residentMiB: round(mean((w) => w.residentMiB.mean)),
        privateRssAnonMiB: round(mean((w) => w.privateRssAnonMiB.mean)),
      },
    };
  } finally {
    await cl.close();
  }
}

async function main(): Promise<void> {
  const all = [
    'sidecars',
    'node-110',
    'fast-110',
    'fast-1000',
    'engine-1000',
    'fast-10000',
    'engine-10000',
    'failover',
  ];
  // fast-10000 overloads one process (5,000 heartbeats/s wanted): run it by name.
  const chosen = option('--scenario')?.split(',') ?? all.filter((s) => s !== 'fast-10000');
  for (const s of chosen)
    if (!all.includes(s)) throw new Error(`bench-fleet: unknown scenario ${s} (${all.join(', ')})`);
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const stub = await Stub.start();
  const logDir = await mkdtemp(path.join(tmpdir(), 'bench-fleet-logs-'));
  const world = { stub, logDir };
  const results: Record<string, unknown> = {};
  const load = [loadavg()[0]];
  const startedAt = Date.now();
  const fastSteadyS = quick ? 16 : 40;
  const changes = (pods: number) => Math.min(quick ? 30 : 200, pods);
  try {
    for (const s of chosen) {
      await stub.reset();
      process.stderr.write(`bench-fleet: ${s}…\n`);
      const [kind, n] = s.split('-') as [string, string | undefined];
      const pods = Number(n);
      if (kind === 'sidecars')
        results[s] = await sidecarsScenario(world, { count: 5, steadyS: quick ? 45 : 90 });
      else if (kind === 'failover')
        results[s] = await failoverScenario(world, { pods: quick ? 2_000 : 10_000, completing: 20 });
      else if (kind === 'node')
        results[s] = await steadyScenario(world, {
          pods,
          intervalS: 30,
          steadyS: slowSteadyS,
          changes: changes(pods),
          restarts: quick ? 1 : 3,
        });
      else
        results[s] = await steadyScenario(world, {
          pods,
          intervalS: kind === 'fast' ? fastIntervalS : 30,
          steadyS: kind === 'fast' ? fastSteadyS : slowSteadyS,
          changes: changes(pods),
        });
      load.push(loadavg()[0]);
      process.stderr.write(`${JSON.stringify({ [s]: results[s] })}\n`);
    }
  } finally {
    for (const child of started)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    stub.close();
    await rm(logDir, { recursive: true, force: true });
  }
  console.log(
    JSON.stringify(
      {
        node: process.version,
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, loadAverage1m: load.map((l) => round(l ?? 0, 2)) },
        runtime: { flags: imageFlags, env: { ...imageEnv, ...triedEnv }, memoryLimitMiB },
        minutes: round((Date.now() - startedAt) / 60_000),
        ...results,
      },
      null,
      2,
    ),
  );
}

if (process.argv.includes('--tes-stub')) tesStub();
else await main();
