// JOB_RETRY_COUNT=auto: how many times the pod's owning Job has failed so far.
import type { Job, Pod } from './types.ts';

/** The name of the Job that owns the pod (its controller owner of kind Job), if any. */
export function owningJobName(pod: Pod): string | undefined {
  const owners = pod.metadata?.ownerReferences ?? [];
  const jobs = owners.filter((owner) => owner.kind === 'Job' && owner.apiVersion.startsWith('batch/'));
  return (jobs.find((owner) => owner.controller) ?? jobs[0])?.name;
}

/** The Job's `status.failed`, 0 when absent. */
export function jobFailedCount(job: Job): number {
  const failed = job.status?.failed;
  return typeof failed === 'number' && Number.isInteger(failed) && failed >= 0 ? failed : 0;
}
