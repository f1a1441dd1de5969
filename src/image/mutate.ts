import posixPath from 'node:path/posix';
import type { Digest } from '../digest.js';
import { sha256Digest } from '../digest.js';
import { UsageError } from '../errors.js';
import type { Descriptor, HistoryEntry, ImageConfig, ImageIndex, ImageManifest, RunConfig } from './manifest.js';
import { familyOf, gzipLayerMediaType, type ManifestFamily, MediaType } from './mediatypes.js';

/**
 * Pure transforms of manifests and configs: data in, data out, no I/O.
 */

/** Changes to the run config, with Dockerfile semantics. */
export interface ConfigEdits {
  workdir?: string;
  user?: string;
  /** `KEY=VALUE`; replaces an existing KEY. */
  env?: string[];
  /** `KEY=VALUE`. */
  labels?: string[];
  /** Exec form; setting it resets an inherited Cmd, as ENTRYPOINT does in a Dockerfile. */
  entrypoint?: string[];
  cmd?: string[];
  /** Paths declared as volumes (VOLUME). */
  volumes?: string[];
  /** `PORT[/PROTO]` declared as exposed (EXPOSE); the protocol defaults to tcp. */
  expose?: string[];
  /** STOPSIGNAL. */
  stopSignal?: string;
  /** HEALTHCHECK, as the config stores it (`{"Test":["NONE"]}` disables an inherited one). */
  healthcheck?: Healthcheck;
  /** SHELL: the command shell-form instructions run with. */
  shell?: string[];
  /** ONBUILD triggers, recorded for images built from this one. */
  onBuild?: string[];
  /** ENTRYPOINT keeps the Cmd (a Dockerfile stage that set CMD before it). */
  keepCmd?: boolean;
  /** The image's author (MAINTAINER); a field of the image config, not the run config. */
  author?: string;
}

export interface Healthcheck {
  Test: string[];
  /** Nanoseconds, as docker stores durations. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface NewLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  createdBy: string;
}

/** A single-platform image as JSON values plus the bytes that encode them. */
export interface ImageDocument {
  manifest: ImageManifest;
  manifestMediaType: string;
  config: ImageConfig;
}

export interface EncodedImage extends ImageDocument {
  manifestBytes: Buffer;
  manifestDigest: Digest;
  configBytes: Buffer;
  configDigest: Digest;
}

/** Parses `KEY=VALUE`, naming the flag when it is malformed. */
export function parseKeyValue(text: string, flag: string): [string, string] {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new UsageError(`${flag} "${text}" is not KEY=VALUE`, `write it as ${flag} NAME=value`);
  return [text.slice(0, equals), text.slice(equals + 1)];
}

/**
 * Reads an ENTRYPOINT/CMD value: a JSON array is the exec form, anything else the shell
 * form run by `/bin/sh -c`, as in a Dockerfile.
 */
export function parseCommand(text: string, flag: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new UsageError(`${flag} ${text} is not a valid JSON array`, `write the exec form as ${flag} '["/bin/app","--flag"]' or give a shell command`);
    }
    if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
      throw new UsageError(`${flag} must be a JSON array of strings`, `e.g. ${flag} '["/bin/app","--flag"]'`);
    }
    return parsed;
  }
  if (trimmed === '') return [];
  return ['/bin/sh', '-c', text];
}

