import posixPath from 'node:path/posix';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { Extract } from 'tar-stream';
import { loadTarStream, tarExtract } from '../tar-extract.js';
import { type Digest, DigestingStream } from '../digest.js';
import { DigestMismatchError, ImgbuildError, RegistryError, UsageError } from '../errors.js';
import type { ImageManifest } from './manifest.js';
import { isGzipLayer } from './mediatypes.js';

/**
 * Reads one file out of an image's layers, top layer down, as a container would see it:
 * a whiteout (`.wh.NAME`) or an opaque directory (`.wh..wh..opq`) hides what lower layers
 * have. Only the layers down to the one that decides are read, but each of those is read to
 * its end, so that its digest (and diff_id) is checked before anything in it is believed.
 */

export type FileLookup =
  | {
      found: true;
      /** Bytes in the file. */
      size: number;
      /** The file's bytes, when no sink was given (they were collected in memory). */
      content?: Buffer;
      layerDigest: Digest;
      layerIndex: number;
      mode: number;
    }
  | { found: false; reason: 'absent' | 'whiteout' | 'not-a-file'; layerDigest?: Digest; detail?: string };

/**
 * Opens a layer blob. The stream must fail at its end when the bytes do not match `digest`
 * (RegistryClient.openBlob does); a layer is read to its end for that reason.
 */
export type LayerOpener = (digest: Digest) => Promise<Readable>;

/**
 * Receives the file's bytes while its layer is read. They are NOT verified yet: only when
 * readFileFromLayers resolves with `found: true` is what the sink holds the image's file;
 * if it rejects, the sink's bytes must be thrown away.
 */
export interface FileContentSink {
  write(chunk: Buffer): void | Promise<void>;
  /** Forget what was written: a later entry of the same layer names the path again. */
  reset(): void | Promise<void>;
}

export interface ReadFileOptions {
  /** Where the file's bytes go (default: collected in memory and returned as `content`). */
  sink?: FileContentSink;
  /** The image config's rootfs.diff_ids: each layer read is checked against its own. */
  diffIds?: readonly string[];
}

/** Output size of each gunzip step: big blocks mean few trips to the thread pool. */
export const GUNZIP_CHUNK_BYTES = 1024 * 1024;

