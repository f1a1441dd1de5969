import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import posixPath from 'node:path/posix';
import type { Digest } from '../digest.js';
import { InputError, UsageError } from '../errors.js';
import { GrowingFile } from '../image/growing-file.js';
import { type BuiltLayer, type LayerOptions } from '../image/layer.js';
import { formatPlatform, type Descriptor } from '../image/manifest.js';
import { familyOf, type ManifestFamily } from '../image/mediatypes.js';
import { convertManifest, convertMediaType, creationTime, encodeImage, type ImageDocument, replaceIndexChildren } from '../image/mutate.js';
import { hostPlatform, isAttestation, platformMatches, type PlatformSpec } from '../image/platform.js';
import { type BlobContent, type BlobOutcome, EarlyUpload } from '../image/push.js';
import { fetchRemote, fetchRemoteImage, type RemoteImage, type RemoteIndex } from '../image/remote.js';
import { SCRATCH, scratchImage } from '../image/scratch.js';
import { type ImageToWrite, remoteImageToWrite, type WriteOptions, type WriteTarget, writeImage, writeIndex, type WrittenManifest } from '../image/write.js';
import { orAbort, throwIfAborted } from '../abort.js';
import { manifestReference, parseReference, repositoryName } from '../reference.js';
import type { Storage } from '../storage/storage.js';
import { applyStep } from './apply.js';
import { BaseFiles } from './base-files.js';
import { buildCopyLayer, missingDirectories, resolveCopyStep, resolveOwner, workdirLayer } from './copy.js';
import type { EngineOptions } from './options.js';
import { independentOfBase, type Plan, type PlanStep, type StepHistory } from './steps.js';
import type { ExtractedTree, SourceImage } from './image-files.js';
import type { UnpackedArchive } from './unpack-archive.js';

/**
 * The direct engine: runs a plan against a base in a registry. Each COPY/ADD (and a WORKDIR
 * that creates its directory) becomes one layer, every step one history entry; base layers
 * are never downloaded (only indexed, when a step's meaning depends on the base's files)
 * and never uploaded again. Blobs first, manifest last: a failure never moves the tag.
 */

export interface PlanResult {
  /** `registry/repository@sha256:…` of what was pushed. */
  reference: string;
  tag: string;
  digest: Digest;
  mediaType: string;
  /** The platforms that got the change, as `os/arch[/variant]`. */
  platforms: string[];
  /** The layers the plan made (per distinct content), in step order. */
  layers: Array<{ digest: Digest; diffId: Digest; size: number }>;
  blobs: Record<BlobOutcome, number>;
}

/** A layer a step built, with the upload that may have started while it was written. */
interface MadeLayer {
  built: BuiltLayer;
  earlyUpload?: EarlyUpload;
}

/** Builds each distinct layer once, whatever number of platforms need it; removes them all at the end. */
class LayerBuilds {
  private readonly builds = new Map<string, Promise<MadeLayer>>();
  /** Keys of layers the pushed image may hold (not only an earlier stage's). */
  private readonly pushed = new Set<string>();
  private readonly earlyUploads: Array<Promise<boolean>> = [];

  constructor(
    private readonly target: WriteTarget,
    private readonly options: EngineOptions,
    /** Aborted by the caller, or by the first failure so the rest of the work stops. */
    readonly abandon: AbortController,
  ) {}

  layerOptions(): LayerOptions {
    return { sourceDateEpoch: this.options.sourceDateEpoch, compressionLevel: this.options.compressionLevel, tmpDir: this.options.tmpDir };
  }

  /** `local`: a layer of an earlier stage, only read here, so never uploaded while it is built. */
  get(key: string, build: (options: LayerOptions) => Promise<BuiltLayer>, local = false): Promise<MadeLayer> {
    if (!local) this.pushed.add(key);
    let made = this.builds.get(key);
    if (!made) {
      made = this.start(build, local);
      made.catch(() => {}); // awaited by the step that needs it; this only avoids an early unhandled rejection
      this.builds.set(key, made);
    }
    return made;
  }

