// A logger whose JSON lines a test reads back: the product's logger (createLogger), so
// redaction and serializers are the real ones.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.ts';

export async function loggerWithLines(
  level = 'debug',
): Promise<{ log: Logger; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const log = await createLogger(
    { level, format: 'json' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { log, lines };
}
