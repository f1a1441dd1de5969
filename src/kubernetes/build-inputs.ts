/**
 * What every cluster build sends along with its Job, whichever builder runs it: the context
 * (directory and extra files, the Dockerfile added when it lies outside), delivered in a
 * ConfigMap or streamed over exec; the registry credentials as a dockerconfigjson Secret; the
 * `--ca-file` bundle as a ConfigMap. Reads local files and credentials; the objects come from
 * the pure renderers.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { InputError } from '../errors.js';
import type { CredentialStore } from '../registry/credentials.js';
import { collectContextDirectory, readContextContents, withParents, type ContextFile } from './context-files.js';
import { type ContextReceiver, fitsInConfigMap, type RenderedDelivery, renderConfigMapDelivery, renderExecDelivery } from './render/context-delivery.js';
import { type BuildIdentity, objectName, renderConfigMap, renderDockerConfigSecret, renderOwnerConfigMap } from './render/objects.js';
import { credentialsFor, type TarFile, tarToFile } from './run/build-job.js';

export function newBuildIdentity(namespace: string, buildId?: string): BuildIdentity {
  return { buildId: buildId ?? randomBytes(4).toString('hex'), namespace, createdAt: new Date().toISOString() };
}

export interface ContextRequest {
  /** The Dockerfile: its text, or a path (absolute, or relative to the context directory). */
  dockerfile: { text: string } | { path: string };
  /** The context directory (`<Dockerfile>.dockerignore` or `.dockerignore` honoured); absent for a context made only of `files`. */
  contextDir?: string;
  /** Extra context entries (used by `add`, whose context is the files it adds). */
  files?: ContextFile[];
}

export interface BuildContext {
  files: ContextFile[];
  /** Where the Dockerfile is in the context (added as `Dockerfile.imgbuild` when it was outside). */
  dockerfilePath: string;
  dockerfileText: string;
}

async function readDockerfile(request: ContextRequest): Promise<{ text: string; contextPath?: string; absolute?: string }> {
  if ('text' in request.dockerfile) return { text: request.dockerfile.text };
  const given = request.dockerfile.path;
  // A relative path is relative to the context (docker's -f is relative to the working directory: the CLI resolves it first).
  const absolute = path.resolve(request.contextDir ?? '.', given);
  const text = await readFile(absolute, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read the Dockerfile ${given}: ${error.code ?? error.message}`, { hint: 'pass -f PATH to a Dockerfile, or put one named Dockerfile in the context' });
  });
  const relative = request.contextDir ? path.relative(path.resolve(request.contextDir), absolute) : undefined;
  return { text, absolute, contextPath: relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative.split(path.sep).join('/') : undefined };
}

/** The context's entries with the Dockerfile among them. */
export async function collectBuildContext(request: ContextRequest): Promise<BuildContext> {
  const dockerfile = await readDockerfile(request);
  let files: ContextFile[] = request.contextDir ? await collectContextDirectory(request.contextDir, { dockerfilePath: dockerfile.absolute }) : [];
  files = withParents([...files, ...(request.files ?? [])]);
  let dockerfilePath = dockerfile.contextPath;
  if (!dockerfilePath || !files.some((file) => file.path === dockerfilePath)) {
    dockerfilePath = dockerfilePath ?? 'Dockerfile.imgbuild';
    files = files.filter((file) => file.path !== dockerfilePath);
    files.push({ path: dockerfilePath, type: 'file', mode: 0o644, size: Buffer.byteLength(dockerfile.text), content: Buffer.from(dockerfile.text) });
  }
  return { files, dockerfilePath, dockerfileText: dockerfile.text };
}

export interface BuildInputsRequest {
  identity: BuildIdentity;
  files: ContextFile[];
  /** Registries the build reads or writes: their local credentials go into the Secret, and `--ca-file` applies to them. */
  registries: string[];
  receiver: string | ContextReceiver;
  credentials?: CredentialStore;
  /** An existing dockerconfigjson Secret instead of one made from `credentials`. */
  registrySecret?: string;
  caFile?: string;
  /** Rendering for `--dry-run`: a context too big for a ConfigMap is not written out. */
  forDisplay: boolean;
  /** How long the init container waits for a streamed context. */
  streamWaitSeconds?: number;
}

export interface BuildInputs {
  /** The Secret, the CA ConfigMap and the context ConfigMap, as far as the build needs them. */
  objects: (V1ConfigMap | V1Secret)[];
  credentialsSecret?: string;
  caConfigMap?: string;
  delivery: RenderedDelivery;
  streamed?: TarFile;
}

export async function prepareBuildInputs(request: BuildInputsRequest): Promise<BuildInputs> {
  const { identity, files } = request;
  const objects: (V1ConfigMap | V1Secret)[] = [renderOwnerConfigMap(identity)];
  let credentialsSecret = request.registrySecret;
  if (!credentialsSecret && request.credentials) {
    const auths = await credentialsFor(request.credentials, request.registries);
    if (auths) {
      credentialsSecret = objectName(identity, 'credentials');
      objects.push(renderDockerConfigSecret(identity, credentialsSecret, auths));
    }
  }
  let caConfigMap: string | undefined;
  if (request.caFile) {
    const pem = await readFile(request.caFile).catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`cannot read --ca-file ${request.caFile}: ${error.code ?? error.message}`, { hint: "give a PEM file with the registry's CA certificate" });
    });
    caConfigMap = objectName(identity, 'ca');
    objects.push(renderConfigMap(identity, caConfigMap, 'ca', { 'ca.crt': pem }));
  }
  let streamed: TarFile | undefined;
  let delivery: RenderedDelivery;
  if (fitsInConfigMap(files)) {
    delivery = renderConfigMapDelivery(identity, request.receiver, files, await readContextContents(files));
    objects.push(delivery.configMap!);
  } else {
    delivery = renderExecDelivery(request.receiver, request.streamWaitSeconds ?? 600);
    // imgbuild keeps the files' mtimes (they go into its layers unless SOURCE_DATE_EPOCH is set).
    if (!request.forDisplay) streamed = await tarToFile(files, { keepMtimes: typeof request.receiver !== 'string' && request.receiver.kind === 'imgbuild' });
  }
  return { objects, credentialsSecret, caConfigMap, delivery, streamed };
}
