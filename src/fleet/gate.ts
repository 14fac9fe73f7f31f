// Whether this process may send, and for which nodes: the seam between the fleet's runs
// and the per-cluster scope's leader election (fleet/lease-elector.ts). In node scope the
// gate is always open. In cluster scope only the Lease's holder sends, and not for the
// pods of a node whose kubelet stopped reporting (its Ready condition Unknown).
//
// The runs follow the gate (fleet/runs.ts): when it closes, or a node is lost, every run
// concerned stops at once without a final heartbeat — attempts in flight are aborted,
// finals included (a leader past its renew deadline must fall silent before a standby can
// take over); when it opens again, the runs start afresh from the pods the watch kept
// warm: the first heartbeats go out at once, and every complete pod without a mark gets
// its final, as after a restart.

export interface SendGate {
  /** Whether this process may send at all (it holds the lease, or has none to hold). */
  readonly open: boolean;
  /** Whether pods bound to `nodeName` may be heartbeated (false while the node is lost). */
  nodeOpen(nodeName: string | undefined): boolean;
  /**
   * Aborted the moment sending stops being allowed (leadership lost). A fresh signal
   * after each opening; every attempt carries it, so attempts in flight abort at once.
   */
  readonly signal: AbortSignal;
  /** Called after every change of `open` or of a node's openness; returns an unsubscribe. */
  onChange(listener: () => void): () => void;
  /** The fleet sends nothing more (SIGTERM, after the finals due): give up the lease, if any. */
  release?(): Promise<void>;
}

/** Node scope: one fleet per node, no election: always open. */
export const alwaysOpen: SendGate = {
  open: true,
  nodeOpen: () => true,
  signal: new AbortController().signal,
  onChange: () => () => {},
};
