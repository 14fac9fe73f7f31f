// `tes-heartbeat demo --fleet`: several task pods on one node, one fleet process for
// all of them. The emulator and the Kubernetes stand-in run in this process; the real
// fleet runs as a child process, exactly as in its DaemonSet pod; each heartbeat is
// printed as the emulator receives it, and the demo ends once every run got its final.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EXIT_INTERNAL, EXIT_OK } from '../cli/exit.ts';
import { formatDuration } from '../config/duration.ts';
import { startEmulator } from '../emulator/server.ts';
import { FakeKubeApiServer } from '../testing/fake-kube-api-server.ts';
import { TesClient } from '../tes/client.ts';
import type { HeartbeatTaskRunRequest } from '../tes/types.gen.ts';
import { describe, elapsed, out, untilSignal } from './print.ts';
import { job, kubeNow, NAMESPACE, NODE_NAME, node, stages } from './scenario.ts';

/** Task pods on the demo's node, each one stage ahead of the next. */
const PODS = 3;
const STAGGER_MS = 1_200;

export async function runFleetDemo(options: { keep: boolean; timeLimitMs: number }): Promise<number> {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const kube = await FakeKubeApiServer.start({ host: '127.0.0.1' });
  const dir = await mkdtemp(path.join(tmpdir(), 'tes-heartbeat-demo-'));
  const tes = new TesClient({ baseUrl: emulator.url, timeoutMs: 5_000 });
  const timers: NodeJS.Timeout[] = [];
  try {
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeconfig(NAMESPACE), { mode: 0o600 });
    kube.set('nodes', node);
    kube.set('jobs', job);
    out(`TES emulator ${emulator.url}, Kubernetes stand-in ${kube.url}`);
    const runs: { runId: string; label: string }[] = [];
    for (let i = 1; i <= PODS; i++) {
      const created = await tes.createTaskRun({
        name: `demo ${i}: bwa mem`,
        description: 'tes-heartbeat fleet demo run',
      });
      runs.push({ runId: created.id as string, label: `pod ${i}` });
      out(`run ${created.id} created for task pod ${i}: ${created.status}`);
    }
    const startedAt = kubeNow();
    const t0 = Date.now();
    runs.forEach(({ runId, label }, i) => {
      // A node's fleet sees a pod once it is bound to the node: from the second stage on.
      const script = stages({
        name: `task-demo-${i + 1}`,
        mode: 'fleet',
        runId,
        nonce: `demo-nonce-${i + 1}`,
      }).slice(1);
      const first = script[0]?.atMs ?? 0;
      for (const stage of script) {
        timers.push(
          setTimeout(
            () => {
              out(`${elapsed(t0)}  ${label}: ${stage.title}`);
              kube.set('pods', stage.pod(startedAt));
            },
            i * STAGGER_MS + stage.atMs - first,
          ),
        );
      }
    });

    const fleet = spawn(process.execPath, [process.argv[1] as string, 'fleet'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        PATH: process.env.PATH,
        TES_URL: emulator.url,
        POD_NAME: 'tes-heartbeat-fleet-demo',
        FLEET_NODE_NAME: NODE_NAME,
        FLEET_NAMESPACES: NAMESPACE,
        KUBECONFIG: kubeconfig,
        HEARTBEAT_INTERVAL: '2s',
        HEARTBEAT_MIN_GAP: '250ms',
        HTTP_ADDR: 'off',
        LOG_LEVEL: 'warn',
      },
    });
    const exited = new Promise<number | null>((resolve) => fleet.on('exit', (code) => resolve(code)));
    out(`${elapsed(t0)}  fleet started for node ${NODE_NAME}`);
    let interrupted = false;
    const stop = () => {
      interrupted = true;
      fleet.kill('SIGTERM');
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);

    const printed = new Map(runs.map((r) => [r.runId, 0]));
    const print = () => {
      for (const { runId, label } of runs) {
        const beats = emulator.heartbeats(runId);
        for (let n = printed.get(runId) ?? 0; n < beats.length; n++)
          out(`${elapsed(t0)}  ${label} ${describe(n + 1, beats[n] as HeartbeatTaskRunRequest)}`);
        printed.set(runId, beats.length);
      }
    };
    const allFinal = () =>
      runs.every(({ runId }) => emulator.heartbeats(runId).at(-1)?.lastHeartbeat === true);
    const deadline = Date.now() + options.timeLimitMs;
    while (!allFinal() && !interrupted && fleet.exitCode === null && Date.now() < deadline) {
      print();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    print();
    const done = allFinal();
    // Every run is over: the fleet is stopped as its DaemonSet would stop it.
    if (fleet.exitCode === null) fleet.kill('SIGTERM');
    const code = await exited;
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (!done) {
      process.stderr.write(
        interrupted
          ? 'tes-heartbeat demo: interrupted\n'
          : `tes-heartbeat demo: not every run got its final heartbeat within ${formatDuration(options.timeLimitMs)}\n`,
      );
      return EXIT_INTERNAL;
    }
    for (const { runId, label } of runs) {
      const run = await tes.getTaskRun(runId);
      out(`${label}: run ${runId}: ${run.status}${run.statusDetails ? ` (${run.statusDetails})` : ''}`);
    }
    out(`fleet exited with ${code}`);
    if (!options.keep) out('to look at these runs in a browser: tes-heartbeat demo --fleet --keep');
    else if (!interrupted) {
      out(`web page: ${emulator.url}/ (every run)`);
      out('the emulator keeps serving; Ctrl-C stops it');
      await untilSignal();
    }
    return code === 0 ? EXIT_OK : EXIT_INTERNAL;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await tes.close();
    await Promise.allSettled([emulator.close(), kube.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}
