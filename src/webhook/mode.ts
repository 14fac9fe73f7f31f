// Which sidecar mode `auto` picks. Pure.
//
// A kubelet that does not know `restartPolicy: Always` on init containers (or
// an API server that drops the field, 1.28 with the gate off) would run the
// agent as a blocking init container and the pod would never start. So native
// sidecars only while the API server and every node are at 1.29 or newer
// (beta and on by default there).
import type { SidecarMode } from './mutate.ts';

export const NATIVE_SIDECARS_SINCE = { major: 1, minor: 29 } as const;

export interface KubeVersion {
  major: number;
  minor: number;
}

/** `v1.28.15-eks-a1b2c3`, `1.31.0+k3s1` → {1, 28}; undefined when unreadable. */
export function parseKubeVersion(text: string | undefined): KubeVersion | undefined {
  // gitVersion, not /version's `minor`, which can read "31+".
  const match = /^v?(\d+)\.(\d+)(?:[.\-+]|$)/.exec(text ?? '');
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

function supportsNative(text: string | undefined): boolean {
  const v = parseKubeVersion(text);
  if (!v) return false; // unknown counts as too old: regular sidecars work everywhere
  return (
    v.major > NATIVE_SIDECARS_SINCE.major ||
    (v.major === NATIVE_SIDECARS_SINCE.major && v.minor >= NATIVE_SIDECARS_SINCE.minor)
  );
}

/** `native` iff the API server and every kubelet are 1.29 or newer. */
export function chooseMode(
  serverGitVersion: string | undefined,
  kubeletVersions: Iterable<string>,
): SidecarMode {
  if (!supportsNative(serverGitVersion)) return 'regular';
  for (const kubelet of kubeletVersions) if (!supportsNative(kubelet)) return 'regular';
  return 'native';
}
