/**
 * Image references (`registry/repository:tag@digest`), parsed and normalised the way the docker
 * CLI does (distribution/reference `ParseNormalizedNamed`), so a reference a user copies from
 * `docker pull` means the same image here.
 */
import { isIP } from 'node:net';
import type { Digest } from './digest.js';
import { ReferenceError } from './errors.js';

export interface ImageReference {
  /** As written or normalised: "docker.io", "localhost:5000", "127.0.0.1:5000", "[::1]:5000". */
  registry: string;
  /** "library/busybox", "ones/plugin-host-node". */
  repository: string;
  /** Undefined when only a digest was given. */
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** Docker Hub's registry API lives on a different host than its name. */
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Older docker versions wrote this as Docker Hub's name; it means the same registry. */
const LEGACY_DOCKER_HUB_REGISTRY = 'index.docker.io';
const OFFICIAL_IMAGES_NAMESPACE = 'library';
const MAX_REPOSITORY_LENGTH = 255;

const EXPECTED_FORM = '[HOST[:PORT]/]NAME[:TAG|@sha256:DIGEST]';

// Grammar from distribution/reference, rewritten as anchored pieces so each failure gets its own message.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_NAME = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
/** A bare image ID; docker refuses it as a name because it is ambiguous with a digest. */
const BARE_IMAGE_ID = /^[a-f0-9]{64}$/;

/** A repository path as the distribution API names it: `component(/component)*`, without a host. */
export function isRepositoryPath(name: string): boolean {
  return name.length > 0 && name.length <= MAX_REPOSITORY_LENGTH && name.split('/').every((component) => PATH_COMPONENT.test(component));
}

export function isTagName(tag: string): boolean {
  return TAG.test(tag);
}

function invalid(text: string, problem: string): ReferenceError {
  return new ReferenceError(`invalid reference ${JSON.stringify(text)}: ${problem} (expected ${EXPECTED_FORM})`);
}

/**
 * Parses `[HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST]`. A name without a host is on docker.io, and a
 * single-component name there is an official image under `library/`. With neither tag nor
 * digest the tag is `options.defaultTag` ("latest"). Throws `ReferenceError` (exit 2).
 */
export function parseReference(text: string, options: { defaultTag?: string } = {}): ImageReference {
  if (text === '') throw invalid(text, 'reference is empty');
  if (/\s/.test(text)) throw invalid(text, 'reference contains whitespace');
  if (BARE_IMAGE_ID.test(text)) {
    throw invalid(text, 'a 64-character hexadecimal image ID is not a repository name; to pin content use NAME@sha256:DIGEST');
  }

  const atIndex = text.indexOf('@');
  const namePart = atIndex === -1 ? text : text.slice(0, atIndex);
  const digest = atIndex === -1 ? undefined : parseDigest(text, text.slice(atIndex + 1));

  // A colon after the last slash separates the tag; earlier colons belong to HOST:PORT.
  const lastSlash = namePart.lastIndexOf('/');
  const tagColon = namePart.indexOf(':', lastSlash + 1);
  const name = tagColon === -1 ? namePart : namePart.slice(0, tagColon);
  let tag: string | undefined;
  if (tagColon !== -1) {
    tag = namePart.slice(tagColon + 1);
    if (tag === '') throw invalid(text, 'tag is empty after ":"');
    if (!TAG.test(tag)) {
      throw invalid(text, `tag ${JSON.stringify(tag)} is not valid: up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"`);
    }
  }

  if (name === '') throw invalid(text, 'repository name is empty');
  const { registry, repository } = splitRegistry(text, name);

  if (tag === undefined && digest === undefined) {
    tag = options.defaultTag ?? DEFAULT_TAG;
    if (!TAG.test(tag)) throw invalid(text, `default tag ${JSON.stringify(tag)} is not a valid tag`);
  }
  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

function parseDigest(text: string, digestText: string): Digest {
  if (digestText === '') throw invalid(text, 'digest is empty after "@"');
  if (digestText.includes('@')) throw invalid(text, 'more than one "@"');
  const colon = digestText.indexOf(':');
  if (colon === -1) throw invalid(text, `digest ${JSON.stringify(digestText)} has no algorithm; write @sha256:<64 hex digits>`);
  const algorithm = digestText.slice(0, colon);
  const hex = digestText.slice(colon + 1);
  if (!DIGEST_ALGORITHM.test(algorithm)) throw invalid(text, `digest algorithm ${JSON.stringify(algorithm)} is malformed`);
  if (algorithm !== 'sha256') {
    throw invalid(text, `digest algorithm ${JSON.stringify(algorithm)} is not supported, only sha256`);
  }
  if (!SHA256_HEX.test(hex)) throw invalid(text, 'a sha256 digest must be exactly 64 lowercase hexadecimal digits');
  return `sha256:${hex}`;
}

/** Like docker: the first component is a host only if it looks like one; otherwise the name is on docker.io. */
function splitRegistry(text: string, name: string): { registry: string; repository: string } {
  const firstSlash = name.indexOf('/');
  const first = firstSlash === -1 ? name : name.slice(0, firstSlash);
  const looksLikeHost = firstSlash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost');

  let registry: string;
  let repository: string;
  if (looksLikeHost) {
    validateHost(text, first);
    registry = first === LEGACY_DOCKER_HUB_REGISTRY ? DEFAULT_REGISTRY : first;
    repository = name.slice(firstSlash + 1);
  } else {
    registry = DEFAULT_REGISTRY;
    repository = name;
  }
  validateRepository(text, repository);
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) {
    repository = `${OFFICIAL_IMAGES_NAMESPACE}/${repository}`;
  }
  return { registry, repository };
}

function validateHost(text: string, host: string): void {
  let hostname = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) throw invalid(text, `registry host ${JSON.stringify(host)} has "[" without "]"`);
    hostname = host.slice(0, close + 1);
    const rest = host.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw invalid(text, `unexpected ${JSON.stringify(rest)} after IPv6 address ${hostname}`);
      port = rest.slice(1);
    }
    if (!IPV6_HOST.test(hostname) || isIP(hostname.slice(1, -1)) !== 6) {
      throw invalid(text, `registry host ${JSON.stringify(hostname)} is not a valid IPv6 address`);
    }
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) {
      hostname = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    if (!DOMAIN_NAME.test(hostname)) {
      throw invalid(text, `registry host ${JSON.stringify(hostname)} is not a valid host name (letters, digits, "-" and ".")`);
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    throw invalid(text, `registry port ${JSON.stringify(port)} is not a number from 0 to 65535`);
  }
}

