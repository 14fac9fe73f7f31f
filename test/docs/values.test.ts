// The chart's values tables are its values.yaml (issue 16.5): every key of values.yaml is a
// row of a values table in docs/ (itself, or a group it belongs to: `sidecar.resources`
// documents `sidecar.resources.limits.cpu`), and every row names a key that exists.
// A values table is one whose first header cell is `value`; its first column holds the keys,
// written as the docs write them: `a.b` / `.c` (a sibling of `a.b`), `a.*` and `b.*`: `x`, `y`
// (`a.x`, `a.y`, `b.x`, `b.y`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { docPages, prose, readPage } from '../support/docs.ts';
import { chartDir } from '../support/helm-chart.ts';

/** Every key path of values.yaml, groups and leaves (a list or an empty map is a leaf). */
function valueKeys(): Set<string> {
  const keys = new Set<string>();
  const walk = (value: unknown, prefix: string) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      keys.add(`${prefix}${key}`);
      walk(child, `${prefix}${key}.`);
    }
  };
  walk(parse(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')), '');
  return keys;
}

/** The keys one first-column cell names. */
function keysOfCell(cell: string): string[] {
  const spans = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
  const wildcards = spans.filter((s) => s.endsWith('.*')).map((s) => s.slice(0, -1));
  if (wildcards.length > 0)
    return spans.filter((s) => !s.endsWith('.*')).flatMap((leaf) => wildcards.map((w) => `${w}${leaf}`));
  const keys: string[] = [];
  for (const span of spans) {
    const previous = keys.at(-1);
    keys.push(
      span.startsWith('.') && previous ? `${previous.slice(0, previous.lastIndexOf('.'))}${span}` : span,
    );
  }
  return keys;
}

interface Row {
  page: string;
  keys: string[];
}

function documentedRows(): Row[] {
  const rows: Row[] = [];
  for (const page of docPages()) {
    let inValues = false;
    for (const line of prose(readPage(page)).split('\n')) {
      if (!line.startsWith('|')) {
        inValues = false;
        continue;
      }
      const first = (line.split('|')[1] ?? '').trim();
      if (/^value$/.test(first)) inValues = true;
      else if (inValues && !/^-+$/.test(first)) rows.push({ page, keys: keysOfCell(first) });
    }
  }
  return rows;
}

describe('the values tables are values.yaml', () => {
  const keys = valueKeys();
  const rows = documentedRows();
  const documented = new Set(rows.flatMap((r) => r.keys));

  it('reads the tables and their shorthand', () => {
    expect(rows.length).toBeGreaterThan(20);
    expect(keysOfCell('`heartbeat.interval` / `.timeout` / `.minGap`')).toEqual([
      'heartbeat.interval',
      'heartbeat.timeout',
      'heartbeat.minGap',
    ]);
    expect(keysOfCell('`webhook.*` and `emulator.*`: `nodeSelector`, `affinity`')).toEqual([
      'webhook.nodeSelector',
      'emulator.nodeSelector',
      'webhook.affinity',
      'emulator.affinity',
    ]);
  });

  it('every leaf of values.yaml has a row (itself or a group it is in)', () => {
    const covered = (key: string) => {
      const parts = key.split('.');
      return parts.some((_, i) => documented.has(parts.slice(0, i + 1).join('.')));
    };
    const leaves = [...keys].filter((key) => ![...keys].some((k) => k.startsWith(`${key}.`)));
    expect(leaves.filter((key) => !covered(key))).toEqual([]);
  });

  it('every row names keys that exist', () => {
    expect(rows.flatMap((r) => r.keys.filter((k) => !keys.has(k)).map((k) => `${r.page}: ${k}`))).toEqual([]);
  });
});