/** Applies run-config edits; returns a new config object. */
export function editRunConfig(config: RunConfig | undefined, edits: ConfigEdits): RunConfig {
  const next: RunConfig = { ...config };
  if (edits.workdir !== undefined) {
    // A relative WORKDIR is relative to the previous one, as in a Dockerfile.
    next.WorkingDir = posixPath.resolve(config?.WorkingDir || '/', edits.workdir);
  }
  if (edits.user !== undefined) next.User = edits.user;
  if (edits.env?.length) {
    const env = [...(config?.Env ?? [])];
    for (const entry of edits.env) {
      const [key] = parseKeyValue(entry, '--env');
      const index = env.findIndex((existing) => existing.split('=', 1)[0] === key);
      if (index >= 0) env[index] = entry;
      else env.push(entry);
    }
    next.Env = env;
  }
  if (edits.labels?.length) {
    const labels = { ...(config?.Labels ?? {}) };
    for (const entry of edits.labels) {
      const [key, value] = parseKeyValue(entry, '--label');
      labels[key] = value;
    }
    next.Labels = labels;
  }
  if (edits.entrypoint !== undefined) {
    next.Entrypoint = edits.entrypoint;
    if (edits.cmd === undefined && !edits.keepCmd) next.Cmd = null;
  }
  if (edits.cmd !== undefined) next.Cmd = edits.cmd;
  if (edits.volumes?.length) {
    const volumes = { ...(config?.Volumes ?? {}) };
    for (const volume of edits.volumes) {
      if (!volume.startsWith('/')) throw new UsageError(`--volume ${volume} is not an absolute path`, 'write it as --volume /data');
      volumes[volume] = {};
    }
    next.Volumes = volumes;
  }
  if (edits.expose?.length) {
    const ports = { ...(config?.ExposedPorts ?? {}) };
    for (const port of edits.expose) {
      const match = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(port);
      if (!match || Number(match[1]) > 65535) throw new UsageError(`--expose ${port} is not PORT[/tcp|udp|sctp]`, 'e.g. --expose 8080 or --expose 53/udp');
      ports[`${match[1]}/${match[2] ?? 'tcp'}`] = {};
    }
    next.ExposedPorts = ports;
  }
  if (edits.stopSignal !== undefined) next.StopSignal = edits.stopSignal;
  if (edits.healthcheck !== undefined) next.Healthcheck = edits.healthcheck;
  if (edits.shell !== undefined) next.Shell = edits.shell;
  if (edits.onBuild?.length) next.OnBuild = [...((config?.OnBuild as string[] | null | undefined) ?? []), ...edits.onBuild];
  return next;
}

/** A history line for config-only changes, e.g. `imgbuild: USER root; WORKDIR /opt/app`. */
export function describeEdits(edits: ConfigEdits): string | undefined {
  const parts: string[] = [];
  if (edits.user !== undefined) parts.push(`USER ${edits.user}`);
  if (edits.workdir !== undefined) parts.push(`WORKDIR ${edits.workdir}`);
  for (const env of edits.env ?? []) parts.push(`ENV ${env}`);
  for (const label of edits.labels ?? []) parts.push(`LABEL ${label}`);
  if (edits.entrypoint !== undefined) parts.push(`ENTRYPOINT ${JSON.stringify(edits.entrypoint)}`);
  if (edits.cmd !== undefined) parts.push(`CMD ${JSON.stringify(edits.cmd)}`);
  for (const volume of edits.volumes ?? []) parts.push(`VOLUME ${volume}`);
  for (const port of edits.expose ?? []) parts.push(`EXPOSE ${port}`);
  if (edits.stopSignal !== undefined) parts.push(`STOPSIGNAL ${edits.stopSignal}`);
  if (edits.healthcheck !== undefined) parts.push(`HEALTHCHECK ${JSON.stringify(edits.healthcheck)}`);
  if (edits.shell !== undefined) parts.push(`SHELL ${JSON.stringify(edits.shell)}`);
  for (const trigger of edits.onBuild ?? []) parts.push(`ONBUILD ${trigger}`);
  return parts.length ? `imgbuild: ${parts.join('; ')}` : undefined;
}

export function hasEdits(edits: ConfigEdits): boolean {
  return describeEdits(edits) !== undefined;
}

/**
 * Appends a layer (and/or config edits) to one image: the layer descriptor in the manifest
 * with the family's media type, its diff_id and a history entry in the config.
 */
