import type { Digest } from './digest.js';
import { UsageError } from './errors.js';
import type { AddSpec, LayerOptions } from './image/layer.js';
import { type ConfigEdits, hasEdits } from './image/mutate.js';
import type { ManifestFamily } from './image/mediatypes.js';
import type { PlatformSpec } from './image/platform.js';
import type { BlobOutcome, PushEvents } from './image/push.js';
import { SCRATCH } from './image/scratch.js';
import type { Logger } from './logger.js';
import { defaultCacheDir } from './plan/base-files.js';
import { executePlan } from './plan/execute.js';
import { planFromAdd } from './plan/from-add.js';
import { resolveEngineOptions } from './plan/options.js';
import type { Storage } from './storage/storage.js';

export interface AddRequest {
  from: string;
  to: string;
  adds: AddSpec[];
  layerOptions?: Omit<LayerOptions, 'sourceDateEpoch' | 'onBlobProgress'>;
  edits?: ConfigEdits;
  /** Only these platforms of a multi-platform base get the change; the others are kept as they are. */
  platforms?: PlatformSpec[];
  sourceDateEpoch?: number;
  /** Media types of the result; by default those of the base (OCI for `scratch`). */
  format?: ManifestFamily;
  /** The registry client (or other storage) for a registry host; the same object for the same host. */
  clientFor: (registry: string) => Storage;
  logger?: Logger;
  events?: PushEvents;
  concurrency?: number;
  /** Directory for every temporary file (the layer, blobs copied between registries); default the system's. */
  tmpDir?: string;
  /**
   * Stops the add: requests in flight are cut, upload sessions closed and temporary files
   * removed, then the call rejects with an AbortedError (name "AbortError"). No tag is moved.
   */
  signal?: AbortSignal;
}

export interface AddResult {
  /** `registry/repository@sha256:…` of what was pushed. */
  reference: string;
  tag: string;
  digest: Digest;
  mediaType: string;
  /** The platforms that got the change, as `os/arch[/variant]`. */
  platforms: string[];
  layer?: { digest: Digest; diffId: Digest; size: number };
  blobs: Record<BlobOutcome, number>;
}

/** Appends files (and config edits) to the image at `from` and pushes it as `to`: a one-step plan. */
export async function addToImage(request: AddRequest): Promise<AddResult> {
  const edits = request.edits ?? {};
  if (request.adds.length === 0 && !hasEdits(edits)) {
    throw new UsageError('nothing to change: no --add and no config edit was given', 'add files with --add SRC:DEST, or change the config with --workdir, --user, --env, --label, --entrypoint, --cmd, --volume or --expose');
  }
  if (request.from === SCRATCH && (request.platforms?.length ?? 0) > 1) {
    throw new UsageError('--from scratch builds one platform, but several --platform were given', "name one --platform, or none for this machine's");
  }
  const options = resolveEngineOptions(
    {
      to: request.to,
      storageFor: request.clientFor,
      platforms: request.platforms,
      format: request.format,
      sourceDateEpoch: request.sourceDateEpoch,
      compressionLevel: request.layerOptions?.compressionLevel,
      tmpDir: request.layerOptions?.tmpDir ?? request.tmpDir,
      // `add` never reads the base's files, so it needs no index.
      cacheDir: false,
      logger: request.logger,
      events: request.events,
      concurrency: request.concurrency,
      signal: request.signal,
    },
    defaultCacheDir,
  );
  const plan = planFromAdd({ from: request.from, adds: request.adds, edits, chmod: request.layerOptions?.chmod, chown: request.layerOptions?.chown });
  const { layers, blobs, ...pushed } = await executePlan(plan, options);
  return { ...pushed, ...(layers[0] ? { layer: layers[0] } : {}), blobs };
}
