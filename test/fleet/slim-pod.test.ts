// What the fleet keeps of a pod (fleet/slim-pod.ts): everything the heartbeat, the
// completion test and the end of a run read, and little else (contract: at most 20 KB
// per run). Every pod fixture, real captures included.
import { describe, expect, it } from 'vitest';
import { slimPod } from '../../src/fleet/slim-pod.ts';
import {
  heartbeatBody,
  isTaskComplete,
  type MappingOptions,
  stateSignature,
} from '../../src/heartbeat/mapping.ts';
import type { Pod } from '../../src/kube/types.ts';
import { loadNode, loadPod, POD_FIXTURES } from '../support/k8s-fixtures.ts';

const node = loadNode('eks-gpu');
const options = (pod: Pod): MappingOptions[] => {
  const names = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name);
  return [
    { podName: 'p', selfName: 'tes-heartbeat', hardwareDetails: true, nonce: 'n-123456' },
    { podName: 'p', selfName: 'tes-heartbeat', hardwareDetails: true, watchContainers: names },
  ];
};

describe('slimPod', () => {
  it.each(POD_FIXTURES)('maps %s exactly as the whole pod does, and holds far less', (fixture) => {
    const pod = loadPod(fixture);
    pod.metadata = {
      ...pod.metadata,
      managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:spec': { 'f:x': {} } } }],
    };
    const slim = slimPod(pod);
    for (const o of options(pod)) {
      for (const last of [false, true]) {
        expect(heartbeatBody({ pod: slim, node, jobRetryCount: 1 }, o, last)).toEqual(
          heartbeatBody({ pod, node, jobRetryCount: 1 }, o, last),
        );
      }
      expect(isTaskComplete(slim, o)).toBe(isTaskComplete(pod, o));
      expect(stateSignature(slim, o)).toBe(stateSignature(pod, o));
    }
    expect(slim.metadata?.managedFields).toBeUndefined();
    expect(JSON.stringify(slim).length).toBeLessThan(Math.max(2_000, JSON.stringify(pod).length / 2));
  });

  it('keeps what the end of a run reads: the annotations of ours, finalizers, deletion, owners, uid, resourceVersion', () => {
    const pod = loadPod('completed');
    pod.metadata = {
      ...pod.metadata,
      uid: 'u-1',
      resourceVersion: '42',
      annotations: {
        'tes-heartbeat/run-id': 'r',
        'tes-heartbeat/final-heartbeat': 'x',
        'kubectl.kubernetes.io/last-applied-configuration': '{…}',
      },
      finalizers: ['tes-heartbeat/final-heartbeat'],
      deletionTimestamp: '2026-11-29T10:00:00Z',
      deletionGracePeriodSeconds: 30,
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'ju', controller: true }],
    };
    expect(slimPod(pod).metadata).toEqual({
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      uid: 'u-1',
      resourceVersion: '42',
      annotations: { 'tes-heartbeat/run-id': 'r', 'tes-heartbeat/final-heartbeat': 'x' },
      finalizers: ['tes-heartbeat/final-heartbeat'],
      deletionTimestamp: '2026-11-29T10:00:00Z',
      deletionGracePeriodSeconds: 30,
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'ju', controller: true }],
    });
  });
});
