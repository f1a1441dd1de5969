/**
 * The Kaniko engine: a Dockerfile and a context built by the Kaniko executor in a Kubernetes Job,
 * followed live, its digest taken from the container's termination message, every object deleted
 * on success, failure and interrupt. Rendering is pure (kaniko-render.ts, kubernetes/render);
 * this module is the I/O around it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { V1ConfigMap, V1Job, V1Pod, V1Secret, CoreV1Event } from '@kubernetes/client-node';
import type { Digest } from '../digest.js';
import { ImgbuildError, InputError, UsageError, VerifyFailure } from '../errors.js';
import { inspectImage } from '../inspect.js';
import { silentLogger, type Logger } from '../logger.js';
import { parseReference, repositoryName } from '../reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { CredentialStore } from '../registry/credentials.js';
import { resolveCluster, type ClusterOptions, type ResolvedCluster } from '../kubernetes/config.js';
import { collectContextDirectory, contextTar, readContextContents, withParents, type ContextFile } from '../kubernetes/context-files.js';
import { diagnoseFailure, diagnoseStuck, isExplicitErrorLine, type BuildSnapshot, type Diagnosis, type DiagnosisContext } from '../kubernetes/diagnose.js';
import { fitsInConfigMap, renderConfigMapDelivery, renderExecDelivery } from '../kubernetes/render/context-delivery.js';
import {
  type BuildIdentity,
  type DockerConfigAuths,
  objectName,
  renderBuildJob,
  renderConfigMap,
  renderDockerConfigSecret,
  renderVerificationPod,
  renderYaml,
} from '../kubernetes/render/objects.js';
import { ClusterApi } from '../kubernetes/run/api.js';
import { deleteBuildObjects, deleteObjects } from '../kubernetes/run/cleanup.js';
import { type PodChanges, watchPodChanges } from '../kubernetes/run/changes.js';
import { followContainerLog } from '../kubernetes/run/follow.js';
import { streamContext } from '../kubernetes/run/stream-context.js';
import { baseRegistries, DEFAULT_KANIKO_IMAGE, renderKanikoContainer } from './kaniko-render.js';

export interface KanikoBuildRequest {
  /** The Dockerfile: its text, or a path (absolute, or relative to the context directory). */
  dockerfile: { text: string } | { path: string };
  /** The context directory (`.dockerignore` honoured); absent for a context made only of `files`. */
  contextDir?: string;
  /** Extra context entries (used by `add`, whose context is the files it adds). */
  files?: ContextFile[];
  /** `registry/repository:tag` as the cluster reaches it. */
  destination: string;
  buildArgs?: string[];
  target?: string;
  labels?: string[];
  cacheRepo?: string;
  cluster?: ClusterOptions;
  /** Default: IMGBUILD_KANIKO_IMAGE, else DEFAULT_KANIKO_IMAGE. */
  kanikoImage?: string;
  /** Default: IMGBUILD_INIT_IMAGE, else the Kaniko (debug) image, which has a busybox shell. */
  initImage?: string;
  insecure?: boolean;
  caFile?: string;
  /** An existing dockerconfigjson Secret instead of one made from the local docker config. */
  registrySecret?: string;
  nonRoot?: boolean;
  cpu?: string;
  memory?: string;
  compressionLevel?: number;
  timeoutSeconds?: number;
  keep?: boolean;
  verify?: { command: string; expectOutput?: string; pullVia?: string };
  /** Local credentials (docker config), copied into the build's Secret for the registries it touches. */
  credentials?: CredentialStore;
  /** When the destination is reachable from here, the tag is checked to serve the built digest. */
  clientFor?: (registry: string) => RegistryClient;
  logger?: Logger;
  /** Each log line of the build and verification containers. */
  onLog?: (container: string, line: string) => void;
  onContextProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /** Names objects (default: random). */
  buildId?: string;
}

export interface KanikoBuildResult {
  /** `registry/repository@sha256:…` */
  reference: string;
  tag: string;
  digest: Digest;
  /** Known when the destination registry is reachable from this machine. */
  mediaType?: string;
  platforms?: string[];
  engine: 'kaniko';
  buildId: string;
  namespace: string;
  digestSource: 'termination-message' | 'log';
  confirmedInRegistry: boolean;
  verification?: { image: string; output: string; imageId?: string };
  /** Seconds the Kaniko container ran (from its start and finish times). */
  builderSeconds?: number;
  totalSeconds: number;
}

