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
  /**
   * Puts a blob in place unless the repository has it, as headBlob then uploadBlob would, in
   * fewer round trips when the store can (a registry asks both at once for a small blob).
   */
  ensureBlob?(repository: string, digest: Digest, size: number, open: BlobRange, onProgress?: (bytes: number) => void, signal?: AbortSignal): Promise<'existed' | 'uploaded'>;
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

/** A descriptor as the referrers API lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** A resumable blob upload: where it stands. */
export interface UploadSession {
  id: string;
  repository: string;
  /** Bytes received so far: the next chunk starts here. */
  size: number;
}

/**
 * A store that is the source of truth rather than a view of one (a filesystem, later an OCI
 * layout): it also keeps resumable uploads, lists, deletes and answers referrers. The embedded
 * registry serves one of these; the engine can write to it as to any Storage.
 * Errors are RegistryErrors carrying the distribution error code (BLOB_UNKNOWN, DIGEST_INVALID...).
 */
export interface ManagedStorage extends Storage {
  /** Bytes [start, end] (inclusive) of a blob of the repository. */
  openBlobRange(repository: string, digest: Digest, start: number, end: number): Promise<Readable>;
  /** Links a blob the store holds into a repository, from any repository; false when it holds none. */
  linkBlob(repository: string, digest: Digest): Promise<boolean>;
  /** Stores a whole blob from a stream, refusing it unless it hashes to `digest`. */
  putBlob(repository: string, digest: Digest, data: Readable): Promise<number>;
  startUpload(repository: string): Promise<UploadSession>;
  getUpload(repository: string, id: string): Promise<UploadSession>;
  /**
   * Appends at `offset` (the session's size; undefined: wherever it stands); refuses another offset,
   * and a chunk of other than `length` bytes when given (its Content-Range), keeping none of it.
   */
  appendUpload(repository: string, id: string, offset: number | undefined, data: Readable, length?: number): Promise<UploadSession>;
  /** Checks the upload against `digest` and stores it as a blob of the repository; returns its size. */
  completeUpload(repository: string, id: string, digest: Digest): Promise<number>;
  cancelUpload(repository: string, id: string): Promise<void>;
  /** Repositories holding anything, in lexical order. */
  listRepositories(): Promise<string[]>;
  /** The repository's tags in lexical order; NAME_UNKNOWN when it holds nothing. */
  listTags(repository: string): Promise<string[]>;
  /** Removes a manifest and the tags pointing at it. */
  deleteManifest(repository: string, digest: Digest): Promise<void>;
  deleteTag(repository: string, tag: string): Promise<void>;
  /** Unlinks a blob from the repository (other repositories keep theirs). */
  deleteBlob(repository: string, digest: Digest): Promise<void>;
  /** Manifests of the repository whose `subject` is `digest`. */
  referrers(repository: string, digest: Digest): Promise<ReferrerDescriptor[]>;
}
