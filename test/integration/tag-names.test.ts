// Any valid tag is a tag: words the code once used as markers ("digest" for "push by digest",
// "scratch" for "no base") must still name a tag the registry lists and resolves to the result.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeo, skopeoInspect, skopeoRegistryFlags } from '../helpers/tools.js';

const MARKER_WORDS = ['digest', 'scratch', 'latest'];

async function listedTags(registry: RunningRegistry, repository: string): Promise<string[]> {
  const result = await skopeo(['list-tags', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${repository}`]);
  return (JSON.parse(result.stdout) as { Tags: string[] }).Tags;
}

describe('--to with a tag that is also a word the code uses', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-tag-names-test-')), ensureCliBuilt()]);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushSeedBase(registry);
    await pushBaseImage(registry, 'multi/base:1', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  for (const [kind, base] of [['single-image', SEED_BASE], ['multi-platform', 'multi/base:1']] as const) {
    for (const tag of MARKER_WORDS) {
      test(`a ${kind} base pushed as :${tag} is listed under that tag, which resolves to the pushed digest`, async () => {
        const repository = `tags/${kind}-${tag}`;
        const result = await runCli(
          ['add', '--from', `${registry.host}/${base}`, '--add', 'hello.txt:/hello.txt', '--to', `${registry.host}/${repository}:${tag}`, '-o', 'json'],
          { cwd: workDir },
        );
        assert.equal(result.code, 0, describeResult(result));
        const output = JSON.parse(result.stdout);
        assert.equal(output.tag, tag);
        assert.deepEqual(await listedTags(registry, repository), [tag]);
        assert.equal((await skopeoInspect(`${repository}:${tag}`, registry, 'summary')).Digest, output.digest);
      });
    }
  }
});
