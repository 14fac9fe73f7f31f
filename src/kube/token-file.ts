// The API token read from a file that rotates (contract rule T1): a bound service-account
// token lives about an hour and the kubelet rewrites its file at ~80 % of that, so the
// copy in memory is read again once it is a minute old, and at once after the API server
// answered 401 (client-go does the same: a cached file token source, reset on a 401 by
// its token-source transport). client-node's in-cluster FileAuth re-reads only by age, and
// it ignores a kubeconfig user's `tokenFile` (it knows only `token-file`, read once).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { load } from 'js-yaml';
import type { Clock } from '../clock.ts';
import { isRecord } from '../json.ts';

/** Longest time a token read from the file is used without reading the file again. */
const TOKEN_FILE_MAX_AGE_MS = 60_000;

export class TokenFile {
  readonly path: string;
  private readonly clock: Clock;
  private token: string | undefined;
  private readAt = 0;

  constructor(file: string, clock: Clock) {
    this.path = file;
    this.clock = clock;
  }

  /** The token to send now: the copy in memory while it is younger than a minute. */
  async current(): Promise<string> {
    if (this.token === undefined || this.clock.monotonic() - this.readAt >= TOKEN_FILE_MAX_AGE_MS) {
      await this.reread();
    }
    return this.token as string;
  }

  /** Reads the file now (after a 401); true when it holds another token than the one sent. */
  async rotated(sent: string): Promise<boolean> {
    await this.reread();
    return this.token !== sent;
  }

  private async reread(): Promise<void> {
    // Trimmed, as client-go does: a token file written by hand often ends with a newline.
    this.token = (await readFile(this.path, 'utf8')).trim();
    this.readAt = this.clock.monotonic();
  }
}

/**
 * kubectl's `users[].user.tokenFile` of `user`, taken from the first of the merged
 * kubeconfig files that defines that user (as the merge takes the user itself), a
 * relative path resolved against that file's directory.
 */
export function kubeconfigTokenFile(files: readonly string[], user: string): string | undefined {
  for (const file of files) {
    let document: unknown;
    try {
      document = load(readFileSync(file, 'utf8'));
    } catch {
      continue; // the kubeconfig loader has already named the file it could not read
    }
    const users = isRecord(document) && Array.isArray(document.users) ? document.users : [];
    const entry = users.find((candidate: unknown) => isRecord(candidate) && candidate.name === user);
    if (entry === undefined) continue;
    const tokenFile = isRecord(entry) && isRecord(entry.user) ? entry.user.tokenFile : undefined;
    return typeof tokenFile === 'string' && tokenFile !== ''
      ? path.resolve(path.dirname(file), tokenFile)
      : undefined;
  }
  return undefined;
}
