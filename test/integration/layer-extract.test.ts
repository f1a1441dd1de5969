// Layers built by buildLayer, extracted by tools we did not write: umoci (the OCI
// reference unpacker) and GNU tar, on top of a base that has /var/run -> ../run.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLayer, parseAddSpec, type BuiltLayer } from '../../src/image/layer.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { runChecked } from '../helpers/tools.js';

let workDir: string;
const layers: BuiltLayer[] = [];

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-layer-extract-'));
});

after(async () => {
  for (const layer of layers) await layer.dispose();
  await rm(workDir, { recursive: true, force: true });
});

/** A base layer made by GNU tar: /run is a directory, /var/run a relative symlink to it. */
async function buildBaseLayer(): Promise<string> {
  const root = path.join(workDir, 'base-root');
  await mkdir(path.join(root, 'run'), { recursive: true });
  await mkdir(path.join(root, 'var'), { recursive: true });
  await symlink('../run', path.join(root, 'var', 'run'));
  await writeFile(path.join(root, 'run', 'from-base'), 'base\n');
  const basePath = path.join(workDir, 'base.tar.gz');
  await runChecked('tar', ['-czf', basePath, '--owner=0', '--group=0', '--numeric-owner', '-C', root, 'run', 'var']);
  return basePath;
}

/** The layer under test: a file and a directory's contents, both below /var/run. */
async function buildAddedLayer(): Promise<BuiltLayer> {
  const source = path.join(workDir, 'src');
  await mkdir(path.join(source, 'tree', 'y'), { recursive: true });
  await writeFile(path.join(source, 'file'), 'added\n');
  await writeFile(path.join(source, 'tree', 'y', 'z'), 'tree\n');
  const layer = await buildLayer(
    [parseAddSpec(`${path.join(source, 'file')}:/var/run/x/file`), parseAddSpec(`${path.join(source, 'tree')}:/var/run/`)],
    { sourceDateEpoch: 0, tmpDir: workDir },
  );
  layers.push(layer);
  return layer;
}

/** Writes an OCI image layout by hand: blobs/sha256/*, index.json, oci-layout. */
async function writeOciLayout(layoutDir: string, tag: string, layerFiles: { path: string; diffId: string }[]): Promise<void> {
  const blobDir = path.join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const putBlob = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = sha256Hex(data);
    await writeFile(path.join(blobDir, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layerDescriptors = [];
  for (const layer of layerFiles) {
    const data = await readFile(layer.path);
    layerDescriptors.push({ mediaType: MediaType.ociLayerGzip, ...(await putBlob(data)) });
  }
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layerFiles.map((layer) => layer.diffId) },
    history: layerFiles.map(() => ({ created_by: 'test' })),
  };
  const configDescriptor = { mediaType: MediaType.ociConfig, ...(await putBlob(Buffer.from(JSON.stringify(config)))) };
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDescriptor, layers: layerDescriptors };
  const manifestDescriptor = { mediaType: MediaType.ociManifest, ...(await putBlob(Buffer.from(JSON.stringify(manifest)))) };
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ ...manifestDescriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify(index));
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

