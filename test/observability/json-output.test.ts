// With LOG_FORMAT=json every line a long-running command writes, on stdout and on stderr, is
// JSON (issue 16): a log shipper parses each line, and one plain line among them is lost or
// breaks the stream. Node's own warnings included: they are logged, not printed.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startCli } from '../support/agent-harness.ts';
import { waitFor } from '../support/fake-clock.ts';
import { FaultTes } from '../support/fault-tes.ts';
import { webhookEnv } from '../support/webhook-helpers.ts';

const PRELOAD = path.join(import.meta.dirname, '..', 'support', 'warning-preload.mjs');

interface Command {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function start([command = '', ...args]: string[], env: Record<string, string>): Command {
  const started = startCli(command, { LOG_FORMAT: 'json', ...env }, args);
  const exited = started.exited.then(({ code }) => code);
  cleanups.push(async () => {
    if (started.child.exitCode === null) started.child.kill('SIGKILL');
    await exited;
  });
  return { child: started.child, out: started.stdout, err: started.stderr, exited };
}

/** Every line that is not a JSON object, from both streams. */
function notJson(command: Command): string[] {
  return [...command.out().split('\n'), ...command.err().split('\n')].filter((line) => {
    if (line === '') return false;
    try {
      const value: unknown = JSON.parse(line);
      return typeof value !== 'object' || value === null || Array.isArray(value);
    } catch {
      return true;
    }
  });
}

function logLines(command: Command): Record<string, unknown>[] {
  return command
    .out()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A server that accepts connections and never says a word (a black-holed API server). */
async function blackHole(): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as { port: number }).port;
}

async function kubeconfigFor(port: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'json-output-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'kubeconfig');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: u, user: {token: not-a-real-token}}]',
      'contexts: [{name: c, context: {cluster: c, user: u}}]',
      'current-context: c',
      '',
    ].join('\n'),
  );
  return file;
}

async function startTes(): Promise<FaultTes> {
  const tes = await new FaultTes().start();
  cleanups.push(() => tes.close());
  return tes;
}

function agentEnv(tes: FaultTes, kubeconfig: string): Record<string, string> {
  return {
    TES_URL: tes.url,
    TES_RUN_ID: 'run-json-output',
    POD_NAME: 'task-pod',
    POD_NAMESPACE: 'tasks',
    KUBECONFIG: kubeconfig,
    HEARTBEAT_INTERVAL: '300ms',
    HEARTBEAT_MIN_GAP: '0s',
    HEARTBEAT_TIMEOUT: '250ms',
    FINAL_HEARTBEAT_DEADLINE: '1s',
    HTTP_ADDR: 'off',
    LOG_LEVEL: 'debug',
  };
}

async function fleetEnv(apiPort: number): Promise<Record<string, string>> {
  const tes = await startTes();
  return {
    TES_URL: tes.url,
    KUBECONFIG: await kubeconfigFor(apiPort),
    FLEET_NODE_NAME: 'node-1',
    FLEET_NAMESPACES: 'tasks',
    POD_NAME: 'fleet-pod',
    POD_NAMESPACE: 'tes-heartbeat',
    HEARTBEAT_TIMEOUT: '250ms',
    FINAL_HEARTBEAT_DEADLINE: '1s',
    HTTP_ADDR: 'off',
    LOG_LEVEL: 'debug',
  };
}

describe('nothing but JSON on stdout and stderr (LOG_FORMAT=json)', () => {
  it.each([
    ['a closed port', async () => freePort()],
    ['a black hole (accepts, never answers)', blackHole],
  ])('the fleet whose API server is %s, through start and SIGTERM', async (_, api) => {
    const fleet = start(['fleet'], await fleetEnv(await api()));
    // A while of failing lists and the backoffs between them (the fleet has no heartbeat to wait for).
    await waitFor(() => fleet.out().includes('\n'), 10_000, 'the fleet logging');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    fleet.child.kill('SIGTERM');
    expect(await fleet.exited).toBe(0);
    expect(notJson(fleet)).toEqual([]);
    expect(fleet.err()).toBe('');
    expect(logLines(fleet).filter((line) => String(line.msg).startsWith('Node.js warning'))).toEqual([]);
  });

  it.each([
    ['a closed port', async () => freePort()],
    ['a black hole (accepts, never answers)', blackHole],
  ])('the agent whose API server is %s, through start, heartbeats and SIGTERM', async (_, api) => {
    const tes = await startTes();
    const agent = start(['agent'], agentEnv(tes, await kubeconfigFor(await api())));
    // A while of failing reads, watches and the backoffs between them, with heartbeats going on.
    await waitFor(() => tes.requests.length >= 4, 10_000, 'heartbeats while the API is unreachable');
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(notJson(agent)).toEqual([]);
    expect(agent.err()).toBe('');
    // No warning at all: in particular no timer was set with a negative delay.
    expect(logLines(agent).filter((line) => String(line.msg).startsWith('Node.js warning'))).toEqual([]);
    expect(tes.requests.at(-1)?.body).toMatchObject({ lastHeartbeat: true });
  });

  const commands: [string, () => Promise<{ args: string[]; env: Record<string, string> }>][] = [
    [
      'agent',
      async () => {
        const tes = await startTes();
        return { args: ['agent'], env: agentEnv(tes, await kubeconfigFor(await freePort())) };
      },
    ],
    [
      'webhook',
      async () => ({
        args: ['webhook'],
        env: webhookEnv,
      }),
    ],
    ['emulator', async () => ({ args: ['emulator', '--port', '0'], env: {} })],
    ['fleet', async () => ({ args: ['fleet'], env: await fleetEnv(await freePort()) })],
  ];

  it.each(commands)('%s: a warning of Node itself is a JSON log line, with its stack', async (_, setup) => {
    const { args, env } = await setup();
    const command = start(args, { ...env, NODE_OPTIONS: `--import=${PRELOAD}` });
    await waitFor(() => command.out().includes('\n'), 10_000, 'the first log line');
    command.child.kill('SIGUSR2');
    const warnings = () => logLines(command).filter((line) => String(line.msg).startsWith('Node.js warning'));
    await waitFor(() => warnings().length >= 2, 5_000, 'both warnings logged');
    expect(warnings().map((line) => [line.warning, line.level])).toEqual(
      expect.arrayContaining([
        ['TimeoutNegativeWarning', 40],
        ['DeprecationWarning', 40],
      ]),
    );
    const negative = warnings().find((line) => line.warning === 'TimeoutNegativeWarning');
    expect(negative?.err).toMatchObject({ stack: expect.stringContaining('warning-preload.mjs') });
    command.child.kill('SIGTERM');
    expect(await command.exited).toBe(0);
    expect(notJson(command)).toEqual([]);
    expect(command.err()).toBe('');
  });
});
