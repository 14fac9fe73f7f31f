// Contract rule 6: the bearer is the newest jwt from a heartbeat response, else
// the token file's content, else TES_TOKEN. The token file is checked for changes
// before each attempt (a mounted Secret rotates by a symlink swap, so compare the
// stat of the resolved file) and re-read after a 401, which also drops the jwt.
import { stat, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.ts';
import type { Bearer } from '../heartbeat/loop.ts';

export interface BearerOptions {
  token?: string;
  tokenFile?: string;
  /** Initial content of tokenFile, read while validating the settings. */
  tokenFileContent?: string;
  jwtFile?: string;
  log: Logger;
}

export class BearerSource implements Bearer {
  private readonly o: BearerOptions;
  private jwt: string | undefined;
  private previousJwt: string | undefined;
  private fileToken: string | undefined;
  private previousFileToken: string | undefined;
  private fileStamp = '';

  constructor(options: BearerOptions) {
    this.o = options;
    this.fileToken = options.tokenFileContent?.trim() || undefined;
  }

  /** Every credential this source holds or recently held, for scrubbing logs. */
  secrets(): string[] {
    return [this.jwt, this.previousJwt, this.fileToken, this.previousFileToken, this.o.token].filter(
      (s): s is string => s !== undefined,
    );
  }

  async current(): Promise<string | undefined> {
    if (this.jwt) return this.jwt;
    await this.refreshFile(false);
    return this.fileToken ?? this.o.token;
  }

  async unauthorized(): Promise<void> {
    this.previousJwt = this.jwt ?? this.previousJwt;
    this.jwt = undefined;
    await this.refreshFile(true);
  }

  async rotated(jwt: string): Promise<void> {
    if (this.jwt !== jwt) this.previousJwt = this.jwt;
    this.jwt = jwt;
    const file = this.o.jwtFile;
    if (!file) return;
    // Atomic for readers in other containers: write beside, then rename over.
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    try {
      await writeFile(temporary, jwt, { mode: 0o600 });
      await rename(temporary, file);
    } catch (error) {
      this.o.log.warn({ err: error, file }, 'could not write the rotated jwt file');
    }
  }

  private async refreshFile(force: boolean): Promise<void> {
    const file = this.o.tokenFile;
    if (!file) return;
    try {
      const s = await stat(file);
      const stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (!force && stamp === this.fileStamp) return;
      const content = (await readFile(file, 'utf8')).trim();
      this.fileStamp = stamp;
      if (content && content !== this.fileToken) {
        this.previousFileToken = this.fileToken;
        this.fileToken = content;
      }
    } catch (error) {
      // Mid-rotation the file can be briefly absent: keep the last token.
      this.o.log.warn({ err: error, file }, 'could not read the token file; keeping the last token');
    }
  }
}
