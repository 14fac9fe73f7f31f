// Kubernetes objects as they travel in JSON. client-node's models type timestamps as
// `Date`, but the agent reads raw API responses and watch events, where they are
// RFC 3339 strings: `Wire<T>` says so, so `startedAt.toISOString()` can't compile.
import type {
  V1Container,
  V1ContainerRestartRule,
  V1ContainerState,
  V1ContainerStatus,
  V1Job,
  V1Node,
  V1Pod,
  V1Status,
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
export type Status = Wire<V1Status>;
export type Container = Wire<V1Container>;
export type ContainerStatus = Wire<V1ContainerStatus>;
export type ContainerState = Wire<V1ContainerState>;
export type ContainerRestartRule = Wire<V1ContainerRestartRule>;
