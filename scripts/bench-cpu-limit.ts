// The cost of a CPU limit on the agent's start-up (chart value sidecar.guaranteedResources):
// the built agent, as the image runs it, started inside a cgroup v1 `cpu` group whose CFS
// quota is the limit (what the kubelet sets for a container's limits.cpu), against the
// emulator and the Kubernetes stand-in over HTTPS on loopback. Time from the process start
// to the first heartbeat the emulator accepted, and the CPU it used.
// Run (root, cgroup v1 cpu controller mounted): `node scripts/bench-cpu-limit.ts` after `npm run build`.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { job, kubeNow, NAMESPACE, node, POD_NAME, stages } from '../src/demo/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { FakeKubeApiServer } from '../src/testing/fake-kube-api-server.ts';
import { TesClient } from '../src/tes/client.ts';
import { cli, cpuSeconds, imageEnv, imageFlags, tls } from './bench-support.ts';

const CGROUP = '/sys/fs/cgroup/cpu/tes-heartbeat-bench';
const PERIOD_US = 100_000; // the kubelet's CFS period
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LIMITS_MILLICORES = [0, 1000, 500, 250, 100]; // 0: no limit

const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
const kube = await FakeKubeApiServer.start({
  tls: { cert: tls('server.crt'), key: tls('server.key'), ca: tls('ca.crt') },
});
const dir = await mkdtemp(path.join(tmpdir(), 'bench-cpu-'));
const kubeconfig = path.join(dir, 'kubeconfig');
await writeFile(kubeconfig, kube.kubeconfig(NAMESPACE));
kube.set('nodes', node);
kube.set('jobs', job);
kube.set('pods', (stages()[2] as ReturnType<typeof stages>[2]).pod(kubeNow()));
const tes = new TesClient({ baseUrl: emulator.url, timeoutMs: 5_000 });

mkdirSync(CGROUP, { recursive: true });
/** Periods in which the group ran out of quota (cpu.stat). */
const throttled = () =>
  Number(/nr_throttled (\d+)/.exec(readFileSync(`${CGROUP}/cpu.stat`, 'utf8'))?.[1] ?? 0);

/** One start: process start → first heartbeat accepted (ms), and the CPU-s it used until then. */
async function startOnce(): Promise<{ ms: number; cpuS: number; throttledPeriods: number }> {
  const run = await tes.createTaskRun({ name: 'bench-cpu' });
  const runId = run.id as string;
  // The shell joins the group, then becomes node: every thread of the agent is limited from its first instruction.
  const throttled0 = throttled();
  const t0 = performance.now();
  const agent = spawn(
    'sh',
    [
      '-c',
      `echo $$ > ${CGROUP}/cgroup.procs && exec "$0" "$@"`,
      process.execPath,
      ...imageFlags,
      cli,
      'agent',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        PATH: process.env.PATH,
        ...imageEnv,
        TES_URL: emulator.url,
        TES_RUN_ID: runId,
        POD_NAME,
        POD_NAMESPACE: NAMESPACE,
        KUBECONFIG: kubeconfig,
        HTTP_ADDR: '127.0.0.1:0',
        LOG_LEVEL: 'warn',
      },
    },
  );
  while (emulator.heartbeats(runId).length === 0) await new Promise((r) => setTimeout(r, 1));
  const ms = performance.now() - t0;
  const cpuS = cpuSeconds(agent.pid as number);
  const throttledPeriods = throttled() - throttled0;
  const exited = new Promise((resolve) => agent.once('exit', resolve));
  agent.kill('SIGTERM');
  await exited;
  return { ms, cpuS, throttledPeriods };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
const results: Record<string, unknown>[] = [];
try {
  await startOnce(); // warm the page cache and the compile cache
  for (const millicores of LIMITS_MILLICORES) {
    writeFileSync(`${CGROUP}/cpu.cfs_period_us`, String(PERIOD_US));
    writeFileSync(`${CGROUP}/cpu.cfs_quota_us`, millicores ? String((PERIOD_US * millicores) / 1000) : '-1');
    const runs: Awaited<ReturnType<typeof startOnce>>[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await startOnce());
    results.push({
      limit: millicores ? `${millicores}m` : 'none',
      firstHeartbeatMs: {
        median: Math.round(median(runs.map((r) => r.ms))),
        max: Math.round(Math.max(...runs.map((r) => r.ms))),
      },
      cpuSecondsToFirstHeartbeat: Number(median(runs.map((r) => r.cpuS)).toFixed(2)),
      throttledPeriods: median(runs.map((r) => r.throttledPeriods)),
    });
  }
} finally {
  await emulator.close();
  await kube.close();
  try {
    rmdirSync(CGROUP);
  } catch {
    // a straggler still in it: the group goes with the next boot
  }
}
const { availableParallelism, loadavg } = await import('node:os');
console.log(
  JSON.stringify({ runs: RUNS, cpus: availableParallelism(), loadAverage: loadavg()[0], results }, null, 2),
);
