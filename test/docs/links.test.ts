// The README is a front door and the reference lives in docs/: every relative link in
// them must lead somewhere (the file, and the heading when the link names one), and nothing
// leads out of the repository except to a published site (issue 16.3): a user who cloned
// the repository has nothing else.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, codeSpans, docPages, prose, readPage, slug } from '../support/docs.ts';
import { repoRoot } from '../support/helm-chart.ts';

const pages = docPages();

/** Every link target of a page: `[text](target)`, `![alt](target)` and `<scheme:…>` autolinks. */
function links(page: string): string[] {
  const text = prose(readPage(page));
  return [
    ...[...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] as string),
    ...[...text.matchAll(/<([a-z][a-z0-9+.-]*:[^>\s]+)>/g)].map((m) => m[1] as string),
  ];
}

/** Why a link leaves the repository for somewhere a reader may not have, or undefined. */
function outside(page: string, link: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link))
    return /^https?:\/\//.test(link) ? undefined : 'not a published site';
  if (link.startsWith('/')) return 'an absolute path';
  const [target = ''] = link.split('#');
  const resolved = path.resolve(path.dirname(path.join(repoRoot, page)), target);
  return path.relative(repoRoot, resolved).startsWith('..') ? 'outside the repository' : undefined;
}

describe('documentation links', () => {
  it('has the README and the docs pages it points to', () => {
    expect(pages).toEqual(
      expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/operations.md']),
    );
  });

  it.each(pages)('%s: every relative link resolves', (page) => {
    const broken: string[] = [];
    for (const link of links(page).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l))) {
      const [target = '', anchor] = link.split('#');
      const file = target
        ? path.resolve(path.dirname(path.join(repoRoot, page)), target)
        : path.join(repoRoot, page);
      if (!existsSync(file)) broken.push(`${link} (no such file)`);
      else if (
        anchor &&
        file.endsWith('.md') &&
        !anchors(readPage(path.relative(repoRoot, file))).has(anchor)
      )
        broken.push(`${link} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });

  it.each(pages)('%s: links leave the repository only for published (http/https) sites', (page) => {
    const leaving = links(page).flatMap((link) => {
      const why = outside(page, link);
      return why ? [`${link}: ${why}`] : [];
    });
    // Named in code rather than linked: a relative path must be a file of the repository too.
    for (const span of codeSpans(readPage(page))) {
      const file = span.split(/\s/)[0] as string;
      if (!file.startsWith('../')) continue;
      const why =
        outside(page, file) ??
        (existsSync(path.resolve(path.dirname(path.join(repoRoot, page)), file))
          ? undefined
          : 'no such file');
      if (why) leaving.push(`\`${span}\`: ${why}`);
    }
    expect(leaving).toEqual([]);
  });

  it('tells a link out of the repository from one inside', () => {
    expect(outside('README.md', '../shared/agent-spec.md')).toBe('outside the repository');
    expect(outside('docs/agent.md', '../README.md')).toBeUndefined();
    expect(outside('docs/agent.md', 'file:///etc/passwd')).toBe('not a published site');
    expect(outside('docs/agent.md', 'https://kind.sigs.k8s.io')).toBeUndefined();
  });

  it('keeps the README a front door (at most ~12,000 characters)', () => {
    expect(readPage('README.md').length).toBeLessThanOrEqual(12_000);
  });

  it('makes GitHub anchors the way GitHub does', () => {
    expect(slug('A pod was not injected')).toBe('a-pod-was-not-injected');
    expect(slug('`failurePolicy`: `Ignore` (default) or `Fail`')).toBe(
      'failurepolicy-ignore-default-or-fail',
    );
    expect(slug('The [chart](x.md) values')).toBe('the-chart-values');
    expect([...anchors('## Logs\n\n## Logs\n')]).toEqual(['logs', 'logs-1']);
  });
});
