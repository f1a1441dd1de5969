import type { RemoteCache } from '../image/remote.js';
import { UsageError } from '../errors.js';
import type { ManifestFamily } from '../image/mediatypes.js';
import type { PlatformSpec } from '../image/platform.js';
import type { PushEvents } from '../image/push.js';
import { silentLogger, type Logger } from '../logger.js';
import { type ImageReference, parseReference } from '../reference.js';
import type { StorageFor } from '../storage/storage.js';

/** What a caller may say about how a plan is run; resolveEngineOptions checks it once. */
export interface EngineRequest {
  /** The tag to push. */
  to: string;
  storageFor: StorageFor;
  /** Only these platforms of a multi-platform base get the change; the others are kept. */
  platforms?: PlatformSpec[];
  /** Media types of the result; by default those of the base (OCI for `scratch`). */
  format?: ManifestFamily;
  /** Seconds since the epoch for file mtimes and `created`. */
  sourceDateEpoch?: number;
  compressionLevel?: number;
  /** Directory for layer files; default the system's. */
  tmpDir?: string;
  /** Where base file indexes are cached; `false` for no cache. Default: defaultCacheDir(). */
  cacheDir?: string | false;
  logger?: Logger;
  events?: PushEvents;
  /** Blobs pushed at once. */
  concurrency?: number;
  /**
   * Stops the build: requests in flight are cut, upload sessions closed and temporary files
   * removed, then the call rejects with an AbortedError. No tag is moved.
   */
  signal?: AbortSignal;
}

/** The one options object the executor passes down: validated, defaults filled in. */
export interface EngineOptions {
  to: ImageReference & { tag: string };
  storageFor: StorageFor;
  platforms: PlatformSpec[];
  format: ManifestFamily | undefined;
  sourceDateEpoch: number | undefined;
  compressionLevel: number | undefined;
  tmpDir: string | undefined;
  cacheDir: string | undefined;
  logger: Logger;
  events: PushEvents | undefined;
  concurrency: number;
  signal: AbortSignal | undefined;
  /** Bases and --from images this command has read (see RemoteCache). */
  remoteCache: RemoteCache;
}

const MAX_TAR_TIME = 2 ** 31 - 1;

export function resolveEngineOptions(request: EngineRequest, defaultCacheDir: () => string): EngineOptions {
  const to = parseReference(request.to);
  if (to.digest) {
    throw new UsageError(`--to ${request.to} names a digest`, 'the destination must be a tag (a digest is the result, not a name to push to), e.g. --to registry:5000/app:v2');
  }
  const epoch = request.sourceDateEpoch;
  if (epoch !== undefined && (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_TAR_TIME)) {
    throw new UsageError(`SOURCE_DATE_EPOCH ${epoch} is not a whole number of seconds between 1970 and 2038`, 'set it to e.g. $(git log -1 --format=%ct)');
  }
  const level = request.compressionLevel;
  if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
    throw new UsageError(`compression level ${level} is not 0-9`, 'use 1 (fast, the default) to 9 (smallest)');
  }
  const concurrency = request.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`concurrency ${concurrency} is not a positive whole number`);
  return {
    to: { ...to, tag: to.tag ?? 'latest' },
    storageFor: request.storageFor,
    platforms: request.platforms ?? [],
    format: request.format,
    sourceDateEpoch: epoch,
    compressionLevel: level,
    tmpDir: request.tmpDir,
    cacheDir: request.cacheDir === false ? undefined : (request.cacheDir ?? defaultCacheDir()),
    logger: request.logger ?? silentLogger,
    events: request.events,
    concurrency,
    signal: request.signal,
    remoteCache: new Map(),
  };
}
