// Runs the built agent as a child process, as in a pod, against the fake
// Kubernetes API (HTTPS) and the emulator, and collects what it says.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

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
  const child = spawn(process.execPath, [CLI, 'agent', ...args], {
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