describe('layers extracted by real tools', () => {
  test('umoci keeps the base /var/run symlink and writes through it into /run', async () => {
    const basePath = await buildBaseLayer();
    const added = await buildAddedLayer();
    // diff_id of the base: sha256 of its uncompressed tar, computed by gzip rather than by us.
    const gunzipped = path.join(workDir, 'base.tar');
    await runChecked('sh', ['-c', 'gzip -dc "$1" > "$2"', 'sh', basePath, gunzipped]);
    const layoutDir = path.join(workDir, 'layout');
    await writeOciLayout(layoutDir, 'test', [
      { path: basePath, diffId: `sha256:${sha256Hex(await readFile(gunzipped))}` },
      { path: added.blobPath, diffId: added.diffId },
    ]);

    const bundle = path.join(workDir, 'bundle');
    await runChecked('umoci', ['unpack', '--image', `${layoutDir}:test`, bundle]);
    const rootfs = path.join(bundle, 'rootfs');
    const varRun = await lstat(path.join(rootfs, 'var', 'run'));
    assert.ok(varRun.isSymbolicLink(), 'rootfs/var/run must still be the base symlink, not a directory from the new layer');
    assert.equal(await readlink(path.join(rootfs, 'var', 'run')), '../run');
    assert.equal(await readFile(path.join(rootfs, 'run', 'x', 'file'), 'utf8'), 'added\n');
    assert.equal(await readFile(path.join(rootfs, 'run', 'y', 'z'), 'utf8'), 'tree\n');
    assert.equal(await readFile(path.join(rootfs, 'run', 'from-base'), 'utf8'), 'base\n');
    // The parent umoci had to create itself (no entry for it in our layer).
    assert.ok((await stat(path.join(rootfs, 'run', 'x'))).isDirectory());
  });

  test('GNU tar extracting the layer over the same base also follows /var/run', async () => {
    const root = path.join(workDir, 'tar-root');
    await mkdir(path.join(root, 'run'), { recursive: true });
    await mkdir(path.join(root, 'var'));
    await symlink('../run', path.join(root, 'var', 'run'));
    const added = await buildAddedLayer();
    await runChecked('tar', ['-xzf', added.blobPath, '-C', root]);
    assert.ok((await lstat(path.join(root, 'var', 'run'))).isSymbolicLink());
    assert.equal(await readFile(path.join(root, 'run', 'x', 'file'), 'utf8'), 'added\n');
    assert.equal(await readFile(path.join(root, 'run', 'y', 'z'), 'utf8'), 'tree\n');
  });

  test('a 1 GiB file is added with bounded memory', { timeout: 300_000 }, async (t) => {
    const bigFile = path.join(workDir, 'big.bin');
    await runChecked('truncate', ['-s', '1G', bigFile]);
    const layerModule = fileURLToPath(new URL('../../src/image/layer.ts', import.meta.url));
    // A separate process, so the test runner's own heap does not blur the number.
    const script = `
      import { buildLayer, parseAddSpec } from ${JSON.stringify(layerModule)};
      let peakRss = 0;
      const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);
      const started = Date.now();
      const layer = await buildLayer([parseAddSpec(process.argv[1] + ':/data/big.bin')], { sourceDateEpoch: 0, tmpDir: process.argv[2] });
      clearInterval(sampler);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      console.log(JSON.stringify({ peakRss, maxRssKb: process.resourceUsage().maxRSS, ms: Date.now() - started, blobPath: layer.blobPath, diffId: layer.diffId, size: layer.size }));
    `;
    const result = await runChecked(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, bigFile, workDir], {
      timeoutMs: 280_000,
    });
    const report = JSON.parse(result.stdout) as { peakRss: number; maxRssKb: number; ms: number; blobPath: string; diffId: string; size: number };
    try {
      t.diagnostic(`1 GiB layer: ${report.ms} ms, peak rss ${(report.peakRss / 2 ** 20).toFixed(0)} MiB, max rss ${(report.maxRssKb / 1024).toFixed(0)} MiB, blob ${report.size} bytes`);
      assert.ok(report.maxRssKb * 1024 < 200 * 2 ** 20, `max RSS ${report.maxRssKb} KiB should stay under 200 MiB`);
      // GNU tar sees one 1 GiB file: size and name from the header, the whole stream readable.
      const listing = await runChecked('tar', ['-tvzf', report.blobPath, '--numeric-owner'], { timeoutMs: 120_000 });
      assert.match(listing.stdout, /^-rw-r--r-- 0\/0 +1073741824 .* data\/big\.bin\n$/);
    } finally {
      await rm(report.blobPath, { force: true });
    }
  });
});
