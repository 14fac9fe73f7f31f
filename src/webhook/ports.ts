// The agent's listener in a pod that is not ours (rule I2): every container of a
// pod shares one network namespace, so the agent must never take a port the task
// declares, nor a node's port in a hostNetwork pod. Pure.
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import { listenAddress, Problem } from '../config/settings.ts';

/** The agent's own default (contract: HTTP_ADDR). */
export const AGENT_DEFAULT_PORT = 9090;

/** The port the template's agent listens on: HTTP_ADDR in its env, else the agent's default; undefined for `off`. */
export function listenerPort(template: V1Container): number | undefined {
  const entry = template.env?.find((e) => e.name === 'HTTP_ADDR');
  // A value from elsewhere (valueFrom) cannot be known here: the agent's default is the best guess.
  if (entry?.value === undefined) return AGENT_DEFAULT_PORT;
  const parsed = listenAddress(entry.value);
  if (parsed === 'off') return undefined;
  return parsed instanceof Problem ? AGENT_DEFAULT_PORT : parsed.port;
}

/** Why the agent must not listen in this pod (a clash), or undefined when it may. */
export function listenerConflict(pod: V1Pod, port: number): string | undefined {
  const spec = pod.spec;
  if (spec?.hostNetwork === true) {
    return `the pod uses hostNetwork: the agent's port ${port} would be taken on the node`;
  }
  for (const container of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
    if ((container.ports ?? []).some((p) => p.containerPort === port)) {
      return `container '${container.name}' declares port ${port}, the agent's listener port`;
    }
  }
  return undefined;
}

/**
 * The agent container without its listener: HTTP_ADDR=off, and neither the ports entry
 * nor any probe on that port (by number or by its name).
 */
export function withoutListener(container: V1Container, port: number): V1Container {
  const result: V1Container = { ...container };
  const names = new Set(
    (container.ports ?? []).filter((p) => p.containerPort === port).flatMap((p) => p.name ?? []),
  );
  const ports = (container.ports ?? []).filter((p) => p.containerPort !== port);
  if (ports.length > 0) result.ports = ports;
  else delete result.ports;
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const target = probePort(container[probe]);
    if (target !== undefined && (target === port || names.has(String(target)))) delete result[probe];
  }
  const env = (container.env ?? []).filter((e) => e.name !== 'HTTP_ADDR');
  result.env = [...env, { name: 'HTTP_ADDR', value: 'off' }];
  return result;
}

function probePort(probe: V1Probe | undefined): number | string | undefined {
  return probe?.httpGet?.port ?? probe?.tcpSocket?.port ?? probe?.grpc?.port;
}

/** The container without the name of its metrics port, when another container of the pod uses that name. */
export function withoutTakenPortName(container: V1Container, pod: V1Pod): V1Container {
  const taken = new Set(
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].flatMap((c) =>
      (c.ports ?? []).flatMap((p) => p.name ?? []),
    ),
  );
  if (!container.ports?.some((p) => p.name !== undefined && taken.has(p.name))) return container;
  // Probes that name the port would lose their target: point them at the number.
  const byName = new Map(
    container.ports.flatMap((p) => (p.name ? [[p.name, p.containerPort] as const] : [])),
  );
  const result: V1Container = {
    ...container,
    ports: container.ports.map((p) => {
      if (p.name === undefined || !taken.has(p.name)) return p;
      const { name: _, ...unnamed } = p;
      return unnamed;
    }),
  };
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const probe = result[kind];
    const target = probePort(probe);
    if (probe && typeof target === 'string' && taken.has(target)) {
      result[kind] = retarget(probe, byName.get(target) as number);
    }
  }
  return result;
}

function retarget(probe: V1Probe, port: number): V1Probe {
  const copy = structuredClone(probe);
  if (copy.httpGet) copy.httpGet.port = port;
  if (copy.tcpSocket) copy.tcpSocket.port = port;
  return copy;
}
