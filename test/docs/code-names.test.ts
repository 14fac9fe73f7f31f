// Names the code gives to the cluster are in docs/ (issue 16.3): every pod annotation, label
// and finalizer (`tes-heartbeat/…`) and every Event reason the product writes, read from the
// source itself, so that a new one cannot ship undocumented.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeSpans, docPages, readPage } from '../support/docs.ts';
import { repoRoot } from '../support/helm-chart.ts';

/** Product source: src/ without the test doubles of src/testing/. */
function sources(): string[] {
  const dir = path.join(repoRoot, 'src');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.startsWith('testing'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'));
}

const code = sources().join('\n');
const documented = new Set(docPages().flatMap((page) => codeSpans(readPage(page))));
const inDocs = (name: string) =>
  [...documented].some((span) => span === name || span.startsWith(`${name}:`) || span.startsWith(`${name}=`));

describe('what the code writes into the cluster is documented', () => {
  const keys = [...new Set([...code.matchAll(/'(tes-heartbeat\/[a-z-]+)'/g)].map((m) => m[1] as string))];
  const reasons = [
    ...new Set(
      [...code.matchAll(/reason: '([A-Z][A-Za-z]+)',\s*type: '(?:Warning|Normal)'/g)].map(
        (m) => m[1] as string,
      ),
    ),
  ];

  it('finds the annotations, labels, finalizer and Event reasons in the source', () => {
    expect(keys).toEqual(expect.arrayContaining(['tes-heartbeat/run-id', 'tes-heartbeat/inject']));
    expect(reasons).toEqual(expect.arrayContaining(['HeartbeatFailing', 'FinalHeartbeatSent']));
  });

  it('every annotation, label and finalizer key', () => {
    expect(keys.filter((key) => !inDocs(key))).toEqual([]);
  });

  it('every Event reason is a row of the Events table an operator reads (docs/operations.md)', () => {
    const rows = new Set(
      [
        ...readPage('docs/operations.md').matchAll(
          /^\|\s*`([A-Z][A-Za-z]+)`\s*\|\s*(?:Warning|Normal)\s*\|/gm,
        ),
      ].map((m) => m[1]),
    );
    expect(reasons.filter((reason) => !rows.has(reason))).toEqual([]);
  });
});
