// Rule T5, done to the built agent: in regular mode a task container can bind the
// agent's port first and serve made-up metrics there. The agent logs the error, records
// one Warning Event `ListenerPortTaken` on its pod (checked by the fake API server as
// kube-apiserver checks Events), and its heartbeats go on unaffected.
import { createServer, type Server } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type AgentProcess, freePort, stopAfterEach } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import type { FaultTes } from '../support/fault-tes.ts';

const NS = 'tasks';
const after = stopAfterEach();

/** What a task could serve on the agent's port: every heartbeat a success. */
async function impostor(port: number): Promise<Server> {
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end('tes_heartbeats_total{result="success"} 999\n'),
  );
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  after.defer(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

async function world() {
  const port = await freePort();
  const w = await after.world({
    runId: 'run-port',
    env: {
      HEARTBEAT_INTERVAL: '200ms',
      HEARTBEAT_MIN_GAP: '0s',
      FINAL_HEARTBEAT_DEADLINE: '1s',
      JOB_RETRY_COUNT: '0',
      HARDWARE_DETAILS: 'off',
      HTTP_ADDR: `127.0.0.1:${port}`,
    },
  });
  return { ...w, port };
}

const portTaken = (events: Record<string, unknown>[]) =>
  events.filter((e) => e.reason === 'ListenerPortTaken');
const beats = async (tes: FaultTes, count: number) => {
  const target = tes.requests.length + count;
  await waitFor(() => tes.requests.length >= target, 10_000, `${count} more heartbeats`);
};

describe('the agent whose port a task took (rule T5)', () => {
  it('logs the error, records one Warning Event ListenerPortTaken on its pod, and heartbeats on', async () => {
    const w = await world();
    await impostor(w.port);
    const agent: AgentProcess = after.agent(w.env);
    const error = await agent.logged('health and metrics listener not started');
    expect(error).toMatchObject({ level: 50, address: `127.0.0.1:${w.port}` });

    const events = w.kube.server.events.created;
    await waitFor(() => portTaken(events).length > 0, 10_000, 'the ListenerPortTaken Event');
    const [event] = portTaken(events);
    expect(event).toMatchObject({
      type: 'Warning',
      action: 'Heartbeat',
      reportingController: 'tes-heartbeat',
      reportingInstance: 'task-pod',
      // With the pod's uid: `kubectl describe pod` selects Events by it.
      regarding: { kind: 'Pod', namespace: NS, name: 'task-pod', uid: w.podUid },
    });
    expect(String(event?.note)).toContain(`127.0.0.1:${w.port}`);

    // Heartbeats go on, every one a success, and the Event stays the only one.
    await beats(w.tes, 5);
    expect(agent.logs.filter((l) => l.msg === 'heartbeat failed')).toEqual([]);
    expect(portTaken(events)).toHaveLength(1);
    expect(events.map((e) => e.reason)).toEqual(['ListenerPortTaken']);
    expect(agent.child.exitCode).toBeNull();

    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    expect(portTaken(events)).toHaveLength(1);
  });

  it('records nothing with EVENTS=off, and nothing when the port is free', async () => {
    const taken = await world();
    await impostor(taken.port);
    const quiet = after.agent({ ...taken.env, EVENTS: 'off' });
    await quiet.logged('health and metrics listener not started');
    await beats(taken.tes, 3);

    const free = await world();
    const listening = after.agent(free.env);
    await beats(free.tes, 3);
    expect((await fetch(`http://127.0.0.1:${free.port}/healthz`)).status).toBe(200);

    expect(taken.kube.server.events.created).toEqual([]);
    expect(free.kube.server.events.created).toEqual([]);
    expect(listening.logs.filter((l) => l.msg === 'health and metrics listener not started')).toEqual([]);
  });
});
