// scripts/ensure-test-tools.sh, which `npm test` runs first: with a package missing and no root,
// it must stop at once and name the one apt-get command; with everything there it must pass.
// It asks the machine's real dpkg; "missing" is a package name no Debian archive has, so nothing
// is ever installed by this test.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';
import { run } from '../helpers/tools.js';

const MISSING = 'imgbuild-test-no-such-package';

describe('scripts/ensure-test-tools.sh', () => {
  let copy: string;
  before(async () => {
    // A copy of the script with its package list and the Go witness's go.mod, as in the repository.
    copy = await mkdtemp(path.join(tmpdir(), 'imgbuild-test-tools-'));
    await mkdir(path.join(copy, 'scripts'));
    await mkdir(path.join(copy, 'test/tools/buildkit-dockerfile'), { recursive: true });
    await copyFile(path.join(REPO_ROOT, 'scripts/ensure-test-tools.sh'), path.join(copy, 'scripts/ensure-test-tools.sh'));
    await copyFile(path.join(REPO_ROOT, 'test/tools/buildkit-dockerfile/go.mod'), path.join(copy, 'test/tools/buildkit-dockerfile/go.mod'));
    await chmod(copy, 0o755);
  });
  after(async () => {
    await rm(copy, { recursive: true, force: true });
  });

  /** Runs the copy with `packages` as its list, as a user who is not root. */
  async function runAsNonRoot(packages: string[]) {
    await writeFile(path.join(copy, 'scripts/test-packages.txt'), `# test list\n${packages.join('\n')}\n`);
    const script = path.join(copy, 'scripts/ensure-test-tools.sh');
    const command = process.getuid?.() === 0 ? ['runuser', ['-u', 'nobody', '--', 'bash', script]] as const : ['bash', [script]] as const;
    return run(command[0], [...command[1]], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/' }, timeoutMs: 60_000 });
  }

  test('without root and with a package missing it stops at once, naming the apt-get command', async () => {
    const installed = (await readFile(path.join(REPO_ROOT, 'scripts/test-packages.txt'), 'utf8')).split('\n').filter((line) => line && !line.startsWith('#'));
    const result = await runAsNonRoot([...installed.slice(0, 2), MISSING]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`not installed: ${MISSING}\\n`));
    assert.match(result.stderr, new RegExp(`^  sudo apt-get install -y --no-install-recommends ${MISSING}$`, 'm'));
  });

  test("with the repository's packages installed it passes", async () => {
    const list = (await readFile(path.join(REPO_ROOT, 'scripts/test-packages.txt'), 'utf8')).split('\n');
    const result = await runAsNonRoot(list);
    assert.equal(result.code, 0, `this machine lacks a test tool, or the check is wrong:\n${result.stderr}`);
  });
});
