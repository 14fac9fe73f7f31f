// Events on the agent's own pod (contract: Events on the task pod), written as
// `events.k8s.io/v1` Events with everything kube-apiserver requires (it answers 422
// otherwise). Best effort: a refused or failed write is logged once at warn, later
// ones at debug, and never thrown — an Event must not delay or change a heartbeat.
import type { HealthEvent } from '../heartbeat/health-events.ts';

/**
 * What an Event says: the heartbeat's transitions (HealthEvent), the fleet's
 * HeartbeatSkipped, or the agent's ListenerPortTaken (rule T5).
 */
export type EventContent = Omit<HealthEvent, 'reason'> & {
  reason: HealthEvent['reason'] | 'HeartbeatSkipped' | 'ListenerPortTaken';
};
import type { Logger } from '../log.ts';
import type { KubeApi } from './api.ts';

export const REPORTING_CONTROLLER = 'tes-heartbeat';
export const EVENT_ACTION = 'Heartbeat';
/** kube-apiserver's limits (pkg/apis/core/validation/events.go). */
const NOTE_LIMIT_BYTES = 1024;
const REPORTING_INSTANCE_LIMIT = 128;

export interface PodRef {
  namespace: string;
  name: string;
  /** Known once the pod was read. */
  uid?: string | undefined;
}

/** An `events.k8s.io/v1` Event as it is POSTed. */
export interface EventsV1Event {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { generateName: string; namespace: string };
  eventTime: string;
  action: string;
  reason: string;
  type: 'Normal' | 'Warning';
  note: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: 'Pod'; apiVersion: 'v1'; namespace: string; name: string; uid?: string };
}

/**
 * The Event for `event` on `pod`, stamped with the wall clock `at` (ms). The reporting
 * instance is the process that writes it: the sidecar's pod is the task pod itself, the
 * fleet's is its own `POD_NAME`.
 */
export function podEvent(
  event: EventContent,
  pod: PodRef,
  at: number,
  reportingInstance = pod.name,
): EventsV1Event {
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    // As kubectl's recorder names them: the pod's name, a dot, and what the server appends.
    metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
    eventTime: microTime(at),
    action: EVENT_ACTION,
    reason: event.reason,
    type: event.type,
    note: truncateUtf8(event.note, NOTE_LIMIT_BYTES),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: reportingInstance.slice(0, REPORTING_INSTANCE_LIMIT),
    regarding: {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: pod.namespace,
      name: pod.name,
      ...(pod.uid ? { uid: pod.uid } : {}),
    },
  };
}

/** A MicroTime: RFC 3339 with exactly six fractional digits (the server refuses anything else). */
export function microTime(ms: number): string {
  return new Date(Math.floor(ms)).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (Buffer.byteLength(out) > maxBytes - 3) out = out.slice(0, -1);
  return `${out}...`;
}

export interface PodEventWriterOptions {
  api: KubeApi;
  log: Logger;
  /** The pod as known now (its uid joins once the pod was read); the fleet names the pod per write instead. */
  pod?(): PodRef;
  /** `reportingInstance`: the fleet's own POD_NAME; default the regarded pod's name (the sidecar). */
  reportingInstance?: string;
  /** Wall-clock ms, for `eventTime`. */
  now(): number;
  timeoutMs: number;
}

export class PodEventWriter {
  private readonly o: PodEventWriterOptions;
  private warned = false;

  constructor(options: PodEventWriterOptions) {
    this.o = options;
  }

  /** Records `event` on the pod of the `pod` option; false when the write failed (already logged). Never throws. */
  write(event: EventContent, signal?: AbortSignal): Promise<boolean> {
    if (!this.o.pod) throw new TypeError('PodEventWriter.write: no pod option; use writeFor');
    return this.writeFor(this.o.pod(), event, signal);
  }

  /** Records `event` on `pod`, logging through `log` (the run's logger in the fleet). Never throws. */
  async writeFor(pod: PodRef, event: EventContent, signal?: AbortSignal, log = this.o.log): Promise<boolean> {
    const { api } = this.o;
    try {
      await api.create(
        `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`,
        podEvent(event, pod, this.o.now(), this.o.reportingInstance),
        { timeoutMs: this.o.timeoutMs, ...(signal ? { signal } : {}) },
      );
      log.info({ reason: event.reason, type: event.type }, 'Event recorded on the pod');
      return true;
    } catch (error) {
      // Once in the process's life: a missing `events create` grant would otherwise repeat forever.
      const level = this.warned ? 'debug' : 'warn';
      this.warned = true;
      log[level](
        { err: error, reason: event.reason },
        'cannot record an Event on the pod (heartbeats are not affected; later failures are logged at debug)',
      );
      return false;
    }
  }
}
