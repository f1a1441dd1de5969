// The imgbuild command as npm links it (dist/imgbuild on dist/imgbuild.cjs): its V8 code cache
// (src/cli/launch.cjs) is written after a successful run, one file per command, read (not
// rewritten) by the next; a cache V8 refuses is replaced; a failed run writes none; a directory
// other users can write to is never used. (runner-image.test.ts: it finds the bundle for pods.)
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { tokenKubeconfig } from '../helpers/fixtures.js';
import { run } from '../helpers/tools.js';

/** The absolute path `command -v NAME` finds. */
async function realpathOf(name: string): Promise<string | undefined> {
  const found = await run('/bin/sh', ['-c', `command -v ${name}`]);
  return found.code === 0 ? found.stdout.trim() : undefined;
}

describe('the code cache of the imgbuild command', () => {
  let workDir: string;

  before(async () => {
    [workDir] = await Promise.all([mkdtemp(path.join(tmpdir(), 'imgbuild-launcher-test-')), ensureCliBuilt()]);
    await mkdir(path.join(workDir, 'tmp'));
  });
  after(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** `imgbuild ARGS` through the launcher, caches under XDG_CACHE_HOME=cacheHome and temporary files under tmp. */
  function imgbuild(args: string[], cacheHome: string, tmp = path.join(workDir, 'tmp')): Promise<CliResult> {
    return runCli(args, { launcher: true, env: { XDG_CACHE_HOME: cacheHome, TMPDIR: tmp } });
  }

  async function cacheFiles(directory: string): Promise<string[]> {
    return (await readdir(directory).catch(() => [] as string[])).sort();
  }

  test('a successful run writes its command\'s cache; the next run reads it and leaves it as it is', async () => {
    const home = path.join(workDir, 'home-ok');
    const code = path.join(home, 'imgbuild', 'code');
    const first = await imgbuild(['inspect', '--help'], home);
    assert.equal(first.code, 0, describeResult(first));
    const files = await cacheFiles(code);
    assert.equal(files.length, 1, `cache files: ${files.join(', ')}`);
    assert.match(files[0]!, new RegExp(`^[0-9a-f]{16}-${process.version.replace(/\./g, '\\.')}-${process.arch}-inspect\\.v8$`));
    const written = await stat(path.join(code, files[0]!));
    assert.equal(written.mode & 0o777, 0o600);
    assert.equal((await stat(code)).mode & 0o777, 0o700);

    const second = await imgbuild(['inspect', '--help'], home);
    assert.equal(second.code, 0, describeResult(second));
    assert.equal(second.stdout, first.stdout);
    const again = await stat(path.join(code, files[0]!));
    assert.equal(again.ino, written.ino, 'the cache was written again: V8 refused it');
    assert.equal(again.mtimeMs, written.mtimeMs);
  });

  test('a cache V8 refuses (here: garbage) is replaced, and the command still runs', async () => {
    const home = path.join(workDir, 'home-garbage');
    assert.equal((await imgbuild(['inspect', '--help'], home)).code, 0);
    const code = path.join(home, 'imgbuild', 'code');
    const [file] = await cacheFiles(code);
    await writeFile(path.join(code, file!), 'not a code cache');
    const result = await imgbuild(['inspect', '--help'], home);
    assert.equal(result.code, 0, describeResult(result));
    assert.notEqual((await readFile(path.join(code, file!), 'utf8').catch(() => '')).slice(0, 16), 'not a code cache');
    assert.ok((await stat(path.join(code, file!))).size > 10_000, 'no real cache was written in place of the garbage');
  });

  test('a run that fails writes no cache', async () => {
    const home = path.join(workDir, 'home-failed');
    const result = await imgbuild(['add'], home);
    assert.equal(result.code, 2, describeResult(result));
    assert.deepEqual(await cacheFiles(path.join(home, 'imgbuild', 'code')), []);
  });

  test('a cache directory others can write to is not used: a private one under TMPDIR is', async () => {
    const home = path.join(workDir, 'home-shared');
    const shared = path.join(home, 'imgbuild', 'code');
    await mkdir(shared, { recursive: true });
    await chmod(shared, 0o777);
    const tmp = path.join(workDir, 'tmp-shared');
    await mkdir(tmp);
    const result = await imgbuild(['inspect', '--help'], home, tmp);
    assert.equal(result.code, 0, describeResult(result));
    assert.deepEqual(await cacheFiles(shared), []);
    const own = path.join(tmp, `imgbuild-code-${process.getuid!()}`);
    assert.equal((await cacheFiles(own)).length, 1);
    assert.equal((await stat(own)).mode & 0o777, 0o700);
  });

  test('the cluster engines load the Kubernetes client from its own file', async () => {
    const context = path.join(workDir, 'context');
    await mkdir(context, { recursive: true });
    await writeFile(path.join(context, 'Dockerfile'), 'FROM 127.0.0.1:5000/base/app:1\n');
    const kubeconfig = path.join(workDir, 'kubeconfig');
    // Nothing listens on port 1: the client must get as far as trying.
    await writeFile(kubeconfig, tokenKubeconfig('https://127.0.0.1:1'));
    const home = path.join(workDir, 'home-kubernetes');
    const rendered = await imgbuild(['build', context, '--engine', 'kaniko', '--dry-run', '--kubeconfig', kubeconfig, '--to', '127.0.0.1:5000/dest/app:1'], home);
    assert.equal(rendered.code, 0, describeResult(rendered));
    assert.match(rendered.stdout, /^kind: Job$/m);
    const cleaned = await imgbuild(['clean', '--kubeconfig', kubeconfig], home);
    assert.equal(cleaned.code, 1, describeResult(cleaned));
    assert.match(cleaned.stderr, /cannot reach the API server https:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/, describeResult(cleaned));
  });

  test('without node on PATH: a message naming it, exit 127', async () => {
    // PATH holds only the readlink the launcher uses to follow its symlink.
    const bin = path.join(workDir, 'path-without-node');
    await mkdir(bin, { recursive: true });
    await symlink((await realpathOf('readlink'))!, path.join(bin, 'readlink'));
    const launcher = path.join(path.dirname(await ensureCliBuilt()), 'bin', 'imgbuild');
    const result = await run('/bin/sh', [launcher, '--version'], { env: { PATH: bin, HOME: workDir } });
    assert.equal(result.code, 127, `${result.stderr}\n${result.stdout}`);
    assert.match(result.stderr, /^error: imgbuild needs Node\.js \(20 or newer\), and there is no node on PATH$/m);
    assert.match(result.stderr, /^hint: install Node\.js/m);
  });
});
