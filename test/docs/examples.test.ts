// Every shell example of the docs that needs no cluster runs, as written, against the built
// CLI (issue 16.7): the documented exit code and the documented output lines. A block takes
// part when an HTML comment (invisible on GitHub) right before it says how:
//
//   <!-- doc-test: console [exit=N] [emulator] [token=T] -->   a transcript: `$ command` lines,
//       each followed by its output lines (stdout and stderr as a terminal shows them); run ids
//       and timestamps may differ, runs of spaces stretch; the last command exits N (default
//       0), the others 0. `emulator` starts the built emulator first (with token T) and sets
//       TES_URL and TES_TOKEN for the commands.
//   <!-- doc-test: sh [emulator=PORT] [token=T] [run=ID,…] [skip=TEXT] -->   commands, each
//       must exit 0; `export` lines set the environment of the next ones; a trailing
//       `# → TEXT` is output the command prints (`…`: anything). `emulator=PORT`: the block's own
//       `tes-heartbeat emulator` line (else a plain one) runs in the background on a free port
//       that replaces PORT; each `run=` id stands for a run created first; `--body FILE`
//       files are written as `{}`; commands containing a `skip=` text are not run.
//
// `tes-heartbeat` is the built dist/tes-heartbeat.js; `./dev demo ARGS` is `tes-heartbeat demo
// ARGS` (what ./dev runs after its build, which the test setup has done).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, freePort } from '../support/agent-harness.ts';
import { docPages, type Fence, fences, readPage, shellCommands, shellWords } from '../support/docs.ts';
import { waitFor } from '../support/fake-clock.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'doc-examples-'));
const bin = path.join(dir, 'bin');
mkdirSync(bin);
writeFileSync(path.join(bin, 'tes-heartbeat'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
chmodSync(path.join(bin, 'tes-heartbeat'), 0o755);
const PATH = [bin, path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
  }
});

interface Example {
  page: string;
  fence: Fence;
  kind: 'console' | 'sh';
  options: Record<string, string>;
}

function examples(): Example[] {
  return docPages().flatMap((page) =>
    fences(readPage(page)).flatMap((fence) => {
      const m = /^doc-test:\s*(console|sh)\b(.*)$/s.exec(fence.marker ?? '');
      if (!m) return [];
      const options = Object.fromEntries(
        [...(m[2] as string).matchAll(/(\w+)(?:=(\S+))?/g)].map((o) => [o[1] as string, o[2] ?? '']),
      );
      return [{ page, fence, kind: m[1] as 'console' | 'sh', options }];
    }),
  );
}

interface Result {
  code: number | null;
  output: string;
}

/** One command line through sh, stdout and stderr interleaved as a terminal shows them. */
function sh(command: string, env: Record<string, string>): Promise<Result> {
  const translated = command.replace(/(^|\s)\.\/dev (demo|run)\b/g, (_, pre: string, what: string) =>
    what === 'demo' ? `${pre}tes-heartbeat demo` : `${pre}tes-heartbeat`,
  );
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `exec 2>&1; ${translated}`], {
      cwd: dir,
      env: { PATH, HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** A documented output line as a pattern: run ids and times may differ, spaces stretch. */
function shape(line: string): RegExp {
  const escaped = line
    .trimEnd()
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/trn\\\.[0-9a-f]+/g, 'trn\\.[0-9a-f]+')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\\\.\d+)?Z/g, '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z')
    .replace(/…/g, '[\\s\\S]*')
    .replace(/ +/g, ' +');
  return new RegExp(`^${escaped}$`);
}

