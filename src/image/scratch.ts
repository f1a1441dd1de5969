import { sha256Digest } from '../digest.js';
import type { Storage } from '../storage/storage.js';
import type { ImageConfig, ImageManifest } from './manifest.js';
import { MediaType } from './mediatypes.js';
import type { PlatformSpec } from './platform.js';
import type { RemoteImage } from './remote.js';

/** The base name that means "no base": an image with no layers, like Dockerfile's FROM scratch. */
export const SCRATCH = 'scratch';

/**
 * An empty OCI image for `platform`, shaped like one read from a registry so the same writer
 * pushes it (and `--format docker` converts it like any other base).
 */
export function scratchImage(platform: PlatformSpec, client: Storage): RemoteImage {
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
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest(configBytes), size: configBytes.length },
    layers: [],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { kind: 'image', client, repository: '', digest: sha256Digest(bytes), mediaType: MediaType.ociManifest, bytes, manifest, config };
}
