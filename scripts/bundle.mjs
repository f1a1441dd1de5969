// Bundles the CLI and its dependencies twice, from the same sources:
// - dist/imgbuild.mjs, one self-contained ES module: what is copied elsewhere (into build pods
//   and runner images by --in-cluster, into test and benchmark work directories);
// - dist/imgbuild.cjs, the same as one CommonJS file: what the `imgbuild` command runs
//   (dist/imgbuild, a shell script, starts Node on dist/cli.cjs, which loads it with a V8 code
//   cache; see src/cli/imgbuild.sh and src/cli/launch.cjs for why).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmod, copyFile, readFile, rm, writeFile } from 'node:fs/promises';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  entryPoints: ['src/cli/bin.ts'],
  legalComments: 'none',
  minify: true,
  logLevel: 'warning',
};

const moduleBundle = 'dist/imgbuild.mjs';
const commonJsBundle = 'dist/imgbuild.cjs';
await Promise.all([
  build({
    ...common,
    format: 'esm',
    outfile: moduleBundle,
    // Some bundled CommonJS dependencies call require(); give the module one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __imgbuildCreateRequire } from 'node:module';\nconst require = __imgbuildCreateRequire(import.meta.url);",
    },
  }),
  build({
    ...common,
    format: 'cjs',
    outfile: commonJsBundle,
    banner: { js: "const __imgbuildImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__imgbuildImportMetaUrl' },
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
