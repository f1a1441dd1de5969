import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../digest.js';
import { silentLogger, type Logger } from '../logger.js';
import type { BlobRange, Storage } from '../storage/storage.js';

/**
 * The registry as a writer: blobs first (HEAD, mount, or upload; in parallel), the manifest
 * last and only when every blob it names is in place, so a failed push never moves a tag.
 */

/** Where the bytes of a blob to push come from. */
export type BlobContent =
  | { kind: 'file'; path: string }
  | { kind: 'bytes'; bytes: Buffer }
  /** Already in a repository; mounted when on the same registry, copied otherwise. */
  | { kind: 'remote'; client: Storage; repository: string }
  /** Maybe being uploaded already (a layer sent while it was built); else uploaded from `path`. */
  | { kind: 'uploading'; upload: EarlyUpload; path: string };

/**
 * An upload that may have started before the push. `done` resolves true once the blob is in
 * place, false when no early upload was made; the first push that waits for it reports it.
 */
export class EarlyUpload {
  private reported = false;

  constructor(readonly done: Promise<boolean>) {
    done.catch(() => {}); // awaited by the push; this only avoids an early unhandled rejection
  }

  async outcome(): Promise<BlobOutcome | undefined> {
    if (!(await this.done)) return undefined;
    if (this.reported) return 'existed';
    this.reported = true;
    return 'uploaded';
  }
}

export interface BlobToPush {
  digest: Digest;
  size: number;
  content: BlobContent;
  /** For progress lines. */
  label?: string;
}

export type BlobOutcome = 'existed' | 'mounted' | 'uploaded' | 'copied';

export interface PushEvents {
  /** Bytes of the new layer sent while it is still being built (its digest is not known yet). */
  earlyLayerProgress?(bytes: number): void;
  blobStart?(blob: BlobToPush): void;
  blobProgress?(blob: BlobToPush, bytes: number): void;
  blobDone?(blob: BlobToPush, outcome: BlobOutcome): void;
}

export interface PushOptions {
  concurrency?: number;
  logger?: Logger;
  events?: PushEvents;
  /** Directory for blobs copied between registries. */
  tmpDir?: string;
  /** Stops the push: requests in flight are cut, upload sessions closed, copies removed. */
  signal?: AbortSignal;
}

/** Runs `task` over `items`, at most `limit` at once; the first failure stops new work and is thrown. */
export async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

function openFileRange(file: string) {
  return (start: number, end: number) => createReadStream(file, { start, end: end - 1, highWaterMark: 1024 * 1024 });
}

async function pushBlob(destination: Storage, repository: string, blob: BlobToPush, options: PushOptions): Promise<BlobOutcome> {
  const logger = options.logger ?? silentLogger;
  const progress = (bytes: number) => options.events?.blobProgress?.(blob, bytes);
  const content = blob.content;
  const signal = options.signal;
  signal?.throwIfAborted();
  if (content.kind === 'uploading') {
    const outcome = await content.upload.outcome();
    if (outcome) return outcome;
  }
  if (content.kind !== 'remote') {
    const open: BlobRange = content.kind === 'bytes' ? (start, end) => Readable.from([content.bytes.subarray(start, end)]) : openFileRange(content.path);
    if (destination.ensureBlob) return destination.ensureBlob(repository, blob.digest, blob.size, open, progress, signal);
    if ((await destination.headBlob(repository, blob.digest, signal)) !== undefined) return 'existed';
    await destination.uploadBlob(repository, blob.digest, blob.size, open, progress, signal);
    return 'uploaded';
  }
  if ((await destination.headBlob(repository, blob.digest, signal)) !== undefined) return 'existed';
  if (content.client === destination && content.repository !== repository) {
    if (await destination.mountBlob(repository, blob.digest, content.repository, signal)) return 'mounted';
    logger.debug(`registry declined to mount ${blob.digest} from ${content.repository}; copying it`);
  }
  // Another registry (or a declined mount): copy through a verified temporary file,
  // so a retried or resumed upload re-reads local bytes, not the source registry.
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'imgbuild-copy-'));
  try {
    const file = path.join(dir, 'blob');
    await pipeline(await content.client.openBlob(content.repository, blob.digest, signal), createWriteStream(file), { signal });
    await destination.uploadBlob(repository, blob.digest, blob.size, openFileRange(file), progress, signal);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return 'copied';
}

/** Makes sure every blob exists in `repository`, at most `concurrency` at a time (default 4). */
export async function pushBlobs(destination: Storage, repository: string, blobs: readonly BlobToPush[], options: PushOptions = {}): Promise<Map<Digest, BlobOutcome>> {
  const unique = [...new Map(blobs.map((blob) => [blob.digest, blob])).values()];
  const outcomes = new Map<Digest, BlobOutcome>();
  await forEachLimited(unique, options.concurrency ?? 4, async (blob) => {
    options.events?.blobStart?.(blob);
    const outcome = await pushBlob(destination, repository, blob, options);
    outcomes.set(blob.digest, outcome);
    options.events?.blobDone?.(blob, outcome);
  });
  return outcomes;
}
