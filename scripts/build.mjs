// Bundles the CLI into dist/: one entry, code-split per command so that each
// command loads only what it uses (the agent never parses the emulator or the webhook).
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { readNpmSbom, writeSbom } from './sbom.mjs';

const root = path.resolve(import.meta.dirname, '..');
const clientNodeDist = path.join(root, 'node_modules/@kubernetes/client-node/dist');

// client-node's config.js imports the whole generated API (every model and API
// class, ~80 MB and ~450 ms at start) for `makeApiClient`, which this project never
// calls (src/kube/api.ts speaks to the API server itself). Serve stand-ins.
const clientNodeGenStub = {
  name: 'client-node-gen-stub',
  setup(b) {
    b.onResolve({ filter: /^\.\/gen\/index\.js$/ }, (args) =>
      args.importer.startsWith(clientNodeDist)
        ? { path: 'gen-stub', namespace: 'client-node-gen' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'client-node-gen' }, () => ({
      contents: [
        "const unbundled = () => new Error('tes-heartbeat: client-node generated API clients are not bundled');",
        'export function createConfiguration() { throw unbundled(); }',
        'export class ServerConfiguration { constructor() { throw unbundled(); } }',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

// Kubeconfig auth plugins for Azure, GCP and OIDC pull in openid-client, oauth4webapi,
// jose and jsonpath-plus; a task pod authenticates with its service-account token.
// They load on first use instead. SOCKS proxies are refused by src/kube/api.ts, so the
// socks packages are never needed.
const AUTH_PLUGINS = {
  oidc_auth: ['OpenIDConnectAuth', 'oidc'],
  azure_auth: ['AzureAuth', 'azure'],
  gcp_auth: ['GoogleCloudPlatformAuth', 'gcp'],
};
const clientNodeLazyAuth = {
  name: 'client-node-lazy-auth',
  setup(b) {
    const config = path.join(clientNodeDist, 'config.js');
    b.onResolve({ filter: /^\.\/(oidc|azure|gcp)_auth\.js$/ }, (args) =>
      args.importer === config ? { path: args.path, namespace: 'lazy-auth' } : undefined,
    );
    b.onResolve({ filter: /^socks(-proxy-agent)?$/ }, (args) =>
      args.importer === config ? { path: args.path, namespace: 'no-socks' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-auth' }, (args) => {
      const file = /\.\/(\w+)\.js$/.exec(args.path)[1];
      const [cls, provider] = AUTH_PLUGINS[file];
      return {
        contents: [
          `let real;`,
          `export class ${cls} {`,
          `  isAuthProvider(user) { return user?.authProvider?.name === '${provider}'; }`,
          `  async applyAuthentication(user, opts) {`,
          `    real ??= new (await import('./${file}.js')).${cls}();`,
          '    return real.applyAuthentication(user, opts);',
          '  }',
          '}',
        ].join('\n'),
        resolveDir: clientNodeDist,
        loader: 'js',
      };
    });
    b.onLoad({ filter: /.*/, namespace: 'no-socks' }, () => ({
      contents: [
        "const refuse = () => { throw new Error('tes-heartbeat: SOCKS proxies are not supported'); };",
        'export const SocksClient = { createConnection: refuse };',
        'export class SocksProxyAgent { constructor() { refuse(); } }',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

// undici's root module loads every dispatcher, fetch, WebSocket, the caches and the
// mocks (~13 MB private memory, ~150 ms). The project and client-node's config.js use
// only Agent and ProxyAgent, with the request API undici's root mixes into Dispatcher.
// An import of anything else from 'undici' fails the build, so this cannot rot silently.
const undiciSlim = {
  name: 'undici-slim',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici-slim', namespace: 'undici-slim' }));
    b.onLoad({ filter: /.*/, namespace: 'undici-slim' }, () => ({
      contents: [
        "import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';",
        "import api from 'undici/lib/api/index.js';",
        "import Agent from 'undici/lib/dispatcher/agent.js';",
        "import ProxyAgent from 'undici/lib/dispatcher/proxy-agent.js';",
        'Object.assign(Dispatcher.prototype, api);',
        'export { Agent, Dispatcher, ProxyAgent };',
      ].join('\n'),
      resolveDir: root,
      loader: 'js',
    }));
  },
};

const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

// BUILD_OUTDIR: another directory than dist/, for a test that must not touch the dist/ other tests run.
const outdir = path.resolve(root, process.env.BUILD_OUTDIR ?? 'dist');
const npmSbom = readNpmSbom(root);
await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { 'tes-heartbeat': 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  keepNames: true,
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  define: {
    'process.env.TES_HEARTBEAT_VERSION': JSON.stringify(version),
    // undici's own hook for bundlers: leaves out the experimental Milo parser (~190 KB of
    // WebAssembly as base64 that would sit in memory unused; llhttp stays).
    esbuildDetection: 'true',
  },
  // CommonJS dependencies (pino, prom-client) call require() for Node built-ins.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  plugins: [clientNodeGenStub, clientNodeLazyAuth, undiciSlim],
  logLevel: 'warning',
  // The metafile also says which npm packages the bundle holds: the SBOM lists exactly those.
  metafile: true,
});
// BUILD_METAFILE=path writes esbuild's metafile there, for looking into what each chunk holds.
if (process.env.BUILD_METAFILE) await writeFile(process.env.BUILD_METAFILE, JSON.stringify(result.metafile));
await writeSbom({ root, metafile: result.metafile, npmSbom, out: path.join(outdir, 'sbom.cdx.json') });
