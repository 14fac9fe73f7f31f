// Benchmarks the real agent (the built dist/, as it ships) against the emulator
// and the Kubernetes stand-in over HTTPS on loopback. Run: `./dev bench` or
// `node scripts/bench-agent.ts [--quick] [--long]` after `npm run build`.
// Prints one JSON object; README "Performance" quotes it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { job, kubeNow, NAMESPACE, NODE_NAME, node, POD_NAME, stages } from '../src/demo/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { FakeKubeApiServer } from '../src/testing/fake-kube-api-server.ts';
import { TesClient } from '../src/tes/client.ts';
import { cli, cpuSeconds, imageEnv, imageFlags, procStatus, round, tls, triedEnv } from './bench-support.ts';

const quick = process.argv.includes('--quick');
const long = process.argv.includes('--long');

const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
const heartbeatSeen: Array<() => void> = [];
let heartbeatsReceived = 0;
const onBeat = () => {
  heartbeatsReceived++;
  for (const notify of heartbeatSeen.splice(0)) notify();
};
const kube = await FakeKubeApiServer.start({
  tls: { cert: tls('server.crt'), key: tls('server.key'), ca: tls('ca.crt') },
});
const dir = await mkdtemp(path.join(tmpdir(), 'bench-agent-'));
const kubeconfig = path.join(dir, 'kubeconfig');
await writeFile(kubeconfig, kube.kubeconfig(NAMESPACE));
const tes = new TesClient({ baseUrl: emulator.url, timeoutMs: 5_000 });
kube.set('nodes', node);
kube.set('jobs', job);
const startedAt = kubeNow();
const script = stages();
const runningPod = () => (script[2] as (typeof script)[2]).pod(startedAt);
kube.set('pods', runningPod());

// Count heartbeats as the emulator answers them.
const poll = setInterval(() => {
  const total = runs.reduce((n, id) => n + emulator.heartbeats(id).length, 0);
  while (heartbeatsReceived < total) onBeat();
}, 1);
const runs: string[] = [];

function nextHeartbeat(): Promise<void> {
  return new Promise((resolve) => heartbeatSeen.push(resolve));
}

async function newRun(): Promise<string> {
  const run = await tes.createTaskRun({ name: 'bench' });
  runs.push(run.id as string);
  return run.id as string;
}

function startAgent(runId: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...imageFlags, cli, 'agent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env.PATH,
      ...imageEnv,
      TES_URL: emulator.url,
      TES_RUN_ID: runId,
      TES_NONCE: 'bench-nonce',
      POD_NAME,
      POD_NAMESPACE: NAMESPACE,
      KUBECONFIG: kubeconfig,
      HTTP_ADDR: '127.0.0.1:0',
      LOG_LEVEL: 'warn',
      ...triedEnv,
      ...env,
    },
  });
}

async function stop(agent: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
  agent.kill('SIGTERM');
  return exited;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};

// 1. Process start → first heartbeat received, and the CPU spent getting there.
const startMs: number[] = [];
const startCpu: number[] = [];
for (let i = 0; i < (quick ? 3 : 10); i++) {
  const runId = await newRun();
  const first = nextHeartbeat();
  const t0 = performance.now();
  const agent = startAgent(runId, {});
  await first;
  startMs.push(performance.now() - t0);
  startCpu.push(cpuSeconds(agent.pid as number));
  await stop(agent);
}

// 2. Memory and CPU per heartbeat after 30 s at a 200 ms interval.
const steadySeconds = quick ? 10 : 30;
const steady = startAgent(await newRun(), { HEARTBEAT_INTERVAL: '200ms' });
await nextHeartbeat();
await sleep(2_000);
const cpuBefore = cpuSeconds(steady.pid as number);
const beatsBefore = heartbeatsReceived;
await sleep(steadySeconds * 1000 - 2_000);
const steadyMemory = procStatus(steady.pid as number);
const cpuPerHeartbeatMs =
  ((cpuSeconds(steady.pid as number) - cpuBefore) * 1000) / (heartbeatsReceived - beatsBefore);

