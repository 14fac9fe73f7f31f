export const EXIT_OK = 0;
/** An unexpected internal error only. */
export const EXIT_INTERNAL = 1;
/** Invalid configuration or usage. */
export const EXIT_USAGE = 2;

/** Replaced with package.json's version by the build; the fallback serves tests run from source. */
export const VERSION = process.env.TES_HEARTBEAT_VERSION ?? '0.0.0-dev';

/** Prints the problems of a bad configuration, one plain line each, and returns exit code 2. */
export function reportInvalid(command: string, problems: readonly string[]): number {
  for (const problem of problems) process.stderr.write(`tes-heartbeat ${command}: ${problem}\n`);
  return EXIT_USAGE;
}
