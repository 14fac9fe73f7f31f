// What both demos stand up around the real CLI: the TES emulator and the Kubernetes
// stand-in in this process (the demo node and Job already there), a kubeconfig for them,
// and the CLI itself as a child process with the demo's quick settings; a Ctrl-C ends the
// child as its pod's SIGTERM would.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Emulator, startEmulator } from '../emulator/server.ts';
import { FakeKubeApiServer } from '../testing/fake-kube-api-server.ts';
import { TesClient } from '../tes/client.ts';
import { out } from './print.ts';
import { job, NAMESPACE, node } from './scenario.ts';

export interface StandIns {
  emulator: Emulator;
  kube: FakeKubeApiServer;
  /** A client of the emulator, for the demo's own calls (create the runs, read them at the end). */
  tes: TesClient;
  kubeconfig: string;
  close(): Promise<void>;
}

export async function startStandIns(): Promise<StandIns> {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const kube = await FakeKubeApiServer.start({ host: '127.0.0.1' });
  const dir = await mkdtemp(path.join(tmpdir(), 'tes-heartbeat-demo-'));
  const tes = new TesClient({ baseUrl: emulator.url, timeoutMs: 5_000 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  const close = async () => {
    await tes.close();
    await Promise.allSettled([emulator.close(), kube.close()]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await writeFile(kubeconfig, kube.kubeconfig(NAMESPACE), { mode: 0o600 });
  } catch (error) {
    await close();
    throw error;
  }
  kube.set('nodes', node);
  kube.set('jobs', job);
  out(`TES emulator ${emulator.url}, Kubernetes stand-in ${kube.url}`);
  return { emulator, kube, tes, kubeconfig, close };
}

export interface DemoChild {
  process: ChildProcess;
  exited: Promise<number | null>;
  /** Whether a SIGINT or SIGTERM came (and was passed on to the child as SIGTERM). */
  interrupted(): boolean;
  /** Stops passing signals on. */
  release(): void;
}

/** This CLI's `command` as a child process, its stderr shown, with the demo's quick settings. */
export function startChild(
  command: 'agent' | 'fleet',
  standIns: StandIns,
  env: Record<string, string>,
): DemoChild {
  const child = spawn(process.execPath, [process.argv[1] as string, command], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env.PATH,
      TES_URL: standIns.emulator.url,
      KUBECONFIG: standIns.kubeconfig,
      HEARTBEAT_INTERVAL: '2s',
      HEARTBEAT_MIN_GAP: '250ms',
      HTTP_ADDR: 'off',
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let interrupted = false;
  const stop = () => {
    interrupted = true;
    child.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    process: child,
    exited,
    interrupted: () => interrupted,
    release: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