/** The build failed in the cluster: a diagnosis with its fix. */
export class KanikoBuildError extends ImgbuildError {}

/** The build was interrupted (Ctrl-C, SIGTERM, an aborted signal); its objects were deleted. */
export class BuildInterrupted extends ImgbuildError {
  constructor(reason: string) {
    super(`build interrupted (${reason}); its objects in the cluster were deleted`, { exitCode: 130 });
  }
}

const TTL_SECONDS = 3600;
/** Between status reads when no watch event wakes the loop sooner (see kubernetes/run/changes.ts). */
const POLL_MS = 1000;
const LOG_TAIL = 60;
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

interface Prepared {
  identity: BuildIdentity;
  objects: (V1ConfigMap | V1Secret | V1Job)[];
  job: V1Job;
  streamed?: { file: string; size: number; sha256: string; dir: string };
  diagnosisContext: DiagnosisContext;
  kanikoImage: string;
  initImage: string;
}

function newBuildId(): string {
  return randomBytes(4).toString('hex');
}

async function resolveDockerfile(request: KanikoBuildRequest): Promise<{ text: string; contextPath?: string }> {
  if ('text' in request.dockerfile) return { text: request.dockerfile.text };
  const given = request.dockerfile.path;
  // A relative path is relative to the context (docker's -f is relative to the working directory: the CLI resolves it first).
  const absolute = path.resolve(request.contextDir ?? '.', given);
  const text = await readFile(absolute, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read the Dockerfile ${given}: ${error.code ?? error.message}`, { hint: 'pass -f PATH to a Dockerfile, or put one named Dockerfile in the context' });
  });
  const relative = request.contextDir ? path.relative(path.resolve(request.contextDir), absolute) : undefined;
  return { text, contextPath: relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative.split(path.sep).join('/') : undefined };
}

async function credentialsFor(store: CredentialStore, registries: string[]): Promise<DockerConfigAuths | undefined> {
  const auths: DockerConfigAuths['auths'] = {};
  for (const registry of registries) {
    const credential = await store.get(registry);
    if (!credential) continue;
    const key = registry === 'docker.io' ? DOCKER_HUB_KEY : registry;
    auths[key] = credential.identityToken
      ? { identitytoken: credential.identityToken, ...(credential.username ? { username: credential.username } : {}) }
      : { auth: Buffer.from(`${credential.username ?? ''}:${credential.password ?? ''}`).toString('base64') };
  }
  return Object.keys(auths).length ? { auths } : undefined;
}

async function tarToFile(files: ContextFile[]): Promise<{ file: string; size: number; sha256: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-context-'));
  const file = path.join(dir, 'context.tar');
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    contextTar(files),
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    }),
    createWriteStream(file),
  );
  return { file, size, sha256: hash.digest('hex'), dir };
}

/** Renders every object of the build (the pure part plus reading the context and credentials). */
async function prepare(request: KanikoBuildRequest, namespace: string, forDisplay: boolean): Promise<Prepared> {
  const env = process.env;
  const kanikoImage = request.kanikoImage ?? env.IMGBUILD_KANIKO_IMAGE ?? DEFAULT_KANIKO_IMAGE;
  const initImage = request.initImage ?? env.IMGBUILD_INIT_IMAGE ?? kanikoImage;
  const identity: BuildIdentity = { buildId: request.buildId ?? newBuildId(), namespace, createdAt: new Date().toISOString() };
  const destination = parseReference(request.destination);
  if (destination.digest) throw new UsageError(`--to ${request.destination} names a digest`, 'the destination must be a tag, e.g. --to registry:5000/app:v2');

  const dockerfile = await resolveDockerfile(request);
  let files: ContextFile[] = request.contextDir ? await collectContextDirectory(request.contextDir) : [];
  files = withParents([...files, ...(request.files ?? [])]);
  let dockerfilePath = dockerfile.contextPath;
  if (!dockerfilePath || !files.some((file) => file.path === dockerfilePath)) {
    dockerfilePath = dockerfilePath ?? 'Dockerfile.imgbuild';
    files = files.filter((file) => file.path !== dockerfilePath);
    files.push({ path: dockerfilePath, type: 'file', mode: 0o644, size: Buffer.byteLength(dockerfile.text), content: Buffer.from(dockerfile.text) });
  }

  const registries = [...new Set([destination.registry, ...baseRegistries(dockerfile.text), ...(request.cacheRepo ? [parseReference(request.cacheRepo).registry] : [])])];
  const objects: (V1ConfigMap | V1Secret | V1Job)[] = [];

  let credentialsSecret = request.registrySecret;
  if (!credentialsSecret && request.credentials) {
    const auths = await credentialsFor(request.credentials, registries);
    if (auths) {
      credentialsSecret = objectName(identity, 'credentials');
      objects.push(renderDockerConfigSecret(identity, credentialsSecret, auths));
    }
  }
  let caBundle: { configMapName: string; registries: string[] } | undefined;
  if (request.caFile) {
    const pem = await readFile(request.caFile).catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`cannot read --ca-file ${request.caFile}: ${error.code ?? error.message}`, { hint: 'give a PEM file with the registry\'s CA certificate' });
    });
    caBundle = { configMapName: objectName(identity, 'ca'), registries };
    objects.push(renderConfigMap(identity, caBundle.configMapName, 'ca', { 'ca.crt': pem }));
  }

  const timeout = request.timeoutSeconds;
  let streamed: Prepared['streamed'];
  let delivery;
  if (fitsInConfigMap(files)) {
    delivery = renderConfigMapDelivery(identity, initImage, files, await readContextContents(files));
    objects.push(delivery.configMap!);
  } else {
    delivery = renderExecDelivery(initImage, 600);
    if (!forDisplay) streamed = await tarToFile(files);
  }
  const kaniko = renderKanikoContainer({
    destination: request.destination,
    dockerfile: dockerfilePath,
    buildArgs: request.buildArgs,
    target: request.target,
    labels: request.labels,
    cacheRepo: request.cacheRepo,
    insecure: request.insecure,
    caBundle,
    credentialsSecret,
    nonRoot: request.nonRoot,
    cpu: request.cpu,
    memory: request.memory,
    compressionLevel: request.compressionLevel,
    kanikoImage,
  });
  const job = renderBuildJob({
    identity,
    initContainer: delivery.initContainer,
    builder: kaniko.container,
    volumes: [...delivery.volumes, ...kaniko.volumes],
    podSecurityContext: kaniko.podSecurityContext,
    activeDeadlineSeconds: timeout,
    ttlSecondsAfterFinished: TTL_SECONDS,
  });
  objects.push(job);
  return {
    identity,
    objects,
    job,
    streamed,
    kanikoImage,
    initImage,
    diagnosisContext: {
      imageFlags: { 'prepare-context': '--init-image (or IMGBUILD_INIT_IMAGE)', kaniko: '--kaniko-image (or IMGBUILD_KANIKO_IMAGE)', verify: '--pull-via' },
      nonRoot: request.nonRoot,
      timeoutSeconds: timeout,
      memoryLimit: request.memory,
    },
  };
}

/** `--dry-run`: the objects the build would apply, as multi-document YAML (no secret material). */
export async function renderKanikoBuild(request: KanikoBuildRequest): Promise<string> {
  let namespace = request.cluster?.namespace;
  if (!namespace) {
    try {
      namespace = resolveCluster(request.cluster).namespace;
    } catch {
      namespace = 'default';
    }
  }
  const prepared = await prepare(request, namespace, true);
  return renderYaml(prepared.objects);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new BuildInterrupted(String(signal.reason ?? 'aborted'));
}

async function snapshot(api: ClusterApi, jobName: string, buildId: string, withEvents: boolean): Promise<BuildSnapshot> {
  const [job, pods] = await Promise.all([
    api.read<V1Job>('batch/v1', 'Job', jobName),
    api.list<V1Pod>('v1', 'Pod', { label: `job-name=${jobName}` }),
  ]);
  const pod = pods.find((item) => item.metadata?.labels?.['imgbuild.dev/build-id'] === buildId) ?? pods[0];
  let events: CoreV1Event[] = [];
  if (withEvents) {
    const names = [jobName, pod?.metadata?.name].filter((name): name is string => Boolean(name));
    const lists = await Promise.all(names.map((name) => api.list<CoreV1Event>('v1', 'Event', { field: `involvedObject.name=${name}` }).catch(() => [] as CoreV1Event[])));
    events = lists.flat();
  }
  return { job, pod, events };
}

function containerStatus(pod: V1Pod | undefined, name: string) {
  return [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])].find((status) => status.name === name);
}

const DIGEST = /sha256:[0-9a-f]{64}/;

/** Runs the build and returns what was pushed. Every object is deleted at the end unless `keep`. */
export async function buildWithKaniko(request: KanikoBuildRequest): Promise<KanikoBuildResult> {
  const started = performance.now();
  const logger = request.logger ?? silentLogger;
  const cluster: ResolvedCluster = resolveCluster(request.cluster);
  const api = new ClusterApi(cluster);
  const prepared = await prepare(request, cluster.namespace, false);
  const { identity } = prepared;
  const jobName = prepared.job.metadata!.name!;
  const signal = request.signal;
  const onLog = request.onLog ?? (() => {});
  logger.info(`building in namespace ${cluster.namespace} (context ${cluster.contextName}) as job/${jobName}`);
  let created = false;
  // The build's own objects go as soon as it has finished, while the verification pod runs.
  let deletingBuild: Promise<void> = Promise.resolve();
  try {
    throwIfAborted(signal);
    // In order: the Job last, so its pod never starts without its volumes.
    for (const object of prepared.objects) {
      created = true;
      await api.create(object);
    }
    logger.debug(`created ${prepared.objects.map((object) => `${object.kind!.toLowerCase()}/${object.metadata!.name}`).join(', ')}`);
    const result = await watchBuild(request, api, prepared, jobName, onLog, logger);
    logger.debug(`digest ${result.digest} (from the ${result.digestSource})`);
    // A failure here is retried (and reported) by the deletion by label at the end.
    if (!request.keep) deletingBuild = deleteObjects(api, prepared.objects).catch(() => {});
    if (request.verify) result.verification = await runVerification(request, api, identity, prepared.diagnosisContext, result, onLog);
    result.totalSeconds = (performance.now() - started) / 1000;
    return result;
  } catch (error) {
    if (signal?.aborted && !(error instanceof BuildInterrupted)) throw new BuildInterrupted(String(signal.reason ?? 'aborted'));
    throw error;
  } finally {
    if (prepared.streamed) await rm(prepared.streamed.dir, { recursive: true, force: true });
    if (created && !request.keep) {
      const count = await Promise.all([deletingBuild, deleteBuildObjects(api, identity.buildId)]).then(
        ([, deleted]) => deleted,
        (error: Error) => {
          logger.warn(`could not delete the build's objects (build id ${identity.buildId}): ${error.message}; \`imgbuild clean\` removes them later`);
          return 0;
        },
      );
      logger.debug(`deleted the objects of build ${identity.buildId} (${count} found by label at the end)`);
    } else if (created) {
      logger.info(`kept the build's objects (label imgbuild.dev/build-id=${identity.buildId}); \`imgbuild clean\` deletes them`);
    }
  }
}

