// Every setting of every command is in docs/ (issue 16.3): what `--help` lists — each
// environment variable and flag — is written in the docs, and where the docs pair a variable
// with a flag (`TES_URL` … `--tes-url`, in a table row or as `VAR` (`--flag`)), the pair and,
// in a settings table, the default are the command's own.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/agent-harness.ts';
import { codeSpans, docPages, prose, readPage } from '../support/docs.ts';

interface Setting {
  command: string;
  flag: string;
  env?: string;
  default?: string;
}

function help(args: string[]): string | undefined {
  const result = spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout : undefined;
}

/** The rows of `--help`: `  --flag <value>   help (env X; default D)`. */
function settingsOf(command: string[]): Setting[] {
  const text = help(command);
  if (text === undefined) return [];
  return [
    ...text.matchAll(/^ {2}(--[a-z-]+)(?: <value>)?(?: \(repeatable\))?\s+.*?(?:\(([^()]*)\))?$/gm),
  ].map((m) => {
    const tail = m[2] ?? '';
    const env = /env ([A-Z_][A-Z0-9_]*)/.exec(tail)?.[1];
    const def = /default (.*)$/.exec(tail)?.[1];
    return {
      command: command.join(' '),
      flag: m[1] as string,
      ...(env && { env }),
      ...(def !== undefined && { default: def }),
    };
  });
}

const COMMANDS = [
  ['agent'],
  ['webhook'],
  ['emulator'],
  ['fleet'],
  ...['list', 'get', 'create', 'abort', 'heartbeat'].map((s) => ['runs', s]),
];
const settings = COMMANDS.flatMap(settingsOf);
const docs = docPages().map((page) => ({ page, text: readPage(page) }));
const spans = new Set(docs.flatMap(({ text }) => codeSpans(text)));
const flagSpans = new Set(
  [...spans].flatMap((s) => [...s.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1] as string)),
);

describe('the settings in the docs are the commands’ own', () => {
  it('reads every command’s --help', () => {
    expect(settings.filter((s) => s.command === 'agent').map((s) => s.env)).toContain('TES_URL');
    expect(settings.filter((s) => s.command === 'webhook').map((s) => s.env)).toContain('SIDECAR_TEMPLATE');
    expect(settings.filter((s) => s.command === 'runs heartbeat').map((s) => s.flag)).toContain(
      '--container',
    );
  });

  it('every environment variable and flag of every command is in the docs', () => {
    const missing = settings.flatMap((s) => [
      ...(s.env && !spans.has(s.env) ? [`${s.command}: ${s.env}`] : []),
      ...(!flagSpans.has(s.flag) && !spans.has(s.flag) ? [`${s.command}: ${s.flag}`] : []),
    ]);
    expect([...new Set(missing)]).toEqual([]);
  });

  it('a variable and a flag written together belong together; a settings table’s defaults are the real ones', () => {
    const pairs = new Map<string, Setting[]>();
    for (const s of settings) if (s.env) pairs.set(s.env, [...(pairs.get(s.env) ?? []), s]);
    const wrong: string[] = [];
    for (const { page, text } of docs) {
      const body = prose(text);
      // `VAR` (`--flag` …
      for (const m of body.matchAll(/`([A-Z][A-Z0-9_]+)`\s*\(`(--[a-z-]+)/g)) {
        const known = pairs.get(m[1] as string);
        if (known && !known.some((s) => s.flag === m[2]))
          wrong.push(`${page}: ${m[0]}…: ${m[1]} is ${[...new Set(known.map((s) => s.flag))].join(' or ')}`);
      }
      // | `VAR` | `--flag` | default | …
      for (const m of body.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*`(--[a-z-]+)`\s*\|([^|]*)\|/gm)) {
        const known = pairs.get(m[1] as string);
        if (!known) continue;
        const setting = known.find((s) => s.flag === m[2]);
        if (!setting) {
          wrong.push(
            `${page}: ${m[1]} is ${[...new Set(known.map((s) => s.flag))].join(' or ')}, not ${m[2]}`,
          );
          continue;
        }
        const documented = /^\s*`([^`]*)`\s*$/.exec(m[3] as string)?.[1];
        if (documented !== undefined && setting.default !== undefined && documented !== setting.default)
          wrong.push(`${page}: ${m[1]} defaults to ${setting.default}, not ${documented}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
