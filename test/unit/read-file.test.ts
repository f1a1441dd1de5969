import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { type Digest, sha256Digest } from '../../src/digest.js';
import type { ImageManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { imagePath, readFileFromLayers } from '../../src/image/read-file.js';

type Entry = { name: string; content?: string; type?: 'file' | 'directory' | 'symlink'; linkname?: string };

async function layerBlob(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const entry of entries) {
    pack.entry({ name: entry.name, type: entry.type ?? 'file', linkname: entry.linkname, mode: 0o644 }, entry.content ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

/** An image whose layers are in memory; counts which layers were opened. */
async function image(...layers: Entry[][]) {
  const blobs = new Map<Digest, Buffer>();
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest('c'), size: 1 },
    layers: [],
  };
  for (const entries of layers) {
    const blob = await layerBlob(entries);
    const digest = sha256Digest(blob);
    blobs.set(digest, blob);
    manifest.layers.push({ mediaType: MediaType.ociLayerGzip, digest, size: blob.length });
  }
  const opened: number[] = [];
  const open = async (digest: Digest) => {
    opened.push(manifest.layers.findIndex((layer) => layer.digest === digest));
    return Readable.from([blobs.get(digest)!]);
  };
  return { manifest, open, opened };
}

describe('readFileFromLayers', () => {
  test('the top layer wins and lower layers are not read', async () => {
    const img = await image([{ name: 'etc/motd', content: 'old' }], [{ name: 'unrelated', content: 'x' }], [{ name: './etc/motd', content: 'new' }]);
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/motd');
    assert.ok(result.found);
    assert.equal(result.content?.toString(), 'new');
    assert.equal(result.layerIndex, 2);
    assert.deepEqual(img.opened, [2]);
  });

  test('a file only in a lower layer is found after scanning the upper ones', async () => {
    const img = await image([{ name: 'opt/app/hello.txt', content: 'hi\n' }], [{ name: 'other', content: '' }]);
    const result = await readFileFromLayers(img.manifest, img.open, '/opt/app/hello.txt');
    assert.ok(result.found);
    assert.equal(result.content?.toString(), 'hi\n');
    assert.deepEqual(img.opened, [1, 0]);
  });

  test('a whiteout hides the file', async () => {
    const img = await image([{ name: 'etc/secret', content: 's' }], [{ name: 'etc/.wh.secret' }]);
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/secret');
    assert.deepEqual(result, { found: false, reason: 'whiteout', layerDigest: img.manifest.layers[1]!.digest });
  });

  test('a whiteout of a parent directory hides the file', async () => {
    const img = await image([{ name: 'etc/conf.d/a', content: 'a' }], [{ name: 'etc/.wh.conf.d' }]);
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/conf.d/a');
    assert.equal(result.found, false);
  });

  test('an opaque directory hides lower content but not its own', async () => {
    const img = await image(
      [{ name: 'data/a', content: 'lower' }, { name: 'data/b', content: 'lower-b' }],
      [{ name: 'data/.wh..wh..opq' }, { name: 'data/b', content: 'upper-b' }],
    );
    assert.equal((await readFileFromLayers(img.manifest, img.open, '/data/a')).found, false);
    const b = await readFileFromLayers(img.manifest, img.open, '/data/b');
    assert.ok(b.found);
    assert.equal(b.content?.toString(), 'upper-b');
  });

  test('symlinks are followed, relative and absolute', async () => {
    const img = await image(
      [{ name: 'usr/share/real.txt', content: 'real' }],
      [{ name: 'etc/link', type: 'symlink', linkname: '../usr/share/real.txt' }, { name: 'etc/abs', type: 'symlink', linkname: '/etc/link' }],
    );
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/abs');
    assert.ok(result.found);
    assert.equal(result.content?.toString(), 'real');
  });

  test('absent files and directories are reported as such', async () => {
    const img = await image([{ name: 'etc', type: 'directory' }]);
    assert.deepEqual(await readFileFromLayers(img.manifest, img.open, '/nope'), { found: false, reason: 'absent' });
    const dir = await readFileFromLayers(img.manifest, img.open, '/etc');
    assert.equal(dir.found, false);
    assert.equal(!dir.found && dir.reason, 'not-a-file');
  });

  test('paths must be absolute and are normalised', () => {
    assert.equal(imagePath('/a/./b/../c/'), 'a/c');
    assert.throws(() => imagePath('a/b'), /not absolute/);
    assert.throws(() => imagePath('/'), /root directory/);
  });
});