async function watchBuild(request: KanikoBuildRequest, api: ClusterApi, prepared: Prepared, jobName: string, onLog: (container: string, line: string) => void, logger: Logger): Promise<KanikoBuildResult> {
  const signal = request.signal;
  const { identity } = prepared;
  const tail: string[] = [];
  let errorLine: string | undefined;
  const logTail = () => (errorLine && !tail.includes(errorLine) ? [errorLine, ...tail] : tail);
  const followers = new Map<string, Promise<void>>();
  let latest: BuildSnapshot = { events: [] };
  let contextSent = false;
  let eventsReadAt = 0;
  const seen = new Set<string>();
  /** Logs (at debug level, with the time since start) each state a container reaches, once. */
  const trace = (what: string) => {
    if (!seen.has(what)) logger.debug(what);
    seen.add(what);
  };
  const follow = (podName: string, container: string) => {
    if (followers.has(container)) return;
    followers.set(
      container,
      followContainerLog(api, {
        pod: podName,
        container,
        signal,
        terminated: () => containerStatus(latest.pod, container)?.state?.terminated !== undefined,
        onLine: (line) => {
          if (container === 'kaniko') {
            tail.push(line);
            if (tail.length > LOG_TAIL) tail.shift();
            // Kaniko prints its usage after some errors, which pushes the error out of the tail.
            if (isExplicitErrorLine(line)) errorLine = line;
          }
          onLog(container, line);
        },
      }),
    );
  };
  const changes = watchPodChanges(api, { label: `job-name=${jobName}` });
  try {
    for (;;) {
      throwIfAborted(signal);
      // Events only while something may be wrong: before the pod runs, or every few seconds.
      const pending = !latest.pod || latest.pod.status?.phase === 'Pending';
      const withEvents = (pending && Date.now() - eventsReadAt >= POLL_MS / 2) || Date.now() - eventsReadAt >= 5 * POLL_MS;
      if (withEvents) eventsReadAt = Date.now();
      latest = await snapshot(api, jobName, identity.buildId, withEvents);
      const stuck = diagnoseStuck(latest, prepared.diagnosisContext);
      if (stuck) throw new KanikoBuildError(stuck.message, { hint: stuck.hint });
      const pod = latest.pod;
      const podName = pod?.metadata?.name;
      if (pod && podName) {
        const init = containerStatus(pod, 'prepare-context');
        for (const [name, status] of [['prepare-context', init], ['kaniko', containerStatus(pod, 'kaniko')]] as const) {
          if (status?.state?.running) trace(`${name}: running`);
          if (status?.state?.terminated) trace(`${name}: terminated (exit ${status.state.terminated.exitCode})`);
        }
        if (init?.state?.running || init?.state?.terminated) follow(podName, 'prepare-context');
        if (prepared.streamed && !contextSent && init?.state?.running) {
          logger.info(`streaming the context (${prepared.streamed.size} bytes of tar) into ${podName}`);
          await streamContext(api, podName, 'prepare-context', prepared.streamed, { onProgress: request.onContextProgress, signal });
          logger.debug('context received and checked');
          contextSent = true;
        }
        const kaniko = containerStatus(pod, 'kaniko');
        if (kaniko?.state?.running || kaniko?.state?.terminated) follow(podName, 'kaniko');
        const terminated = kaniko?.state?.terminated;
        const initFailed = init?.state?.terminated && init.state.terminated.exitCode !== 0;
        if (terminated || initFailed || pod.status?.phase === 'Failed') {
          await Promise.all(followers.values());
          logger.debug('logs drained');
          if (terminated?.exitCode === 0) return digestResult(request, prepared, terminated, tail, logger);
          const final = await snapshot(api, jobName, identity.buildId, true);
          final.logTail = logTail();
          final.observedAt = new Date();
          const diagnosis: Diagnosis = diagnoseFailure(final.pod ? final : { ...final, pod }, prepared.diagnosisContext);
          throw new KanikoBuildError(diagnosis.message, { hint: diagnosis.hint });
        }
      }
      const failed = latest.job?.status?.conditions?.find((condition) => condition.type === 'Failed' && condition.status === 'True');
      if (failed) {
        const diagnosis = diagnoseFailure({ ...latest, logTail: logTail() }, prepared.diagnosisContext);
        throw new KanikoBuildError(diagnosis.message, { hint: diagnosis.hint });
      }
      await changes.next(POLL_MS, signal);
    }
  } finally {
    changes.stop();
  }
}

