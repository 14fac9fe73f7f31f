// `tes-heartbeat demo --fleet`: several task pods on one node, one fleet process for
// all of them. The emulator and the Kubernetes stand-in run in this process; the real
// fleet runs as a child process, exactly as in its DaemonSet pod; each heartbeat is
// printed as the emulator receives it, and the demo ends once every run got its final.
import { EXIT_INTERNAL, EXIT_OK } from '../cli/exit.ts';
import { formatDuration } from '../config/duration.ts';
import type { HeartbeatTaskRunRequest } from '../tes/types.gen.ts';
import { describe, elapsed, out, untilSignal } from './print.ts';
import { kubeNow, NAMESPACE, NODE_NAME, stages } from './scenario.ts';
import { startChild, startStandIns } from './stand-ins.ts';

/** Task pods on the demo's node, each one stage ahead of the next. */
const PODS = 3;
const STAGGER_MS = 1_200;

export async function runFleetDemo(options: { keep: boolean; timeLimitMs: number }): Promise<number> {
  const standIns = await startStandIns();
  const { emulator, kube, tes } = standIns;
  const timers: NodeJS.Timeout[] = [];
  try {
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

    const fleet = startChild('fleet', standIns, {
      POD_NAME: 'tes-heartbeat-fleet-demo',
      FLEET_NODE_NAME: NODE_NAME,
      FLEET_NAMESPACES: NAMESPACE,
    });
    out(`${elapsed(t0)}  fleet started for node ${NODE_NAME}`);

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
    while (!allFinal() && !fleet.interrupted() && fleet.process.exitCode === null && Date.now() < deadline) {
      print();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    print();
    const done = allFinal();
    // Every run is over: the fleet is stopped as its DaemonSet would stop it.
    if (fleet.process.exitCode === null) fleet.process.kill('SIGTERM');
    const code = await fleet.exited;
    fleet.release();
    if (!done) {
      process.stderr.write(
        fleet.interrupted()
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
    else if (!fleet.interrupted()) {
      out(`web page: ${emulator.url}/ (every run)`);
      out('the emulator keeps serving; Ctrl-C stops it');
      await untilSignal();
    }
    return code === 0 ? EXIT_OK : EXIT_INTERNAL;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await standIns.close();
  }
}
