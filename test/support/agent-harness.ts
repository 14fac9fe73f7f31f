// Runs the built agent as a child process, as in a pod, against the fake
// Kubernetes API (HTTPS) and the emulator, and collects what it says.
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { afterEach } from 'vitest';
import { containerStatus, type FakeKube, type KubeObject, startFakeKube, testPod } from './fake-kube-api.ts';
import { FaultTes } from './fault-tes.ts';

export const CLI = path.join(import.meta.dirname, '..', '..', 'dist', 'tes-heartbeat.js');

export interface AgentProcess {
  child: ChildProcess;
  /** stdout lines, parsed (pino JSON). */
  logs: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when a log line matching `msg` has been written. */
  logged(msg: string | RegExp): Promise<Record<string, unknown>>;
}

export function startAgent(env: Record<string, string | undefined>, args: string[] = []): AgentProcess {
  return startCli('agent', env, args);
}

/** Any command of the built CLI as a child process (the fleet's tests use it too). */
export function startCli(
  command: string,
  env: Record<string, string | undefined>,
  args: string[] = [],
): AgentProcess {
  const child = spawn(process.execPath, [CLI, command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, ...env },
  });
  let out = '';
  let err = '';
  const logs: Record<string, unknown>[] = [];
  const waiters: { match: string | RegExp; resolve(line: Record<string, unknown>): void }[] = [];
  const matches = (line: Record<string, unknown>, match: string | RegExp) =>
    typeof match === 'string' ? line.msg === match : match.test(String(line.msg));
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    const lines = out.split('\n');
    const complete = lines.slice(logs.length, -1);
    for (const text of complete) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: `<not JSON> ${text}` };
      }
      logs.push(line);
      for (const w of waiters.filter((w) => matches(line, w.match))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    logged: (match) => {
      const found = logs.find((line) => matches(line, match));
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/** What the built agent runs against: the TES, the API server with its pod, and its env for them. */
export interface AgentWorld {
  tes: FaultTes;
  kube: FakeKube;
  /** The task pod's uid (Events on the pod name it). */
  podUid: string;
  /** TES_URL, TES_RUN_ID, POD_NAME, POD_NAMESPACE and KUBECONFIG for these, with `env` over them. */
  env: Record<string, string>;
}

/** The task pod `tasks/task-pod` of an agent world, as the kubelet reports it. */
const taskPodStatus = () => ({
  phase: 'Running',
  containerStatuses: [containerStatus('main'), containerStatus('tes-heartbeat')],
});

/**
 * What a test starts — servers, agents — is stopped after the test, newest first.
 * Call once at the top of a test file.
 */
export function stopAfterEach(): {
  /** Runs each cleanup after the current test. */
  defer(...cleanups: (() => Promise<unknown>)[]): void;
  /** Starts the built agent; it is killed after the test if still running. */
  agent(env: Record<string, string | undefined>, args?: string[]): AgentProcess;
  /**
   * The fault-injecting TES and the fake API server holding the task pod `tasks/task-pod`
   * (containers main and tes-heartbeat, both running unless `podStatus` says otherwise),
   * both stopped after the test.
   */
  world(options: {
    runId: string;
    env?: Record<string, string>;
    podStatus?: KubeObject;
  }): Promise<AgentWorld>;
} {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    defer: (...more) => cleanups.push(...more),
    async world({ runId, env = {}, podStatus = taskPodStatus() }) {
      const tes = await new FaultTes().start();
      const kube = await startFakeKube();
      cleanups.push(
        () => tes.close(),
        () => kube.close(),
      );
      const pod = kube.server.set(
        'pods',
        testPod({
          name: 'task-pod',
          namespace: 'tasks',
          containers: ['main', 'tes-heartbeat'],
          status: podStatus,
        }),
      );
      return {
        tes,
        kube,
        podUid: pod.metadata?.uid as string,
        env: {
          TES_URL: tes.url,
          TES_RUN_ID: runId,
          POD_NAME: 'task-pod',
          POD_NAMESPACE: 'tasks',
          KUBECONFIG: kube.kubeconfigPath,
          ...env,
        },
      };
    },
    agent(env, args) {
      const agent = startAgent(env, args);
      cleanups.push(async () => {
        if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
        await agent.exited;
      });
      return agent;
    },
  };
}

/** A loopback port free at this moment, for the agent's listener. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A GET on the agent's listener (/healthz, /readyz, /metrics). */
export async function getListener(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}
