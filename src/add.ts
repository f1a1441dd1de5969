import { createReadStream } from 'node:fs';
import { orAbort, throwIfAborted } from './abort.js';
import { type Digest, sha256Digest } from './digest.js';
import { UsageError } from './errors.js';
import { buildLayer, type AddSpec, type BuiltLayer, type LayerOptions } from './image/layer.js';
import { formatPlatform } from './image/manifest.js';
import {
  appendLayer,
  type ConfigEdits,
  convertManifest,
  convertMediaType,
  creationTime,
  encodeImage,
  hasEdits,
  type NewLayer,
  replaceIndexChildren,
} from './image/mutate.js';
import { hostPlatform, isAttestation, platformMatches, type PlatformSpec } from './image/platform.js';
import { SCRATCH, scratchImage } from './image/scratch.js';
import { familyOf, type ManifestFamily } from './image/mediatypes.js';
import { type BlobContent, type BlobOutcome, type BlobToPush, EarlyUpload, pushBlobs, type PushEvents } from './image/push.js';
import { GrowingFile } from './image/growing-file.js';
import { fetchRemote, fetchRemoteImage, type RemoteImage, type RemoteIndex } from './image/remote.js';
import { silentLogger, type Logger } from './logger.js';
import { type ImageReference, manifestReference, parseReference, repositoryName } from './reference.js';
import type { RegistryClient } from './registry/client.js';

