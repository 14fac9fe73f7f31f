// The README is a front door and the reference lives in docs/: every relative link in
// them must lead somewhere (the file, and the heading when the link names one).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/helm-chart.ts';

const pages = [
  'README.md',
  ...readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] as string)));
}

function links(file: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l));
}

describe('documentation links', () => {
  it('has the README and the docs pages it points to', () => {
    expect(pages).toEqual(
      expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/operations.md']),
    );
  });

  it.each(pages)('%s: every relative link resolves', (page) => {
    const broken: string[] = [];
    for (const link of links(page)) {
      const [target = '', anchor] = link.split('#');
      const file = target
        ? path.resolve(path.dirname(path.join(repoRoot, page)), target)
        : path.join(repoRoot, page);
      if (!existsSync(file)) broken.push(`${link} (no such file)`);
      else if (anchor && file.endsWith('.md') && !anchors(file).has(anchor))
        broken.push(`${link} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });

  it('keeps the README a front door (at most ~12,000 characters)', () => {
    expect(readFileSync(path.join(repoRoot, 'README.md'), 'utf8').length).toBeLessThanOrEqual(12_000);
  });

  it('makes GitHub anchors the way GitHub does', () => {
    expect(slug('A pod was not injected')).toBe('a-pod-was-not-injected');
    expect(slug('`failurePolicy`: `Ignore` (default) or `Fail`')).toBe(
      'failurepolicy-ignore-default-or-fail',
    );
  });
});
