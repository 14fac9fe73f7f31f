// What both demos print: heartbeats as the emulator received them, for people.
import type { ContainerStatus, HeartbeatTaskRunRequest } from '../tes/types.gen.ts';

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function elapsed(t0: number): string {
  return `+${((Date.now() - t0) / 1000).toFixed(2)}s`.padStart(7);
}

export function describe(n: number, beat: HeartbeatTaskRunRequest): string {
  const containers = (beat.containerStatus ?? []).map(describeContainer).join('; ') || 'pod not read yet';
  const hardware = beat.podHardwareDetails
    ? ` [hardware: ${summariseHardware(beat.podHardwareDetails)}]`
    : '';
  const last = beat.lastHeartbeat ? '  lastHeartbeat' : '';
  return `heartbeat #${n}  ${containers}  jobRetryCount=${beat.jobRetryCount ?? '-'}${hardware}${last}`;
}

function describeContainer(status: ContainerStatus): string {
  const state = status.state ?? {};
  if (state.terminated) {
    const t = state.terminated;
    return `${status.name}: terminated (exit ${t.exitCode}${t.reason ? `, ${t.reason}` : ''})`;
  }
  if (state.running) return `${status.name}: running since ${state.running.startedAt}`;
  const w = state.waiting ?? {};
  return `${status.name}: waiting (${w.reason ?? '?'}${w.message ? `: ${truncate(w.message, 60)}` : ''})`;
}

function summariseHardware(json: string): string {
  try {
    const details = JSON.parse(json) as Record<string, unknown>;
    const node = (details.node ?? {}) as Record<string, unknown>;
    return [details.nodeName, node.instanceType].filter(Boolean).join(', ') || 'not scheduled yet';
  } catch {
    return 'unparsable';
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
