// Notices when mounted files change. The kubelet updates a Secret or ConfigMap
// volume by swapping a `..data` symlink, which an fs.watch on the file misses
// from the second rotation on: polling stat (it follows the symlink) sees every
// swap, and a few small stats a second cost nothing.
import { stat } from 'node:fs/promises';
import type { Clock } from '../clock.ts';

/** Identity of a file's current content, or undefined when it cannot be stat'ed. */
async function fingerprint(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}

export interface PollOptions {
  clock: Clock;
  intervalMs: number;
  signal: AbortSignal;
  /** Call `onChange` at the first poll even without a change (its last attempt failed). */
  pending?: boolean;
}

/**
 * Calls `onChange` each time one of `files` looks different from the last poll
 * (created, rewritten, replaced, removed), until `signal` aborts. `onChange`
 * returns false when it could not use the files yet (a certificate written
 * before its key): it is then called again at every poll until it succeeds.
 */
export async function pollFiles(
  files: readonly string[],
  onChange: () => Promise<boolean> | boolean,
  options: PollOptions,
): Promise<void> {
  const { clock, intervalMs, signal } = options;
  let last = await Promise.all(files.map(fingerprint));
  let retry = options.pending ?? false;
  while (!signal.aborted) {
    try {
      await clock.sleep(intervalMs, signal);
    } catch {
      return;
    }
    const now = await Promise.all(files.map(fingerprint));
    const changed = now.some((f, i) => f !== last[i]);
    last = now;
    if (changed || retry) retry = !(await onChange());
  }
}
