// One logger factory for every command: pino JSON on stdout, secrets redacted by
// path. Secrets must never be interpolated into message strings: redaction only
// sees fields.
import pino, { type Logger } from 'pino';

export type { Logger };

export const REDACTED_PATHS = [
  'token',
  'jwt',
  'nonce',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'body.nonce',
  'body.jwt',
  '*.token',
  '*.jwt',
  '*.nonce',
  '*.authorization',
];

export interface LogOptions {
  level: string;
  format: 'json' | 'pretty';
  /** Fields on every line (the agent's runId and podName). */
  base?: Record<string, string>;
  /**
   * Secret values (tokens, the jwt, the nonce) scrubbed from every line, wherever
   * they appear: a server may echo a token inside an error body we log.
   */
  secrets?: () => Iterable<string>;
}

export async function createLogger(
  options: LogOptions,
  destination?: pino.DestinationStream,
): Promise<Logger> {
  const config: pino.LoggerOptions = {
    level: options.level,
    base: options.base ?? {},
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const { secrets } = options;
  if (secrets) {
    config.hooks = {
      streamWrite: (line) => {
        let out = line;
        for (const secret of secrets()) if (secret) out = out.replaceAll(secret, '[redacted]');
        return out;
      },
    };
  }
  if (options.format === 'pretty' && !destination) {
    // Loaded only when asked for, in the main thread: a transport's worker thread
    // would cost a sidecar memory for nothing.
    const { default: pretty } = await import('pino-pretty');
    return pino(config, pretty({ sync: true, destination: 1 }));
  }
  return pino(config, destination ?? pino.destination({ dest: 1, sync: true }));
}
