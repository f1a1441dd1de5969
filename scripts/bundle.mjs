// Bundles the CLI and its dependencies into one file that can be copied into an image.
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

// Start-up time matters for a CLI run once per job: load only the parts of undici we use.
const undiciSlim = {
  name: 'undici-slim',
  setup(build) {
    build.onResolve({ filter: /^undici$/ }, () => ({ path: fileURLToPath(new URL('./undici-slim.cjs', import.meta.url)) }));
  },
};

const outfile = 'dist/imgbuild.mjs';
await build({
  entryPoints: ['src/cli/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __imgbuildCreateRequire } from 'node:module';\nconst require = __imgbuildCreateRequire(import.meta.url);",
  },
  legalComments: 'none',
  minify: true,
  plugins: [undiciSlim],
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
