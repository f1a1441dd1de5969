// Golden digests: fixed inputs whose layer digest and diff_id are pinned as literals. They
// catch any change in the bytes a layer is made of: an upgrade of the tar writer or of
// Node's zlib, a rewrite of the layer builder, a changed entry order, mode or mtime. A
// change here changes the digest of every image users rebuild from the same files; if it
// is intended, say so in the commit and update the literals from the failure message.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildLayer, parseAddSpec, type LayerOptions } from '../../src/image/layer.js';
import { pinMtimes, writeManySmallFiles, writeMixedTree, writeRepeatedText } from '../helpers/layer-fixtures.js';

let workDir: string;

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-layer-golden-'));
  await mkdir(path.join(workDir, 'blobs'));
  await writeMixedTree(path.join(workDir, 'mixed'));
  await pinMtimes(path.join(workDir, 'mixed'), 1_600_000_000);
  await writeManySmallFiles(path.join(workDir, 'many'), 20_000, 200);
  await writeRepeatedText(path.join(workDir, 'big', 'repeated.b64'), 66);
  await pinMtimes(path.join(workDir, 'many'), 1_650_000_000);
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

interface Golden {
  digest: string;
  diffId: string;
  size: number;
  entries: number;
}

/** Builds the layer and returns what is pinned; the blob is removed at once. */
async function layerOf(specs: string[], options: LayerOptions): Promise<Golden> {
  const layer = await buildLayer(
    specs.map((spec) => parseAddSpec(spec.replaceAll('$W', workDir))),
    { tmpDir: path.join(workDir, 'blobs'), ...options },
  );
  await layer.dispose();
  return { digest: layer.digest, diffId: layer.diffId, size: layer.size, entries: layer.entries };
}

// Every literal below was computed by the layer builder as it was before the rewrite to its own
// tar writer (tar-stream 3, commit f983dc5), and still holds.

/** Every kind of entry, a file renamed, a file into a directory, and a path written twice (the later wins). */
const MIXED_SPECS = ['$W/mixed/:/opt/app/', '$W/mixed/a.txt:/etc/app/', '$W/mixed/bin/run.sh:/usr/local/bin/run', '$W/mixed/a.txt:/opt/app/empty'];

/** Every kind of entry but big files (PAX names, non-ASCII, symlinks, setuid): well under 256 KiB of tar. */
const SMALL_SPECS = ['$W/mixed/bin/:/usr/local/bin/', '$W/mixed/blocks/:/opt/blocks/', '$W/mixed/long/:/opt/long/', '$W/mixed/nested/:/opt/nested/', '$W/mixed/donn\u00e9es/:/opt/data/', '$W/mixed/a.txt:/etc/app/', '$W/mixed/link:/opt/link', '$W/mixed/empty:/opt/empty'];

describe('golden layer digests (a change here changes users\' image digests)', () => {
  test('mixed tree, SOURCE_DATE_EPOCH', async () => {
    assert.deepEqual(await layerOf(MIXED_SPECS, { sourceDateEpoch: 1_700_000_000 }), {
      digest: 'sha256:602a67b010204bc17e720689b5e2f82c6322ceb5083811005aee997e24b435ca',
      diffId: 'sha256:fa2b1fa1f40f0e5c23a63f3c972032839d7fd5e1349a4f90c36709f656a21275',
      size: 4_489_155,
      entries: 34,
    });
  });

  test('the mixed tree without its big files: a layer small enough to be made in memory', async () => {
    assert.deepEqual(await layerOf(SMALL_SPECS, { sourceDateEpoch: 1_700_000_000 }), {
      digest: 'sha256:f3ecee7d5670b36509316f2fe4dabd1ee5e7c47424b33bb43f1992139f6852ff',
      diffId: 'sha256:89a8dfb9d8fab8ee446f5a3a785e9fdbefd67730d750e6fc482596703cffdc3a',
      size: 2_226,
      entries: 21,
    });
  });

  test('the small layer with --chmod 0640 --chown 1000:1000, level 9', async () => {
    assert.deepEqual(await layerOf(SMALL_SPECS, { chmod: 0o640, chown: { uid: 1000, gid: 1000 }, compressionLevel: 9 }), {
      digest: 'sha256:4240987921d9b19b28a589131a4210d4b2a80c65af7313bc60743018f315b221',
      diffId: 'sha256:8f8e188c9fe7785d451d64544f23c752f469ccb6a5931a334f98acb757c85c57',
      size: 2_034,
      entries: 21,
    });
  });

  test('mixed tree, source mtimes kept', async () => {
    assert.deepEqual(await layerOf(MIXED_SPECS, {}), {
      digest: 'sha256:76091da80a47391cbdea796cfac0f072080d3d0897f71c69f94477e0b9e84aeb',
      diffId: 'sha256:2fec527f2ee228f48ccc431d1a3310e3fd9151f8b6310657c96c99788b35d5ce',
      size: 4_489_261,
      entries: 34,
    });
  });

  test('mixed tree, --chmod 0640 --chown 1000:1000', async () => {
    assert.deepEqual(await layerOf(MIXED_SPECS, { sourceDateEpoch: 0, chmod: 0o640, chown: { uid: 1000, gid: 1000 } }), {
      digest: 'sha256:f070fb4a0fd7a512b4171968c5f4d4bde61a4e3ca8c9305346f80b34ed4f07f1',
      diffId: 'sha256:1d2c6db08afd33f4c261a95102a4fe538cee2094613f01b5d2676810c62ca3a0',
      size: 4_489_108,
      entries: 34,
    });
  });

  test('mixed tree, ids beyond the ustar limit (PAX records), --chmod 0000, level 6', async () => {
    const options = { sourceDateEpoch: 86_400, chmod: 0, chown: { uid: 3_000_000, gid: 4_000_000 }, compressionLevel: 6 };
    assert.deepEqual(await layerOf(MIXED_SPECS, options), {
      digest: 'sha256:428eca44a6b300cee5c07a13aa2589065bc65ac14f7ac4969b773b19a85a8ab8',
      diffId: 'sha256:3e6cb2551e0be3046ff1eb278b613325ad641c960c4fd091660cf0bdf32b72a1',
      size: 4_499_692,
      entries: 34,
    });
  });

  test('20,000 small files in 200 directories, source mtimes kept', async () => {
    assert.deepEqual(await layerOf(['$W/many/:/opt/app/data/'], {}), {
      digest: 'sha256:6511d3fcab9f90b9bd61560a6801d53f5670194a665facf7036dfda0f864e839',
      diffId: 'sha256:964989bda025b062bba7d8ec2e2568474668590063e5e7f13bd616de0eff3697',
      size: 1_505_766,
      entries: 20_200,
    });
  });

  test('66 MiB of text, big enough for the digests to be computed on a worker thread', async () => {
    assert.deepEqual(await layerOf(['$W/big/repeated.b64:/opt/app/'], { sourceDateEpoch: 1_700_000_000 }), {
      digest: 'sha256:eee42c2a7ea8e2f1b8fcaba4933768d5841c17d95411bf099b5a9dda6b04cd62',
      diffId: 'sha256:4d802569ff534be1e52d716892245831e7b2e1b58aece3cbd0ab927da816fece',
      size: 52_346_833,
      entries: 1,
    });
  });
});
