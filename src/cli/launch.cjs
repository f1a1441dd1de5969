'use strict';
// Starts the command line from the one-file CommonJS bundle next to this file (copied to
// dist/cli.cjs by scripts/bundle.mjs, run by dist/imgbuild) with a V8 code cache: the code
// V8 compiled in an earlier successful run of the same command, so this start skips parsing
// and compiling what it runs. Measured on a 1 KiB `imgbuild add`, 10-17 ms of about 120 ms on
// Node 20, 22 and 24 (Node's own compile cache keeps only what runs at load, ~0 ms here).
//
// One cache file per command, Node version and build, in $XDG_CACHE_HOME/imgbuild/code (or
// ~/.cache/...), else in a directory of this user's under the system's temporary directory.
// A directory another user could write to is never used: a cache is code. V8 refuses a cache
// made by another V8, other flags or other source, and then this run writes a new one.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

/** Replaced by scripts/bundle.mjs with a hash of the bundle: a new build starts new caches. */
const BUILD_ID = '__IMGBUILD_BUILD_ID__';
const bundle = path.join(__dirname, 'imgbuild.cjs');

/** `directory`, made if missing, when this user alone can write to it; else undefined. */
function ownDirectory(directory) {
  try {
    fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
    const stats = fs.lstatSync(directory);
    const mine = typeof process.getuid !== 'function' || stats.uid === process.getuid();
    return stats.isDirectory() && mine && (stats.mode & 0o022) === 0 ? directory : undefined;
  } catch {
    return undefined;
  }
}

function cacheDirectory() {
  const home = process.env.XDG_CACHE_HOME || (os.homedir() && path.join(os.homedir(), '.cache'));
  const user = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  return (home && ownDirectory(path.join(home, 'imgbuild', 'code'))) || ownDirectory(path.join(os.tmpdir(), `imgbuild-code-${user}`));
}

const command = /^[a-z][a-z-]{0,30}$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
const directory = cacheDirectory();
const cacheFile = directory && path.join(directory, `${BUILD_ID}-${process.version}-${process.arch}-${command}.v8`);
let cachedData;
try {
  if (cacheFile) cachedData = fs.readFileSync(cacheFile);
} catch {
  // No cache yet.
}

// ASCII (scripts/bundle.mjs checks): read as Latin-1, which costs a copy, not a UTF-8 decode.
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'latin1')), { filename: bundle, cachedData });
if (cacheFile && (!cachedData || script.cachedDataRejected)) {
  // After a successful run, when V8 has compiled what the command uses.
  process.on('exit', (code) => {
    if (code !== 0) return;
    try {
      const part = `${cacheFile}.${process.pid}`;
      fs.writeFileSync(part, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(part, cacheFile);
      // Caches of earlier builds are never read again.
      for (const name of fs.readdirSync(directory)) {
        if (!name.startsWith(`${BUILD_ID}-`)) fs.rmSync(path.join(directory, name), { force: true });
      }
    } catch {
      // A cache is only an optimisation.
    }
  });
}
const bundleModule = { exports: {}, filename: bundle, id: bundle };
script.runInThisContext().call(bundleModule.exports, bundleModule.exports, Module.createRequire(bundle), bundleModule, bundle, __dirname);
