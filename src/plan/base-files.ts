import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
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

/**
 * What is at a path in a base image's file system, answered without unpacking it: each layer
 * is indexed once (streamed, names and types only) and the index cached on disk by layer
 * digest, so the next build on the same base downloads nothing. Layers are indexed top down
 * and only until the answer is known.
 */

export type FileKind = 'file' | 'directory' | 'symlink' | 'other';

export interface IndexedEntry {
  kind: FileKind;
  /** A symlink's target. */
  target?: string;
}

/** One layer's names: entries, whiteouts, opaque directories, and the account files. */
export interface LayerIndex {
  version: 1;
  entries: Record<string, IndexedEntry>;
  /** Paths a `.wh.NAME` deletes. */
  whiteouts: string[];
  /** Directories whose lower contents a `.wh..wh..opq` hides. */
  opaque: string[];
  /** /etc/passwd and /etc/group as this layer has them, for --chown names. */
  accounts: { passwd?: string; group?: string };
}

const ACCOUNT_FILES: Record<string, 'passwd' | 'group'> = { 'etc/passwd': 'passwd', 'etc/group': 'group' };
const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;
const MAX_SYMLINK_HOPS = 40;

/** `./a/b/` → `a/b`: a path inside the image as the index keys it ('' is the root). */
export function indexPath(name: string): string {
  return posixPath.normalize(`/${name}`).replace(/^\/+/, '').replace(/\/+$/, '');
}

/** The default cache directory, as XDG says: `$XDG_CACHE_HOME/imgbuild` or `~/.cache/imgbuild`. */
export function defaultCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'imgbuild');
}

/** Reads one layer's tar and indexes it. */
export async function indexLayer(stream: Readable, mediaType: string): Promise<LayerIndex> {
  if (mediaType === MediaType.ociLayerZstd) {
    stream.destroy();
    throw new InputError('a base layer is zstd-compressed, which the base file index cannot read yet', { hint: 'use a gzip-compressed base (e.g. skopeo copy --dest-compress-format gzip)' });
  }
  const index: LayerIndex = { version: 1, entries: {}, whiteouts: [], opaque: [], accounts: {} };
  const extract = tarExtract();
  const source = isGzipLayer(mediaType) ? stream.pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })) : stream;
  stream.on('error', (error) => extract.destroy(error));
  source.on('error', (error) => extract.destroy(error));
  source.pipe(extract);
  for await (const entry of extract) {
    const name = indexPath(entry.header.name);
    const base = posixPath.basename(name);
    if (base === '.wh..wh..opq') {
      index.opaque.push(posixPath.dirname(name) === '.' ? '' : posixPath.dirname(name));
    } else if (base.startsWith('.wh.')) {
      index.whiteouts.push(posixPath.join(posixPath.dirname(name), base.slice(4)).replace(/^\.\//, ''));
    } else if (name !== '') {
      const type = entry.header.type;
      const kind: FileKind = type === 'directory' ? 'directory' : type === 'symlink' ? 'symlink' : type === 'file' || type === 'contiguous-file' || type === 'link' ? 'file' : 'other';
      index.entries[name] = kind === 'symlink' ? { kind, target: entry.header.linkname ?? '' } : { kind };
      const account = ACCOUNT_FILES[name];
      if (account && (type === 'file' || type === 'contiguous-file') && (entry.header.size ?? 0) <= MAX_ACCOUNT_FILE) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        index.accounts[account] = Buffer.concat(chunks).toString('utf8');
        continue;
      }
    }
    entry.resume();
  }
  return index;
}

export interface BaseFilesSource {
  /** The base's layers, bottom first. */
  layers: readonly Descriptor[];
  openLayer(digest: Digest): Promise<Readable>;
  /** Where layer indexes are cached; none means no cache. */
  cacheDir?: string;
  /** Told each layer that had to be downloaded. */
  onLayerRead?(digest: Digest): void;
}

export type Lookup = { found: true; kind: FileKind; path: string } | { found: false; path: string };

/**
 * The base's file system plus what earlier steps of the plan wrote (`record`), read through
 * symlinks as a container would see it.
 */
export class BaseFiles {
  private readonly indexes = new Map<number, Promise<LayerIndex>>();
  private readonly written = new Map<string, FileKind>();

  constructor(private readonly source: BaseFilesSource) {}

  /** Notes that a step of the plan put a file or directory at `pathInImage`. */
  record(pathInImage: string, kind: FileKind): void {
    this.written.set(indexPath(pathInImage), kind);
  }