  private async start(build: (options: LayerOptions) => Promise<BuiltLayer>, local: boolean): Promise<MadeLayer> {
    const follower = followLayerFile();
    const layerPromise = build({ ...this.layerOptions(), onBlobProgress: follower.onBlobProgress });
    const storage = this.target.storage;
    const earlyUpload =
      storage.uploadGrowingBlob && !local
        ? new EarlyUpload(uploadWhileBuilding(this.target, follower, layerPromise, this.options.events?.earlyLayerProgress, this.abandon.signal))
        : undefined;
    if (earlyUpload) this.earlyUploads.push(earlyUpload.done);
    return { built: await layerPromise, earlyUpload };
  }

  /** Every layer made so far, in the order first asked for; with `pushedOnly`, not those only an earlier stage has. */
  async made(pushedOnly = false): Promise<MadeLayer[]> {
    const builds = [...this.builds].filter(([key]) => !pushedOnly || this.pushed.has(key)).map(([, made]) => made);
    const settled = await Promise.allSettled(builds);
    return settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  }

  async dispose(): Promise<void> {
    for (const made of await this.made()) await made.built.dispose();
  }

  /**
   * Settles when every upload started while a layer was built is done (its session closed
   * after an abort), without waiting for the layers themselves.
   */
  async uploadsSettled(): Promise<void> {
    await Promise.allSettled(this.earlyUploads);
  }
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
  target: WriteTarget,
  follower: ReturnType<typeof followLayerFile>,
  layerPromise: Promise<BuiltLayer>,
  onProgress: ((bytes: number) => void) | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  layerPromise.then(
    (layer) => follower.file?.finish(layer.size),
    (error: unknown) => follower.file?.fail(error),
  );
  const file = await orAbort(Promise.race([follower.created, layerPromise.then(() => follower.file, () => undefined)]), signal);
  if (!file) return false;
  const storage: Storage = target.storage;
  const limit = storage.monolithicUploadLimit ?? 0;
  const state = await orAbort(file.waitFor(limit + 1), signal);
  if (signal.aborted || (state.complete && state.available <= limit)) return false;
  await storage.uploadGrowingBlob!(
    target.repository,
    { open: (start, end) => createReadStream(file.path, { start, end: end - 1, highWaterMark: 1024 * 1024 }), waitFor: (offset) => file.waitFor(offset) },
    async () => (await layerPromise).digest,
    onProgress,
    'new layer',
    signal,
  );
  return true;
}

interface Execution {
  plan: Plan;
  /** The plan for one platform of an index, when it differs by platform (TARGETARCH); default `plan`. */
  planFor?: (platform: PlatformSpec) => Promise<Plan>;
  /** ADD downloads and here-documents, by key (files in their own temporary directories, removed at the end). */
  downloads: Map<string, Promise<string>>;
  /** Local archives ADD unpacked (spooled in their own temporary directories, removed at the end). */
  unpacked: Map<string, Promise<UnpackedArchive>>;
  /** `--from` images by reference and platform, and the subtrees read from them (removed at the end). */
  sourceImages: Map<string, Promise<SourceImage>>;
  trees: Map<string, Promise<ExtractedTree>>;
  options: EngineOptions;
  /** Aborted by the caller or by the first failure. */
  signal: AbortSignal;
  target: WriteTarget;
  layers: LayerBuilds;
  created: string;
  counts: Record<BlobOutcome, number>;
}

/**
 * Runs `plan` and pushes the result to `options.to`. For a multi-platform base, `planFor`
 * gives each platform's plan when it depends on the platform (a Dockerfile's TARGETARCH);
 * the base reference must be the same in all of them.
 */