export function appendLayer(
  image: ImageDocument,
  layer: NewLayer | undefined,
  edits: ConfigEdits,
  created: string,
): ImageDocument {
  const family = familyOf(image.manifestMediaType);
  const history: HistoryEntry[] = [...(image.config.history ?? [])];
  const editText = describeEdits(edits);
  if (editText) history.push({ created, created_by: editText, empty_layer: true });
  if (layer) history.push({ created, created_by: layer.createdBy });

  const config: ImageConfig = {
    ...image.config,
    created,
    config: editRunConfig(image.config.config, edits),
    rootfs: {
      ...image.config.rootfs,
      diff_ids: layer ? [...image.config.rootfs.diff_ids, layer.diffId] : [...image.config.rootfs.diff_ids],
    },
    history,
  };

  const layers: Descriptor[] = layer
    ? [...image.manifest.layers, { mediaType: gzipLayerMediaType(family), digest: layer.digest, size: layer.size }]
    : [...image.manifest.layers];
  return { ...image, config, manifest: { ...image.manifest, layers } };
}

/** Serialises config and manifest, pointing the manifest at the new config blob. */
export function encodeImage(image: ImageDocument): EncodedImage {
  const configBytes = Buffer.from(JSON.stringify(image.config));
  const configDigest = sha256Digest(configBytes);
  const manifest: ImageManifest = {
    ...image.manifest,
    config: { ...image.manifest.config, digest: configDigest, size: configBytes.length },
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { ...image, manifest, configBytes, configDigest, manifestBytes, manifestDigest: sha256Digest(manifestBytes) };
}

/** Replaces child descriptors of an index (by old digest), keeping order, platforms and annotations. */
export function replaceIndexChildren(
  index: ImageIndex,
  replacements: ReadonlyMap<string, { digest: Digest; size: number; mediaType: string }>,
): { index: ImageIndex; bytes: Buffer; digest: Digest } {
  const manifests = index.manifests.map((descriptor) => {
    const replacement = replacements.get(descriptor.digest);
    return replacement ? { ...descriptor, ...replacement } : descriptor;
  });
  const next: ImageIndex = { ...index, manifests };
  const bytes = Buffer.from(JSON.stringify(next));
  return { index: next, bytes, digest: sha256Digest(bytes) };
}

/** `SOURCE_DATE_EPOCH` (seconds) as an RFC 3339 time, or the given clock's now. */
export function creationTime(sourceDateEpoch: number | undefined, now: () => Date = () => new Date()): string {
  if (sourceDateEpoch !== undefined) return new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
  return now().toISOString();
}

const DOCKER_FOR_OCI: Record<string, string> = {
  [MediaType.ociManifest]: MediaType.dockerManifest,
  [MediaType.ociIndex]: MediaType.dockerManifestList,
  [MediaType.ociConfig]: MediaType.dockerConfig,
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayerNondistributableGzip]: MediaType.dockerForeignLayerGzip,
};
const OCI_FOR_DOCKER: Record<string, string> = Object.fromEntries(Object.entries(DOCKER_FOR_OCI).map(([oci, docker]) => [docker, oci]));

/** The media type of the other family that means the same; a type the family cannot express is refused. */
export function convertMediaType(mediaType: string, family: ManifestFamily): string {
  if (familyOf(mediaType) === family) return mediaType;
  const converted = (family === 'docker' ? DOCKER_FOR_OCI : OCI_FOR_DOCKER)[mediaType];
  if (!converted) {
    throw new UsageError(`${mediaType} has no ${family === 'docker' ? 'Docker' : 'OCI'} equivalent`, `drop --format ${family}: this image keeps its media types`);
  }
  return converted;
}

/** Fields of an OCI manifest that Docker v2 schema 2 does not have. */
const OCI_ONLY_FIELDS = ['annotations', 'subject', 'artifactType'] as const;

/** A manifest in the other family's media types; the blobs (config, layers) stay the same bytes. */
export function convertManifest(manifest: ImageManifest, family: ManifestFamily): ImageManifest {
  const converted: ImageManifest = {
    ...manifest,
    mediaType: convertMediaType(manifest.mediaType ?? MediaType.ociManifest, family),
    config: { ...manifest.config, mediaType: convertMediaType(manifest.config.mediaType, family) },
    layers: manifest.layers.map((layer) => ({ ...layer, mediaType: convertMediaType(layer.mediaType, family) })),
  };
  if (family === 'docker') for (const field of OCI_ONLY_FIELDS) delete (converted as Record<string, unknown>)[field];
  return converted;
}
