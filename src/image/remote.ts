import type { Digest } from '../digest.js';
import { RegistryError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { DocumentShapeError, type ImageConfig, imageConfigSchema, type ImageIndex, imageIndexSchema, type ImageManifest, imageManifestSchema } from './manifest.js';
import { isIndexMediaType, SINGLE_MANIFEST_TYPES } from './mediatypes.js';

/**
 * The registry as a source of images: read-only views of what a reference points at.
 * Layers are never downloaded here; only manifests and configs.
 */

export interface RemoteLocation {
  client: Storage;
  repository: string;
  /** Stops the reads made through this location (and the views fetched from it). */
  signal?: AbortSignal;
  /**
   * What earlier fetches through this cache found, by registry, repository and reference: one
   * command reads each base once, and every part of it sees the same image even if its tag moves.
   */
  cache?: RemoteCache;
}

export type RemoteCache = Map<string, Promise<RemoteDocument>>;
type RemoteDocument = Omit<RemoteImage, keyof RemoteLocation> | Omit<RemoteIndex, keyof RemoteLocation>;

export interface RemoteImage extends RemoteLocation {
  kind: 'image';
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  manifest: ImageManifest;
  config: ImageConfig;
}

export interface RemoteIndex extends RemoteLocation {
  kind: 'index';
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  index: ImageIndex;
}

function parseJson<T>(bytes: Buffer, schema: { parse(value: unknown): T }, what: string): T {
  try {
    return schema.parse(JSON.parse(bytes.toString('utf8')));
  } catch (error) {
    const detail = error instanceof DocumentShapeError ? error.issues.join('; ') : (error as Error).message;
    throw new RegistryError(`${what} is not a valid OCI or Docker v2 document (${detail})`, {
      hint: 'only Docker v2 schema 2 and OCI images are supported; re-push the base with a current tool (e.g. skopeo copy) to convert it',
    });
  }
}

/** Fetches what a tag or digest points at: an image (with its config) or an index. */
export async function fetchRemote(location: RemoteLocation, reference: string): Promise<RemoteImage | RemoteIndex> {
  const { cache } = location;
  if (!cache) return { ...location, ...(await fetchDocument(location, reference)) } as RemoteImage | RemoteIndex;
  const key = `${location.client.registry}/${location.repository}@${reference}`;
  let document = cache.get(key);
  if (!document) {
    document = fetchDocument(location, reference);
    cache.set(key, document);
    // A failure (an interrupted read among them) is not remembered.
    document.catch(() => cache.delete(key));
  }
  return { ...location, ...(await document) } as RemoteImage | RemoteIndex;
}

async function fetchDocument(location: RemoteLocation, reference: string): Promise<RemoteDocument> {
  const fetched = await location.client.getManifest(location.repository, reference, location.signal);
  const what = `manifest ${location.client.registry}/${location.repository}@${fetched.digest}`;
  if (isIndexMediaType(fetched.mediaType)) {
    return { kind: 'index', digest: fetched.digest, mediaType: fetched.mediaType, bytes: fetched.bytes, index: parseJson(fetched.bytes, imageIndexSchema, what) };
  }
  if (!SINGLE_MANIFEST_TYPES.includes(fetched.mediaType)) {
    throw new RegistryError(`${what} has unsupported media type "${fetched.mediaType}"`, {
      hint: 'only Docker v2 schema 2 and OCI manifests and indexes are supported; convert the base with `skopeo copy --format oci`',
    });
  }
  const manifest = parseJson(fetched.bytes, imageManifestSchema, what);
  const configBytes = await location.client.getBlob(location.repository, manifest.config.digest as Digest, location.signal);
  const config = parseJson(configBytes, imageConfigSchema, `config ${manifest.config.digest} of ${what}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new RegistryError(`${what} lists ${manifest.layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`);
  }
  return { kind: 'image', digest: fetched.digest, mediaType: fetched.mediaType, bytes: fetched.bytes, manifest, config };
}

export async function fetchRemoteImage(location: RemoteLocation, digest: Digest): Promise<RemoteImage> {
  const result = await fetchRemote(location, digest);
  if (result.kind !== 'image') throw new RegistryError(`${location.repository}@${digest} is an index nested in an index, which is not supported`);
  return result;
}
