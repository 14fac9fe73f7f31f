// Bundles the CLI into dist/: one entry, code-split per command so that each
// command loads only what it uses (the agent never parses the emulator or the webhook).
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const clientNodeDist = path.join(root, 'node_modules/@kubernetes/client-node/dist');

// client-node's config.js imports the whole generated API (every model and API
// class, ~80 MB and ~450 ms at start) for two small pieces. Serve just those.
const clientNodeGenStub = {
  name: 'client-node-gen-stub',
  setup(b) {
    b.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
      args.importer.startsWith(clientNodeDist)
        ? { path: 'gen-stub', namespace: 'client-node-gen' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'client-node-gen' }, () => ({
      contents:
        "export { createConfiguration } from './configuration.js';\nexport { ServerConfiguration } from './servers.js';\n",
      resolveDir: path.join(clientNodeDist, 'gen'),
      loader: 'js',
    }));
  },
};

const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

await rm(path.join(root, 'dist'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { 'tes-heartbeat': 'src/cli/main.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  keepNames: true,
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  define: { 'process.env.TES_HEARTBEAT_VERSION': JSON.stringify(version) },
  // CommonJS dependencies (pino, prom-client) call require() for Node built-ins.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  plugins: [clientNodeGenStub],
  logLevel: 'warning',
});
