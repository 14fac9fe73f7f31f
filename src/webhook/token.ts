// The agent's own Kubernetes API token (rule T1). The task's ServiceAccount
// automounts nothing (the chart sets automountServiceAccountToken: false), so the
// webhook gives the agent alone what the ServiceAccount admission plugin would
// give every container: a projected volume mounted at the well-known path. Because
// the agent then has a mount at that path, the plugin's re-run after the webhook
// (kube-apiserver re-runs built-in plugins when a webhook changed the pod, since
// 1.15) adds nothing to it, and the task containers never see the agent's mount.
// Pure.
import type { V1Container, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

/** The name of the agent's token volume (the chart's volumes.yaml carries the same). */
export const AGENT_TOKEN_VOLUME = 'tes-heartbeat-kube-api-access';
/** Where client-node's in-cluster config (and every Kubernetes client) reads the token. */
export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The prefix of the volume the ServiceAccount admission plugin adds (`kube-api-access-<random>`). */
const PLUGIN_TOKEN_VOLUME_PREFIX = 'kube-api-access-';

/**
 * The projected volume the ServiceAccount admission plugin builds (its TokenVolumeSource):
 * a bound token for the API server's own audience (no `audience`), 3607 s as the plugin
 * asks, the cluster CA, the namespace.
 */
export function agentTokenVolume(): V1Volume {
  return {
    name: AGENT_TOKEN_VOLUME,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        {
          downwardAPI: {
            items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
          },
        },
      ],
    },
  };
}

/**
 * The agent container with the token mounted read-only at the well-known path, in place of
 * whatever the template mounted there (a template that already mounts this volume, as the
 * chart's does, keeps its order).
 */
export function withAgentToken(container: V1Container): V1Container {
  const mount: V1VolumeMount = {
    name: AGENT_TOKEN_VOLUME,
    mountPath: SERVICE_ACCOUNT_MOUNT_PATH,
    readOnly: true,
  };
  const mounts = container.volumeMounts ?? [];
  const ours = (m: V1VolumeMount) =>
    m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH || m.name === AGENT_TOKEN_VOLUME;
  const at = mounts.findIndex(ours);
  const others = mounts.filter((m) => !ours(m));
  const volumeMounts = at < 0 ? [...others, mount] : [...others.slice(0, at), mount, ...others.slice(at)];
  return { ...container, volumeMounts };
}

/**
 * SIDECAR_VOLUMES with the agent's token volume: a same-named entry (the chart's volumes.yaml
 * carries it for pods written by hand) is that volume, replaced where it stands; else appended.
 */
export function withAgentTokenVolume(volumes: readonly V1Volume[]): V1Volume[] {
  const at = volumes.findIndex((v) => v.name === AGENT_TOKEN_VOLUME);
  if (at < 0) return [...volumes, agentTokenVolume()];
  return volumes
    .map((v, i) => (i === at ? agentTokenVolume() : v))
    .filter((v, i) => i === at || v.name !== AGENT_TOKEN_VOLUME);
}

/**
 * True when the pod's own containers hold an API token the webhook did not give them: the
 * pod asks for it (`automountServiceAccountToken: true`), or the ServiceAccount plugin
 * already mounted one before the webhook ran (its account automounts). The webhook never
 * removes it: it is the pod's, and something in the task may use it.
 */
export function podHoldsOwnToken(pod: V1Pod): boolean {
  const spec = pod.spec;
  if (!spec) return false;
  if (spec.automountServiceAccountToken === true) return true;
  if ((spec.volumes ?? []).some((v) => v.name.startsWith(PLUGIN_TOKEN_VOLUME_PREFIX))) return true;
  return [...(spec.initContainers ?? []), ...spec.containers].some((c) =>
    (c.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH),
  );
}

export const OWN_TOKEN_WARNING =
  "tes-heartbeat: the pod mounts its service account's API token (automountServiceAccountToken, or its account automounts): its task containers can read every pod in the namespace; set automountServiceAccountToken: false (the agent brings its own token)";
