import type { Digest } from './digest.js';
import { formatPlatform, type Descriptor, type RunConfig } from './image/manifest.js';
import { fetchRemote, fetchRemoteImage, type RemoteImage, type RemoteLocation } from './image/remote.js';
import { withAbortReported } from './abort.js';
import { type ImageReference, manifestReference, parseReference, repositoryName } from './reference.js';
import type { RegistryClient } from './registry/client.js';

export interface ImageSummary {
  platform: string;
  digest: Digest;
  mediaType: string;
  layers: Array<{ digest: string; size: number; mediaType: string }>;
  totalSize: number;
  config: {
    digest: string;
    created?: string;
    user?: string;
    workingDir?: string;
    env?: string[];
    entrypoint?: string[] | null;
    cmd?: string[] | null;
    labels?: Record<string, string> | null;
    volumes?: string[];
    exposedPorts?: string[];
  };
  history: Array<{ created?: string; createdBy?: string; emptyLayer?: boolean }>;
}

export interface InspectResult {
  reference: string;
  digest: Digest;
  mediaType: string;
  /** Set when the reference points at an index or manifest list. */
  index?: { manifests: Array<{ digest: string; platform?: string; size: number }> };
  images: ImageSummary[];
  /** The manifest bytes exactly as served. */
  raw: Buffer;
}

function summarise(image: RemoteImage, descriptor?: Descriptor): ImageSummary {
  const run: RunConfig = image.config.config ?? {};
  const layers = image.manifest.layers.map((layer) => ({ digest: layer.digest, size: layer.size, mediaType: layer.mediaType }));
  return {
    platform: formatPlatform(descriptor?.platform ?? image.config),
    digest: image.digest,
    mediaType: image.mediaType,
    layers,
    totalSize: layers.reduce((sum, layer) => sum + layer.size, 0),
    config: {
      digest: image.manifest.config.digest,
      created: image.config.created,
      user: run.User,
      workingDir: run.WorkingDir,
      env: run.Env ?? undefined,
      entrypoint: run.Entrypoint,
      cmd: run.Cmd,
      labels: run.Labels,
      volumes: run.Volumes ? Object.keys(run.Volumes) : undefined,
      exposedPorts: run.ExposedPorts ? Object.keys(run.ExposedPorts) : undefined,
    },
    history: (image.config.history ?? []).map((entry) => ({ created: entry.created, createdBy: entry.created_by, emptyLayer: entry.empty_layer })),
  };
}

/**
 * Describes what a reference points at: one image, or an index and each image in it.
 * `signal` stops the requests in flight and rejects with an AbortedError.
 */
export async function inspectImage(text: string, clientFor: (registry: string) => RegistryClient, options: { signal?: AbortSignal } = {}): Promise<InspectResult> {
  const ref = parseReference(text);
  const location: RemoteLocation = { client: clientFor(ref.registry), repository: ref.repository, signal: options.signal };
  return withAbortReported(inspectLocation(ref, location), options.signal, `inspecting ${text}`);
}

async function inspectLocation(ref: ImageReference, location: RemoteLocation): Promise<InspectResult> {
  const top = await fetchRemote(location, manifestReference(ref));
  const reference = `${repositoryName(ref)}@${top.digest}`;
  if (top.kind === 'image') {
    return { reference, digest: top.digest, mediaType: top.mediaType, images: [summarise(top)], raw: top.bytes };
  }
  const images = await Promise.all(
    top.index.manifests.map(async (descriptor) => summarise(await fetchRemoteImage(location, descriptor.digest as Digest), descriptor)),
  );
  return {
    reference,
    digest: top.digest,
    mediaType: top.mediaType,
    index: { manifests: top.index.manifests.map((m) => ({ digest: m.digest, size: m.size, platform: m.platform && formatPlatform(m.platform) })) },
    images,
    raw: top.bytes,
  };
}
