// The image, without Docker: the Dockerfile is parsed, its build stage's steps are run as
// written (COPY → copy from the repository, RUN → sh -c) in a temporary directory, the
// runtime stage's COPY --from=build is applied to an empty "image" directory, and the
// ENTRYPOINT is started there with Node 24 and no node_modules anywhere. A broken image
// build (a file not copied, a run-time dependency outside the bundle) fails here.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { repoRoot } from '../support/helm-chart.ts';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages of a Dockerfile: instructions with continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push(name ? { from, name, instructions: [] } : { from, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args: args.replace(/\s+/g, ' ').trim() });
    }
  }
  return stages;
}

const dockerfile = parseDockerfile(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'));
const build = dockerfile.find((s) => s.name === 'build') as Stage;
const runtime = dockerfile.at(-1) as Stage;
const version = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const one = (stage: Stage, op: string) => all(stage, op).at(-1) ?? '';
/** The runtime stage's ENV, as the container gets it. */
const imageEnv = Object.fromEntries(
  all(runtime, 'ENV')
    .flatMap((args) => args.split(/\s+/))
    .map((pair) => pair.split('=', 2) as [string, string]),
);
/** COPY's flags and paths: `--from=build --chown=0:0 a b dest` → flags, [a, b], dest. */
function copyArgs(args: string) {
  const words = args.split(' ');
  const flags = Object.fromEntries(
    words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=') as [string, string]),
  );
  const paths = words.filter((w) => !w.startsWith('--'));
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1) as string };
}

describe('the Dockerfile', () => {
  test('builds on Node 24 and runs on distroless Node 24 as a numeric non-root user', () => {
    expect(build.from).toMatch(/^node:24[-.]/);
    expect(runtime.from).toMatch(
      /^gcr\.io\/distroless\/nodejs24-debian\d+(:nonroot)?(@sha256:[0-9a-f]{64})?$/,
    );
    expect(one(runtime, 'USER')).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(all(runtime, 'RUN')).toEqual([]); // no shell at run time
  });

  test('ENTRYPOINT runs tes-heartbeat with node as PID 1 (exec form), agent by default', () => {
    const entrypoint = JSON.parse(one(runtime, 'ENTRYPOINT')) as string[];
    expect(entrypoint[0]).toBe('/nodejs/bin/node');
    expect(entrypoint.at(-1)).toBe('/app/tes-heartbeat.js');
    // Only V8 flags between node and the script (measured in README, Performance).
    for (const flag of entrypoint.slice(1, -1)) expect(flag).toMatch(/^--[a-z-]+=\d+$/);
    expect(JSON.parse(one(runtime, 'CMD'))).toEqual(['agent']);
  });

  test('carries the OCI labels, with the version of package.json', () => {
    const labels = all(runtime, 'LABEL').join(' ');
    for (const key of ['source', 'version', 'licenses'])
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
    expect(all(runtime, 'ARG')).toContain(`VERSION=${version}`);
  });

  test('copies only the built bundle into the runtime image', () => {
    const copies = all(runtime, 'COPY').map(copyArgs);
    expect(copies).toEqual([
      { flags: { from: 'build', chown: '0:0' }, sources: ['/src/dist/'], dest: '/app/' },
    ]);
  });

  test('.dockerignore lets in exactly what the build stage copies', () => {
    const allowed = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''))
      .sort();
    const copied = all(build, 'COPY')
      .flatMap((a) => copyArgs(a).sources)
      .map((s) => s.replace(/\/$/, ''))
      .sort();
    expect(allowed).toEqual(copied);
  });
});