export interface AddRequest {
  from: string;
  to: string;
  adds: AddSpec[];
  layerOptions?: Omit<LayerOptions, 'sourceDateEpoch'>;
  edits?: ConfigEdits;
  /** Only these platforms of a multi-platform base get the change; the others are kept as they are. */
  platforms?: PlatformSpec[];
  sourceDateEpoch?: number;
  /** Media types of the result; by default those of the base (OCI for `scratch`). */
  format?: ManifestFamily;
  /** The registry client for a registry host; the same object for the same host. */
  clientFor: (registry: string) => RegistryClient;
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

interface PushTarget {
  client: RegistryClient;
  ref: ImageReference;
}

function destinationReference(text: string): ImageReference {
  const ref = parseReference(text);
  if (ref.digest) {
    throw new UsageError(`--to ${text} names a digest`, 'the destination must be a tag (a digest is the result, not a name to push to), e.g. --to registry:5000/app:v2');
  }
  return ref;
}

/** Appends files (and config edits) to the image at `from` and pushes it as `to`. */
export async function addToImage(request: AddRequest): Promise<AddResult> {
  const logger = request.logger ?? silentLogger;
  const edits = request.edits ?? {};
  if (request.adds.length === 0 && !hasEdits(edits)) {
    throw new UsageError('nothing to change: no --add and no config edit was given', 'add files with --add SRC:DEST, or change the config with --workdir, --user, --env, --label, --entrypoint, --cmd, --volume or --expose');
  }
  const fromScratch = request.from === SCRATCH;
  if (fromScratch && (request.platforms?.length ?? 0) > 1) {
    throw new UsageError('--from scratch builds one platform, but several --platform were given', 'name one --platform, or none for this machine\'s');
  }
  const toRef = destinationReference(request.to);
  const target: PushTarget = { client: request.clientFor(toRef.registry), ref: toRef };
  throwIfAborted(request.signal, `adding to ${request.to}`);
  // One signal for all the work: aborted by the caller, or by the first failure so the rest stops.
  const abandon = new AbortController();
  const onAbort = () => abandon.abort(request.signal!.reason);
  request.signal?.addEventListener('abort', onAbort, { once: true });

  // The layer is built while the base manifest is fetched, and a large layer is uploaded
  // while it is being built: none of these waits for the others.
  const follower = followLayerFile();
  const layerPromise = request.adds.length
    ? buildLayer(request.adds, { tmpDir: request.tmpDir, ...request.layerOptions, sourceDateEpoch: request.sourceDateEpoch, onBlobProgress: follower.onBlobProgress })
    : Promise.resolve(undefined);
  const earlyUpload = request.adds.length
    ? new EarlyUpload(uploadWhileBuilding(target, follower, layerPromise, request.events?.earlyLayerProgress, abandon.signal))
    : undefined;
  const basePromise: Promise<RemoteImage | RemoteIndex> = fromScratch
    ? Promise.resolve(scratchImage(request.platforms?.[0] ?? hostPlatform(), target.client))
    : fetchBase(request, abandon.signal);
  /**
   * Stops the rest of the work and waits until the early upload has closed its session (a chunk
   * in flight may take a few seconds to finish first). After an abort it also waits for the
   * layer file to be removed (the build itself cannot be stopped); after a failure that is left
   * to finish in the background, so the error is not held.
   */
  const stopAll = async (error: unknown): Promise<never> => {
    abandon.abort(error);
    basePromise.catch(() => {});
    const layerRemoved = layerPromise.then((built) => built?.dispose(), () => {});
    await Promise.allSettled([earlyUpload?.done, request.signal?.aborted ? layerRemoved : undefined]);
    request.signal?.removeEventListener('abort', onAbort);
    throwIfAborted(request.signal, `adding to ${request.to}`);
    throw error;
  };
  let base: RemoteImage | RemoteIndex;
  let layer: BuiltLayer | undefined;
  try {
    // Whichever fails first is reported: a missing local file does not wait for registry retries.
    [base, layer] = await orAbort(Promise.all([basePromise, layerPromise]), abandon.signal);
  } catch (error) {
    return stopAll(error);
  }
  try {
    logger.debug(`base ${request.from} @ ${base.digest} (${base.mediaType})`);
    const created = creationTime(request.sourceDateEpoch);
    const newLayer: NewLayer | undefined = layer && { digest: layer.digest, diffId: layer.diffId, size: layer.size, createdBy: layer.createdBy };
    const counts: Record<BlobOutcome, number> = { existed: 0, mounted: 0, uploaded: 0, copied: 0 };
    const context = { request, target, layer, newLayer, edits, created, counts, earlyUpload, signal: abandon.signal };

    let digest: Digest;
    let mediaType: string;
    let platforms: string[];
    if (base.kind === 'image') {
      const wanted = request.platforms;
      const platform = { os: base.config.os, architecture: base.config.architecture, variant: base.config.variant };
      if (wanted?.length && !wanted.some((spec) => platformMatches(platform, spec))) {
        throw new UsageError(`the base ${request.from} is a single-platform image for ${formatPlatform(platform)}, which --platform does not include`, 'drop --platform, or name the platform the base has');
      }
      ({ digest, mediaType } = await pushChangedImage(context, base, toRef.tag!));
      platforms = [formatPlatform(platform)];
    } else {
      ({ digest, mediaType, platforms } = await pushChangedIndex(context, base));
    }
    return {
      reference: `${repositoryName(toRef)}@${digest}`,
      tag: toRef.tag!,
      digest,
      mediaType,
      platforms,
      ...(layer ? { layer: { digest: layer.digest, diffId: layer.diffId, size: layer.size } } : {}),
      blobs: counts,
    };
  } catch (error) {
    return await stopAll(error);
  } finally {
    await layer?.dispose();
    request.signal?.removeEventListener('abort', onAbort);
  }
}

function fetchBase(request: AddRequest, signal: AbortSignal): Promise<RemoteImage | RemoteIndex> {
  const fromRef = parseReference(request.from);
  return fetchRemote({ client: request.clientFor(fromRef.registry), repository: fromRef.repository, signal }, manifestReference(fromRef));
}

/** Tracks the layer file while the layer builder writes it. */
function followLayerFile() {
  let file: GrowingFile | undefined;
  let announce!: (file: GrowingFile) => void;
  const created = new Promise<GrowingFile>((resolve) => {
    announce = resolve;
  });
  return {
    created,
    onBlobProgress(blobPath: string, bytes: number) {
      if (!file) announce((file = new GrowingFile(blobPath)));
      file.grew(bytes);
    },
    get file() {
      return file;
    },
  };
}

/**
 * Sends a layer that turns out larger than one monolithic upload while it is still being
 * written. Resolves true when it did; false when the layer was small (pushed the usual way).
 */
async function uploadWhileBuilding(
  target: PushTarget,
  follower: ReturnType<typeof followLayerFile>,
  layerPromise: Promise<BuiltLayer | undefined>,
  onProgress?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  layerPromise.then(
    (layer) => layer && follower.file?.finish(layer.size),
    (error: unknown) => follower.file?.fail(error),
  );
  const file = await orAbort(Promise.race([follower.created, layerPromise.then(() => follower.file)]), signal);
  if (!file) return false;
  const client = target.client;
  const state = await orAbort(file.waitFor(client.monolithicUploadLimit + 1), signal);
  if (signal?.aborted || (state.complete && state.available <= client.monolithicUploadLimit)) return false;
  await client.uploadGrowingBlob(
    target.ref.repository,
    { open: (start, end) => createReadStream(file.path, { start, end: end - 1, highWaterMark: 1024 * 1024 }), waitFor: (offset) => file.waitFor(offset) },
    async () => (await layerPromise)!.digest,
    onProgress,
    'new layer',
    signal,
  );
  return true;
}

interface PushContext {
  earlyUpload: EarlyUpload | undefined;
  signal: AbortSignal;
  request: AddRequest;
  target: PushTarget;
  layer: BuiltLayer | undefined;
  newLayer: NewLayer | undefined;
  edits: ConfigEdits;
  created: string;
  counts: Record<BlobOutcome, number>;
}

type PushedManifest = { digest: Digest; size: number; mediaType: string };

/** The media types the result is written in: `--format`, else the base's own. */
function targetFamily(context: PushContext, mediaType: string): ManifestFamily {
  return context.request.format ?? familyOf(mediaType);
}

async function pushAll(context: PushContext, blobs: BlobToPush[]): Promise<void> {
  const outcomes = await pushBlobs(context.target.client, context.target.ref.repository, blobs, {
    concurrency: context.request.concurrency,
    logger: context.request.logger,
    events: context.request.events,
    tmpDir: context.request.tmpDir,
    signal: context.signal,
  });
  for (const outcome of outcomes.values()) context.counts[outcome]++;
}

/**
 * Mutates one image, pushes its blobs, then its manifest under `tag`, or by its own digest when
 * there is none (a child of an index). Any word is a valid tag, so no tag value means "by digest".
 */
async function pushChangedImage(context: PushContext, base: RemoteImage, tag: string | undefined): Promise<PushedManifest> {
  const appended = appendLayer({ manifest: base.manifest, manifestMediaType: base.mediaType, config: base.config }, context.newLayer, context.edits, context.created);
  const family = targetFamily(context, base.mediaType);
  const manifest = convertManifest(appended.manifest, family);
  const changed = encodeImage({ ...appended, manifest, manifestMediaType: manifest.mediaType! });
  const blobs: BlobToPush[] = base.manifest.layers.map((descriptor) => ({
    digest: descriptor.digest as Digest,
    size: descriptor.size,
    content: { kind: 'remote', client: base.client, repository: base.repository },
    label: 'base layer',
  }));
  if (context.layer) {
    const path = context.layer.blobPath;
    const content: BlobContent = context.earlyUpload ? { kind: 'uploading', upload: context.earlyUpload, path } : { kind: 'file', path };
    blobs.push({ digest: context.layer.digest, size: context.layer.size, content, label: 'new layer' });
  }
  blobs.push({ digest: changed.configDigest, size: changed.configBytes.length, content: { kind: 'bytes', bytes: changed.configBytes }, label: 'config' });
  await pushAll(context, blobs);
  const digest = await context.target.client.putManifest(context.target.ref.repository, tag ?? changed.manifestDigest, changed.manifestBytes, changed.manifestMediaType, context.signal);
  return { digest, size: changed.manifestBytes.length, mediaType: changed.manifestMediaType };
}

/**
 * Copies a child manifest the change does not touch (another platform, an attestation) into
 * the destination repository; in other media types when `--format` asks (not attestations,
 * whose in-toto layers have no Docker type). Returns the replacement when its digest changed.
 */
async function copyUnchangedImage(context: PushContext, child: RemoteImage, convert: boolean): Promise<PushedManifest | undefined> {
  const blobs: BlobToPush[] = [child.manifest.config, ...child.manifest.layers].map((descriptor) => ({
    digest: descriptor.digest as Digest,
    size: descriptor.size,
    content: { kind: 'remote', client: child.client, repository: child.repository },
  }));
  await pushAll(context, blobs);
  const family = targetFamily(context, child.mediaType);
  if (!convert || family === familyOf(child.mediaType)) {
    await context.target.client.putManifest(context.target.ref.repository, child.digest, child.bytes, child.mediaType, context.signal);
    return undefined;
  }
  const manifest = convertManifest(child.manifest, family);
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await context.target.client.putManifest(context.target.ref.repository, sha256Digest(bytes), bytes, manifest.mediaType!, context.signal);
  return { digest, size: bytes.length, mediaType: manifest.mediaType! };
}

async function pushChangedIndex(context: PushContext, base: RemoteIndex): Promise<{ digest: Digest; mediaType: string; platforms: string[] }> {
  const wanted = context.request.platforms;
  const runnable = base.index.manifests.filter((descriptor) => !isAttestation(descriptor.platform, descriptor.annotations));
  const selected = runnable.filter((descriptor) => !wanted?.length || wanted.some((spec) => platformMatches(descriptor.platform, spec)));
  for (const spec of wanted ?? []) {
    if (!runnable.some((descriptor) => platformMatches(descriptor.platform, spec))) {
      const available = runnable.map((descriptor) => (descriptor.platform ? formatPlatform(descriptor.platform) : descriptor.digest)).join(', ');
      throw new UsageError(`the base ${context.request.from} has no platform ${formatPlatform(spec)}`, `it has: ${available}`);
    }
  }
  if (selected.length === 0) throw new UsageError(`the base index ${context.request.from} lists no runnable image`);

  const replacements = new Map<string, PushedManifest>();
  const platforms: string[] = [];
  for (const descriptor of base.index.manifests) {
    const child = await fetchRemoteImage(base, descriptor.digest as Digest);
    if (!selected.includes(descriptor)) {
      const copied = await copyUnchangedImage(context, child, runnable.includes(descriptor));
      if (copied) replacements.set(descriptor.digest, copied);
      continue;
    }
    replacements.set(descriptor.digest, await pushChangedImage(context, child, undefined));
    platforms.push(descriptor.platform ? formatPlatform(descriptor.platform) : formatPlatform(child.config));
  }
  const mediaType = convertMediaType(base.mediaType, targetFamily(context, base.mediaType));
  const next = replaceIndexChildren({ ...base.index, mediaType }, replacements);
  const digest = await context.target.client.putManifest(context.target.ref.repository, context.target.ref.tag!, next.bytes, mediaType, context.signal);
  return { digest, mediaType, platforms };
}
