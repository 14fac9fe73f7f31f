// The Pod Security Standards' "restricted" profile (with the "baseline" controls it
// includes) as far as a pod spec shows them, from
// https://kubernetes.io/docs/concepts/security/pod-security-standards (v1.latest): what
// kube-apiserver's PodSecurity admission would refuse in a namespace labelled
// pod-security.kubernetes.io/enforce=restricted. Controls that need the node
// (AppArmor/SELinux profiles present) are left out; the rest are checked on every
// container, init container and ephemeral container.
import type { V1Container, V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';

/** Restricted: the only volume types allowed. */
const ALLOWED_VOLUME_TYPES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

/** Baseline: the sysctls a pod may set. */
const SAFE_SYSCTLS = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
];

/** Every control the pod breaks, one line each; empty when the pod passes. */
export function restrictedViolations(pod: V1Pod): string[] {
  const problems: string[] = [];
  const spec = pod.spec;
  if (!spec) return ['pod has no spec'];
  const podContext = spec.securityContext ?? {};
  const containers: (V1Container | V1EphemeralContainer)[] = [
    ...(spec.initContainers ?? []),
    ...spec.containers,
    ...(spec.ephemeralContainers ?? []),
  ];

  // Baseline: host namespaces, privileged, host paths and ports, /proc, sysctls.
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[field] === true) problems.push(`${field} must not be true`);
  }
  for (const v of spec.volumes ?? []) {
    const types = Object.keys(v).filter((k) => k !== 'name');
    for (const type of types) {
      if (!ALLOWED_VOLUME_TYPES.includes(type)) problems.push(`volume ${v.name}: type ${type} not allowed`);
    }
  }
  for (const sysctl of podContext.sysctls ?? []) {
    if (!SAFE_SYSCTLS.includes(sysctl.name)) problems.push(`sysctl ${sysctl.name} not allowed`);
  }
  if (podContext.runAsNonRoot === false) problems.push('pod runAsNonRoot must not be false');
  if (podContext.runAsUser === 0) problems.push('pod runAsUser must not be 0');
  const podSeccomp = podContext.seccompProfile?.type;
  if (podSeccomp !== undefined && !['RuntimeDefault', 'Localhost'].includes(podSeccomp)) {
    problems.push(`pod seccompProfile ${podSeccomp} not allowed`);
  }

  for (const c of containers) {
    const sc = c.securityContext ?? {};
    const where = `container ${c.name}`;
    if (sc.privileged === true) problems.push(`${where}: privileged`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') problems.push(`${where}: procMount`);
    if (sc.windowsOptions?.hostProcess === true) problems.push(`${where}: hostProcess`);
    for (const port of c.ports ?? []) {
      if (port.hostPort !== undefined && port.hostPort !== 0) problems.push(`${where}: hostPort`);
    }
    // Restricted: privilege escalation.
    if (sc.allowPrivilegeEscalation !== false) {
      problems.push(`${where}: allowPrivilegeEscalation must be false`);
    }
    // Restricted: running as non-root (the pod's, or every container's own).
    if (sc.runAsNonRoot === false) problems.push(`${where}: runAsNonRoot must not be false`);
    if (sc.runAsNonRoot !== true && podContext.runAsNonRoot !== true) {
      problems.push(`${where}: runAsNonRoot must be true (on the container or the pod)`);
    }
    // Restricted: running as a non-root user.
    if (sc.runAsUser === 0) problems.push(`${where}: runAsUser must not be 0`);
    // Restricted: seccomp RuntimeDefault or Localhost, on the container or the pod.
    const seccomp = sc.seccompProfile?.type ?? podSeccomp;
    if (seccomp === undefined || !['RuntimeDefault', 'Localhost'].includes(seccomp)) {
      problems.push(`${where}: seccompProfile must be RuntimeDefault or Localhost, is ${seccomp ?? 'unset'}`);
    }
    // Restricted: capabilities — drop ALL, add at most NET_BIND_SERVICE.
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: must drop ALL capabilities`);
    for (const cap of sc.capabilities?.add ?? []) {
      if (cap !== 'NET_BIND_SERVICE') problems.push(`${where}: adds capability ${cap}`);
    }
  }
  return problems;
}
