/**
 * Files of another image (`COPY --from=<image>`), read without unpacking it: the layers that
 * hold anything at or below the wanted path are streamed bottom first, whiteouts and opaque
 * directories applied, and the entries kept with their own modes, owners and mtimes (as
 * BuildKit keeps the source's ownership for --from). Contents are spooled to files in a
 * temporary directory that the caller removes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import posixPath from 'node:path/posix';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Extract } from 'tar-stream';
import { loadTarStream, tarExtract } from '../tar-extract.js';
import type { Digest } from '../digest.js';
import { InputError } from '../errors.js';
import type { Descriptor } from '../image/manifest.js';
import { isGzipLayer, MediaType } from '../image/mediatypes.js';
import { GUNZIP_CHUNK_BYTES } from '../image/read-file.js';
import type { PlannedEntry } from '../image/tar-entries.js';
import { type BaseFiles, indexPath } from './base-files.js';
import { TarSpool } from './tar-spool.js';

export interface SourceImage {
  /** The reference as the Dockerfile wrote it, for messages. */
  name: string;
  /** Tells apart what differs by platform (the same name read for another platform): keys caches. */
  key: string;
  files: BaseFiles;
  layers: readonly Descriptor[];
  openLayer(digest: Digest): Promise<Readable>;
}

export interface ExtractedTree {
  /** Entries keyed by their path relative to the root asked for ('' is the root itself); `path` is that same relative path. */
  entries: Map<string, PlannedEntry>;
  /** Holds the spooled contents; the caller removes it. */
  directory: string;
}

function isUnder(name: string, root: string): boolean {
  return root === '' || name === root || name.startsWith(`${root}/`);
}

/** The subtree at `root` (a real path: no symlinks in it) of `image`, as the top of its layers shows it. */
export async function extractTree(image: SourceImage, root: string, spoolDir: string, where: string): Promise<ExtractedTree> {
  root = indexPath(root);
  await loadTarStream();
  const directory = await mkdtemp(path.join(spoolDir, 'imgbuild-from-'));
  const found = new Map<string, { entry: PlannedEntry; layer: number }>();
  const relative = (name: string) => (root === '' ? name : name.slice(root.length + 1));
  const spool = new TarSpool(directory, `${image.name}:/`);
  /** Removes what lower layers had at `name` and below (a whiteout), or only below it (an opaque directory). */
  const hide = (name: string, layer: number, keepItself: boolean) => {
    for (const [key, value] of found) {
      const full = root === '' ? key : key === '' ? root : `${root}/${key}`;
      if (value.layer < layer && (full.startsWith(`${name}/`) || name === '' || (!keepItself && full === name))) found.delete(key);
    }
  };
  try {
    for (const position of await image.files.layersTouching(root)) {
      const layer = image.layers[position]!;
      if (layer.mediaType === MediaType.ociLayerZstd) {
        throw new InputError(`${where}: a layer of ${image.name} is zstd-compressed, which --from cannot read yet`, { hint: 'use a gzip-compressed image' });
      }
      const stream = await image.openLayer(layer.digest as Digest);
      const extract = tarExtract();
      const source = isGzipLayer(layer.mediaType) ? stream.pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })) : stream;
      stream.on('error', (error) => extract.destroy(error));
      source.on('error', (error) => extract.destroy(error));
      source.pipe(extract);
      spool.nextLayer();
      for await (const entry of extract) {
        const header = entry.header;
        const name = indexPath(header.name);
        const base = posixPath.basename(name);
        const parent = posixPath.dirname(name) === '.' ? '' : posixPath.dirname(name);
        if (base === '.wh..wh..opq') {
          hide(parent, position, true);
          entry.resume();
          continue;
        }
        if (base.startsWith('.wh.')) {
          hide(parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`, position, false);
          entry.resume();
          continue;
        }
        if (!isUnder(name, root)) {
          entry.resume();
          continue;
        }
        const link = header.type === 'link' ? indexPath(header.linkname ?? '') : undefined;
        const planned = await spool.plan(entry, header, name, relative(name), link);
        if (!planned && header.type === 'link') {
          throw new InputError(`${where}: /${name} in ${image.name} is a hard link to /${link}, outside what is copied`, {
            hint: `copy /${link} itself, or a directory that holds both`,
          });
        }
        if (!planned) continue; // devices and FIFOs: a layer built without a container cannot hold them
        found.delete(planned.path);
        found.set(planned.path, { entry: planned, layer: position });
      }
    }
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return { entries: new Map([...found].map(([key, value]) => [key, value.entry])), directory };
}
