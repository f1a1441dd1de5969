import { sha256Digest } from '../digest.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageConfig, ImageManifest } from './manifest.js';
import { type ManifestFamily, MediaType } from './mediatypes.js';
import type { PlatformSpec } from './platform.js';
import type { RemoteImage } from './remote.js';

/** The base name that means "no base": an image with no layers, like Dockerfile's FROM scratch. */
export const SCRATCH = 'scratch';

/** An empty image (OCI, or Docker v2 schema 2) for `platform`, shaped like one read from a registry so the same writer pushes it. */
export function scratchImage(platform: PlatformSpec, client: RegistryClient, family: ManifestFamily = 'oci'): RemoteImage {
  const docker = family === 'docker';
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length },
    layers: [],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { kind: 'image', client, repository: '', digest: sha256Digest(bytes), mediaType: manifest.mediaType!, bytes, manifest, config };
}
