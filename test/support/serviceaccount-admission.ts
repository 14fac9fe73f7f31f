// kube-apiserver's ServiceAccount admission plugin, as far as it mutates a pod on CREATE,
// for tests that follow a pod through admission as the API server runs it: this plugin
// first, then the mutating webhooks, then — when a webhook changed the pod — the built-in
// plugins again (since 1.15, kubernetes/kubernetes #78080; #69733 is the bug report of a
// webhook's container getting no token mount, closed by that re-run).
//
// Written from the plugin's source, kubernetes/kubernetes
// plugin/pkg/admission/serviceaccount/admission.go (Admit, shouldAutomount,
// mountServiceAccountToken, TokenVolumeSource):
// - mirror pods (annotation kubernetes.io/config.mirror) are not mutated;
// - an empty serviceAccountName becomes `default`;
// - the pod's automountServiceAccountToken wins, else the ServiceAccount's, else true;
// - the token volume is the first volume whose name starts with `kube-api-access-`, else a
//   new `kube-api-access-<5 random characters>`, a projected volume (defaultMode 0644; a
//   serviceAccountToken with path `token`, expirationSeconds 3607, no audience; the
//   kube-root-ca.crt ConfigMap's ca.crt; the namespace through the downward API);
// - it is mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount into every init
//   container, then every container, that has no mount at that path yet (any volume there
//   counts); ephemeral containers are never mounted (they come later, through a subresource);
// - the volume is added only when it did not exist and some container got the mount;
// - a pod without imagePullSecrets gets the ServiceAccount's.
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';

export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const VOLUME_PREFIX = 'kube-api-access-';
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
/** apimachinery's util/rand alphabet: names.SimpleNameGenerator appends 5 of these. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** The ServiceAccount object as the plugin reads it. */
export interface ServiceAccount {
  name: string;
  /** Unset: the plugin's default, true. */
  automountServiceAccountToken?: boolean;
  imagePullSecrets?: { name: string }[];
}

export interface AdmitOptions {
  /** The 5-character suffix of a new volume name; deterministic by default. */
  randomSuffix?: () => string;
}

/** The projected volume source the plugin builds (TokenVolumeSource). */
export function pluginTokenVolume(name: string): V1Volume {
  return {
    name,
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

/** The plugin's Admit on a pod CREATE: returns the mutated copy, `pod` is left as it was. */
export function admitServiceAccount(pod: V1Pod, account: ServiceAccount, options: AdmitOptions = {}): V1Pod {
  const out = structuredClone(pod);
  if (out.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return out;
  const spec = out.spec;
  if (!spec) throw new Error('the ServiceAccount plugin needs a pod spec');
  if (!spec.serviceAccountName) spec.serviceAccountName = 'default';
  if (account.name !== spec.serviceAccountName) {
    throw new Error(`pod runs as ${spec.serviceAccountName}, the simulation was given ${account.name}`);
  }
  if (shouldAutomount(account, out)) mountServiceAccountToken(out, options);
  if ((spec.imagePullSecrets ?? []).length === 0 && (account.imagePullSecrets ?? []).length > 0) {
    spec.imagePullSecrets = (account.imagePullSecrets ?? []).map(({ name }) => ({ name }));
  }
  return out;
}

function shouldAutomount(account: ServiceAccount, pod: V1Pod): boolean {
  // The pod's preference wins, then the account's, then true for backwards compatibility.
  const own = pod.spec?.automountServiceAccountToken;
  if (own !== undefined && own !== null) return own;
  return account.automountServiceAccountToken ?? true;
}

function mountServiceAccountToken(pod: V1Pod, options: AdmitOptions): void {
  const spec = pod.spec as NonNullable<V1Pod['spec']>;
  const existing = (spec.volumes ?? []).find((v) => v.name.startsWith(VOLUME_PREFIX));
  const name = existing?.name ?? `${VOLUME_PREFIX}${(options.randomSuffix ?? fixedSuffix)()}`;
  let needsVolume = false;
  const mountInto = (container: V1Container) => {
    const mounts = container.volumeMounts ?? [];
    // Any mount at the path, whatever its volume, keeps the plugin's out.
    if (mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH)) return;
    container.volumeMounts = [...mounts, { name, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH }];
    needsVolume = true;
  };
  for (const container of spec.initContainers ?? []) mountInto(container);
  for (const container of spec.containers) mountInto(container);
  if (!existing && needsVolume) spec.volumes = [...(spec.volumes ?? []), pluginTokenVolume(name)];
}

function fixedSuffix(): string {
  return 'x7k2p';
}

/** A suffix as names.SimpleNameGenerator makes it, from `random` in [0, 1). */
export function randomSuffix(random: () => number): () => string {
  return () =>
    Array.from({ length: 5 }, () => NAME_ALPHABET[Math.floor(random() * NAME_ALPHABET.length)]).join('');
}
