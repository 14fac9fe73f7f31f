// The image as the docs describe it is the Dockerfile's (issue 16.5): a user who copies the
// documented ENTRYPOINT into a pod's `command` must get the same process, memory flags and
// environment included.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeSpans, readPage } from '../support/docs.ts';
import { repoRoot } from '../support/helm-chart.ts';

/** The final stage's instructions, continuation lines joined. */
function runtimeStage(): string[] {
  const lines = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  const from = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  return lines.slice(from);
}

function instruction(name: string): string | undefined {
  return runtimeStage()
    .find((l) => new RegExp(`^${name}\\s`, 'i').test(l))
    ?.replace(new RegExp(`^${name}\\s+`, 'i'), '');
}

/** ENV's KEY=VALUE pairs (the form the Dockerfile uses). */
function env(): string[] {
  return runtimeStage()
    .filter((l) => /^ENV\s/i.test(l))
    .flatMap((l) =>
      l
        .replace(/^ENV\s+/i, '')
        .trim()
        .split(/\s+/),
    );
}

const page = 'docs/chart-and-injection.md';

/** The JSON array the docs give right after naming the instruction (`ENTRYPOINT` is `[…]`). */
function documented(name: string): unknown {
  const spans = codeSpans(readPage(page));
  const at = spans.findIndex((s, i) => s === name && spans[i + 1]?.startsWith('['));
  if (at < 0) throw new Error(`${page} gives no ${name}`);
  return JSON.parse(spans[at + 1] as string);
}

describe('the image in the docs is the Dockerfile’s', () => {
  it('ENTRYPOINT, flags included', () => {
    expect(documented('ENTRYPOINT')).toEqual(JSON.parse(instruction('ENTRYPOINT') ?? 'null'));
    expect(documented('ENTRYPOINT')).toContain('--max-semi-space-size=1');
  });

  it('CMD', () => {
    const cmd = codeSpans(readPage(page)).find((s) => s.startsWith('CMD '));
    expect(JSON.parse(cmd?.slice('CMD '.length) ?? 'null')).toEqual(JSON.parse(instruction('CMD') ?? 'null'));
  });

  it('every ENV setting', () => {
    const spans = new Set(codeSpans(readPage(page)));
    expect(env().length).toBeGreaterThan(0);
    expect(env().filter((pair) => !spans.has(pair))).toEqual([]);
  });
});
