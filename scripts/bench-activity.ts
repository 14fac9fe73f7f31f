// Memory under activity: the built agent, as the image runs it, sends 20,000
// heartbeats at a 100 ms interval while a container changes state every 3 s and a
// proxy in front of the emulator injects TES faults (503 with `Retry-After: 0`,
// connection resets, 500s, answers held back 1.5 s). Resident and private memory are
// sampled every 10 s, and again right after each major GC (V8's --trace-gc lines on
// the agent's stdout): the post-GC floor must stay flat, or the agent leaks.
// Run: `node scripts/bench-activity.ts [--quick] [--heartbeats N]` after `npm run build`
// (about 35 minutes; --quick: 2,000 heartbeats). Prints one JSON object; the full
// series goes to bench/results/.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubeNow, NAMESPACE, node, POD_NAME, stages } from '../src/demo/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { FakeKubeApiServer } from '../src/testing/fake-kube-api-server.ts';
import { cli, imageEnv, imageFlags, procStatus, root, round, tls, triedEnv } from './bench-support.ts';

const quick = process.argv.includes('--quick');
const countArg = process.argv.indexOf('--heartbeats');
const target = countArg > 0 ? Number(process.argv[countArg + 1]) : quick ? 2_000 : 20_000;
const SAMPLE_EVERY_MS = 10_000;
const STATE_CHANGE_EVERY_MS = 3_000;

const emulator = await startEmulator({ host: '127.0.0.1', port: 0, heartbeatTimeoutMs: 3_600_000 });
const run = emulator.store.create({ name: 'bench-activity' });
const runId = run.id as string;

// The fault schedule is a fixed pattern over the request count: reproducible run to run.
const faults = { unavailable: 0, reset: 0, serverError: 0, slow: 0 };
let requests = 0;
const upstream = new URL(emulator.url);
const proxy = createServer((req, res) => {
  const n = requests++;
  const forward = () => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  };
  req.resume();
  switch (n % 50) {
    case 7:
      faults.unavailable++;
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'application/json' });
      res.end('{"code":"Unavailable","message":"try again"}');
      return;
    case 19:
      faults.reset++;
      req.socket.destroy();
      return;
    case 29:
      faults.serverError++;
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
      return;
    case 41:
      faults.slow++;
      req.pause();
      setTimeout(() => {
        req.resume();
        forward();
      }, 1_500);
      return;
    default:
      req.pause();
      forward();
  }
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;

const kube = await FakeKubeApiServer.start({
  tls: { cert: tls('server.crt'), key: tls('server.key'), ca: tls('ca.crt') },
});
const dir = await mkdtemp(path.join(tmpdir(), 'bench-activity-'));
const kubeconfig = path.join(dir, 'kubeconfig');
await writeFile(kubeconfig, kube.kubeconfig(NAMESPACE));
kube.set('nodes', node);
const startedAt = kubeNow();
const script = stages();
const runningPod = () => (script[2] as (typeof script)[2]).pod(startedAt);

