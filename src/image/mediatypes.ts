/** Media types of the two manifest families. Docker v2 schema 2 and OCI are kept as found. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type ManifestFamily = 'oci' | 'docker';

export const SINGLE_MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];
export const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];

/** What we send in Accept when fetching a manifest by tag or digest. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
].join(', ');

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.includes(mediaType);
}

export function familyOf(mediaType: string): ManifestFamily {
  return mediaType.startsWith('application/vnd.docker.') ? 'docker' : 'oci';
}

/** The media type of a gzip layer in the given family. */
export function gzipLayerMediaType(family: ManifestFamily): string {
  return family === 'docker' ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

/** Layer media types whose blobs are gzip-compressed tar. */
export function isGzipLayer(mediaType: string): boolean {
  return mediaType.endsWith('gzip');
}
