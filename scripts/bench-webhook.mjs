#!/usr/bin/env node
// Benchmarks the BUILT webhook (`npm run build` first) over TLS keep-alive on
// loopback: the most reviews per second it answers, admission latency p50/p99
// at a paced 500 reviews/s, and its resident memory.
//
//   node scripts/bench-webhook.mjs [--seconds 5] [--rate 500] [--connections 4] [--concurrency 32]
//
// The webhook runs as shipped (native mode, so no API server is needed; info
// logging to a pipe this script drains). Latency is measured from each
// request's scheduled send time, so a stall counts against every request it delays.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const root = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '500' },
    connections: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '32' },
  },
});
const seconds = Number(opts.seconds);
const rate = Number(opts.rate);
const connections = Number(opts.connections);
const concurrency = Number(opts.concurrency);
const tls = path.join(root, 'test/fixtures/tls');

/** A free loopback port (bound and released: fine for a benchmark on one machine). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const port = await freePort();
const healthPort = await freePort();
const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'bench-webhook-')), 'webhook.log');
const logFd = openSync(logFile, 'w');
// As the image runs it (Dockerfile: ENTRYPOINT flags and MALLOC_ARENA_MAX);
// BENCH_NODE_ARGS replaces the flags, to compare (e.g. '--cpu-prof' or '').
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '--max-semi-space-size=1').split(' ').filter(Boolean);
const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'dist/tes-heartbeat.js'), 'webhook'], {
  env: {
    PATH: process.env.PATH,
    MALLOC_ARENA_MAX: '2',
    SIDECAR_TEMPLATE: path.join(root, 'test/fixtures/webhook/sidecar.yaml'),
    SIDECAR_MODE: 'native',
    WEBHOOK_ADDR: `127.0.0.1:${port}`,
    WEBHOOK_TLS_CERT: path.join(tls, 'server.crt'),
    WEBHOOK_TLS_KEY: path.join(tls, 'server.key'),
    HTTP_ADDR: `127.0.0.1:${healthPort}`,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
  },
  // Logs to a file, as the container runtime stores them: a pipe this busy
  // process drains late would block the webhook's synchronous log writes.
  stdio: ['ignore', logFd, 'inherit'],
});
child.on('exit', (code) => {
  if (code !== 0 && code !== null) console.error(`webhook exited with ${code}`);
});
// Ready once /readyz says so (the certificate is loaded).
for (;;) {
  const ok = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  await new Promise((r) => setTimeout(r, 50));
}

const dispatcher = new Agent({
  connections,
  pipelining: 1,
  connect: { ca: readFileSync(path.join(tls, 'ca.crt')), servername: 'localhost' },
});
const url = `https://127.0.0.1:${port}/mutate?timeout=5s`;
let uid = 0;
function body() {
  return JSON.stringify({
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: `bench-${++uid}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'tasks',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:job-controller' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: 'task-8f2c-',
          labels: { 'job-name': 'task-8f2c', 'tes-heartbeat/inject': 'true' },
          annotations: { 'tes-heartbeat/run-id': `run-${uid}`, 'tes-heartbeat/nonce': 'n' },
          ownerReferences: [
            { apiVersion: 'batch/v1', kind: 'Job', name: 'task-8f2c', uid: 'x', controller: true },
          ],
        },
        spec: {
          containers: [
            { name: 'task', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 1'], resources: {} },
          ],
          restartPolicy: 'Never',
          serviceAccountName: 'tes-heartbeat',
        },
      },
      oldObject: null,
      dryRun: false,
    },
  });
}

async function one() {
  const res = await request(url, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: body(),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('"patchType":"JSONPatch"')) {
    throw new Error(`unexpected answer ${res.statusCode}: ${text.slice(0, 200)}`);
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function memory() {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { VmRSS: kb('VmRSS') / 1024, RssAnon: kb('RssAnon') / 1024, VmHWM: kb('VmHWM') / 1024 };
}

/** The webhook's V8 heap, from its own /metrics (prom-client's process metrics). */
async function heapNow() {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const metric = (name) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]) / 2 ** 20;
  return {
    total: metric('nodejs_heap_size_total_bytes'),
    used: metric('nodejs_heap_size_used_bytes'),
    external: metric('nodejs_external_memory_bytes'),
  };
}

// Warm-up: TLS sessions, JIT.
for (let i = 0; i < 500; i++) await one();
const idle = memory();
const idleHeap = await heapNow();

// 1. Latency at a paced rate (first: the memory after it is that of a steady 500/s), measured from each request's scheduled time.
const latencies = [];
const total = rate * seconds;
const interval = 1000 / rate;
const t0 = performance.now() + 50;
const inflight = [];
for (let i = 0; i < total; i++) {
  const scheduled = t0 + i * interval;
  const wait = scheduled - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  inflight.push(one().then(() => latencies.push(performance.now() - scheduled)));
}
await Promise.all(inflight);
latencies.sort((a, b) => a - b);
const afterPaced = memory();

// 2. Throughput: `concurrency` requests always in flight.
let done = 0;
const stopAt = performance.now() + seconds * 1000;
const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < stopAt) {
      await one();
      done++;
    }
  }),
);
const throughput = done / ((performance.now() - started) / 1000);
const afterMax = memory();

const heap = await heapNow();

child.kill('SIGTERM');
const code = await new Promise((resolve) => child.on('exit', resolve));
await dispatcher.close();

const f = (n) => n.toFixed(2);
console.log(`webhook bench (node ${process.version}, ${connections} TLS keep-alive connections, loopback)`);
console.log(`max throughput: ${Math.round(throughput)} reviews/s (${concurrency} in flight, ${seconds} s)`);
console.log(
  `latency at ${rate}/s for ${seconds} s: p50 ${f(percentile(latencies, 50))} ms, p99 ${f(percentile(latencies, 99))} ms, max ${f(latencies.at(-1))} ms (${latencies.length} reviews)`,
);
console.log(
  `memory (MB): idle after warm-up VmRSS ${f(idle.VmRSS)} RssAnon ${f(idle.RssAnon)}; after ${rate}/s VmRSS ${f(afterPaced.VmRSS)} RssAnon ${f(afterPaced.RssAnon)}; after max load VmRSS ${f(afterMax.VmRSS)} RssAnon ${f(afterMax.RssAnon)}; peak VmHWM ${f(afterMax.VmHWM)}`,
);
console.log(
  `V8 heap (MB) idle: total ${f(idleHeap.total)}, used ${f(idleHeap.used)}, external ${f(idleHeap.external)}`,
);
console.log(
  `V8 heap (MB) after the run: total ${f(heap.total)}, used ${f(heap.used)}, external ${f(heap.external)}`,
);
const logLines = readFileSync(logFile, 'utf8').split('\n').length - 1;
console.log(`webhook exit code after SIGTERM: ${code}; ${logLines} log lines in ${logFile}`);
