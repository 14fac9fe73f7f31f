// A run's heartbeats as lanes over time, for the web page's picture: one lane per
// container, each cut into segments of one state (as the heartbeats reported it),
// from the heartbeat that first reported it to the next change. Pure: the page's
// SVG is drawn from this in ui.ts.
import type { ContainerStatus, HeartbeatTaskRunRequest } from '../tes/types.gen.ts';
import type { ReceivedHeartbeat } from './store.ts';

export type LaneState = 'waiting' | 'running' | 'exited' | 'failed';

export interface Segment {
  state: LaneState;
  /** What a person reads: `running`, `waiting: ContainerCreating`, `exit 137 (OOMKilled)`. */
  label: string;
  /** What fits on the bar, the colour saying the rest: `running`, `ContainerCreating`, `exit 137`. */
  short: string;
  from: number;
  to: number;
  /** 1-based numbers of the first and last heartbeat that reported this state. */
  firstBeat: number;
  lastBeat: number;
}

export interface Lane {
  container: string;
  segments: Segment[];
}

/** A heartbeat as the page shows it: never its nonce, jwt or hardware details. */
export interface Beat {
  n: number;
  at: number;
  final: boolean;
  podName?: string;
  containers: ({ name: string } & Described)[];
}

export interface Timeline {
  start: number;
  end: number;
  beats: Beat[];
  lanes: Lane[];
}

/** Reads what the page may show of each accepted heartbeat (they passed the definition, so they parse). */
export function readBeats(heartbeats: readonly ReceivedHeartbeat[]): Beat[] {
  return heartbeats.map(({ raw, at }, i) => {
    const body = JSON.parse(raw) as HeartbeatTaskRunRequest;
    const beat: Beat = {
      n: i + 1,
      at,
      final: body.lastHeartbeat === true,
      containers: (body.containerStatus ?? []).map((status, index) => ({
        name: status.name ?? `container #${index}`,
        ...describe(status),
      })),
    };
    if (body.podName !== undefined) beat.podName = body.podName;
    return beat;
  });
}

interface Described {
  state?: LaneState;
  label: string;
  short: string;
}

function describe(status: ContainerStatus): Described {
  const { terminated, running, waiting } = status.state ?? {};
  if (terminated) {
    const exit = `exit ${terminated.exitCode ?? '?'}`;
    const signal = terminated.signal !== undefined ? `, signal ${terminated.signal}` : '';
    const reason = terminated.reason ? ` (${terminated.reason})` : '';
    return {
      state: terminated.exitCode === 0 ? 'exited' : 'failed',
      label: `${exit}${signal}${reason}`,
      short: exit,
    };
  }
  if (running) return { state: 'running', label: 'running', short: 'running' };
  if (waiting)
    return {
      state: 'waiting',
      label: waiting.reason ? `waiting: ${waiting.reason}` : 'waiting',
      short: waiting.reason ?? 'waiting',
    };
  return { label: 'no state reported', short: '' };
}

/**
 * Lanes from `beats` (oldest first). A state lasts until the next heartbeat that
 * reports the container differently, or that no longer reports it; the last one
 * lasts until `end`.
 */
export function buildTimeline(beats: Beat[], end: number): Timeline {
  const lanes = new Map<string, Lane>();
  const open = new Map<string, Segment>();
  for (const beat of beats) {
    const seen = new Set<string>();
    for (const { name, state, label, short } of beat.containers) {
      if (seen.has(name)) continue;
      seen.add(name);
      let lane = lanes.get(name);
      if (!lane) {
        lane = { container: name, segments: [] };
        lanes.set(name, lane);
      }
      const current = open.get(name);
      if (current && current.state === state && current.label === label) {
        current.lastBeat = beat.n;
        continue;
      }
      if (current) current.to = beat.at;
      open.delete(name);
      if (state === undefined) continue;
      const segment: Segment = {
        state,
        label,
        short,
        from: beat.at,
        to: end,
        firstBeat: beat.n,
        lastBeat: beat.n,
      };
      lane.segments.push(segment);
      open.set(name, segment);
    }
    for (const [name, segment] of open)
      if (!seen.has(name)) {
        segment.to = beat.at;
        open.delete(name);
      }
  }
  return { start: beats[0]?.at ?? end, end, beats, lanes: [...lanes.values()] };
}