/** The first container alternates between running and a crash-loop back-off. */
let changes = 0;
function nextPod() {
  const pod = runningPod();
  const status = pod.status as { containerStatuses: { state: unknown; restartCount: number }[] };
  const first = status.containerStatuses[0] as { state: unknown; restartCount: number };
  first.restartCount = Math.floor(changes / 2);
  if (changes % 2 === 1)
    first.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${changes}` } };
  changes++;
  return pod;
}
kube.set('pods', nextPod());

const agent = spawn(process.execPath, [...imageFlags, '--trace-gc', cli, 'agent'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: {
    PATH: process.env.PATH,
    ...imageEnv,
    TES_URL: proxyUrl,
    TES_RUN_ID: runId,
    POD_NAME,
    POD_NAMESPACE: NAMESPACE,
    KUBECONFIG: kubeconfig,
    HTTP_ADDR: '127.0.0.1:0',
    HEARTBEAT_INTERVAL: '100ms',
    LOG_LEVEL: 'error',
    ...triedEnv,
  },
});
const pid = agent.pid as number;
const t0 = performance.now();
const elapsedS = () => round((performance.now() - t0) / 1000);

// V8 prints one line per GC: "[pid:0x…]  1234 ms: Mark-Compact 9.8 (12.1) -> 8.9 (12.3) MB, …".
const majorGcs: { s: number; heapAfterMiB: number; rssMiB: number; rssAnonMiB: number }[] = [];
createInterface({ input: agent.stdout }).on('line', (line) => {
  const gc = /Mark-Compact[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(line);
  if (!gc) return;
  const m = procStatus(pid);
  majorGcs.push({
    s: elapsedS(),
    heapAfterMiB: Number(gc[1]),
    rssMiB: round(m.rssMiB),
    rssAnonMiB: round(m.rssAnonMiB),
  });
});

const samples: { s: number; heartbeats: number; rssMiB: number; rssAnonMiB: number }[] = [];
const changer = setInterval(() => kube.set('pods', nextPod()), STATE_CHANGE_EVERY_MS);
let nextSample = SAMPLE_EVERY_MS;
while (emulator.heartbeats(runId).length < target) {
  await sleep(250);
  if (performance.now() - t0 >= nextSample) {
    nextSample += SAMPLE_EVERY_MS;
    const m = procStatus(pid);
    samples.push({
      s: elapsedS(),
      heartbeats: emulator.heartbeats(runId).length,
      rssMiB: round(m.rssMiB),
      rssAnonMiB: round(m.rssAnonMiB),
    });
  }
}
clearInterval(changer);
const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
agent.kill('SIGTERM');
const exitCode = await exited;
const beats = emulator.heartbeats(runId);

/** Least-squares slope of y over x, per hour. */
function slopePerHour(points: { s: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.s, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.s - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.s - mx) ** 2, 0);
  return den === 0 ? 0 : round((num / den) * 3600, 2);
}
const quarter = (xs: number[], which: 'first' | 'last') => {
  const k = Math.max(1, Math.floor(xs.length / 4));
  const part = which === 'first' ? xs.slice(0, k) : xs.slice(-k);
  return round(part.reduce((a, b) => a + b, 0) / part.length);
};
// The first minute is start-up (modules compiled, pools filled); the floor is judged after it.
const settled = majorGcs.filter((g) => g.s >= 60);
const result = {
  node: process.version,
  runtime: { flags: [...imageFlags, '--trace-gc'], env: { ...imageEnv, ...triedEnv } },
  heartbeatsAccepted: beats.length,
  finalHeartbeat: beats.at(-1)?.lastHeartbeat === true,
  exitCode,
  seconds: elapsedS(),
  tesRequests: requests,
  faults,
  containerStateChanges: changes,
  resident: { maxMiB: Math.max(...samples.map((s) => s.rssMiB)), goalMiB: 95 },
  private: { maxRssAnonMiB: Math.max(...samples.map((s) => s.rssAnonMiB)), goalMiB: 40 },
  majorGcs: majorGcs.length,
  floorAfterMajorGc: {
    heapMiB: {
      firstQuarter: quarter(
        settled.map((g) => g.heapAfterMiB),
        'first',
      ),
      lastQuarter: quarter(
        settled.map((g) => g.heapAfterMiB),
        'last',
      ),
      slopeMiBPerHour: slopePerHour(settled.map((g) => ({ s: g.s, y: g.heapAfterMiB }))),
    },
    rssAnonMiB: {
      firstQuarter: quarter(
        settled.map((g) => g.rssAnonMiB),
        'first',
      ),
      lastQuarter: quarter(
        settled.map((g) => g.rssAnonMiB),
        'last',
      ),
      slopeMiBPerHour: slopePerHour(settled.map((g) => ({ s: g.s, y: g.rssAnonMiB }))),
    },
  },
};
await mkdir(path.join(root, 'bench/results'), { recursive: true });
const out = path.join(root, 'bench/results', `activity-${Date.now()}.json`);
await writeFile(out, JSON.stringify({ ...result, samples, majorGcSamples: majorGcs }, null, 2));
console.log(JSON.stringify({ ...result, series: path.relative(root, out) }, null, 2));

await new Promise<void>((resolve) => proxy.close(() => resolve()));
proxy.closeAllConnections();
await Promise.all([emulator.close(), kube.close()]);
await rm(dir, { recursive: true, force: true });
