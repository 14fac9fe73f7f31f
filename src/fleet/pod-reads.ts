// The fleet's one-off reads about one task pod, each retried until answered
// (kube/read-retry.ts): is a pod whose DELETED event came really gone, and its nonce
// from the Secret its annotation names (rule T2).
import type { Clock } from '../clock.ts';
import { type KubeApi, KubeError } from '../kube/api.ts';
import { NONCE_SECRET_KEY } from '../kube/annotations.ts';
import { readUntilAnswered } from '../kube/read-retry.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';

export interface PodReadOptions {
  api: KubeApi;
  clock: Clock;
  /** Bound on each attempt (HEARTBEAT_TIMEOUT). */
  timeoutMs: number;
  /** The process is stopping. */
  signal: AbortSignal;
}

/**
 * Whether the pod of a DELETED event is gone: a GET answers 404 (or 403: nothing more
 * can be learnt) or shows another pod of that name. A pod still there left the watch's
 * selection instead. No answer within `withinMs`: taken as gone (its final is the safer
 * mistake than silence).
 */
export async function isGone(last: Pod, withinMs: number, o: PodReadOptions): Promise<boolean> {
  const { namespace = '', name = '', uid } = last.metadata ?? {};
  const timer = new AbortController();
  const signal = AbortSignal.any([timer.signal, o.signal]);
  o.clock.sleep(withinMs, signal).then(
    () => timer.abort(),
    () => undefined,
  );
  try {
    const answer = await readUntilAnswered((call) => o.api.getPod(namespace, name, call), {
      clock: o.clock,
      signal,
      timeoutMs: o.timeoutMs,
    });
    if (answer instanceof KubeError) return answer.status === 404 || answer.status === 403;
    return answer.metadata?.uid !== uid;
  } catch {
    return true;
  } finally {
    timer.abort();
  }
}

/** The nonce held by `secret` (key `nonce`) in the pod's namespace; undefined when it cannot be read. */
export async function readNonce(
  pod: Pod,
  secret: string,
  log: Logger,
  o: PodReadOptions,
): Promise<string | undefined> {
  const namespace = pod.metadata?.namespace ?? '';
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secret)}`;
  try {
    const answer = await readUntilAnswered(
      (call) => o.api.get<{ data?: Record<string, string> }>(path, call),
      {
        clock: o.clock,
        signal: o.signal,
        timeoutMs: o.timeoutMs,
      },
    );
    if (answer instanceof KubeError) {
      log.warn({ err: answer, secret }, 'cannot read the nonce Secret');
      return undefined;
    }
    const encoded = answer.data?.[NONCE_SECRET_KEY];
    if (encoded === undefined)
      log.warn({ secret, key: NONCE_SECRET_KEY }, 'the nonce Secret has no such key');
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
  } catch (error) {
    log.debug({ err: error }, 'nonce Secret read stopped');
    return undefined;
  }
}
