// The README and docs/ as the doc tests read them: pages, fenced blocks (with the HTML
// comment that may mark one for a test), inline code spans, headings and their anchors.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chartDir, helm, type K8sObject, parseManifests, repoRoot } from './helm-chart.ts';

/** README.md and every docs/*.md, as paths relative to the repository (new pages join by themselves). */
export function docPages(): string[] {
  const docs = readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

export function readPage(page: string): string {
  return readFileSync(path.join(repoRoot, page), 'utf8');
}

const FENCE = /^(`{3,})([^\n`]*)\n([\s\S]*?)^\1[ \t]*$/gm;

export interface Fence {
  /** The info string (`sh`, `yaml`, empty). */
  info: string;
  body: string;
  /** The text of an HTML comment on the line right before the fence, if any (`doc-test: …`). */
  marker?: string;
  /** 1-based line of the opening fence. */
  line: number;
}

export function fences(text: string): Fence[] {
  return [...text.matchAll(FENCE)].map((m) => {
    const before = text.slice(0, m.index).replace(/\n$/, '');
    const previous = before.slice(before.lastIndexOf('\n') + 1);
    const marker = /^<!--\s*([\s\S]*?)\s*-->$/.exec(previous.trim())?.[1];
    return {
      info: (m[2] as string).trim(),
      body: m[3] as string,
      line: before.split('\n').length + 1,
      ...(marker !== undefined && { marker }),
    };
  });
}

/** The text outside fenced blocks (prose, tables, inline code). */
export function prose(text: string): string {
  return text.replace(FENCE, '');
}

/** Inline code spans of the prose, in order. */
export function codeSpans(text: string): string[] {
  return [...prose(text).matchAll(/(`+)([^`]+?)\1/g)].map((m) => (m[2] as string).trim());
}

/**
 * GitHub's heading anchors: the heading's text (inline markup dropped) lower-cased,
 * punctuation removed, each space a dash; a repeated anchor gets -1, -2, ….
 */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/**
 * Shell words of a command line: quotes ('…', "…") and backslash-newlines as a POSIX shell
 * reads them; a `#` starting a word begins a comment.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  const text = line.replace(/\\\n/g, ' ');
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      word = (word ?? '') + text.slice(i + 1, end).replace(/\\(["\\$`])/g, '$1');
      i = end;
    } else if (c === '\\') {
      word = (word ?? '') + (text[++i] ?? '');
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The commands of a shell block: one per line, continuation lines joined, comments and blanks dropped. */
export function shellCommands(body: string): string[] {
  return body
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The README's `helm install` line, as words. */
export function readmeInstall(): string[] {
  for (const fence of fences(readPage('README.md'))) {
    const line = shellCommands(fence.body).find((c) => c.startsWith('helm install '));
    if (line) return shellWords(line);
  }
  throw new Error('README.md has no `helm install` line in a shell block');
}

/**
 * The README's install line as `helm template` under `release`: `without` drops the line's
 * `--set` of those values, `extra` adds arguments. Throws with helm's message on failure.
 */
export function renderReadmeInstall(
  release: string,
  options: { without?: string[]; extra?: string[] } = {},
): K8sObject[] {
  const [, , , chart, ...words] = readmeInstall();
  if (chart !== 'charts/tes-heartbeat') throw new Error(`README installs ${chart}`);
  const without = options.without ?? [];
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '--create-namespace') continue;
    if (word === '--set' && without.some((key) => words[i + 1]?.startsWith(`${key}=`))) i++;
    else rest.push(word);
  }
  const args = ['template', release, chartDir, ...rest, ...(options.extra ?? [])];
  const result = helm(args);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')}: ${result.stderr}`);
  return parseManifests(result.stdout);
}
