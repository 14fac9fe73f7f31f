// One logger factory for every command: pino JSON on stdout, secrets redacted by
// field path and, with `secrets`, scrubbed by value from every whole line (rule 11:
// a TES echoes credentials into messages, bodies, stack traces and causes).
import pino, { type Logger } from 'pino';
import type { Secrets } from './secrets.ts';

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
  /** Credentials and the nonce, scrubbed by value from every line wherever they appear. */
  secrets?: Secrets;
  /**
   * Fields every line carries, null on lines whose logger does not bind them (the fleet:
   * `runId` and `podName` are bound by each run's child logger, null on process lines).
   */
  nullUnlessBound?: readonly string[];
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
  const { secrets, nullUnlessBound: fields } = options;
  if (fields && fields.length > 0) {
    const nulls = Object.fromEntries(fields.map((field) => [field, null]));
    // A child's bindings come first on the line: the mixin fills in only what it lacks.
    config.mixin = (_line, _level, logger) =>
      (fields[0] as string) in logger.bindings() ? {} : { ...nulls };
  }
  if (secrets) config.hooks = { streamWrite: (line) => secrets.scrub(line) };
  if (options.format === 'pretty' && !destination) {
    // Loaded only when asked for, in the main thread: a transport's worker thread
    // would cost a sidecar memory for nothing.
    const { default: pretty } = await import('pino-pretty');
    return pino(config, pretty({ sync: true, destination: 1 }));
  }
  return pino(config, destination ?? pino.destination({ dest: 1, sync: true }));
}

/**
 * Node's own warnings (a TimeoutNegativeWarning, a deprecation, a MaxListenersExceeded) go
 * through `log` instead of Node's printer, which writes plain text on stderr and breaks a
 * stream of JSON lines. The printer is the 'warning' listener Node installs at start-up
 * (absent under --no-warnings or NODE_NO_WARNINGS=1, but the event is emitted either way),
 * so it is removed and replaced. For commands that run for long and log (agent, webhook,
 * emulator, fleet); the stack says where the warning came from, as --trace-warnings would.
 */
export function logProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    log.warn({ warning: warning.name, err: warning }, `Node.js warning: ${warning.name}`),
  );
}