/** Starts the built emulator (`line`, or a plain one) on a free port; its URL. */
async function startEmulator(line: string | undefined, documentedPort: string | undefined, token: string) {
  const port = await freePort();
  const words = line
    ? shellWords(documentedPort ? line.replaceAll(documentedPort, String(port)) : line).slice(1)
    : ['emulator', '--port', String(port), ...(token ? ['--token', token] : [])];
  const child = spawn(path.join(bin, 'tes-heartbeat'), words, {
    env: { PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  await waitFor(() => out.includes('emulator listening'), 10_000, `the emulator listening (${out})`);
  return { port, url: `http://127.0.0.1:${port}` };
}

async function createRun(url: string, token: string): Promise<string> {
  const response = await fetch(`${url}/v1/tasks/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ name: 'doc example' }),
  });
  return ((await response.json()) as { id: string }).id;
}

async function runConsole(example: Example): Promise<string[]> {
  const env: Record<string, string> = {};
  if ('emulator' in example.options) {
    const token = example.options.token ?? '';
    const { url } = await startEmulator(undefined, undefined, token);
    Object.assign(env, { TES_URL: url, ...(token && { TES_TOKEN: token }) });
  }
  const steps: { command: string; expected: string[] }[] = [];
  for (const line of example.fence.body.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
    else steps.at(-1)?.expected.push(line);
  }
  const wrong: string[] = [];
  for (const [i, step] of steps.entries()) {
    const { code, output } = await sh(step.command, env);
    const exit = i === steps.length - 1 ? Number(example.options.exit ?? 0) : 0;
    if (code !== exit) wrong.push(`$ ${step.command}: exit ${code}, documented ${exit}\n${output}`);
    const actual = output.replace(/\n$/, '').split('\n');
    const expected = step.expected;
    const same =
      actual.length === expected.length && expected.every((line, n) => shape(line).test(actual[n] ?? ''));
    if (expected.length + actual.filter(Boolean).length > 0 && !same)
      wrong.push(`$ ${step.command}: printed\n${actual.join('\n')}\ndocumented\n${expected.join('\n')}`);
  }
  return wrong;
}

async function runSh(example: Example): Promise<string[]> {
  const env: Record<string, string> = {};
  let commands = shellCommands(example.fence.body.replace(/[ \t]+#(?! →)[^\n]*$/gm, ''));
  const { emulator: documentedPort, token: markerToken, run: runIds, skip } = example.options;
  if (documentedPort !== undefined) {
    const own = commands.find((c) => c.startsWith('tes-heartbeat emulator'));
    const ownWords = own ? shellWords(own) : [];
    const token = markerToken ?? ownWords[ownWords.indexOf('--token') + 1] ?? '';
    const { port, url } = await startEmulator(own, documentedPort, token);
    commands = commands.filter((c) => c !== own).map((c) => c.replaceAll(documentedPort, String(port)));
    for (const id of runIds ? runIds.split(',') : []) {
      const real = await createRun(url, token);
      commands = commands.map((c) => c.replaceAll(id, real));
    }
  }
  const wrong: string[] = [];
  for (const line of commands) {
    if (skip && line.includes(skip)) continue;
    const [command = '', expected] = line.split(/\s+# → /);
    for (const file of [...command.matchAll(/--body\s+(\S+\.json)/g)])
      writeFileSync(path.join(dir, file[1] as string), '{}');
    const exported = /^export\s+(.*)$/.exec(command);
    if (exported) {
      for (const word of shellWords(exported[1] as string)) {
        const [key = '', ...value] = word.split('=');
        env[key] = value.join('=');
      }
      continue;
    }
    const { code, output } = await sh(command, env);
    if (code !== 0) wrong.push(`${command}: exit ${code}\n${output}`);
    // Printed somewhere in the output: the shape without its anchors.
    if (expected && !new RegExp(shape(expected).source.slice(1, -1)).test(output))
      wrong.push(`${command}: printed\n${output}\ndocumented: ${expected}`);
  }
  return wrong;
}

describe('shell examples in the docs run as documented', () => {
  const all = examples();

  it('finds the marked examples: the agent’s bad settings, the emulator, runs, the demo', () => {
    const commands = all.map((e) => e.fence.body).join('\n');
    for (const used of [
      'tes-heartbeat agent',
      'tes-heartbeat emulator',
      'tes-heartbeat runs heartbeat',
      './dev demo',
    ])
      expect(commands).toContain(used);
  });

  it.each(all.map((e) => [`${e.page}:${e.fence.line}`, e] as const))(
    '%s',
    async (_, example) => {
      const wrong = example.kind === 'console' ? await runConsole(example) : await runSh(example);
      expect(wrong).toEqual([]);
    },
    60_000,
  );

  it('matches a line by its shape, not its ids and times', () => {
    const documented = 'trn.6e685e9dcc128ef6e3a540afc4636cf9  demo  Pending  2026-11-29T17:19:23.290Z  x';
    expect(shape(documented).test('trn.0123abcd  demo    Pending  2027-01-01T00:00:00.001Z  x')).toBe(true);
    expect(shape(documented).test('trn.0123abcd  demo  Running  2027-01-01T00:00:00.001Z  x')).toBe(false);
  });
});
