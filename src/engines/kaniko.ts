/**
 * The Kaniko engine: a Dockerfile and a context built by the Kaniko executor in a Kubernetes Job,
 * followed live, its digest taken from the container's termination message, every object deleted
 * on success, failure and interrupt. Rendering is pure (kaniko-render.ts, kubernetes/render);
 * this module is the I/O around it.
 */
import type { V1ConfigMap, V1Job, V1Secret } from '@kubernetes/client-node';
import type { Digest } from '../digest.js';
import { UsageError } from '../errors.js';
import { monotonicMs, silentLogger, type Logger } from '../logger.js';
import { parseReference, repositoryName } from '../reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { CredentialStore } from '../registry/credentials.js';
import { collectBuildContext, newBuildIdentity, prepareBuildInputs } from '../kubernetes/build-inputs.js';
import { resolveCluster, type ClusterOptions, type ResolvedCluster } from '../kubernetes/config.js';
import type { ContextFile } from '../kubernetes/context-files.js';
import type { DiagnosisContext } from '../kubernetes/diagnose.js';
import { type BuildIdentity, renderBuildJob, renderYaml } from '../kubernetes/render/objects.js';
import { ClusterApi } from '../kubernetes/run/api.js';
import { BUILD_JOB_TTL_SECONDS, ClusterBuildError, confirmInRegistry, podSeconds, runBuildJob, type TarFile } from '../kubernetes/run/build-job.js';
import { pullReference, verifyInCluster } from '../kubernetes/run/verify.js';
import { baseRegistries, DEFAULT_KANIKO_IMAGE, renderKanikoContainer } from './kaniko-render.js';

// Shared with the in-cluster direct engine; exported here under the names callers already use.
export { BuildInterrupted, ClusterBuildError as KanikoBuildError } from '../kubernetes/run/build-job.js';
export { pullReference, verifyInCluster, type InClusterVerifyOptions } from '../kubernetes/run/verify.js';
const KanikoBuildError = ClusterBuildError;

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
  /** Seconds from the pod's start to Kaniko's exit with the digest. */
  podSeconds?: number;
  totalSeconds: number;
}

interface Prepared {
  identity: BuildIdentity;
  objects: (V1ConfigMap | V1Secret | V1Job)[];
  job: V1Job;
  streamed?: TarFile;
  diagnosisContext: DiagnosisContext;
  kanikoImage: string;
  initImage: string;
}

/** Renders every object of the build (the pure part plus reading the context and credentials). */
async function prepare(request: KanikoBuildRequest, namespace: string, forDisplay: boolean): Promise<Prepared> {
  const env = process.env;
  const kanikoImage = request.kanikoImage ?? env.IMGBUILD_KANIKO_IMAGE ?? DEFAULT_KANIKO_IMAGE;
  const initImage = request.initImage ?? env.IMGBUILD_INIT_IMAGE ?? kanikoImage;
  const identity = newBuildIdentity(namespace, request.buildId);
  const destination = parseReference(request.destination);
  if (destination.digest) throw new UsageError(`--to ${request.destination} names a digest`, 'the destination must be a tag, e.g. --to registry:5000/app:v2');

  const { files, dockerfilePath, dockerfileText } = await collectBuildContext(request);
  const registries = [...new Set([destination.registry, ...baseRegistries(dockerfileText), ...(request.cacheRepo ? [parseReference(request.cacheRepo).registry] : [])])];
  const inputs = await prepareBuildInputs({
    identity,
    files,
    registries,
    receiver: initImage,
    credentials: request.credentials,
    registrySecret: request.registrySecret,
    caFile: request.caFile,
    forDisplay,
  });
  const { delivery, credentialsSecret } = inputs;
  const caBundle = inputs.caConfigMap ? { configMapName: inputs.caConfigMap, registries } : undefined;
  const objects: (V1ConfigMap | V1Secret | V1Job)[] = [...inputs.objects];
  const timeout = request.timeoutSeconds;
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
    ttlSecondsAfterFinished: BUILD_JOB_TTL_SECONDS,
  });
  objects.push(job);
  return {
    identity,
    objects,
    job,
    streamed: inputs.streamed,
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

const DIGEST = /sha256:[0-9a-f]{64}/;

/** Runs the build and returns what was pushed. Every object is deleted at the end unless `keep`. */
export async function buildWithKaniko(request: KanikoBuildRequest): Promise<KanikoBuildResult> {
  const started = monotonicMs();
  const logger = request.logger ?? silentLogger;
  const cluster: ResolvedCluster = resolveCluster(request.cluster);
  const api = new ClusterApi(cluster);
  const prepared = await prepare(request, cluster.namespace, false);
  const plan = { ...prepared, builder: 'kaniko', receiver: prepared.initImage };
  const hooks = { logger, keep: request.keep, signal: request.signal, onLog: request.onLog, onContextProgress: request.onContextProgress };
  return runBuildJob(api, plan, hooks, async (finished) => {
    const result = await digestResult(request, prepared, finished.terminated, finished.logTail, logger);
    result.podSeconds = podSeconds(finished);
    if (request.verify) result.verification = await runVerification(request, api, prepared.identity, prepared.diagnosisContext, result, request.onLog ?? (() => {}));
    result.totalSeconds = (monotonicMs() - started) / 1000;
    return result;
  });
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
      hint: "check that the Kaniko image is a real executor (--kaniko-image) and that the pod's /dev/termination-log is writable",
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
  const confirmation = await confirmInRegistry(request.destination, digest, request.clientFor, 'Kaniko', logger);
  return { ...result, ...confirmation };
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

