// Bundles the CLI and its dependencies twice, from the same sources:
// - dist/imgbuild.mjs, one self-contained file: what is copied elsewhere (into build pods and
//   runner images by --in-cluster, into test and benchmark work directories);
// - dist/split/, the same code split by command (main.mjs and chunks/): what `npx imgbuild`
//   (dist/cli.mjs) runs, so each command compiles only its own code at start-up.
import { build } from 'esbuild';
import { chmod, copyFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Some bundled CommonJS dependencies call require(); give each ES module one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __imgbuildCreateRequire } from 'node:module';\nconst require = __imgbuildCreateRequire(import.meta.url);",
  },
  legalComments: 'none',
  minify: true,
  logLevel: 'warning',
};

const outfile = 'dist/imgbuild.mjs';
const splitDir = 'dist/split';
const [, split] = await Promise.all([
  build({ ...common, entryPoints: ['src/cli/bin.ts'], outfile }),
  // `add` never loads the Dockerfile frontend; only the cluster engines load the Kubernetes client.
  build({
    ...common,
    entryPoints: { main: 'src/cli/bin.ts' },
    outdir: splitDir,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    metafile: true,
  }),
]);
await chmod(outfile, 0o755);
// Chunks of earlier builds are named by other hashes: remove them.
const written = new Set(Object.keys(split.metafile.outputs).map((file) => path.resolve(file)));
for (const name of await readdir(path.join(splitDir, 'chunks'))) {
  const file = path.resolve(splitDir, 'chunks', name);
  if (!written.has(file)) await rm(file, { force: true });
}

// The command users run: on Node >= 22.1 it turns on V8's compile cache before loading the
// split bundle, which saves ~20 ms of every start (measured on Node 22); on Node 20 it only loads it.
const launcher = 'dist/cli.mjs';
await writeFile(
  launcher,
  "#!/usr/bin/env node\nimport module from 'node:module';\nmodule.enableCompileCache?.();\nawait import('./split/main.mjs');\n",
);
await chmod(launcher, 0o755);
// The `imgbuild` command npm links: a shell script that starts Node on cli.mjs (see it for why).
await copyFile('src/cli/imgbuild.sh', 'dist/imgbuild');
await chmod('dist/imgbuild', 0o755);
