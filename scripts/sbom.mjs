// The CycloneDX SBOM of what the bundle contains (dist/sbom.cdx.json; the image carries
// it at /app/sbom.cdx.json). The image holds one esbuild bundle and no package.json, so a
// scanner sees no npm package unless this document names it.
//
// npm writes the SBOM (`npm sbom --sbom-format cyclonedx`: names, versions, purls,
// licenses, hashes, from the installed tree); esbuild's metafile says which packages the
// bundle really holds, and only those are kept. Not `--omit=dev`: it drops a production
// package that a dev dependency also names as a peer (npm/cli#7909) — here prom-client's
// @opentelemetry/api, which vitest names as an optional peer — and the bundle holds it.
// The build fails when a bundled package is missing from npm's list.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const NODE_MODULES = 'node_modules/';

/**
 * `name@version` of every npm package with a file in the bundle, from esbuild's metafile
 * (inputs are paths relative to `root`; a nested copy counts with its own version).
 */
export function bundledPackages(root, metafile) {
  const packages = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const at = input.lastIndexOf(NODE_MODULES);
    if (at === -1) continue;
    const [scope, name] = input.slice(at + NODE_MODULES.length).split('/');
    const packageName = scope.startsWith('@') ? `${scope}/${name}` : scope;
    const dir = path.join(root, input.slice(0, at + NODE_MODULES.length), packageName);
    const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    packages.add(`${packageName}@${version}`);
  }
  return packages;
}

/** npm's SBOM of the installed tree; started before the bundle is built, as it does not depend on it. */
export async function readNpmSbom(root) {
  const { stdout } = await promisify(execFile)('npm', ['sbom', '--sbom-format', 'cyclonedx'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout);
}

/** Writes to `out` the part of `npmSbom` (readNpmSbom) that the bundle of `metafile` holds. */
export async function writeSbom({ root, metafile, npmSbom, out }) {
  const bundled = bundledPackages(root, metafile);
  const sbom = await npmSbom;
  const key = (component) => `${component.name}@${component.version}`;
  const components = sbom.components.filter((component) => bundled.has(key(component)));
  const listed = new Set(components.map(key));
  const missing = [...bundled].filter((pkg) => !listed.has(pkg));
  if (missing.length > 0)
    throw new Error(`sbom: bundled packages that npm sbom does not list: ${missing.join(', ')}`);

  const { name, version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const application = sbom.metadata.component;
  const refs = new Set([application['bom-ref'], ...components.map((c) => c['bom-ref'])]);
  const document = {
    ...sbom,
    // npm names the root after the directory it ran in (/src in the image's build stage).
    metadata: { ...sbom.metadata, component: { ...application, name, version, type: 'application' } },
    components,
    dependencies: (sbom.dependencies ?? [])
      .filter((d) => refs.has(d.ref))
      .map((d) => ({ ...d, dependsOn: (d.dependsOn ?? []).filter((ref) => refs.has(ref)) })),
  };
  await writeFile(out, `${JSON.stringify(document, null, 2)}\n`);
}
