// Events on the task pod, done to the built agent as a process (contract: Events on
// the task pod): the fake Kubernetes API records and checks every Event as
// kube-apiserver would (422 on a missing field), the fault TES fails and recovers.
import { describe, expect, it } from 'vitest';
import { type AgentProcess, type AgentWorld, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';

const TOKEN = 'tes-secret-token-7c1e0';
const NONCE = 'nonce-secret-3f9a2';
const NS = 'tasks';
const EVENTS_PATH = `/apis/events.k8s.io/v1/namespaces/${NS}/events`;
/** A failing TES that echoes a secret in its message: no Event may carry it. */
const UNAVAILABLE = { status: 503, body: { code: 'UNAVAILABLE', message: `overloaded (token ${TOKEN})` } };

const after = stopAfterEach();

const world = (): Promise<AgentWorld> =>
  after.world({
    runId: 'run-events',
    env: {
      TES_TOKEN: TOKEN,
      TES_NONCE: NONCE,
      HEARTBEAT_INTERVAL: '200ms',
      HEARTBEAT_MIN_GAP: '0s',
      FINAL_HEARTBEAT_DEADLINE: '1s',
      JOB_RETRY_COUNT: '0',
      HARDWARE_DETAILS: 'off',
      HTTP_ADDR: 'off',
      LOG_LEVEL: 'debug',
    },
  });

const run = (w: AgentWorld, env: Record<string, string> = {}): AgentProcess =>
  after.agent({ ...w.env, ...env });

const reasons = (w: AgentWorld) => w.kube.server.events.created.map((e) => e.reason);
const eventPosts = (w: AgentWorld) =>
  w.kube.server.requests.filter((r) => r.method === 'POST' && r.path === EVENTS_PATH).length;
const failedBeats = (agent: AgentProcess) => agent.logs.filter((l) => l.msg === 'heartbeat failed').length;
const refusals = (agent: AgentProcess) =>
  agent.logs.filter((l) => String(l.msg).startsWith('cannot record an Event on the pod'));

/** `promise`, or a failure after `ms` naming what did not happen, with the agent's last words. */
async function within<T>(promise: Promise<T>, what: string, agent: AgentProcess, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${what}: not within ${ms} ms (exit code ${agent.child.exitCode}); stdout ends:\n${agent.stdout().slice(-3000)}\nstderr:\n${agent.stderr().slice(-2000)}`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const exitCode = async (agent: AgentProcess) => (await within(agent.exited, 'exit', agent)).code;
const acknowledged = (agent: AgentProcess) =>
  within(agent.logged('heartbeat acknowledged'), 'a success', agent);

/** Lets `count` more heartbeats reach the TES. */
async function beats(w: AgentWorld, count: number, what: string): Promise<void> {
  const target = w.tes.requests.length + count;
  await waitFor(() => w.tes.requests.length >= target, 10_000, what);
}

describe('Events on the task pod', { timeout: 40_000 }, () => {
  it('failing, recovering, the end: exactly HeartbeatFailing, HeartbeatRecovered, FinalHeartbeatSent, each valid', async () => {
    const w = await world();
    const agent = run(w);
    await acknowledged(agent);
    await beats(w, 3, 'healthy heartbeats');
    expect(reasons(w)).toEqual([]);

    w.tes.setFallback(UNAVAILABLE);
    await waitFor(() => reasons(w).length === 1, 10_000, 'HeartbeatFailing');
    // However many heartbeats fail after it, one Event says so.
    const failuresAtEvent = failedBeats(agent);
    await waitFor(() => failedBeats(agent) >= failuresAtEvent + 4, 10_000, 'more failures');
    expect(reasons(w)).toEqual(['HeartbeatFailing']);

    w.tes.setFallback({ status: 200, body: {} });
    await waitFor(() => reasons(w).length === 2, 10_000, 'HeartbeatRecovered');
    await beats(w, 3, 'healthy heartbeats again');
    agent.child.kill('SIGTERM');
    expect(await exitCode(agent)).toBe(0);

    expect(reasons(w)).toEqual(['HeartbeatFailing', 'HeartbeatRecovered', 'FinalHeartbeatSent']);
    // Every POST was accepted: none was refused by the server's checks (422/400).
    expect(eventPosts(w)).toBe(3);
    const [failing, recovered, final] = w.kube.server.events.created;
    for (const event of [failing, recovered, final]) {
      expect(event).toMatchObject({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { namespace: NS, name: expect.stringMatching(/^task-pod\./) },
        eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
        action: 'Heartbeat',
        reportingController: 'tes-heartbeat',
        reportingInstance: 'task-pod',
        regarding: { kind: 'Pod', apiVersion: 'v1', namespace: NS, name: 'task-pod', uid: w.podUid },
      });
      expect(JSON.stringify(event)).not.toContain(TOKEN);
      expect(JSON.stringify(event)).not.toContain(NONCE);
    }
    expect(failing).toMatchObject({ type: 'Warning', reason: 'HeartbeatFailing' });
    expect(failing?.note).toContain('HTTP 503 (service error code UNAVAILABLE)');
    expect(recovered).toMatchObject({ type: 'Normal', reason: 'HeartbeatRecovered' });
    expect(final).toMatchObject({ type: 'Normal', reason: 'FinalHeartbeatSent' });
    expect(w.tes.requests.at(-1)?.body.lastHeartbeat).toBe(true);
  });

  it('nothing succeeds for three intervals from the start: HeartbeatFailing by the timer alone', async () => {
    const w = await world();
    // The first attempt hangs far past three intervals: no heartbeat result can raise the Event.
    w.tes.setFallback({ hang: true });
    const agent = run(w, { HEARTBEAT_TIMEOUT: '30s' });
    await waitFor(() => reasons(w).length === 1, 10_000, 'HeartbeatFailing');
    expect(reasons(w)).toEqual(['HeartbeatFailing']);
    expect(w.tes.requests).toHaveLength(1);
    expect(failedBeats(agent)).toBe(0);
    expect(w.kube.server.events.created[0]?.note).toMatch(
      /^No heartbeat has succeeded since the agent started .* no heartbeat has been answered yet/,
    );

    agent.child.kill('SIGTERM');
    expect(await exitCode(agent)).toBe(0);
    expect(reasons(w)).toEqual(['HeartbeatFailing', 'FinalHeartbeatFailed']);
    expect(w.kube.server.events.created[1]).toMatchObject({ type: 'Warning' });
    // Cut off at FINAL_HEARTBEAT_DEADLINE: no status, no code.
    expect(w.kube.server.events.created[1]?.note).toContain('the last attempt ended without an answer');
  });

  it('a forbidden Events API (403): one warn in the agent’s life, heartbeats unaffected', async () => {
    const w = await world();
    w.kube.server.events.forbidden = true;
    const agent = run(w);
    await acknowledged(agent);
    w.tes.setFallback(UNAVAILABLE);
    await waitFor(() => eventPosts(w) === 1, 10_000, 'the first Event write');
    // Heartbeats go on after the refusal, on their interval.
    await beats(w, 3, 'heartbeats after the refusal');
    w.tes.setFallback({ status: 200, body: {} });
    await waitFor(() => eventPosts(w) === 2, 10_000, 'the second Event write');
    await beats(w, 3, 'heartbeats after the second refusal');
    agent.child.kill('SIGTERM');
    expect(await exitCode(agent)).toBe(0);

    expect(eventPosts(w)).toBe(3);
    expect(w.kube.server.events.created).toHaveLength(0);
    expect(refusals(agent).map((l) => l.level)).toEqual([40, 20, 20]);
    expect(JSON.stringify(refusals(agent)[0])).toContain('403');
    expect(agent.logs.filter((l) => l.level === 40 && l.msg !== 'heartbeat failed')).toHaveLength(1);
    expect(w.tes.requests.at(-1)?.body.lastHeartbeat).toBe(true);
    expect(agent.logs.some((l) => l.msg === 'final heartbeat acknowledged')).toBe(true);
  });

  it('an Events API that never answers holds back no heartbeat and not the exit', async () => {
    const w = await world();
    w.kube.server.failNext({ method: 'POST', path: EVENTS_PATH }, 'hang', 10);
    const agent = run(w);
    await acknowledged(agent);
    w.tes.setFallback(UNAVAILABLE);
    await waitFor(() => eventPosts(w) === 1, 10_000, 'the first Event write');
    await beats(w, 3, 'heartbeats while the write hangs');
    w.tes.setFallback({ status: 200, body: {} });
    await acknowledged(agent);
    agent.child.kill('SIGTERM');
    // The final Event waits at most about a second, whatever the API server does.
    expect(await exitCode(agent)).toBe(0);
    expect(w.tes.requests.at(-1)?.body.lastHeartbeat).toBe(true);
    expect(w.kube.server.events.created).toHaveLength(0);
  });

  it('EVENTS=off: no Event is POSTed, whatever happens', async () => {
    const w = await world();
    const agent = run(w, { EVENTS: 'off' });
    await acknowledged(agent);
    w.tes.setFallback(UNAVAILABLE);
    // Well past three intervals of failures, where HeartbeatFailing would be due.
    await waitFor(() => failedBeats(agent) >= 6, 10_000, 'failures');
    w.tes.setFallback({ status: 200, body: {} });
    await beats(w, 3, 'healthy heartbeats again');
    agent.child.kill('SIGTERM');
    expect(await exitCode(agent)).toBe(0);
    expect(w.kube.server.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('EVENTS takes on or off only (exit 2)', async () => {
    const w = await world();
    const agent = run(w, { EVENTS: 'maybe' });
    expect(await exitCode(agent)).toBe(2);
    expect(agent.stderr()).toContain("EVENTS (--events): 'maybe' is not one of on, off");
  });
});
