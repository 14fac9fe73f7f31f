// `tes-heartbeat demo`: the whole path on one machine. The emulator and a stand-in
// for the Kubernetes API run in this process; the real agent runs as a child
// process, exactly as in a pod, and each heartbeat is printed as the emulator
// receives it.
import { EXIT_INTERNAL, EXIT_OK, reportInvalid } from '../cli/exit.ts';
import { formatDuration } from '../config/duration.ts';
import { duration, flagBoolean, helpText, parseSettings } from '../config/settings.ts';
import type { HeartbeatTaskRunRequest } from '../tes/types.gen.ts';
import { describe, elapsed, out, untilSignal } from './print.ts';
import { kubeNow, NAMESPACE, POD_NAME, stages } from './scenario.ts';
import { startChild, startStandIns } from './stand-ins.ts';

/** The demo's own timeline ends after about 7 s; past this, something hangs. */
const DEFAULT_TIME_LIMIT = '60s';

const demoSettings = {
  fleet: {
    flag: 'fleet',
    help: 'several task pods under one fleet process instead of one pod with its sidecar',
    boolean: true,
    default: 'false',
    parse: flagBoolean,
  },
  keep: {
    flag: 'keep',
    help: 'after the final heartbeat, keep the emulator and its web page up until Ctrl-C (SIGINT/SIGTERM)',
    boolean: true,
    default: 'false',
    parse: flagBoolean,
  },
  timeout: {
    flag: 'timeout',
    help: 'fail (exit 1) when the demo has not finished by then',
    default: DEFAULT_TIME_LIMIT,
    parse: duration({ positive: true }),
  },
};
const NONCE = 'demo-nonce-1';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSettings(demoSettings, argv, {});
  if (parsed.kind === 'help') {
    process.stdout.write(helpText('usage: tes-heartbeat demo', demoSettings));
    return EXIT_OK;
  }
  if (parsed.kind === 'invalid') return reportInvalid('demo', parsed.problems);
  if (parsed.positionals.length > 0)
    return reportInvalid('demo', [`unexpected argument '${parsed.positionals[0]}'`]);
  const { keep, timeout: timeLimitMs } = parsed.values;
  if (parsed.values.fleet) return (await import('./fleet-demo.ts')).runFleetDemo({ keep, timeLimitMs });

  const standIns = await startStandIns();
  const { emulator, kube, tes } = standIns;
  try {
    const created = await tes.createTaskRun({ name: 'demo: bwa mem', description: 'tes-heartbeat demo run' });
    const runId = created.id as string;
    out(`run ${runId} created: ${created.status}`);

    const script = stages();
    const startedAt = kubeNow();
    kube.set('pods', (script[0] as (typeof script)[0]).pod(startedAt));

    // Ctrl-C during the demo ends it, --keep or not.
    const agent = startChild('agent', standIns, {
      TES_RUN_ID: runId,
      TES_NONCE: NONCE,
      POD_NAME,
      POD_NAMESPACE: NAMESPACE,
    });
    // An overall time limit: a demo that hangs fails clearly instead (the agent is killed).
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      agent.process.kill('SIGKILL');
    }, timeLimitMs);

    const t0 = Date.now();
    const timers = script.slice(1).map((stage) =>
      setTimeout(() => {
        out(`${elapsed(t0)}  pod: ${stage.title}`);
        kube.set('pods', stage.pod(startedAt));
      }, stage.atMs),
    );
    out(`${elapsed(t0)}  pod: ${(script[0] as (typeof script)[0]).title}; agent started`);

    let printed = 0;
    const printer = setInterval(() => {
      const beats = emulator.heartbeats(runId);
      for (; printed < beats.length; printed++)
        out(`${elapsed(t0)}  ${describe(printed + 1, beats[printed] as HeartbeatTaskRunRequest)}`);
    }, 20);
    const code = await agent.exited;
    clearTimeout(limit);
    for (const timer of timers) clearTimeout(timer);
    clearInterval(printer);
    const beats = emulator.heartbeats(runId);
    for (; printed < beats.length; printed++)
      out(`${elapsed(t0)}  ${describe(printed + 1, beats[printed] as HeartbeatTaskRunRequest)}`);
    agent.release();
    if (timedOut) {
      process.stderr.write(
        `tes-heartbeat demo: no final heartbeat within ${formatDuration(timeLimitMs)}; the agent was stopped\n`,
      );
      return EXIT_INTERNAL;
    }

    const final = await tes.getTaskRun(runId);
    out(
      `agent exited with ${code}; run ${runId}: ${final.status}${final.statusDetails ? ` (${final.statusDetails})` : ''}`,
    );
    if (!keep) out('to look at this run in a browser: tes-heartbeat demo --keep');
    else if (!agent.interrupted()) {
      out(`web page: ${emulator.url}/ui/runs/${encodeURIComponent(runId)} (every run: ${emulator.url}/)`);
      out('the emulator keeps serving; Ctrl-C stops it');
      await untilSignal();
    }
    return code === 0 && beats.at(-1)?.lastHeartbeat === true ? EXIT_OK : EXIT_INTERNAL;
  } finally {
    await standIns.close();
  }
}
