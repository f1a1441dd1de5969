import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import type { GrowthState } from '../image/growing-file.js';

/**
 * Where images live (every call takes an AbortSignal that cuts it), as the image code sees it: blobs and manifests of named repositories.
 * A registry client is one (see registryStorage); an OCI layout or memory can stand in.
 * Implementations check every byte they return against the digest it was asked by.
 */

/** A manifest as stored: the exact bytes, their digest, and the media type. */
export interface StoredManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

/** Opens bytes [start, end) of a blob; called again to resume after a failure. */
export type BlobRange = (start: number, end: number) => Readable;

/** A blob whose bytes may still be arriving (a layer being written). */
export interface GrowingBlob {
  open: BlobRange;
  waitFor(offset: number): Promise<GrowthState>;
}

export interface Storage {
  /** Names the store in messages, and tells two stores apart (mounts only work within one). */
  readonly registry: string;
  /** The size of a blob in the repository, or undefined when it is not there. */
  headBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<number | undefined>;
  /** The blob's bytes; the stream fails at its end when they do not hash to `digest`. */
  openBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<Readable>;
  getBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<Buffer>;
  /** Links a blob from another repository of the same store; false when the store declined. */
  mountBlob(repository: string, digest: Digest, fromRepository: string, signal?: AbortSignal): Promise<boolean>;
  uploadBlob(repository: string, digest: Digest, size: number, open: BlobRange, onProgress?: (bytes: number) => void, signal?: AbortSignal): Promise<void>;
  getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<StoredManifest>;
  /** Stores a manifest under a tag or its digest; returns the digest. */
  putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest>;
  /** The digest a tag points at, or undefined when there is no such tag. */
  resolveTag(repository: string, tag: string, signal?: AbortSignal): Promise<Digest | undefined>;
  /**
   * Stores a blob while it is still being written, when the store can (chunked uploads);
   * blobs up to `monolithicUploadLimit` bytes are better sent whole once complete.
   */
  uploadGrowingBlob?(
    repository: string,
    source: GrowingBlob,
    finalDigest: () => Promise<Digest>,
    onProgress?: (bytes: number) => void,
    label?: string,
    signal?: AbortSignal,
  ): Promise<Digest>;
  readonly monolithicUploadLimit?: number;
}

/** Storage for each registry host named in references; the same object for the same host. */
export type StorageFor = (registry: string) => Storage;
