import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { type Digest, DigestingStream, sha256Digest } from '../../src/digest.js';
import { DigestMismatchError, RegistryError } from '../../src/errors.js';
import type { ImageManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { imagePath, readFileFromLayers } from '../../src/image/read-file.js';

type Entry = { name: string; content?: string | Buffer; type?: 'file' | 'directory' | 'symlink'; linkname?: string };

async function layerTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const entry of entries) {
    pack.entry({ name: entry.name, type: entry.type ?? 'file', linkname: entry.linkname, mode: 0o644 }, entry.content ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * An image whose layers are in memory; counts which layers were opened. Blobs are served as the
 * registry client serves them: checked against their digest at the end. Change `blobs` to
 * serve other bytes under the same digest.
 */
async function image(...layers: Entry[][]) {
  const blobs = new Map<Digest, Buffer>();
  const diffIds: Digest[] = [];
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest('c'), size: 1 },
    layers: [],
  };
  for (const entries of layers) {
    const uncompressed = await layerTar(entries);
    const blob = gzipSync(uncompressed);
    const digest = sha256Digest(blob);
    blobs.set(digest, blob);
    diffIds.push(sha256Digest(uncompressed));
    manifest.layers.push({ mediaType: MediaType.ociLayerGzip, digest, size: blob.length });
  }
  const opened: number[] = [];
  const open = async (digest: Digest) => {
    opened.push(manifest.layers.findIndex((layer) => layer.digest === digest));
    const blob = blobs.get(digest)!;
    const pieces = Array.from({ length: Math.ceil(blob.length / 16_384) }, (_, index) => blob.subarray(index * 16_384, (index + 1) * 16_384));
    return Readable.from(pieces).pipe(new DigestingStream(digest, `blob ${digest}`));
  };
  return { manifest, open, opened, blobs, diffIds };
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

  test("in one layer the path's last entry decides, and a whiteout beside it applies only below", async () => {
    const img = await image(
      [{ name: 'etc/motd', content: 'lowest' }],
      [{ name: 'etc/motd', content: 'first' }, { name: 'etc/.wh.motd' }, { name: 'etc/motd', content: 'second' }],
    );
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/motd');
    assert.ok(result.found);
    assert.equal(result.content?.toString(), 'second');
  });

  test('bytes after the file that do not match the layer digest: rejected, though the file itself was intact', async () => {
    const big = randomBytes(1024 * 1024);
    const img = await image([{ name: 'etc/motd', content: 'hello' }, { name: 'var/big', content: big }]);
    const digest = img.manifest.layers[0]!.digest as Digest;
    const tampered = gunzipSync(img.blobs.get(digest)!);
    tampered[tampered.indexOf(big) + big.length / 2]! ^= 1; // inside var/big, after etc/motd
    img.blobs.set(digest, gzipSync(tampered));
    await assert.rejects(readFileFromLayers(img.manifest, img.open, '/etc/motd'), (error: Error) => {
      assert.ok(error instanceof DigestMismatchError, String(error));
      assert.match(error.message, new RegExp(`expected ${digest}`));
      return true;
    });
  });

  test('a layer whose uncompressed bytes do not match its diff_id is rejected, naming the layer', async () => {
    const img = await image([{ name: 'etc/motd', content: 'hello' }]);
    const wrong = [sha256Digest('another layer')];
    await assert.rejects(readFileFromLayers(img.manifest, img.open, '/etc/motd', { diffIds: wrong }), (error: Error) => {
      assert.ok(error instanceof DigestMismatchError, String(error));
      assert.match(error.message, new RegExp(`layer ${img.manifest.layers[0]!.digest} uncompressed \\(diff_id\\).*expected ${wrong[0]}`));
      return true;
    });
    const right = await readFileFromLayers(img.manifest, img.open, '/etc/motd', { diffIds: img.diffIds });
    assert.equal(right.found && right.content?.toString(), 'hello');
  });

  test('an uncompressed layer whose diff_id is not its digest is rejected', async () => {
    const img = await image([{ name: 'etc/motd', content: 'hello' }]);
    const digest = img.manifest.layers[0]!.digest as Digest;
    const uncompressed = gunzipSync(img.blobs.get(digest)!);
    const tarDigest = sha256Digest(uncompressed);
    img.blobs.set(tarDigest, uncompressed);
    img.manifest.layers[0] = { mediaType: MediaType.ociLayer, digest: tarDigest, size: uncompressed.length };
    const found = await readFileFromLayers(img.manifest, img.open, '/etc/motd', { diffIds: [tarDigest] });
    assert.equal(found.found && found.content?.toString(), 'hello');
    await assert.rejects(readFileFromLayers(img.manifest, img.open, '/etc/motd', { diffIds: [sha256Digest('x')] }), DigestMismatchError);
  });

  test('a blob that is not gzip is rejected naming the layer', async () => {
    const img = await image([{ name: 'etc/motd', content: 'hello' }]);
    const bogus = Buffer.from('not gzip at all');
    const digest = sha256Digest(bogus);
    img.blobs.set(digest, bogus);
    img.manifest.layers[0] = { mediaType: MediaType.ociLayerGzip, digest, size: bogus.length };
    await assert.rejects(readFileFromLayers(img.manifest, img.open, '/etc/motd'), (error: Error) => {
      assert.ok(error instanceof RegistryError, String(error));
      assert.match(error.message, new RegExp(`layer ${digest} is not a valid gzip stream`));
      return true;
    });
  });

  test('with a sink, the bytes stream there and are not kept in the result', async () => {
    const img = await image([{ name: 'etc/motd', content: 'streamed' }]);
    const received: Buffer[] = [];
    const sink = { write: (chunk: Buffer) => void received.push(chunk), reset: () => void received.splice(0) };
    const result = await readFileFromLayers(img.manifest, img.open, '/etc/motd', { sink });
    assert.ok(result.found);
    assert.equal(result.content, undefined);
    assert.equal(result.size, 8);
    assert.equal(Buffer.concat(received).toString(), 'streamed');
  });

  test('paths must be absolute and are normalised', () => {
    assert.equal(imagePath('/a/./b/../c/'), 'a/c');
    assert.throws(() => imagePath('a/b'), /not absolute/);
    assert.throws(() => imagePath('/'), /root directory/);
  });
});