async function digestResult(
  request: KanikoBuildRequest,
  prepared: Prepared,
  terminated: { message?: string; startedAt?: Date; finishedAt?: Date },
  tail: string[],
  logger: Logger,
): Promise<KanikoBuildResult> {
  const destination = parseReference(request.destination);
  // Kaniko writes the digest file before it pushes: it is trusted only because the container exited 0.
  let digest = DIGEST.exec(terminated.message ?? '')?.[0] as Digest | undefined;
  let digestSource: KanikoBuildResult['digestSource'] = 'termination-message';
  if (!digest) {
    const pushed = [...tail].reverse().find((line) => /Pushed .*@sha256:/.test(line));
    digest = pushed ? (DIGEST.exec(pushed)?.[0] as Digest) : undefined;
    digestSource = 'log';
  }
  if (!digest) {
    throw new KanikoBuildError('Kaniko exited 0 but reported no digest (no termination message, no "Pushed ...@sha256:" line)', {
      hint: 'check that the Kaniko image is a real executor (--kaniko-image) and that the pod\'s /dev/termination-log is writable',
    });
  }
  const result: KanikoBuildResult = {
    reference: `${repositoryName(destination)}@${digest}`,
    tag: destination.tag ?? 'latest',
    digest,
    engine: 'kaniko',
    buildId: prepared.identity.buildId,
    namespace: prepared.identity.namespace,
    digestSource,
    confirmedInRegistry: false,
    totalSeconds: 0,
  };
  if (terminated.startedAt && terminated.finishedAt) result.builderSeconds = (new Date(terminated.finishedAt).getTime() - new Date(terminated.startedAt).getTime()) / 1000;
  if (request.clientFor) {
    try {
      const served = await inspectImage(request.destination, request.clientFor);
      if (served.digest !== digest) {
        throw new KanikoBuildError(`${request.destination} serves ${served.digest}, not the ${digest} Kaniko reported`, {
          hint: 'another push moved the tag meanwhile, or Kaniko pushed elsewhere; check the destination',
        });
      }
      result.confirmedInRegistry = true;
      result.mediaType = served.mediaType;
      result.platforms = served.images.map((image) => image.platform);
    } catch (error) {
      if (error instanceof KanikoBuildError) throw error;
      logger.debug(`not confirmed from here (${(error as Error).message}); the digest is Kaniko's`);
    }
  }
  return result;
}

