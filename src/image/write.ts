import { type Digest, sha256Digest } from '../digest.js';
import type { Storage } from '../storage/storage.js';
import type { Descriptor, ImageManifest } from './manifest.js';
import { type BlobContent, type BlobOutcome, pushBlobs, type PushOptions } from './push.js';
import type { RemoteImage } from './remote.js';

/**
 * The writer: given an image (its manifest and where each blob it names can be read), puts
 * every blob in place, then the manifest, so a failed write never moves a tag.
 */

/** One single-platform image, ready to be written. */
export interface ImageToWrite {
  manifest: ImageManifest;
  /** The manifest exactly as it will be stored. */
  bytes: Buffer;
  mediaType: string;
  /** Where the bytes of a blob the manifest names (its config or a layer) come from. */
  blobContent(descriptor: Descriptor): BlobContent;
  /** For progress lines: what a blob is ("base layer", "new layer", ...). */
  blobLabel?(descriptor: Descriptor): string | undefined;
}

export interface WriteTarget {
  storage: Storage;
  repository: string;
}

export interface WrittenManifest {
  digest: Digest;
  size: number;
  mediaType: string;
}

export interface WriteOptions extends PushOptions {
  /** Incremented per blob by what had to be done for it. */
  counts?: Record<BlobOutcome, number>;
}

/** An image as it is in a repository: every blob is read (or mounted) from there. */
export function remoteImageToWrite(image: RemoteImage, bytes: Buffer = image.bytes, manifest: ImageManifest = image.manifest, mediaType = image.mediaType): ImageToWrite {
  return {
    manifest,
    bytes,
    mediaType,
    blobContent: () => ({ kind: 'remote', client: image.client, repository: image.repository }),
  };
}

/**
 * Writes the image's blobs, then its manifest under `tag`, or by its own digest when there is
 * none (a child of an index; any word is a valid tag, so only no tag means "by digest").
 */
export async function writeImage(target: WriteTarget, image: ImageToWrite, tag: string | undefined, options: WriteOptions = {}): Promise<WrittenManifest> {
  const descriptors = [image.manifest.config, ...image.manifest.layers];
  const outcomes = await pushBlobs(
    target.storage,
    target.repository,
    descriptors.map((descriptor) => ({
      digest: descriptor.digest as Digest,
      size: descriptor.size,
      content: image.blobContent(descriptor),
      label: image.blobLabel?.(descriptor),
    })),
    options,
  );
  if (options.counts) for (const outcome of outcomes.values()) options.counts[outcome]++;
  const digest = await target.storage.putManifest(target.repository, tag ?? sha256Digest(image.bytes), image.bytes, image.mediaType, options.signal);
  return { digest, size: image.bytes.length, mediaType: image.mediaType };
}

/** Writes an index whose children are already in place. */
export async function writeIndex(target: WriteTarget, bytes: Buffer, mediaType: string, tag: string, signal?: AbortSignal): Promise<WrittenManifest> {
  const digest = await target.storage.putManifest(target.repository, tag, bytes, mediaType, signal);
  return { digest, size: bytes.length, mediaType };
}
