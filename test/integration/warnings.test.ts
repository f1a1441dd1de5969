// Warnings on stderr for inputs that are valid but probably not what was meant.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

describe('add warnings', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-warn-test-')), ensureCliBuilt()]);
    await writeFile(path.join(workDir, 'hello.txt'), 'hi\n');
    await pushSeedBase(registry);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const add = (dest: string, tag: string) =>
    runCli(['add', '--from', `${registry.host}/${SEED_BASE}`, '--add', `hello.txt:${dest}`, '--to', `${registry.host}/warn/app:${tag}`], { cwd: workDir });

  test('a file to an extensionless DEST without a trailing slash warns, and still pushes', async () => {
    const result = await add('/opt/app', 'a');
    assert.equal(result.code, 0, describeResult(result));
    assert.match(result.stderr, /^warning: --add hello\.txt:\/opt\/app writes the file as \/opt\/app; .*end DEST with \//m);
  });

  test('a DEST naming the file, or a directory with a trailing slash, does not warn', async () => {
    for (const [dest, tag] of [['/opt/app/hello.txt', 'b'], ['/opt/app/', 'c']] as const) {
      const result = await add(dest, tag);
      assert.equal(result.code, 0, describeResult(result));
      assert.doesNotMatch(result.stderr, /warning:/);
    }
  });
});
