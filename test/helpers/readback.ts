// Reads files back out of a pushed image with tools imgbuild did not write: skopeo copies the
// image (one platform of it) into an OCI layout, `umoci unpack --rootless` applies the layers,
// and the unpacked files are hashed. Tests that read a file back with `imgbuild verify` compare
// against this too, so a bug shared by imgbuild's writer and its own reader cannot hide.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RunningRegistry } from './registry.js';
import { runChecked, skopeo, skopeoRegistryFlags } from './tools.js';

export interface ReadBackOptions {
  /** "os/arch[/variant]" of a multi-platform image; default the host's, as skopeo picks. */
  platform?: string;
}

function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function fileSha256Hex(file: string): Promise<string | undefined> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(file), hash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return hash.digest('hex');
}

/** skopeo's global flags that choose one platform of an index. */
function platformFlags(platform: string | undefined): string[] {
  if (!platform) return [];
  const [os, arch, variant] = platform.split('/');
  return ['--override-os', os!, '--override-arch', arch!, ...(variant ? ['--override-variant', variant] : [])];
}

/**
 * sha256 (hex) of each of `paths` as umoci unpacks registry/REFERENCE ("repo:tag" or
 * "repo@sha256:..."); undefined for a path that is not a regular file in the rootfs.
 */
export async function umociFileHashes(
  registry: RunningRegistry,
  reference: string,
  paths: readonly string[],
  options: ReadBackOptions = {},
): Promise<Map<string, string | undefined>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-readback-'));
  try {
    const layout = path.join(dir, 'layout');
    const bundle = path.join(dir, 'bundle');
    await skopeo([...platformFlags(options.platform), 'copy', ...skopeoRegistryFlags(registry, 'src'), `docker://${registry.host}/${reference}`, `oci:${layout}:readback`]);
    await runChecked('umoci', ['unpack', '--rootless', '--image', `${layout}:readback`, bundle]);
    const hashes = new Map<string, string | undefined>();
    for (const imagePath of paths) {
      const relative = path.posix.normalize(imagePath).replace(/^\/+/, '');
      hashes.set(imagePath, await fileSha256Hex(path.join(bundle, 'rootfs', relative)));
    }
    return hashes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asserts umoci unpacks `imagePath` of the image with exactly the bytes `expected` (content, or a local file's path with `{ file }`). */
export async function assertUmociReadsBack(
  registry: RunningRegistry,
  reference: string,
  imagePath: string,
  expected: string | Buffer | { file: string },
  options: ReadBackOptions = {},
): Promise<void> {
  const expectedHash = typeof expected === 'object' && 'file' in expected ? await fileSha256Hex(expected.file) : sha256Hex(expected);
  assert.ok(expectedHash, `the expected file ${JSON.stringify(expected)} does not exist`);
  const found = (await umociFileHashes(registry, reference, [imagePath], options)).get(imagePath);
  assert.ok(found, `umoci unpacked ${reference}${options.platform ? ` (${options.platform})` : ''} without ${imagePath}`);
  assert.equal(found, expectedHash, `umoci reads ${imagePath} of ${reference} back with other bytes than expected`);
}