/** Replaces the registry part of a reference (`--pull-via localhost:5000`). */
export function pullReference(reference: string, pullVia?: string): string {
  if (!pullVia) return reference;
  const ref = parseReference(reference);
  return `${pullVia}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
}

async function runVerification(
  request: KanikoBuildRequest,
  api: ClusterApi,
  identity: BuildIdentity,
  diagnosisContext: DiagnosisContext,
  result: KanikoBuildResult,
  onLog: (container: string, line: string) => void,
): Promise<NonNullable<KanikoBuildResult['verification']>> {
  const verify = request.verify!;
  const image = pullReference(result.reference, verify.pullVia);
  return verifyInCluster(api, identity, { image, command: verify.command, expectOutput: verify.expectOutput, digest: result.digest, diagnosisContext, onLog, signal: request.signal, logger: request.logger });
}

export interface InClusterVerifyOptions {
  image: string;
  command: string;
  expectOutput?: string;
  /** When set, the pod's imageID must carry this digest. */
  digest?: Digest;
  diagnosisContext?: DiagnosisContext;
  onLog?: (container: string, line: string) => void;
  signal?: AbortSignal;
  logger?: Logger;
}

/** Runs `command` in a pod from `image`, follows its log and checks it; the pod is deleted by the caller's cleanup. */
export async function verifyInCluster(api: ClusterApi, identity: BuildIdentity, options: InClusterVerifyOptions): Promise<{ image: string; output: string; imageId?: string }> {
  const pod = renderVerificationPod({ identity, image: options.image, command: options.command, activeDeadlineSeconds: 600 });
  const name = pod.metadata!.name!;
  const changes = watchPodChanges(api, { field: `metadata.name=${name}` });
  try {
    await api.create(pod);
    options.logger?.debug(`created pod/${name}`);
    const result = await followVerification(api, name, options, changes);
    options.logger?.debug('verify: terminated, output checked');
    return result;
  } finally {
    changes.stop();
  }
}

async function followVerification(api: ClusterApi, name: string, options: InClusterVerifyOptions, changes: PodChanges): Promise<{ image: string; output: string; imageId?: string }> {
  const lines: string[] = [];
  let latest: V1Pod | undefined;
  let following: Promise<void> | undefined;
  const context = options.diagnosisContext ?? { imageFlags: { verify: '--pull-via' } };
  for (;;) {
    throwIfAborted(options.signal);
    latest = await api.read<V1Pod>('v1', 'Pod', name);
    const status = containerStatus(latest, 'verify');
    const stuck = diagnoseStuck({ pod: latest, events: [] }, context);
    if (stuck) throw new KanikoBuildError(`verification pod: ${stuck.message}`, { hint: stuck.hint });
    if ((status?.state?.running || status?.state?.terminated) && !following) {
      following = followContainerLog(api, {
        pod: name,
        container: 'verify',
        signal: options.signal,
        terminated: () => containerStatus(latest, 'verify')?.state?.terminated !== undefined,
        onLine: (line) => {
          lines.push(line);
          options.onLog?.('verify', line);
        },
      });
    }
    const terminated = status?.state?.terminated;
    if (terminated) {
      await following;
      const output = lines.join('\n');
      const imageId = status?.imageID;
      if (terminated.exitCode !== 0) {
        throw new VerifyFailure(`the verification command exited with code ${terminated.exitCode} in ${options.image}`, { hint: 'its output is above; check --verify-command' });
      }
      if (options.expectOutput !== undefined && output.trimEnd() !== options.expectOutput.trimEnd()) {
        throw new VerifyFailure(`the verification output differs from --expect-output:\n${output}`, { hint: 'the image does not do what you expected; check the build\'s log above' });
      }
      if (options.digest && imageId && !imageId.includes(options.digest)) {
        throw new VerifyFailure(`the verification pod ran ${imageId}, not the built ${options.digest}`, { hint: 'the node pulled another image: check --pull-via names the same registry storage' });
      }
      return { image: options.image, output, imageId };
    }
    await changes.next(POLL_MS, options.signal);
  }
}

