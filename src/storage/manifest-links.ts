import { isStoredDigest, type Digest } from '../digest.js';
import { RegistryError } from '../errors.js';

/** What a manifest refers to, as a store must check and index it. */
export interface ManifestLinks {
  mediaType: string;
  /** Blobs (config, layers) the store must hold before accepting the manifest. */
  blobs: Digest[];
  /** Manifests (index children) the store must hold before accepting it. */
  manifests: Digest[];
  subject: Digest | undefined;
  artifactType: string | undefined;
  annotations: Record<string, string> | undefined;
}

/** The spec's suggested limit; larger manifests are refused with 413. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

// Layers that registries may not hold (Windows base layers): their bytes live at `urls`.
const NONDISTRIBUTABLE = /(?:\.nondistributable\.|\.foreign\.)/;

function invalid(message: string, status = 400): RegistryError {
  return new RegistryError(`manifest invalid: ${message}`, { status, code: 'MANIFEST_INVALID' });
}

function descriptorDigest(value: unknown, where: string): Digest {
  const digest = (value as { digest?: unknown } | null)?.digest;
  if (typeof digest !== 'string') throw invalid(`${where} has no digest`);
  if (!isStoredDigest(digest)) throw new RegistryError(`manifest invalid: ${where} digest ${digest} is not a sha256 or sha512 digest`, { status: 400, code: 'DIGEST_INVALID' });
  return digest;
}

/**
 * Reads an image manifest or index (OCI or Docker v2), as pushed with `contentType`, and lists
 * what it links to. Throws MANIFEST_INVALID for anything else.
 */
export function manifestLinks(bytes: Buffer, contentType: string | undefined): ManifestLinks {
  if (bytes.length > MAX_MANIFEST_BYTES) throw invalid(`${bytes.length} bytes is more than the ${MAX_MANIFEST_BYTES} this registry accepts`, 413);
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    body = parsed as Record<string, unknown>;
  } catch {
    throw invalid('body is not a JSON object');
  }
  const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  const headerType = contentType?.split(';')[0]?.trim() || undefined;
  if (declared && headerType && declared !== headerType) throw invalid(`Content-Type ${headerType} does not match the manifest's mediaType ${declared}`);
  if (body.schemaVersion !== 2) throw invalid('schemaVersion is not 2 (schema 1 manifests are not accepted)');
  const isIndex = Array.isArray(body.manifests);
  const mediaType = declared ?? headerType ?? (isIndex ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');

  const blobs: Digest[] = [];
  const manifests: Digest[] = [];
  if (isIndex) {
    (body.manifests as unknown[]).forEach((child, index) => manifests.push(descriptorDigest(child, `manifests[${index}]`)));
  } else {
    if (typeof body.config !== 'object' || body.config === null) throw invalid('an image manifest needs a config descriptor');
    if (!Array.isArray(body.layers)) throw invalid('an image manifest needs a layers list');
    blobs.push(descriptorDigest(body.config, 'config'));
    body.layers.forEach((layer: unknown, index: number) => {
      const digest = descriptorDigest(layer, `layers[${index}]`);
      const layerType = (layer as { mediaType?: unknown }).mediaType;
      if (typeof layerType === 'string' && NONDISTRIBUTABLE.test(layerType)) return;
      blobs.push(digest);
    });
  }
  const subject = body.subject === undefined ? undefined : descriptorDigest(body.subject, 'subject');
  const config = body.config as { mediaType?: unknown } | undefined;
  const artifactType = typeof body.artifactType === 'string' ? body.artifactType : !isIndex && typeof config?.mediaType === 'string' ? config.mediaType : undefined;
  const annotations = typeof body.annotations === 'object' && body.annotations !== null ? (body.annotations as Record<string, string>) : undefined;
  return { mediaType, blobs, manifests, subject, artifactType, annotations };
}
