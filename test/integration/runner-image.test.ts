// `imgbuild runner-image` adds imgbuild's one-file bundle to a Node image, for
// `--in-cluster --runner-image`: the bundle must be in the image byte for byte, where the
// in-cluster engine runs it, with the label that names its hash, and the base kept.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, REPO_ROOT, runCli } from '../helpers/cli.js';
import { pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const BUNDLE = path.join(REPO_ROOT, 'dist', 'imgbuild.mjs');

describe('imgbuild runner-image', () => {
  let registry: RunningRegistry;

  before(async () => {
    [registry] = await Promise.all([startRegistry(), ensureCliBuilt()]);
    await pushSeedBase(registry);
  });
  after(async () => {
    await registry?.stop();
  });

  test('puts the bundle at /imgbuild/imgbuild.mjs with its hash as a label, on top of the Node image', async () => {
    const result = await runCli(['runner-image', '--node-image', `${registry.host}/${SEED_BASE}`, '--to', `${registry.host}/runner/imgbuild:1`, '-o', 'json']);
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout) as { digest: string; bundleSha256: string };
    const bundleSha256 = createHash('sha256').update(await readFile(BUNDLE)).digest('hex');
    assert.equal(output.bundleSha256, bundleSha256);

    const pushed = await skopeoInspect('runner/imgbuild:1', registry, 'summary');
    assert.equal(pushed.Digest, output.digest);
    assert.equal(pushed.Labels['dev.imgbuild.bundle.sha256'], bundleSha256);
    const base = await skopeoInspect(SEED_BASE, registry, 'summary');
    assert.deepEqual(pushed.Layers.slice(0, base.Layers.length), base.Layers, 'the Node image\'s layers are kept below the bundle');
    assert.equal(pushed.Layers.length, base.Layers.length + 1);

    await assertUmociReadsBack(registry, 'runner/imgbuild:1', '/imgbuild/imgbuild.mjs', { file: BUNDLE });
  });

  test('run as the imgbuild command (the CommonJS bundle), it finds the one-file ES module bundle next to it', async () => {
    const result = await runCli(['runner-image', '--node-image', `${registry.host}/${SEED_BASE}`, '--to', `${registry.host}/runner/imgbuild:launcher`, '-o', 'json'], { launcher: true });
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout) as { bundleSha256: string };
    assert.equal(output.bundleSha256, createHash('sha256').update(await readFile(BUNDLE)).digest('hex'));
  });

  test('a --node-image that does not exist fails naming it, and pushes nothing', async () => {
    const result = await runCli(['runner-image', '--node-image', `${registry.host}/no/such-node:22`, '--to', `${registry.host}/runner/missing:1`]);
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /no\/such-node:22/);
    assert.equal(await skopeoInspect('runner/missing:1', registry, 'summary').then(() => true, () => false), false);
  });
});