// 3. Pod change → heartbeat received, with HEARTBEAT_MIN_GAP=0 (the steady agent keeps beating at 200 ms,
//    so this uses its own agent with the default interval).
await stop(steady);
const changeRun = await newRun();
const reactive = startAgent(changeRun, { HEARTBEAT_MIN_GAP: '0s' });
await nextHeartbeat();
await sleep(500);
const changeLatency: number[] = [];
for (let i = 0; i < (quick ? 30 : 200); i++) {
  const pod = runningPod();
  const status = pod.status as { containerStatuses: { state: unknown }[] };
  (status.containerStatuses[0] as { state: unknown }).state =
    i % 2 === 0
      ? { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${i}` } }
      : { running: { startedAt } };
  const seen = nextHeartbeat();
  const t0 = performance.now();
  kube.set('pods', pod);
  await seen;
  changeLatency.push(performance.now() - t0);
  await sleep(20);
}
await stop(reactive);

// 4. (--long) Ten minutes at a 1 s interval: does resident memory stay flat?
const soak: { minute: number; residentMiB: number; privateRssAnonMiB: number }[] = [];
if (long) {
  const agent = startAgent(await newRun(), { HEARTBEAT_INTERVAL: '1s' });
  await nextHeartbeat();
  for (let minute = 1; minute <= 10; minute++) {
    await sleep(60_000);
    const m = procStatus(agent.pid as number);
    soak.push({ minute, residentMiB: round(m.rssMiB), privateRssAnonMiB: round(m.rssAnonMiB) });
  }
  await stop(agent);
}

// 5. Idle CPU at the default 30 s interval, and requests to the Kubernetes API.
const idleSeconds = quick ? 30 : long ? 600 : 90;
const kubeRequestsBefore = kube.requests.length;
const idle = startAgent(await newRun(), {});
await nextHeartbeat();
await sleep(3_000);
const idleCpuBefore = cpuSeconds(idle.pid as number);
const idleT0 = performance.now();
await sleep(idleSeconds * 1000);
const idleMillicores =
  ((cpuSeconds(idle.pid as number) - idleCpuBefore) * 1000) / ((performance.now() - idleT0) / 1000);
const idleMemory = procStatus(idle.pid as number);
const kubeRequests = kube.requests.slice(kubeRequestsBefore);
const idleExit = await stop(idle);

clearInterval(poll);
await tes.close();
await Promise.all([emulator.close(), kube.close()]);
await rm(dir, { recursive: true, force: true });

console.log(
  JSON.stringify(
    {
      node: process.version,
      runtime: { flags: imageFlags, env: { ...imageEnv, ...triedEnv } },
      startToFirstHeartbeatMs: {
        median: round(median(startMs)),
        min: round(Math.min(...startMs)),
        max: round(Math.max(...startMs)),
        runs: startMs.length,
      },
      startupCpuSeconds: { median: round(median(startCpu), 2), max: round(Math.max(...startCpu), 2) },
      steadyAfterSeconds: steadySeconds,
      steadyIntervalMs: 200,
      residentMiB: round(steadyMemory.rssMiB),
      privateRssAnonMiB: round(steadyMemory.rssAnonMiB),
      cpuPerHeartbeatMs: round(cpuPerHeartbeatMs, 2),
      changeToHeartbeatMs: {
        p50: round(percentile(changeLatency, 50), 2),
        p99: round(percentile(changeLatency, 99), 2),
        samples: changeLatency.length,
      },
      ...(long ? { soakAt1sInterval: soak } : {}),
      idle: {
        seconds: idleSeconds,
        intervalMs: 30_000,
        millicores: round(idleMillicores, 2),
        residentMiB: round(idleMemory.rssMiB),
        privateRssAnonMiB: round(idleMemory.rssAnonMiB),
      },
      kubeApi: {
        requestsInIdleWindow: kubeRequests.length,
        kinds: kubeRequests.map((r) => `${r.method} ${r.path}${r.watch ? ' (watch)' : ''}`),
        podGets: kubeRequests.filter((r) => !r.watch && /\/pods\/[^/]+$/.test(r.path)).length,
      },
      exitCodeOnSigterm: idleExit,
      nodeName: NODE_NAME,
    },
    null,
    2,
  ),
);
