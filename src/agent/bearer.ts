// Contract rule 6: the bearer is the newest jwt from a heartbeat response, else
// the token file's content, else TES_TOKEN. The token file is checked for changes
// before each attempt (a mounted Secret rotates by a symlink swap, so compare the
// stat of the resolved file) and re-read after a 401, which also drops the jwt.
// Rule 12: credentials are trimmed and must be something a header can carry; one
// that is not is logged (never shown) and not used. Rule 11: every value seen here
// goes to the scrubber before anything could log it.
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headerCanCarry, trimCredential } from '../config/credential.ts';
import type { Bearer } from '../heartbeat/loop.ts';
import type { Logger } from '../log.ts';
import type { Secrets } from '../secrets.ts';

export interface BearerOptions {
  /** TES_TOKEN, already trimmed and checked by the settings. */
  token?: string;
  tokenFile?: string;
  /** Initial content of tokenFile, read while validating the settings. */
  tokenFileContent?: string;
  jwtFile?: string;
  log: Logger;
  secrets: Secrets;
}

export class BearerSource implements Bearer {
  private readonly o: BearerOptions;
  private jwt: string | undefined;
  /** The token file's last content a header can carry. */
  private fileToken: string | undefined;
  private fileStamp = '';
  /** The last unusable content reported: one error per content, not per attempt. */
  private reported: string | undefined;

  constructor(options: BearerOptions) {
    this.o = options;
    if (options.tokenFile && options.tokenFileContent !== undefined)
      this.adoptFileContent(options.tokenFileContent);
  }

  async current(): Promise<string | undefined> {
    if (this.jwt) return this.jwt;
    await this.refreshFile(false);
    return this.fileToken ?? this.o.token;
  }

  async unauthorized(): Promise<void> {
    this.jwt = undefined;
    await this.refreshFile(true);
  }

  async rotated(jwt: string): Promise<void> {
    this.o.secrets.add('jwt', jwt);
    if (!headerCanCarry(jwt)) {
      this.o.log.error(
        'the TES sent a jwt an HTTP header cannot carry: not adopted, the previous bearer stays',
      );
      return;
    }
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
      const content = await readFile(file, 'utf8');
      // An unusable content is read again before the next attempt (rule 12).
      if (this.adoptFileContent(content)) this.fileStamp = stamp;
    } catch (error) {
      // Mid-rotation the file can be briefly absent: keep the last token.
      this.o.log.warn({ err: error, file }, 'could not read the token file; keeping the last token');
    }
  }

  /**
   * Takes the file's content as the token when a header can carry it; else keeps the
   * last usable token, and logs once per content. Returns whether the content was usable.
   */
  private adoptFileContent(raw: string): boolean {
    const content = trimCredential(raw);
    this.o.secrets.add('token file', content);
    // Mid-write the file can be briefly empty: not a token, and not an error.
    if (content === '') return true;
    if (headerCanCarry(content)) {
      this.fileToken = content;
      return true;
    }
    if (content === this.reported) return false;
    this.reported = content;
    this.o.log.error(
      {
        file: this.o.tokenFile,
        meanwhile: this.fileToken ? 'the last token from the file' : this.o.token ? 'TES_TOKEN' : 'no bearer',
      },
      'TES_TOKEN_FILE holds a character an HTTP header cannot carry: not used; the file is read again before the next attempt',
    );
    return false;
  }
}
