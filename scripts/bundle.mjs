// Bundles the CLI and its dependencies twice, from the same sources:
// - dist/imgbuild.mjs, one self-contained ES module: what is copied elsewhere (into build pods
//   and runner images by --in-cluster, into test and benchmark work directories);
// - dist/imgbuild.cjs, the same as CommonJS, the Kubernetes client apart in
//   dist/kubernetes-client.cjs: what the `imgbuild` command runs (dist/imgbuild, a shell
//   script, starts Node on dist/cli.cjs, which loads it with a V8 code cache; see
//   src/cli/imgbuild.sh and src/cli/launch.cjs for why).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmod, copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  legalComments: 'none',
  minify: true,
  logLevel: 'warning',
};

/** The values src/ imports from @kubernetes/client-node (types need nothing at run time). */
const kubernetesClientExports = new Set();
for (const file of await readdir('src', { recursive: true })) {
  if (!file.endsWith('.ts')) continue;
  const text = await readFile(`src/${file}`, 'utf8');
  for (const [, names] of text.matchAll(/^import \{([^}]*)\} from '@kubernetes\/client-node';/gm)) {
    for (const name of names.split(',').map((item) => item.trim().split(/\s+as\s+/)[0])) {
      if (name && !name.startsWith('type ')) kubernetesClientExports.add(name);
    }
  }
}
/**
 * Node built-in modules that most commands never use but whose importers load with every
 * command: commander requires child_process for executable subcommands (imgbuild has none),
 * credential helpers and archive unpacking need it, worker threads serve only big layers, tls
 * only HTTPS registries and clusters. Loading them costs ~3 ms of a 1 KiB `add`. In the
 * command's bundle each resolves to a stand-in whose exports are getters that require the
 * real module at first use (esbuild's CommonJS output reads imported names at each use).
 */
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = /^(?:node:)?(?:child_process|tls|worker_threads)$/;
    build.onResolve({ filter }, (args) =>
      args.namespace === 'lazy-builtin' ? { path: args.path, external: true } : { path: args.path.replace(/^(?!node:)/, 'node:'), namespace: 'lazy-builtin' },
    );
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, async (args) => {
      const names = Object.keys(await import(args.path)).filter((name) => name !== 'default');
      const contents = [
        'let loaded;',
        `const load = () => (loaded ??= require(${JSON.stringify(args.path)}));`,
        `for (const name of ${JSON.stringify(names)}) Object.defineProperty(exports, name, { enumerable: true, get: () => load()[name] });`,
      ].join('\n');
      return { contents, loader: 'js' };
    });
  },
};

const moduleBundle = 'dist/imgbuild.mjs';
const commonJsBundle = 'dist/imgbuild.cjs';
await Promise.all([
  build({
    ...common,
    entryPoints: ['src/cli/bin.ts'],
    format: 'esm',
    outfile: moduleBundle,
    // Some bundled CommonJS dependencies call require(); give the module one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __imgbuildCreateRequire } from 'node:module';\nconst require = __imgbuildCreateRequire(import.meta.url);",
    },
  }),
  build({
    ...common,
    entryPoints: ['src/cli/bin.ts'],
    format: 'cjs',
    outfile: commonJsBundle,
    banner: { js: "const __imgbuildImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__imgbuildImportMetaUrl' },
    // The Kubernetes client (two thirds of the code) in a file of its own, required only by the
    // cluster engines: a first run of any other command compiles a third as much.
    plugins: [lazyBuiltins, { name: 'kubernetes-client-apart', setup: (build) => build.onResolve({ filter: /^@kubernetes\/client-node$/ }, () => ({ path: './kubernetes-client.cjs', external: true })) }],
  }),
  build({
    ...common,
    stdin: { contents: `export { ${[...kubernetesClientExports].sort().join(', ')} } from '@kubernetes/client-node';`, resolveDir: process.cwd(), loader: 'js' },
    format: 'cjs',
    outfile: 'dist/kubernetes-client.cjs',
  }),
]);
await chmod(moduleBundle, 0o755);

// The loader reads the bundle as Latin-1, twenty times faster than as UTF-8: it must be ASCII.
const commonJsBytes = await readFile(commonJsBundle);
const nonAscii = commonJsBytes.findIndex((byte) => byte > 0x7f);
if (nonAscii !== -1) {
  throw new Error(`${commonJsBundle} is not ASCII at byte ${nonAscii} (${JSON.stringify(commonJsBytes.subarray(Math.max(0, nonAscii - 40), nonAscii + 20).toString())}): escape the character in the source (\\uXXXX)`);
}
// The loader names its caches after the bundle, so a new build never reads an old one's code.
const buildId = createHash('sha256').update(commonJsBytes).digest('hex').slice(0, 16);
await writeFile('dist/cli.cjs', (await readFile('src/cli/launch.cjs', 'utf8')).replace('__IMGBUILD_BUILD_ID__', buildId));
await copyFile('src/cli/imgbuild.sh', 'dist/imgbuild');
await chmod('dist/imgbuild', 0o755);
// What earlier versions of this script made.
await Promise.all(['dist/split', 'dist/cli.mjs'].map((old) => rm(old, { recursive: true, force: true })));
