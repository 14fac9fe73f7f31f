// Reconnect and re-read delays for the Kubernetes side: 1 s doubling to a 30 s cap,
// spread by ±50% so that the pods of a cluster do not all come back to a restarted
// API server in the same second. A random of 0.5 gives the undisturbed value.

export const KUBE_BACKOFF_BASE_MS = 1_000;
export const KUBE_BACKOFF_CAP_MS = 30_000;

/** Delay before retry number `failures` (1 after the first failure); `random` in [0, 1). */
export function kubeBackoffMs(failures: number, random: number): number {
  const base = Math.min(KUBE_BACKOFF_CAP_MS, KUBE_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(Math.min(KUBE_BACKOFF_CAP_MS, base * (0.5 + random)));
}
