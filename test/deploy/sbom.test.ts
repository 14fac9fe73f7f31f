// The SBOM the build writes (dist/sbom.cdx.json, in the image at /app/sbom.cdx.json):
// CycloneDX JSON naming every npm package the esbuild bundle holds, with the version
// installed in node_modules, and nothing else — no dev-only package. What the bundle
// holds comes from esbuild's own metafile of a separate build (BUILD_OUTDIR: the dist/
// other tests run is left alone), walked here on its own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/helm-chart.ts';

interface Component {
  'bom-ref': string;
  type: string;
  name: string;
  version: string;
  purl: string;
}
interface Sbom {
  bomFormat: string;
  specVersion: string;
  metadata: { component: { name: string; version: string } };
  components: Component[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}

let work: string;
let sbom: Sbom;
/** `name@version` of every package with a file in the bundle. */
let bundled: Set<string>;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'sbom-'));
  const metafile = path.join(work, 'meta.json');
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, BUILD_OUTDIR: path.join(work, 'dist'), BUILD_METAFILE: metafile },
  });
  expect(build.status, build.stderr).toBe(0);
  sbom = JSON.parse(readFileSync(path.join(work, 'dist', 'sbom.cdx.json'), 'utf8')) as Sbom;
  const { inputs } = JSON.parse(readFileSync(metafile, 'utf8')) as { inputs: Record<string, unknown> };
  bundled = new Set();
  for (const input of Object.keys(inputs)) {
    // The package's own directory: the last `node_modules/<name>` or `node_modules/@scope/<name>`.
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!match) continue;
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, match[1] as string, 'package.json'), 'utf8'));
    bundled.add(`${pkg.name}@${pkg.version}`);
  }
}, 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the SBOM', () => {
  it('is CycloneDX JSON about tes-heartbeat at the version of package.json', () => {
    const { name, version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.specVersion).toMatch(/^1\.\d+$/);
    expect(sbom.metadata.component).toMatchObject({ name, version });
    for (const c of sbom.components) {
      expect(c.type).toBe('library');
      expect(c['bom-ref']).toBe(`${c.name}@${c.version}`);
      expect(c.purl).toBe(`pkg:npm/${c.name.replace('@', '%40')}@${c.version}`);
    }
  });

  it('names every package the bundle holds, with its installed version, and nothing else', () => {
    expect(bundled.size).toBeGreaterThan(20); // the metafile walk found the bundle's packages
    // prom-client's @opentelemetry/api, which `npm sbom --omit=dev` leaves out (npm/cli#7909).
    expect(bundled).toContain(
      `@opentelemetry/api@${JSON.parse(readFileSync(path.join(repoRoot, 'node_modules/@opentelemetry/api/package.json'), 'utf8')).version}`,
    );
    expect(new Set(sbom.components.map((c) => `${c.name}@${c.version}`))).toEqual(bundled);
  });

  it('holds no dev-only package', () => {
    const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = new Set(
      Object.entries(lock.packages)
        .filter(([, entry]) => entry.dev)
        .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length)),
    );
    expect(devOnly).toContain('vitest');
    expect(sbom.components.filter((c) => devOnly.has(c.name)).map((c) => c.name)).toEqual([]);
    const refs = new Set([`${sbom.metadata.component.name}@${sbom.metadata.component.version}`, ...bundled]);
    for (const d of sbom.dependencies) {
      expect(refs).toContain(d.ref);
      for (const ref of d.dependsOn ?? []) expect(refs).toContain(ref);
    }
  });

  it('is written by the ordinary build too (dist/sbom.cdx.json)', () => {
    expect(existsSync(path.join(repoRoot, 'dist', 'sbom.cdx.json'))).toBe(true);
  });
});
