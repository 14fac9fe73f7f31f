// Benchmarks the built emulator (`node dist/tes-heartbeat.js emulator`) on loopback:
//   1. heartbeats per second from N concurrent keep-alive clients for a fixed time;
//   2. the emulator's resident memory holding M runs with a few heartbeats each.
// Usage: node scripts/bench-emulator.mjs [--seconds 10] [--clients 50] [--runs 10000] [--beats 3]
// Run `node scripts/build.mjs` first. Prints a markdown table and a JSON line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '50' },
    runs: { type: 'string', default: '10000' },
    beats: { type: 'string', default: '3' },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const RUNS = Number(values.runs);
const BEATS = Number(values.beats);

/** A heartbeat shaped like the agent's: two containers and compact hardware details (~700 bytes). */
function heartbeat(podName, nonce) {
  return JSON.stringify({
    podName,
    podUID: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
    nonce,
    jobRetryCount: 0,
    podHardwareDetails: JSON.stringify({
      nodeName: 'ip-10-0-12-34.eu-west-1.compute.internal',
      qosClass: 'Burstable',
      instanceType: 'm6i.2xlarge',
      zone: 'eu-west-1a',
      arch: 'amd64',
      containers: { main: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } } },
    }),
    containerStatus: [
      { name: 'main', state: { running: { startedAt: '2026-01-01T00:00:00Z' } } },
      { name: 'uploader', state: { waiting: { reason: 'PodInitializing' } } },
    ],
  });
}

async function startEmulator() {
  const child = spawn(
    process.execPath,
    ['dist/tes-heartbeat.js', 'emulator', '--port', '0', '--heartbeat-timeout', '1h'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /"url":"(http:[^"]+)"/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  const rss = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
  };
  // utime + stime from /proc/PID/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
  const cpuMs = () => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  const stop = async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`emulator exited with ${code} on SIGTERM`);
  };
  return { url, rss, cpuMs, stop };
}

const headers = { 'content-type': 'application/json', accept: 'application/json' };

async function post(pool, path, body) {
  const { statusCode, body: stream } = await pool.request({ path, method: 'POST', headers, body });
  const text = await stream.text();
  if (statusCode >= 300) throw new Error(`POST ${path}: ${statusCode} ${text}`);
  return text;
}

async function createRuns(pool, count) {
  const ids = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < count) {
        next += 1;
        ids.push(JSON.parse(await post(pool, '/v1/tasks/runs', '{"name":"bench"}')).id);
      }
    }),
  );
  return ids;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function throughput() {
  const emulator = await startEmulator();
  const pool = new Pool(emulator.url, { connections: CLIENTS, allowH2: false });
  const ids = await createRuns(pool, CLIENTS);
  const latencies = [];
  let errors = 0;
  const cpuBefore = emulator.cpuMs();
  const started = performance.now();
  const until = started + SECONDS * 1000;
  await Promise.all(
    ids.map(async (id, i) => {
      const body = heartbeat(`pod-${i}`, `nonce-${i}`);
      const path = `/v1/tasks/runs/${encodeURIComponent(id)}:heartbeat`;
      while (performance.now() < until) {
        const t = performance.now();
        try {
          await post(pool, path, body);
          latencies.push(performance.now() - t);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = emulator.cpuMs() - cpuBefore;
  const memory = emulator.rss();
  await pool.close();
  await emulator.stop();
  latencies.sort((a, b) => a - b);
  return {
    heartbeats: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / elapsed),
    p50ms: Number(percentile(latencies, 50).toFixed(2)),
    p99ms: Number(percentile(latencies, 99).toFixed(2)),
    // The load generator shares the machine: CPU per heartbeat is the emulator's own cost.
    emulatorCpuPercent: Math.round((cpuMs / (elapsed * 1000)) * 100),
    emulatorCpuUsPerHeartbeat: Math.round((cpuMs * 1000) / latencies.length),
    rssAfterMiB: Number(memory.rssMiB.toFixed(1)),
  };
}

async function memory() {
  const emulator = await startEmulator();
  const idle = emulator.rss();
  const pool = new Pool(emulator.url, { connections: CLIENTS, allowH2: false });
  const ids = await createRuns(pool, RUNS);
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < ids.length) {
        const i = next++;
        const body = heartbeat(`pod-${i}`, `nonce-${i}`);
        for (let b = 0; b < BEATS; b++)
          await post(pool, `/v1/tasks/runs/${encodeURIComponent(ids[i])}:heartbeat`, body);
      }
    }),
  );
  // A full listing touches every run, as a dashboard would.
  const { statusCode } = await pool
    .request({ path: '/v1/tasks/runs?pageSize=1000&sort=timeModified+desc', method: 'GET' })
    .then(async (r) => {
      await r.body.text();
      return r;
    });
  if (statusCode !== 200) throw new Error(`list: ${statusCode}`);
  const loaded = emulator.rss();
  await pool.close();
  await emulator.stop();
  return {
    runs: RUNS,
    heartbeatsPerRun: BEATS,
    idleRssMiB: Number(idle.rssMiB.toFixed(1)),
    loadedRssMiB: Number(loaded.rssMiB.toFixed(1)),
    peakRssMiB: Number(loaded.peakMiB.toFixed(1)),
    bytesPerRun: Math.round(((loaded.rssMiB - idle.rssMiB) * 1024 * 1024) / RUNS),
  };
}

const load = await throughput();
const mem = await memory();
const cpu = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`;
console.log(`| emulator benchmark (${cpu}, Node ${process.versions.node}) | |
|---|---|
| heartbeats/s, ${CLIENTS} concurrent keep-alive clients, ${SECONDS} s | ${load.perSecond} (p50 ${load.p50ms} ms, p99 ${load.p99ms} ms, ${load.errors} errors) |
| emulator CPU meanwhile | ${load.emulatorCpuPercent}% of one core, ${load.emulatorCpuUsPerHeartbeat} µs per heartbeat |
| RSS idle | ${mem.idleRssMiB} MiB |
| RSS with ${RUNS} runs × ${BEATS} heartbeats (~700 B each) | ${mem.loadedRssMiB} MiB (peak ${mem.peakRssMiB} MiB, ~${mem.bytesPerRun} B per run) |`);
console.log(JSON.stringify({ throughput: load, memory: mem }));
