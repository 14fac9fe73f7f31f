// The engine's run on a fake clock, with a scripted send: how a run ends (its final's
// fate), and how it stops without one (the fleet's SIGTERM, a lost leadership).
import { describe, expect, it } from 'vitest';
import { TaskRun } from '../../src/engine/task-run.ts';
import { createLogger } from '../../src/log.ts';
import type { HeartbeatTaskRunRequest } from '../../src/tes/types.gen.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';
import { containerStatus, COMPLETED, RUNNING, testPod } from '../support/fake-kube-api.ts';
import type { Pod } from '../../src/kube/types.ts';

const pod = (state: object, phase = 'Running') =>
  testPod({
    name: 'p',
    nodeName: 'n',
    status: { phase, containerStatuses: [containerStatus('main', state)] },
  }) as Pod;

async function harness(send: (body: HeartbeatTaskRunRequest, signal: AbortSignal) => Promise<object>) {
  const clock = new FakeClock();
  const sent: HeartbeatTaskRunRequest[] = [];
  const run = new TaskRun({
    runId: 'r',
    podName: 'p',
    nonce: 'n-0123456',
    policy: {
      intervalMs: 1_000,
      minGapMs: 0,
      finalDeadlineMs: 2_000,
      selfName: 'tes-heartbeat',
      hardwareDetails: false,
    },
    clock,
    log: await createLogger({ level: 'silent', format: 'json' }),
    send: (body, _token, signal) => {
      sent.push(body);
      return send(body, signal);
    },
    resetConnections: async () => false,
    bearer: { current: async () => undefined, unauthorized: async () => {}, rotated: async () => {} },
    observers: [],
  });
  return { clock, run, sent };
}

const never = (_body: HeartbeatTaskRunRequest, signal: AbortSignal) =>
  new Promise<object>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

describe('TaskRun', () => {
  it("ends with 'final-sent' after a completed pod's one final heartbeat, which is the first when the pod is complete at once", async () => {
    const { run, sent } = await harness(async () => ({}));
    run.podSeen(pod(COMPLETED, 'Succeeded'));
    expect(await run.run()).toEqual({ reason: 'complete', outcome: 'final-sent' });
    expect(sent.map((b) => b.lastHeartbeat)).toEqual([true]);
  });

  it("ends with 'final-failed' when the final is not acknowledged within its deadline", async () => {
    const { clock, run } = await harness(never);
    run.podSeen(pod(RUNNING));
    const ended = run.run();
    await settle();
    run.deleted(pod(RUNNING));
    for (let i = 0; i < 10; i++) await clock.advance(500);
    expect(await ended).toEqual({ reason: 'pod-deleted', outcome: 'final-failed' });
  });

  it('abandoned: the attempt in flight is cut, nothing more is sent, no final', async () => {
    const { clock, run, sent } = await harness(never);
    run.podSeen(pod(RUNNING));
    const ended = run.run();
    await settle();
    expect(sent).toHaveLength(1);
    run.abandon('the fleet is stopping');
    expect(await ended).toEqual({ reason: undefined, outcome: 'abandoned' });
    await clock.advance(10_000);
    expect(sent).toHaveLength(1);
    expect(sent.some((b) => b.lastHeartbeat)).toBe(false);
  });

  it('a final already due goes on when abandoned, and is cut only with evenFinal', async () => {
    const first = await harness(async () => ({}));
    first.run.podSeen(pod(RUNNING));
    const goingOn = first.run.run();
    await settle();
    first.run.end('pod-deleted');
    first.run.abandon('the fleet is stopping');
    expect((await goingOn).outcome).toBe('final-sent');

    const second = await harness(never);
    second.run.podSeen(pod(COMPLETED, 'Succeeded'));
    const cut = second.run.run();
    await settle();
    expect(second.sent.map((b) => b.lastHeartbeat)).toEqual([true]);
    second.run.abandon('leadership lost', { evenFinal: true });
    expect(await cut).toEqual({ reason: 'complete', outcome: 'abandoned' });
  });
});
