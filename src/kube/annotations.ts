// The names task pods carry for tes-heartbeat (contract: Sidecar injection, Fleet mode,
// T2): one home for every command that reads or writes them.

/** The label that opts a pod in to injection (the webhook configuration's objectSelector matches it too). */
export const INJECT_LABEL = 'tes-heartbeat/inject';
/** The task run the pod executes (the injected agent's TES_RUN_ID). */
export const RUN_ID_ANNOTATION = 'tes-heartbeat/run-id';
/** The run's nonce, echoed in every heartbeat (the injected agent's TES_NONCE). */
export const NONCE_ANNOTATION = 'tes-heartbeat/nonce';
/**
 * A Secret in the pod's namespace holding the nonce under key `nonce` (rule T2): unlike
 * an annotation, a Secret is not readable by whoever can read pods.
 */
export const NONCE_SECRET_ANNOTATION = 'tes-heartbeat/nonce-secret';
export const NONCE_SECRET_KEY = 'nonce';
/** Comma-separated containers to report (as WATCH_CONTAINERS). */
export const CONTAINERS_ANNOTATION = 'tes-heartbeat/containers';
/** Written by the fleet after a run's final heartbeat: `<RFC 3339 time> sent|failed`. */
export const FINAL_HEARTBEAT_ANNOTATION = 'tes-heartbeat/final-heartbeat';
/** The fleet's finalizer (FLEET_FINALIZER=on): a deleted pod keeps its last state until reported. */
export const FINAL_HEARTBEAT_FINALIZER = 'tes-heartbeat/final-heartbeat';
/** The label the fleet selects by default (FLEET_SELECTOR). */
export const FLEET_LABEL = 'tes-heartbeat/fleet';