class MemorySink implements FileContentSink {
  private chunks: Buffer[] = [];
  write(chunk: Buffer): void {
    this.chunks.push(chunk);
  }
  reset(): void {
    this.chunks = [];
  }
  content(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

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
  | { kind: 'file'; size: number; mode: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'other'; type: string }
  | { kind: 'hidden' }
  | { kind: 'undecided' };

interface LayerToScan {
  stream: Readable;
  digest: Digest;
  gzipped: boolean;
  /** The config's diff_id for this layer, when known. */
  diffId?: string;
}

function unreadableLayer(digest: Digest, format: 'gzip' | 'tar', cause: Error): RegistryError {
  return new RegistryError(`layer ${digest} is not a valid ${format === 'gzip' ? 'gzip stream' : 'tar archive'} (${cause.message})`, {
    hint: 'the layer is corrupt in the registry or was altered on the way; push the image again',
    cause,
  });
}

/**
 * Chains the layer's byte stages (blob, gunzip, diff_id check) into the tar parser. A failing
 * stage (a digest that does not match, corrupt gzip, a broken connection) fails the parser with
 * that stage's error, so the scan throws it; the parser finishes only after the last stage has
 * ended, i.e. after every check passed. Returns the errors that came from the stages.
 */
function feedTarParser(layer: LayerToScan, extract: Extract): WeakSet<Error> {
  const stageErrors = new WeakSet<Error>();
  const fail = (error: Error) => {
    stageErrors.add(error);
    extract.destroy(error);
  };
  const stages: Readable[] = [layer.stream];
  layer.stream.on('error', fail);
  if (layer.gzipped) {
    const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
    // zlib's own words ("incorrect data check") do not say which blob; this does.
    gunzip.on('error', (error) => fail(unreadableLayer(layer.digest, 'gzip', error)));
    stages.push(gunzip);
    if (layer.diffId !== undefined) {
      const diffIdCheck = new DigestingStream(layer.diffId, `layer ${layer.digest} uncompressed (diff_id)`);
      diffIdCheck.on('error', fail);
      stages.push(diffIdCheck);
    }
  }
  let last = stages[0]!;
  for (const next of stages.slice(1)) last = last.pipe(next as unknown as NodeJS.WritableStream) as unknown as Readable;
  last.pipe(extract as unknown as NodeJS.WritableStream);
  return stageErrors;
}

/**
 * Scans one whole layer for `target`. In one layer the path's own entry decides (the last one,
 * if it appears twice); a whiteout or opaque marker there applies only to lower layers.
 */
async function scanLayer(layer: LayerToScan, target: string, sink: FileContentSink): Promise<LayerVerdict> {
  if (!layer.gzipped && layer.diffId !== undefined && layer.diffId !== layer.digest) {
    layer.stream.destroy();
    throw new DigestMismatchError(`layer ${layer.digest} is uncompressed, but the image config gives it diff_id ${layer.diffId}`, {
      hint: 'the image is corrupt or was altered: its config does not describe its layers; rebuild or re-push it',
    });
  }
  const ancestors = target.split('/').slice(0, -1).map((_, index, parts) => parts.slice(0, index + 1).join('/'));
  const hiders = new Set([target, ...ancestors].map((p) => posixPath.join(posixPath.dirname(p), `.wh.${posixPath.basename(p)}`)));
  const opaqueMarkers = new Set(ancestors.map((dir) => `${dir}/.wh..wh..opq`));
  let hidden = false;
  let own: LayerVerdict | undefined;
  const extract = tarExtract();
  const stageErrors = feedTarParser(layer, extract);
  const hardLinks = new Map<string, string>();
  let sinkFailed = false;
  const toSink = async (step: () => void | Promise<void>) => {
    try {
      await step();
    } catch (error) {
      sinkFailed = true;
      throw error;
    }
  };
  try {
    for await (const entry of extract) {
      const name = entryPath(entry.header.name);
      const type = entry.header.type;
      if (type === 'link' && entry.header.linkname) hardLinks.set(name, entryPath(entry.header.linkname));
      if (name === target) {
        await toSink(() => sink.reset());
        if (type === 'file' || type === 'contiguous-file') {
          let size = 0;
          for await (const chunk of entry) {
            size += (chunk as Buffer).length;
            await toSink(() => sink.write(chunk as Buffer));
          }
          own = { kind: 'file', size, mode: entry.header.mode ?? 0 };
          continue;
        }
        if (type === 'symlink') own = { kind: 'symlink', target: entry.header.linkname ?? '' };
        else if (type === 'link') own = { kind: 'symlink', target: `/${hardLinks.get(name)}` };
        else own = { kind: 'other', type: type ?? 'unknown' };
      } else if (hiders.has(name) || opaqueMarkers.has(name)) {
        hidden = true;
      }
      entry.resume();
    }
  } catch (error) {
    if (sinkFailed || stageErrors.has(error as Error) || error instanceof ImgbuildError) throw error;
    throw unreadableLayer(layer.digest, 'tar', error as Error);
  } finally {
    extract.destroy();
    layer.stream.destroy();
  }
  return own ?? (hidden ? { kind: 'hidden' } : { kind: 'undecided' });
}

export async function readFileFromLayers(manifest: ImageManifest, openLayer: LayerOpener, pathInImage: string, options: ReadFileOptions = {}): Promise<FileLookup> {
  await loadTarStream();
  const memory = options.sink ? undefined : new MemorySink();
  const sink = options.sink ?? memory!;
  let target = imagePath(pathInImage);
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    let resolved: string | undefined;
    for (let index = manifest.layers.length - 1; index >= 0; index--) {
      const layer = manifest.layers[index]!;
      const digest = layer.digest as Digest;
      const stream = await openLayer(digest);
      const verdict = await scanLayer({ stream, digest, gzipped: isGzipLayer(layer.mediaType), diffId: options.diffIds?.[index] }, target, sink);
      if (verdict.kind === 'undecided') continue;
      if (verdict.kind === 'file') {
        return { found: true, size: verdict.size, ...(memory ? { content: memory.content() } : {}), layerDigest: digest, layerIndex: index, mode: verdict.mode };
      }
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