describe('the build stage, repeated outside Docker', () => {
  let work: string;
  let image: string;
  const buildDir = () => path.join(work, 'build');
  const nodeBin = path.dirname(process.execPath);

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'dockerfile-build-'));
    image = path.join(work, 'image');
    let workdir = '/';
    for (const { op, args } of build.instructions) {
      const here = path.join(buildDir(), workdir);
      if (op === 'WORKDIR') {
        workdir = args;
        mkdirSync(path.join(buildDir(), workdir), { recursive: true });
      } else if (op === 'COPY') {
        const { sources, dest } = copyArgs(args);
        for (const source of sources) {
          // Docker's rules: a directory's contents go into dest; a file goes into a dest ending in /.
          const from = path.join(repoRoot, source);
          const intoDir = dest.endsWith('/') && !statSync(from).isDirectory();
          cpSync(from, path.join(here, dest, intoDir ? path.basename(source) : ''), { recursive: true });
        }
      } else if (op === 'RUN') {
        // On a warm npm cache this takes seconds; a fresh CI machine downloads.
        const command = args.replace(/^npm ci\b/, 'npm ci --prefer-offline');
        const result = spawnSync('sh', ['-c', command], {
          cwd: here,
          encoding: 'utf8',
          env: { ...process.env, PATH: `${nodeBin}:${process.env.PATH ?? ''}`, NODE_ENV: '' },
        });
        if (result.status !== 0) {
          const output = `${result.stderr.slice(0, 1500)}\n…\n${result.stderr.slice(-1500)}`;
          throw new Error(`RUN ${command} failed (${result.status}):\n${output}`);
        }
      }
    }
    // The build stage's filesystem root is buildDir(): /src/dist/ is buildDir()/src/dist/.
    for (const args of all(runtime, 'COPY')) {
      const { sources, dest } = copyArgs(args);
      for (const source of sources)
        cpSync(path.join(buildDir(), source), path.join(image, dest), { recursive: true });
    }
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The ENTRYPOINT, mapped into the image directory, with these arguments. */
  function start(args: string[]) {
    const [, ...rest] = JSON.parse(one(runtime, 'ENTRYPOINT')) as string[];
    const script = rest.pop() as string;
    return spawnSync(process.execPath, [...rest, path.join(image, script), ...args], {
      cwd: path.join(image, one(runtime, 'WORKDIR')),
      encoding: 'utf8',
      env: { PATH: nodeBin, ...imageEnv },
      timeout: 20_000,
    });
  }

  test('the image holds no node_modules, anywhere up its path', () => {
    expect(existsSync(path.join(image, 'app/tes-heartbeat.js'))).toBe(true);
    const found = spawnSync('find', [image, '-name', 'node_modules'], { encoding: 'utf8' }).stdout.trim();
    expect(found).toBe('');
    for (let dir = image; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      expect(existsSync(path.join(dir, 'node_modules')), dir).toBe(false);
    }
  });

  test('the image carries the SBOM at /app/sbom.cdx.json, about tes-heartbeat (not the build directory)', () => {
    const sbom = JSON.parse(readFileSync(path.join(image, 'app/sbom.cdx.json'), 'utf8'));
    expect(sbom.bomFormat).toBe('CycloneDX');
    // npm names the root after the directory it runs in: /src in the build stage.
    expect(sbom.metadata.component).toMatchObject({ name: 'tes-heartbeat', version });
    const names = (sbom.components as { name: string }[]).map((c) => c.name);
    for (const name of ['pino', 'undici', '@kubernetes/client-node', 'prom-client'])
      expect(names).toContain(name);
    expect(names).not.toContain('vitest');
  });

  test('--version prints the package version', () => {
    const result = start(['--version']);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(version);
    expect(result.status).toBe(0);
  });

  test('agent --help lists the agent settings', () => {
    const result = start(['agent', '--help']);
    expect(result.status, result.stderr).toBe(0);
    for (const name of ['TES_URL', 'TES_RUN_ID', 'HEARTBEAT_INTERVAL']) expect(result.stdout).toContain(name);
  });

  test('the default argument (CMD agent) starts the agent, which stops with 2 and names TES_URL when unset', () => {
    const result = start(JSON.parse(one(runtime, 'CMD')));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('TES_URL');
  });
});
