// The agent in a pod whose containers share one process namespace (rule T4). With
// `shareProcessNamespace: true`, a task process running as the agent's user id can
// read the agent's environment (TES_TOKEN, the nonce) and its files (the API token)
// through /proc/<pid>/environ and /proc/<pid>/root: the kernel lets a process read
// those of another only when both run as the same user and group, or with
// CAP_SYS_PTRACE (which Pod Security forbids to add). So the agent must not share a
// user id with any task container. Pure.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { warning } from './warning.ts';

/**
 * The user ids the agent moves to, in this order, when a task container may run as its own:
 * the first that no container of the pod (nor the pod) names. Just below the image's
 * 65532 (distroless `nonroot`) and away from 65534 (`nobody`), both common in task images.
 */
export const SEPARATE_AGENT_UIDS: readonly number[] = Array.from({ length: 32 }, (_, i) => 65531 - i);

export interface Separated {
  container: V1Container;
  warnings: string[];
}

/**
 * The agent container for `pod`: unchanged unless the pod shares its process namespace;
 * then, when a task container runs as the agent's user id (its own runAsUser, else the
 * pod's) or as a user the pod does not name (its image's, which may be the agent's own
 * 65532), the agent gets the first free id of SEPARATE_AGENT_UIDS as user and group. The
 * group too: a user id no image's /etc/passwd knows would otherwise run with group 0.
 */
export function separateFromTasks(container: V1Container, pod: V1Pod): Separated {
  const spec = pod.spec;
  if (spec?.shareProcessNamespace !== true) return { container, warnings: [] };
  const lead = 'tes-heartbeat: the pod sets shareProcessNamespace: true';
  const agentUid = container.securityContext?.runAsUser;
  if (agentUid === undefined || agentUid === null) {
    // The sidecar template names no user (OpenShift: the platform assigns one id to every
    // container of the pod, and refuses ids outside its range): nothing to choose from.
    return {
      container,
      warnings: [
        warning(
          `${lead} and the agent's user id is assigned by the platform: a task running as the same user can read the agent's token through /proc`,
        ),
      ],
    };
  }
  const podUid = spec.securityContext?.runAsUser;
  const tasks = [...(spec.initContainers ?? []), ...spec.containers].map((c) => ({
    name: c.name,
    uid: c.securityContext?.runAsUser ?? podUid,
  }));
  const clash = tasks.find((t) => t.uid === undefined || t.uid === agentUid);
  if (!clash) {
    return {
      container,
      warnings: [
        warning(`${lead}: no container runs as the agent's user ${agentUid}; keep it so (/proc is shared)`),
      ],
    };
  }
  const named = new Set<number>([
    ...tasks.flatMap((t) => t.uid ?? []),
    ...(podUid !== undefined ? [podUid] : []),
  ]);
  const uid = SEPARATE_AGENT_UIDS.find((candidate) => !named.has(candidate));
  const why =
    clash.uid === undefined
      ? `container '${clash.name}' runs as its image's user, which may be ${agentUid}`
      : `container '${clash.name}' runs as ${agentUid}`;
  if (uid === undefined) {
    return {
      container,
      warnings: [warning(`${lead} and ${why}, the agent's user; no free user id to move the agent to`)],
    };
  }
  return {
    container: {
      ...container,
      securityContext: { ...container.securityContext, runAsUser: uid, runAsGroup: uid },
    },
    warnings: [
      warning(
        `${lead} and ${why}, the agent's user: the agent runs as user ${uid} instead, so the task cannot read its environment through /proc`,
      ),
    ],
  };
}
