// Contract rule 6: the bearer is the newest jwt from a heartbeat response, else
// the token file's content, else TES_TOKEN. Two parts, because the fleet shares the
// second among thousands of runs while each run has its own jwt:
// - TokenSource: TES_TOKEN and TES_TOKEN_FILE, the process's own credentials. The file
//   is checked for changes before each attempt (a mounted Secret rotates by a symlink
//   swap, so compare the stat of the resolved file) and re-read after a 401.
// - RunBearer: one run's jwt on top of a TokenSource (and, in the sidecar, TES_JWT_FILE);
//   a 401 drops it. A changed token file does not displace a jwt until a 401 drops it.
// Rule 12: credentials are trimmed and must be something a header can carry; one
// that is not is logged (never shown) and not used. Rule 11: every value seen here
// goes to the scrubber before anything could log it.
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headerCanCarry, trimCredential } from '../config/credential.ts';
import type { Bearer } from '../heartbeat/loop.ts';
import type { Logger } from '../log.ts';
import type { SecretSink } from '../secrets.ts';

export interface TokenSourceOptions {
  /** TES_TOKEN, already trimmed and checked by the settings. */
  token?: string;
  tokenFile?: string;
  /** Initial content of tokenFile, read while validating the settings. */
  tokenFileContent?: string;
  log: Logger;
  /** The process's scrubber: the token file's contents are kept for good. */
  secrets: SecretSink;
}

/** TES_TOKEN_FILE, else TES_TOKEN: the process's own bearer, shared by every run. */
export class TokenSource {
  private readonly o: TokenSourceOptions;
  /** The token file's last content a header can carry. */
  private fileToken: string | undefined;
  private fileStamp = '';
  /** The last unusable content reported: one error per content, not per attempt. */
  private reported: string | undefined;
  /** A re-read in progress, shared by every run that asks meanwhile. */
  private reading: Promise<void> | undefined;

  constructor(options: TokenSourceOptions) {
    this.o = options;
    if (options.tokenFile && options.tokenFileContent !== undefined)
      this.adoptFileContent(options.tokenFileContent);
  }

  async current(): Promise<string | undefined> {
    await this.refresh(false);
    return this.fileToken ?? this.o.token;
  }

  /** After a 401: read the token file again, changed or not. */
  reload(): Promise<void> {
    return this.refresh(true);
  }

  private refresh(force: boolean): Promise<void> {
    if (!this.o.tokenFile) return Promise.resolve();
    if (this.reading && !force) return this.reading;
    const reading = this.readFile(this.o.tokenFile, force).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    return reading;
  }

  private async readFile(file: string, force: boolean): Promise<void> {
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

export interface RunBearerOptions {
  tokens: TokenSource;
  /** TES_JWT_FILE (the sidecar only). */
  jwtFile?: string;
  /** The run's logger. */
  log: Logger;
  /** Where the run's jwts are remembered for scrubbing (the fleet forgets them with the run). */
  secrets: SecretSink;
}

/** One run's bearer: its newest jwt, else the process's token. */
export class RunBearer implements Bearer {
  private readonly o: RunBearerOptions;
  private jwt: string | undefined;

  constructor(options: RunBearerOptions) {
    this.o = options;
  }

  async current(): Promise<string | undefined> {
    return this.jwt ?? this.o.tokens.current();
  }

  async unauthorized(): Promise<void> {
    this.jwt = undefined;
    await this.o.tokens.reload();
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
}
