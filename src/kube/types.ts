// Kubernetes objects as they travel in JSON, the one home of the Kubernetes types
// (the core imports them from here, as it imports the TES's from tes/types.gen.ts).
// client-node's models type timestamps as `Date`, but the agent reads raw API
// responses and watch events, where they are RFC 3339 strings: `Wire<T>` says so,
// so `startedAt.toISOString()` can't compile.
import type {
  V1Container,
  V1ContainerRestartRule,
  V1ContainerState,
  V1ContainerStatus,
  V1Job,
  V1Lease,
  V1Node,
  V1Pod,
  V1Status,
  VersionInfo as V1VersionInfo,
} from '@kubernetes/client-node';

export type Wire<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export type Pod = Wire<V1Pod>;
export type Job = Wire<V1Job>;
export type Node = Wire<V1Node>;
/** A `coordination.k8s.io/v1` Lease; `acquireTime`/`renewTime` are MicroTime strings. */
export type Lease = Wire<V1Lease>;
export type Status = Wire<V1Status>;
export type Container = Wire<V1Container>;
export type ContainerStatus = Wire<V1ContainerStatus>;
export type ContainerState = Wire<V1ContainerState>;
export type ContainerRestartRule = Wire<V1ContainerRestartRule>;

/** The API server's `/version` document (read `gitVersion`: `minor` can be "31+"). */
export type VersionInfo = Pick<V1VersionInfo, 'major' | 'minor' | 'gitVersion'> & Partial<V1VersionInfo>;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One line of a watch stream: an object, or (ERROR) the Status that ends the stream. */
export type WatchEvent<T> =
  | { type: Exclude<WatchEventType, 'ERROR'>; object: T }
  | { type: 'ERROR'; object: Status };