  recordAll(writes: ReadonlyArray<{ path: string; kind: FileKind }>): void {
    for (const write of writes) this.record(write.path, write.kind);
  }

  private layerIndex(position: number): Promise<LayerIndex> {
    let index = this.indexes.get(position);
    if (!index) {
      index = this.loadIndex(this.source.layers[position]!);
      this.indexes.set(position, index);
    }
    return index;
  }

  private async loadIndex(layer: Descriptor): Promise<LayerIndex> {
    const file = this.source.cacheDir && path.join(this.source.cacheDir, 'layer-index', `${layer.digest.replace(':', '-')}.json`);
    if (file) {
      const cached = await readFile(file, 'utf8').then((text) => JSON.parse(text) as LayerIndex, () => undefined);
      if (cached?.version === 1) return cached;
    }
    this.source.onLayerRead?.(layer.digest as Digest);
    await loadTarStream();
    const index = await indexLayer(await this.source.openLayer(layer.digest as Digest), layer.mediaType);
    if (file) {
      // Written aside and renamed, so a concurrent or interrupted build never reads half a file.
      await mkdir(path.dirname(file), { recursive: true });
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(index));
      await rename(temporary, file);
    }
    return index;
  }

  /** The entry at exactly `name` (no symlinks followed), searching top down. */
  private async entryAt(name: string): Promise<IndexedEntry | undefined> {
    const written = this.written.get(name);
    if (written) return { kind: written };
    if (name === '') return { kind: 'directory' };
    const ancestors = name.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    for (let position = this.source.layers.length - 1; position >= 0; position--) {
      const index = await this.layerIndex(position);
      const entry = index.entries[name];
      if (entry) return entry;
      if (index.whiteouts.some((hidden) => hidden === name || ancestors.includes(hidden))) return undefined;
      if (index.opaque.some((directory) => directory === '' || ancestors.includes(directory))) return undefined;
    }
    return undefined;
  }

  /** What a container sees at `pathInImage`, following symlinks (the last one too unless `noFollow`). */
  async lookup(pathInImage: string, options: { noFollow?: boolean } = {}): Promise<Lookup> {
    let remaining = indexPath(pathInImage).split('/').filter(Boolean);
    let current = '';
    for (let hops = 0; remaining.length > 0; ) {
      const name = current === '' ? remaining[0]! : `${current}/${remaining[0]}`;
      const entry = await this.entryAt(name);
      if (!entry) return { found: false, path: `/${name}` };
      const last = remaining.length === 1;
      if (entry.kind === 'symlink' && !(last && options.noFollow)) {
        if (++hops > MAX_SYMLINK_HOPS) return { found: false, path: `/${name}` };
        const target = posixPath.resolve(`/${current}`, entry.target ?? '');
        remaining = [...indexPath(target).split('/').filter(Boolean), ...remaining.slice(1)];
        current = '';
        continue;
      }
      if (!last && entry.kind !== 'directory') return { found: false, path: `/${name}` };
      current = name;
      remaining = remaining.slice(1);
      if (last) return { found: true, kind: entry.kind, path: `/${current}` };
    }
    return { found: true, kind: 'directory', path: '/' };
  }

  async isDirectory(pathInImage: string): Promise<boolean> {
    const result = await this.lookup(pathInImage);
    return result.found && result.kind === 'directory';
  }

  /**
   * Positions (bottom first) of the layers with an entry, whiteout or opaque marker at or
   * below `name` or above it: the only layers whose contents matter for that subtree.
   */
  async layersTouching(name: string): Promise<number[]> {
    const root = indexPath(name);
    const related = (other: string) => root === '' || other === root || other.startsWith(`${root}/`) || root.startsWith(`${other}/`) || other === '';
    const positions: number[] = [];
    for (let position = 0; position < this.source.layers.length; position++) {
      const index = await this.layerIndex(position);
      const under = (other: string) => root === '' || other === root || other.startsWith(`${root}/`);
      if (Object.keys(index.entries).some(under) || index.whiteouts.some(related) || index.opaque.some(related)) positions.push(position);
    }
    return positions;
  }

  /** /etc/passwd or /etc/group as the top layer that has one holds it (empty when none does). */
  async accountFile(which: 'passwd' | 'group'): Promise<string> {
    const name = `etc/${which}`;
    for (let position = this.source.layers.length - 1; position >= 0; position--) {
      const index = await this.layerIndex(position);
      if (index.accounts[which] !== undefined) return index.accounts[which]!;
      if (index.entries[name] || index.whiteouts.includes(name) || index.whiteouts.includes('etc')) return '';
    }
    return '';
  }
}
