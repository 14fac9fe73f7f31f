// The lifetime of a long-running command (`agent`, `fleet`): signals, internal errors and
// the exit code, one way for both. Signals are handled from the first moment (contract
// rule 1): one that arrives while the command is still starting is remembered and stops
// the service as soon as it exists. Once it runs, an internal error anywhere (an unhandled
// rejection, an exception in a callback) is logged and the service goes on (rule 22): a
// sidecar that crashes loses its final heartbeat, a fleet its thousands of runs.
import type { Logger } from '../log.ts';
import { EXIT_INTERNAL, EXIT_OK } from './exit.ts';

/** After the service finished, anything still open (a socket to a TES that never answers) gets this long. */
const EXIT_BACKSTOP_MS = 1_000;

/** A started command's service, as its command built it. */
export interface Service {
  /** `agent` or `fleet`: names the log lines. */
  readonly name: string;
  readonly log: Logger;
  /** Fields of the `<name> starting` line. */
  readonly startingFields: Record<string, unknown>;
  /** Runs the service to its end. */
  run(): Promise<void>;
  /** Asks it to end (SIGTERM, SIGINT); run() then resolves. */
  stop(): void;
}

/**
 * Runs a command whose `prepare` reads the settings and builds its service (loading only
 * its own modules), or returns an exit code where there is nothing to run (help, bad
 * settings, a one-shot mode).
 */
export async function runCommand(prepare: () => Promise<number | Service>): Promise<number> {
  let stop: (() => void) | undefined;
  let onInternalError: ((error: unknown) => void) | undefined;
  let signalled = false;
  const onSignal = () => {
    signalled = true;
    stop?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const service = await prepare();
    if (typeof service === 'number') return service;
    const { name, log } = service;
    onInternalError = (error) => log.error({ err: error }, `internal error; the ${name} goes on`);
    process.on('uncaughtException', onInternalError);
    process.on('unhandledRejection', onInternalError);
    stop = () => service.stop();
    if (signalled) service.stop();
    log.info(service.startingFields, `${name} starting`);
    try {
      await service.run();
    } catch (error) {
      // Through the logger, so the stack and any TES text in it are scrubbed (rule 11).
      log.error({ err: error }, `internal error: the ${name} stops`);
      log.flush();
      return EXIT_INTERNAL;
    } finally {
      // A backstop, not a policy, hence a plain timer: whatever is still open must not
      // keep a finished sidecar, and with it a Job, alive (rules 15 and 22).
      setTimeout(() => process.exit(), EXIT_BACKSTOP_MS).unref();
    }
    log.info(`${name} finished`);
    log.flush();
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (onInternalError) {
      process.off('uncaughtException', onInternalError);
      process.off('unhandledRejection', onInternalError);
    }
  }
}
