import type { Digest } from './digest.js';
import { UsageError } from './errors.js';
import { formatPlatform } from './image/manifest.js';
import { hostPlatform, isAttestation, platformMatches, type PlatformSpec } from './image/platform.js';
import { type FileContentSink, type FileLookup, readFileFromLayers } from './image/read-file.js';
import { fetchRemote, fetchRemoteImage, type RemoteImage, type RemoteLocation } from './image/remote.js';
import { withAbortReported } from './abort.js';
import { type ImageReference, manifestReference, parseReference, repositoryName } from './reference.js';
import type { RegistryClient } from './registry/client.js';

export interface ReadFileResult {
  reference: string;
  platform: string;
  path: string;
  lookup: FileLookup;
  /** How many layers were fetched to decide, of how many. */
  layersRead: number;
  layerCount: number;
}

/** Picks the image of an index for `platform` (default: this machine's). */
async function selectImage(location: RemoteLocation, reference: string, platform: PlatformSpec | undefined): Promise<RemoteImage> {
  const top = await fetchRemote(location, reference);
  if (top.kind === 'image') return top;
  const wanted = platform ?? hostPlatform();
  const match = top.index.manifests.find((descriptor) => !isAttestation(descriptor.platform, descriptor.annotations) && platformMatches(descriptor.platform, wanted));
  if (!match) {
    const available = top.index.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform!)).join(', ');
    throw new UsageError(`the image has no platform ${formatPlatform(wanted)}`, `choose one with --platform; it has: ${available}`);
  }
  return fetchRemoteImage(location, match.digest as Digest);
}

/**
 * Reads a file out of an image in the registry without pulling it: only the layers needed, each
 * read whole and checked against its digest and diff_id. With `options.sink` the bytes stream
 * there (to be trusted only once this resolves); without, they come back in `lookup.content`.
 * `signal` stops the requests in flight and rejects with an AbortedError.
 */
export async function readFileFromImage(
  text: string,
  pathInImage: string,
  clientFor: (registry: string) => RegistryClient,
  platform?: PlatformSpec,
  options: { signal?: AbortSignal; sink?: FileContentSink } = {},
): Promise<ReadFileResult> {
  const ref = parseReference(text);
  const location: RemoteLocation = { client: clientFor(ref.registry), repository: ref.repository, signal: options.signal };
  return withAbortReported(readFromLocation(ref, location, pathInImage, platform, options.sink), options.signal, `reading ${pathInImage} from ${text}`);
}

async function readFromLocation(
  ref: ImageReference,
  location: RemoteLocation,
  pathInImage: string,
  platform: PlatformSpec | undefined,
  sink: FileContentSink | undefined,
): Promise<ReadFileResult> {
  const image = await selectImage(location, manifestReference(ref), platform);
  let layersRead = 0;
  const lookup = await readFileFromLayers(image.manifest, async (digest) => {
    layersRead++;
    return location.client.openBlob(location.repository, digest, location.signal);
  }, pathInImage, { sink, diffIds: image.config.rootfs.diff_ids });
  return {
    reference: `${repositoryName(ref)}@${image.digest}`,
    platform: formatPlatform(image.config),
    path: pathInImage,
    lookup,
    layersRead,
    layerCount: image.manifest.layers.length,
  };
}