function validateRepository(text: string, repository: string): void {
  // Checked first and over the whole path: the most common mistake, and its fix is simple.
  if (repository !== repository.toLowerCase()) throw invalid(text, 'repository name must be lowercase');
  if (repository.length > MAX_REPOSITORY_LENGTH) {
    throw invalid(text, `repository name is ${repository.length} characters, longer than the maximum ${MAX_REPOSITORY_LENGTH}`);
  }
  for (const component of repository.split('/')) {
    if (component === '') throw invalid(text, 'repository name has an empty path component (leading, trailing or doubled "/")');
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        text,
        `repository path component ${JSON.stringify(component)} is not valid: lowercase letters and digits, separated by ".", "_", "__" or dashes`,
      );
    }
  }
}

/** Canonical "registry/repository:tag@digest", with docker.io kept explicit. */
export function formatReference(ref: ImageReference): string {
  let text = repositoryName(ref);
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest}`;
  return text;
}

/** "registry/repository": what a registry error or a log line names. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The same repository pinned to `digest`; the tag is dropped because the digest alone decides. */
export function withDigest(ref: ImageReference, digest: Digest): ImageReference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/** The same repository at `tag`; any digest is dropped because it named the old content. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!TAG.test(tag)) {
    throw new ReferenceError(
      `invalid tag ${JSON.stringify(tag)}: up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"`,
    );
  }
  return { registry: ref.registry, repository: ref.repository, tag };
}

/** The host to send registry API requests to: docker.io's API is on registry-1.docker.io. */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

/** True for localhost, 127.0.0.0/8 and [::1], with or without a port: registries docker trusts over plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  // Only HOST[:PORT] characters: the URL parser would otherwise read "user@127.0.0.1" as loopback.
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(registry)) return false;
  let hostname: string;
  try {
    // The URL parser splits off the port and normalises IPv4/IPv6 spellings (e.g. [0:0::1] -> [::1]).
    hostname = new URL(`http://${registry}/`).hostname;
  } catch {
    return false;
  }
  if (hostname.toLowerCase() === 'localhost') return true;
  if (hostname === '[::1]') return true;
  return isIP(hostname) === 4 && hostname.startsWith('127.');
}

/** What goes in `/v2/<name>/manifests/<here>`: the digest when pinned, else the tag. */
export function manifestReference(ref: ImageReference): string {
  if (ref.digest !== undefined) return ref.digest;
  if (ref.tag !== undefined) return ref.tag;
  throw new Error(`internal error: reference ${repositoryName(ref)} has neither tag nor digest`);
}
