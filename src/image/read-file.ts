import posixPath from 'node:path/posix';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Digest } from '../digest.js';
import { UsageError } from '../errors.js';
import type { ImageManifest } from './manifest.js';
import { isGzipLayer } from './mediatypes.js';

/**
 * Reads one file out of an image's layers, top layer down, as a container would see it:
 * a whiteout (`.wh.NAME`) or an opaque directory (`.wh..wh..opq`) hides what lower layers
 * have. Only the layers down to the one that decides are read.
 */

export type FileLookup =
  | { found: true; content: Buffer; layerDigest: Digest; layerIndex: number; mode: number }
  | { found: false; reason: 'absent' | 'whiteout' | 'not-a-file'; layerDigest?: Digest; detail?: string };

/** Opens a layer blob (verified against its digest by the caller's transport). */
export type LayerOpener = (digest: Digest) => Promise<Readable>;

const MAX_SYMLINK_HOPS = 16;

/** `/a/b/../c` → `a/c`: a path inside the image, as tar entries name it. */
export function imagePath(pathInImage: string): string {
  if (!pathInImage.startsWith('/')) throw new UsageError(`--file ${pathInImage} is not absolute`, 'give the path inside the image, e.g. --file /opt/app/hello.txt');
  const normalised = posixPath.normalize(pathInImage).replace(/^\/+/, '').replace(/\/+$/, '');
  if (!normalised) throw new UsageError('--file names the root directory', 'name a file, e.g. --file /etc/passwd');
  return normalised;
}

function entryPath(name: string): string {
  return posixPath.normalize(name.replace(/^\.?\/+/, '')).replace(/\/+$/, '').replace(/^\.$/, '');
}

type LayerVerdict =
  | { kind: 'file'; content: Buffer; mode: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'other'; type: string }
  | { kind: 'hidden' }
  | { kind: 'undecided' };

/** Scans one layer for `target`; stops reading as soon as the layer decides. */
async function scanLayer(stream: Readable, gzipped: boolean, target: string): Promise<LayerVerdict> {
  const ancestors = target.split('/').slice(0, -1).map((_, index, parts) => parts.slice(0, index + 1).join('/'));
  const hiders = new Set([target, ...ancestors].map((p) => posixPath.join(posixPath.dirname(p), `.wh.${posixPath.basename(p)}`)));
  const opaqueMarkers = new Set(ancestors.map((dir) => `${dir}/.wh..wh..opq`));
  let opaque = false;
  const extract = tar.extract();
  const source = gzipped ? stream.pipe(createGunzip()) : stream;
  source.on('error', (error) => extract.destroy(error));
  source.pipe(extract);
  let verdict: LayerVerdict | undefined;
  const hardLinks = new Map<string, string>();
  try {
    for await (const entry of extract) {
      const name = entryPath(entry.header.name);
      if (entry.header.type === 'link' && entry.header.linkname) hardLinks.set(name, entryPath(entry.header.linkname));
      if (name === target) {
        const type = entry.header.type;
        if (type === 'file' || type === 'contiguous-file') {
          const chunks: Buffer[] = [];
          for await (const chunk of entry) chunks.push(chunk as Buffer);
          verdict = { kind: 'file', content: Buffer.concat(chunks), mode: entry.header.mode ?? 0 };
        } else if (type === 'symlink') {
          verdict = { kind: 'symlink', target: entry.header.linkname ?? '' };
        } else if (type === 'link') {
          verdict = { kind: 'symlink', target: `/${hardLinks.get(name)}` };
        } else {
          verdict = { kind: 'other', type: type ?? 'unknown' };
        }
        break;
      }
      if (hiders.has(name)) {
        verdict = { kind: 'hidden' };
        break;
      }
      if (opaqueMarkers.has(name)) opaque = true;
      entry.resume();
    }
  } finally {
    extract.destroy();
    stream.destroy();
  }
  return verdict ?? (opaque ? { kind: 'hidden' } : { kind: 'undecided' });
}

export async function readFileFromLayers(manifest: ImageManifest, openLayer: LayerOpener, pathInImage: string): Promise<FileLookup> {
  let target = imagePath(pathInImage);
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    let resolved: string | undefined;
    for (let index = manifest.layers.length - 1; index >= 0; index--) {
      const layer = manifest.layers[index]!;
      const digest = layer.digest as Digest;
      const verdict = await scanLayer(await openLayer(digest), isGzipLayer(layer.mediaType), target);
      if (verdict.kind === 'undecided') continue;
      if (verdict.kind === 'file') return { found: true, content: verdict.content, layerDigest: digest, layerIndex: index, mode: verdict.mode };
      if (verdict.kind === 'hidden') return { found: false, reason: 'whiteout', layerDigest: digest };
      if (verdict.kind === 'other') return { found: false, reason: 'not-a-file', layerDigest: digest, detail: `/${target} is a ${verdict.type}` };
      // A symlink: follow it from the top layer again.
      resolved = posixPath.resolve('/', posixPath.dirname(`/${target}`), verdict.target);
      break;
    }
    if (resolved === undefined) return { found: false, reason: 'absent' };
    target = imagePath(resolved);
  }
  return { found: false, reason: 'not-a-file', detail: `more than ${MAX_SYMLINK_HOPS} symlinks to follow` };
}
