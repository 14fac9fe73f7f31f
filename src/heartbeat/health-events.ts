// When the agent records an Event on its pod (contract: Events on the task pod), as a
// pure state machine: heartbeat outcomes and clock ticks in, at most one Event out.
// One Event per transition, never one per heartbeat; after the final heartbeat nothing.
// Times are monotonic milliseconds; the caller arms a timer for `failingDueAt`, because
// "nothing succeeded for three intervals" becomes true while nothing happens.
import { formatDuration } from '../config/duration.ts';

/** `/readyz` is 503 once the last success (or, before any, the start) is this many intervals old. */
export const STALE_AFTER_INTERVALS = 3;

export type HealthEventReason =
  | 'HeartbeatFailing'
  | 'HeartbeatRecovered'
  | 'FinalHeartbeatSent'
  | 'FinalHeartbeatFailed';

export interface HealthEvent {
  reason: HealthEventReason;
  type: 'Normal' | 'Warning';
  /** For people reading `kubectl describe pod`: status and error codes only, never a secret. */
  note: string;
}

/** What a failed heartbeat said, reduced to codes (the HTTP status, an errno, the service's code). */
export interface FailureFacts {
  status?: number;
  /** A network error code (`ECONNREFUSED`) or the client's own (`TES_TIMEOUT`). */
  code?: string;
  /** The `code` of the service's ErrorResponse. */
  serviceCode?: string;
}

/** Who reports the pod's heartbeats, as the notes name it: its sidecar, or a fleet that took the pod on. */
export type Reporter = 'agent' | 'fleet';

export interface HealthState {
  phase: 'starting' | 'ready' | 'failing' | 'ended';
  startedAt: number;
  /** Absent: the agent. */
  reporter?: Reporter;
  lastSuccessAt?: number;
  lastFailure?: FailureFacts;
  failingSince?: number;
}

export type HealthInput =
  | { kind: 'heartbeat'; at: number; result: 'success' | 'failure'; final: boolean; failure?: FailureFacts }
  | { kind: 'tick'; at: number };

export interface HealthStep {
  state: HealthState;
  event?: HealthEvent;
}

export function initialHealth(startedAt: number, reporter: Reporter = 'agent'): HealthState {
  return reporter === 'agent' ? { phase: 'starting', startedAt } : { phase: 'starting', startedAt, reporter };
}

export function nextHealth(state: HealthState, input: HealthInput, intervalMs: number): HealthStep {
  if (state.phase === 'ended') return { state };
  if (input.kind === 'heartbeat' && input.final) {
    const ended: HealthState = { ...state, phase: 'ended' };
    return input.result === 'success'
      ? { state: ended, event: finalSent() }
      : { state: ended, event: finalFailed(input.failure) };
  }
  if (input.kind === 'heartbeat' && input.result === 'success') {
    const { failingSince: _, ...rest } = state;
    const ready: HealthState = { ...rest, phase: 'ready', lastSuccessAt: input.at };
    if (state.phase !== 'failing') return { state: ready };
    return { state: ready, event: recovered(input.at - (state.failingSince ?? input.at)) };
  }
  const seen: HealthState =
    input.kind === 'heartbeat' ? { ...state, lastFailure: input.failure ?? {} } : state;
  const due = failingDueAt(seen, intervalMs);
  if (due === undefined || input.at < due) return { state: seen };
  return {
    state: { ...seen, phase: 'failing', failingSince: input.at },
    event: failing(seen, input.at, intervalMs),
  };
}

/** When a tick would raise HeartbeatFailing, or undefined when none can (failing already, or ended). */
export function failingDueAt(state: HealthState, intervalMs: number): number | undefined {
  if (state.phase === 'failing' || state.phase === 'ended') return undefined;
  return (state.lastSuccessAt ?? state.startedAt) + STALE_AFTER_INTERVALS * intervalMs;
}

/** The codes of a heartbeat's error (a TesError): structural, so the core needs no import of the client. */
export function failureFacts(error: unknown): FailureFacts {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    status?: unknown;
    code?: unknown;
    errorCode?: unknown;
    cause?: { code?: unknown; cause?: { code?: unknown } };
  };
  const facts: FailureFacts = {};
  if (typeof e.status === 'number') facts.status = e.status;
  // A network error says more by its errno (ECONNREFUSED) than by the client's TES_NETWORK_ERROR;
  // an HTTP error's status says all that TES_HTTP_ERROR would.
  const code = safeCode(e.cause?.code) ?? safeCode(e.cause?.cause?.code) ?? safeCode(e.code);
  if (code && code !== 'TES_HTTP_ERROR') facts.code = code;
  const serviceCode = safeCode(e.errorCode);
  if (serviceCode) facts.serviceCode = serviceCode;
  return facts;
}

/** Codes are identifiers: anything else (a TES echoing a body into `code`) is left out. */
function safeCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : undefined;
}

function describeFailure(facts: FailureFacts | undefined): string {
  if (!facts) return 'no heartbeat has been answered yet';
  const what = [facts.status !== undefined ? `HTTP ${facts.status}` : undefined, facts.code]
    .filter(Boolean)
    .join(' ');
  // No status and no code: the attempt was cut off (the final deadline) or never reached the wire.
  if (!what) return 'the last attempt ended without an answer';
  return `the last failure was ${what}${facts.serviceCode ? ` (service error code ${facts.serviceCode})` : ''}`;
}

/** Monotonic readings are fractional: whole seconds for people, tenths below ten seconds. */
function age(ms: number): string {
  const step = ms >= 10_000 ? 1_000 : 100;
  return formatDuration(Math.max(0, Math.round(ms / step) * step));
}

function failing(state: HealthState, at: number, intervalMs: number): HealthEvent {
  const since =
    state.lastSuccessAt === undefined
      ? `No heartbeat has succeeded since ${state.reporter === 'fleet' ? 'the fleet took the pod on' : 'the agent started'} ${age(at - state.startedAt)} ago`
      : `No heartbeat has succeeded for ${age(at - state.lastSuccessAt)}`;
  return {
    reason: 'HeartbeatFailing',
    type: 'Warning',
    note: `${since} (heartbeat interval ${formatDuration(Math.round(intervalMs))}); ${describeFailure(state.lastFailure)}. The TES may time the run out; see the ${state.reporter === 'fleet' ? "fleet's" : "agent's"} logs.`,
  };
}

function recovered(failedForMs: number): HealthEvent {
  return {
    reason: 'HeartbeatRecovered',
    type: 'Normal',
    note: `Heartbeats succeed again, after failing for ${age(failedForMs)}.`,
  };
}

function finalSent(): HealthEvent {
  return {
    reason: 'FinalHeartbeatSent',
    type: 'Normal',
    note: 'The TES acknowledged the final heartbeat (lastHeartbeat: true).',
  };
}

function finalFailed(facts: FailureFacts | undefined): HealthEvent {
  return {
    reason: 'FinalHeartbeatFailed',
    type: 'Warning',
    note: `The final heartbeat was not acknowledged within FINAL_HEARTBEAT_DEADLINE: ${describeFailure(facts)}. The TES may not learn that the task ended.`,
  };
}