export async function executePlan(plan: Plan, options: EngineOptions, planFor?: (platform: PlatformSpec) => Promise<Plan>): Promise<PlanResult> {
  const fromScratch = plan.base === SCRATCH;
  if (fromScratch && options.platforms.length > 1) {
    throw new UsageError('a build from scratch makes one platform, but several --platform were given', "name one --platform, or none for this machine's");
  }
  const what = `building ${options.to.registry}/${options.to.repository}:${options.to.tag}`;
  throwIfAborted(options.signal, what);
  const target: WriteTarget = { storage: options.storageFor(options.to.registry), repository: options.to.repository };
  const abandon = new AbortController();
  const onAbort = () => abandon.abort(options.signal!.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const layers = new LayerBuilds(target, options, abandon);
  const execution: Execution = { plan, planFor, options, target, layers, signal: abandon.signal, downloads: new Map(), unpacked: new Map(), sourceImages: new Map(), trees: new Map(), created: creationTime(options.sourceDateEpoch), counts: { existed: 0, mounted: 0, uploaded: 0, copied: 0 } };

  // Layers whose content does not depend on the base are built (and large ones uploaded)
  // while the base is fetched; a missing local file does not wait for registry retries.
  // The base's first request goes out before the layers' synchronous work starts.
  const basePromise: Promise<RemoteImage | RemoteIndex> = fromScratch
    ? Promise.resolve(scratchImage(options.platforms[0] ?? hostPlatform(), target.storage))
    : fetchBase(plan.base, options, abandon.signal);
  const early = plan.steps.flatMap((step, position) => (step.kind === 'copy' && independentOfBase(step) ? [layerForStep(execution, step, position, undefined)] : []));
  let failed = false;
  try {
    const [base] = await orAbort(Promise.all([basePromise, ...early]), abandon.signal);
    options.logger.debug(`base ${plan.base} @ ${base.digest} (${base.mediaType})`);
    let written: WrittenManifest;
    let platforms: string[];
    if (base.kind === 'image') {
      const platform = { os: base.config.os, architecture: base.config.architecture, variant: base.config.variant };
      if (options.platforms.length && !options.platforms.some((spec) => platformMatches(platform, spec))) {
        throw new UsageError(`the base ${plan.base} is a single-platform image for ${formatPlatform(platform)}, which --platform does not include`, 'drop --platform, or name the platform the base has');
      }
      written = await writeChangedImage(execution, base, options.to.tag);
      platforms = [formatPlatform(platform)];
    } else {
      ({ written, platforms } = await writeChangedIndex(execution, base));
    }
    const made = await layers.made(true);
    return {
      reference: `${repositoryName(options.to)}@${written.digest}`,
      tag: options.to.tag,
      digest: written.digest,
      mediaType: written.mediaType,
      platforms,
      layers: made.map(({ built }) => ({ digest: built.digest, diffId: built.diffId, size: built.size })),
      blobs: execution.counts,
    };
  } catch (error) {
    // Stop the rest, and wait until uploads started early have closed their sessions.
    failed = true;
    abandon.abort(error);
    basePromise.catch(() => {});
    await layers.uploadsSettled();
    throwIfAborted(options.signal, what);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // After an interrupt the layer files are removed before returning (a build in progress
    // cannot be stopped); after a failure in the background, so the error is not held.
    const disposed = Promise.all([layers.dispose(), removeDownloads(execution.downloads, [...execution.unpacked.values(), ...execution.trees.values()])]);
    if (!failed || options.signal?.aborted) await disposed;
    else disposed.catch(() => {});
  }
}

async function removeDownloads(downloads: Map<string, Promise<string>>, unpacked: Array<Promise<{ directory: string }>>): Promise<void> {
  for (const download of downloads.values()) {
    const file = await download.catch(() => undefined);
    if (file) await rm(path.dirname(file), { recursive: true, force: true });
  }
  for (const archive of unpacked) {
    const directory = (await archive.catch(() => undefined))?.directory;
    if (directory) await rm(directory, { recursive: true, force: true });
  }
}

function fetchBase(base: string, options: EngineOptions, signal: AbortSignal): Promise<RemoteImage | RemoteIndex> {
  const ref = parseReference(base);
  return fetchRemote({ client: options.storageFor(ref.registry), repository: ref.repository, signal, cache: options.remoteCache }, manifestReference(ref));
}

/**
 * The layer of a COPY/ADD step for one image (`files` undefined when the step needs nothing
 * from it); none when wildcards matched nothing (BuildKit then records an empty layer).
 */
async function layerForStep(execution: Execution, step: PlanStep & { kind: 'copy' }, position: number, files: BaseFiles | undefined, workdir = '/', platform?: PlatformSpec, stage?: string): Promise<MadeLayer | undefined> {
  const resolved = await resolveCopyStep(step, {
    workdir,
    files,
    downloadDir: execution.options.tmpDir,
    warn: (message) => execution.options.logger.warn(message),
    downloads: execution.downloads,
    unpacked: execution.unpacked,
    sourceImage: (reference, stagePlan) => sourceImage(execution, reference, platform ?? hostPlatform(), stagePlan),
    trees: execution.trees,
  });
  files?.recordAll([...resolved.directories.map((directory) => ({ path: directory, kind: 'directory' as const })), ...resolved.writes]);
  if (resolved.specs.length === 0) return undefined;
  const key = `${stage === undefined ? '' : `${stage} `}${position}:${resolved.key}`;
  return execution.layers.get(key, (layerOptions) => buildCopyLayer(step, resolved, layerOptions), stage !== undefined);
}

/**
 * The image a `COPY --from` names, for `platform` when it is an index; its files indexed (and
 * cached) as a base's are. For an earlier stage (`stage`), its plan is run here without a
 * push: its base's layers are read from the registry, its own from the local layer files.
 */
function sourceImage(execution: Execution, reference: string, platform: PlatformSpec, stage?: Plan): Promise<SourceImage> {
  const key = `${reference} ${formatPlatform(platform)}`;
  let found = execution.sourceImages.get(key);
  if (!found) {
    found = (async () => {
      const { options, signal } = execution;
      const base = await imageForPlatform(execution, stage?.base ?? reference, platform);
      let layers = base.manifest.layers;
      let openLayer: SourceImage['openLayer'] = (digest) => base.client.openBlob(base.repository, digest, signal);
      if (stage) {
        const { image, newLayers } = await runSteps(execution, base, stage, reference);
        layers = image.manifest.layers;
        openLayer = (digest) => {
          const made = newLayers.get(digest);
          return made ? Promise.resolve(createReadStream(made.built.blobPath)) : base.client.openBlob(base.repository, digest, signal);
        };
      }
      const files = new BaseFiles({ layers, openLayer, cacheDir: options.cacheDir, onLayerRead: (digest) => options.logger.debug(`indexing layer ${digest} of ${reference}`) });
      return { name: reference, key, files, layers, openLayer };
    })();
    execution.sourceImages.set(key, found);
  }
  return found;
}

/** The image `reference` names (`scratch`: an empty one), the child for `platform` when it is an index. */
async function imageForPlatform(execution: Execution, reference: string, platform: PlatformSpec): Promise<RemoteImage> {
  if (reference.toLowerCase() === SCRATCH) return scratchImage(platform, execution.target.storage);
  const image = await fetchBase(reference, execution.options, execution.signal);
  if (image.kind === 'image') return image;
  const child = image.index.manifests.find((descriptor) => !isAttestation(descriptor.platform, descriptor.annotations) && platformMatches(descriptor.platform, platform));
  if (!child) throw new UsageError(`the --from image ${reference} has no platform ${formatPlatform(platform)}`, 'copy from an image built for the platform of this build');
  return fetchRemoteImage(image, child.digest as Digest);
}

/** Runs every step on one image; returns the result and where its new layers are. */
async function runSteps(execution: Execution, base: RemoteImage, plan: Plan, stage?: string): Promise<{ image: ImageDocument; newLayers: Map<string, MadeLayer> }> {
  const { options, created } = execution;
  const files = new BaseFiles({
    layers: base.manifest.layers,
    openLayer: (digest) => base.client.openBlob(base.repository, digest, execution.signal),
    cacheDir: options.cacheDir,
    onLayerRead: (digest) => options.logger.debug(`indexing base layer ${digest}`),
  });
  const triggers = (base.config.config?.OnBuild as string[] | null | undefined) ?? [];
  if (plan.baseWhere && triggers.length) {
    throw new InputError(`${plan.baseWhere}: the base image ${plan.base} has ONBUILD triggers (${triggers.join('; ')}), which docker runs here and the direct engine does not yet`, {
      hint: 'build with --engine kaniko, or write the triggers into this Dockerfile after FROM and build FROM an image without them',
    });
  }
  let image: ImageDocument = { manifest: base.manifest, manifestMediaType: base.mediaType, config: base.config };
  if (plan.scratchEnv && plan.base === SCRATCH) {
    image = { ...image, config: { ...image.config, config: { ...image.config.config, Env: plan.scratchEnv } } };
  }
  const newLayers = new Map<string, MadeLayer>();
  const workdirOf = () => image.config.config?.WorkingDir || '/';
  for (const [position, step] of plan.steps.entries()) {
    if (step.kind === 'config') {
      image = applyStep(image, { edits: step.edits, history: step.history }, created);
      continue;
    }
    let made: MadeLayer | undefined;
    let edits = {};
    let history = step.history as StepHistory;
    if (step.kind === 'copy') {
      const platform = { os: base.config.os, architecture: base.config.architecture, ...(base.config.variant ? { variant: base.config.variant } : {}) };
      made = await orAbort(layerForStep(execution, step, position, independentOfBase(step) ? undefined : files, workdirOf(), platform, stage), execution.signal);
    } else {
      const directory = posixPath.resolve(workdirOf(), step.path);
      edits = { workdir: step.path };
      history = { ...step.history, createdBy: `WORKDIR ${directory}` };
      const missing = await missingDirectories(files, directory);
      if (missing.length) {
        // Made for the current USER, as BuildKit's mkdir does.
        const user = image.config.config?.User;
        const owner = user ? await resolveOwner({ names: user }, files, step.where) : { uid: 0, gid: 0 };
        made = await orAbort(execution.layers.get(`workdir:${missing.join(',')}:${owner.uid}:${owner.gid}`, (layerOptions) => workdirLayer(missing, owner, step.where, history.createdBy, layerOptions), stage !== undefined), execution.signal);
        for (const created of missing) files.record(created, 'directory');
      }
    }
    if (made) newLayers.set(made.built.digest, made);
    image = applyStep(image, { edits, layer: made?.built, history }, created);
  }
  return { image, newLayers };
}

/** The media types the result is written in: --format, else the base's own. */
function targetFamily(execution: Execution, mediaType: string): ManifestFamily {
  return execution.options.format ?? familyOf(mediaType);
}

function writeOptions(execution: Execution): WriteOptions {
  const { options } = execution;
  return { concurrency: options.concurrency, logger: options.logger, events: options.events, counts: execution.counts, tmpDir: options.tmpDir, signal: execution.signal };
}

/** Runs the plan on one image and writes it under `tag`, or by its digest when there is none (a child of an index). */
async function writeChangedImage(execution: Execution, base: RemoteImage, tag: string | undefined, platform?: PlatformSpec): Promise<WrittenManifest> {
  const plan = platform && execution.planFor ? await execution.planFor(platform) : execution.plan;
  const { image, newLayers } = await runSteps(execution, base, plan);
  const manifest = convertManifest(image.manifest, targetFamily(execution, base.mediaType));
  const encoded = encodeImage({ ...image, manifest, manifestMediaType: manifest.mediaType! });
  const baseLayers = new Set(base.manifest.layers.map((layer) => layer.digest));
  const toWrite: ImageToWrite = {
    manifest: encoded.manifest,
    bytes: encoded.manifestBytes,
    mediaType: encoded.manifestMediaType,
    blobContent(descriptor: Descriptor): BlobContent {
      if (descriptor.digest === encoded.configDigest) return { kind: 'bytes', bytes: encoded.configBytes };
      const made = newLayers.get(descriptor.digest);
      if (made) return made.earlyUpload ? { kind: 'uploading', upload: made.earlyUpload, path: made.built.blobPath } : { kind: 'file', path: made.built.blobPath };
      return { kind: 'remote', client: base.client, repository: base.repository };
    },
    blobLabel: (descriptor) => (descriptor.digest === encoded.configDigest ? 'config' : newLayers.has(descriptor.digest) && !baseLayers.has(descriptor.digest) ? 'new layer' : 'base layer'),
  };
  return writeImage(execution.target, toWrite, tag, writeOptions(execution));
}

/**
 * Copies an image the plan does not touch (another platform, an attestation); in the other
 * media types when --format asks (not attestations, whose in-toto layers have no Docker
 * type). Returns the replacement when its digest changed.
 */
async function copyUnchangedImage(execution: Execution, child: RemoteImage, convert: boolean): Promise<WrittenManifest | undefined> {
  const family = targetFamily(execution, child.mediaType);
  if (!convert || family === familyOf(child.mediaType)) {
    await writeImage(execution.target, remoteImageToWrite(child), child.digest, writeOptions(execution));
    return undefined;
  }
  const manifest = convertManifest(child.manifest, family);
  const bytes = Buffer.from(JSON.stringify(manifest));
  return writeImage(execution.target, remoteImageToWrite(child, bytes, manifest, manifest.mediaType!), undefined, writeOptions(execution));
}

async function writeChangedIndex(execution: Execution, base: RemoteIndex): Promise<{ written: WrittenManifest; platforms: string[] }> {
  const wanted = execution.options.platforms;
  const runnable = base.index.manifests.filter((descriptor) => !isAttestation(descriptor.platform, descriptor.annotations));
  const selected = runnable.filter((descriptor) => !wanted.length || wanted.some((spec) => platformMatches(descriptor.platform, spec)));
  for (const spec of wanted) {
    if (!runnable.some((descriptor) => platformMatches(descriptor.platform, spec))) {
      const available = runnable.map((descriptor) => (descriptor.platform ? formatPlatform(descriptor.platform) : descriptor.digest)).join(', ');
      throw new UsageError(`the base ${execution.plan.base} has no platform ${formatPlatform(spec)}`, `it has: ${available}`);
    }
  }
  if (selected.length === 0) throw new UsageError(`the base index ${execution.plan.base} lists no runnable image`);

  const replacements = new Map<string, WrittenManifest>();
  const platforms: string[] = [];
  for (const descriptor of base.index.manifests) {
    const child = await fetchRemoteImage(base, descriptor.digest as Digest);
    if (!selected.includes(descriptor)) {
      const copied = await copyUnchangedImage(execution, child, runnable.includes(descriptor));
      if (copied) replacements.set(descriptor.digest, copied);
      continue;
    }
    const platform = { os: child.config.os, architecture: child.config.architecture, ...(child.config.variant ? { variant: child.config.variant } : {}) };
    replacements.set(descriptor.digest, await writeChangedImage(execution, child, undefined, platform));
    platforms.push(descriptor.platform ? formatPlatform(descriptor.platform) : formatPlatform(child.config));
  }
  const mediaType = convertMediaType(base.mediaType, targetFamily(execution, base.mediaType));
  const next = replaceIndexChildren({ ...base.index, mediaType }, replacements);
  const written = await writeIndex(execution.target, next.bytes, mediaType, execution.options.to.tag, execution.signal);
  return { written, platforms };
}
