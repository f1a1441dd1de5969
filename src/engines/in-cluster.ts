/**
 * The direct engine in the cluster (`add/build --in-cluster`): the same imgbuild command runs as
 * a Job's pod that passes Pod Security "restricted", from the one-file bundle (sent in a
 * ConfigMap) on a Node image, or from a runner image that holds it. Its result comes back in the
 * termination message and is confirmed against the registry when this machine reaches it. The
 * Job, context delivery, credentials, following, diagnosis and cleanup are the Kubernetes
 * module's, shared with the Kaniko engine.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { V1ConfigMap, V1Job, V1Secret } from '@kubernetes/client-node';
import type { Digest } from '../digest.js';
import { InputError, UsageError } from '../errors.js';
import { monotonicMs, silentLogger, type Logger } from '../logger.js';
import { parseReference } from '../reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { CredentialStore } from '../registry/credentials.js';
import { collectBuildContext, newBuildIdentity, prepareBuildInputs } from '../kubernetes/build-inputs.js';
import { resolveCluster, type ClusterOptions } from '../kubernetes/config.js';
import { type ContextFile, withParents } from '../kubernetes/context-files.js';
import type { DiagnosisContext } from '../kubernetes/diagnose.js';
import { type BuildIdentity, renderBuildJob, renderYaml } from '../kubernetes/render/objects.js';
import { ClusterApi } from '../kubernetes/run/api.js';
import { BUILD_JOB_TTL_SECONDS, ClusterBuildError, confirmInRegistry, podSeconds, runBuildJob, type BuildJobPlan } from '../kubernetes/run/build-job.js';
import { pullReference, verifyInCluster } from '../kubernetes/run/verify.js';
import type { BuildResult } from './engine.js';
import { baseRegistries } from './kaniko-render.js';
import {
  DEFAULT_NODE_IMAGE,
  DEFAULT_WORKSPACE_SIZE,
  type InPodAdd,
  type InPodBuild,
  inPodAddArgs,
  inPodBuildArgs,
  renderImgbuildPod,
  renderRuntimeConfigMap,
  type Runtime,
} from './in-cluster-render.js';

/** The job: `add` (its context is the files added) or `build` of a RUN-less Dockerfile. */
export type InClusterJob =
  | { kind: 'add'; add: Omit<InPodAdd, 'adds'>; adds: { files: ContextFile[]; workspacePath: string; destination: string }[] }
  | { kind: 'build'; dockerfile: { path: string } | { text: string }; contextDir: string; build: Omit<InPodBuild, 'dockerfile'> };

export interface InClusterBuildRequest {
  job: InClusterJob;
  cluster?: ClusterOptions;
  /** A Node image (default IMGBUILD_NODE_IMAGE, else DEFAULT_NODE_IMAGE): the bundle comes in a ConfigMap. */
  nodeImage?: string;
  /** An image made by `imgbuild runner-image`: it holds the bundle, no ConfigMap is needed. */
  runnerImage?: string;
  /** The bundle to send (default: the one running, or IMGBUILD_BUNDLE). */
  bundlePath?: string;
  insecure?: boolean;
  caFile?: string;
  registrySecret?: string;
  credentials?: CredentialStore;
  /** When the destination is reachable from here, the tag is checked to serve the digest the pod reported. */
  clientFor?: (registry: string) => RegistryClient;
  sourceDateEpoch?: number;
  cpu?: string;
  memory?: string;
  timeoutSeconds?: number;
  keep?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  verify?: { command: string; expectOutput?: string; pullVia?: string };
  logger?: Logger;
  onLog?: (container: string, line: string) => void;
  onContextProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  buildId?: string;
}

export interface InClusterBuildResult extends BuildResult {
  inCluster: true;
  buildId: string;
  namespace: string;
  confirmedInRegistry: boolean;
  verification?: { image: string; output: string; imageId?: string };
  /** Seconds the imgbuild container ran (from its start and finish times). */
  builderSeconds?: number;
  /** Seconds from the pod's start to imgbuild's exit with the digest. */
  podSeconds?: number;
  totalSeconds: number;
}

/** The one-file bundle to run in the pod: IMGBUILD_BUNDLE, the running bundle, or the package's dist/imgbuild.mjs. */
export function findBundle(explicit?: string): string {
  const candidates = explicit ? [explicit] : [];
  if (!explicit && process.env.IMGBUILD_BUNDLE) candidates.push(process.env.IMGBUILD_BUNDLE);
  if (!explicit) {
    const self = fileURLToPath(import.meta.url);
    const here = path.dirname(self);
    if (path.basename(self) === 'imgbuild.mjs') candidates.push(self);
    // The imgbuild command runs dist/imgbuild.cjs, next to it; dist/lib/engines/ (the library)
    // and src/engines/ (from source) both reach dist/imgbuild.mjs.
    if (path.basename(self) === 'imgbuild.cjs') candidates.push(path.join(here, 'imgbuild.mjs'));
    candidates.push(path.resolve(here, '../../imgbuild.mjs'), path.resolve(here, '../../dist/imgbuild.mjs'));
  }
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new InputError(`imgbuild's one-file bundle is not there to send to the pod (looked at ${candidates.join(', ')})`, {
      hint: 'run `npm run build` (it makes dist/imgbuild.mjs), set IMGBUILD_BUNDLE, or use --runner-image with an image made by `imgbuild runner-image`',
    });
  }
  return found;
}

interface Prepared extends BuildJobPlan {
  objects: (V1ConfigMap | V1Secret | V1Job)[];
  destination: string;
}

const DIAGNOSIS: Omit<DiagnosisContext, 'timeoutSeconds' | 'memoryLimit'> = {
  imageFlags: { 'prepare-context': '--node-image (or IMGBUILD_NODE_IMAGE), or --runner-image', imgbuild: '--node-image (or IMGBUILD_NODE_IMAGE), or --runner-image', verify: '--pull-via' },
};

async function prepare(request: InClusterBuildRequest, namespace: string, forDisplay: boolean): Promise<Prepared> {
  const identity: BuildIdentity = newBuildIdentity(namespace, request.buildId);
  const { job } = request;
  const destination = job.kind === 'add' ? job.add.to : job.build.to;
  const to = parseReference(destination);
  if (to.digest) throw new UsageError(`--to ${destination} names a digest`, 'the destination must be a tag, e.g. --to registry:5000/app:v2');
  let files: ContextFile[];
  let registries: string[];
  let inPod: (caConfigMap?: string) => string[];
  const registryFlags = { insecure: request.insecure, verbose: request.verbose, quiet: request.quiet };
  if (job.kind === 'add') {
    files = withParents(job.adds.flatMap((spec) => spec.files));
    registries = [...new Set([to.registry, ...(job.add.from === 'scratch' ? [] : [parseReference(job.add.from).registry])])];
    inPod = (caConfigMap) => inPodAddArgs({ ...job.add, adds: job.adds }, { ...registryFlags, caConfigMap });
  } else {
    const context = await collectBuildContext({ dockerfile: job.dockerfile, contextDir: job.contextDir });
    files = context.files;
    registries = [...new Set([to.registry, ...baseRegistries(context.dockerfileText)])];
    inPod = (caConfigMap) => inPodBuildArgs({ ...job.build, dockerfile: context.dockerfilePath }, { ...registryFlags, caConfigMap });
  }

  const objects: (V1ConfigMap | V1Secret | V1Job)[] = [];
  let runtime: Runtime;
  let image: string;
  if (request.runnerImage) {
    runtime = { kind: 'image' };
    image = request.runnerImage;
  } else {
    const runtimeMap = renderRuntimeConfigMap(identity, forDisplay ? Buffer.from('(the gzipped bundle)') : gzipSync(await readFile(findBundle(request.bundlePath)), { level: 9 }));
    objects.push(runtimeMap);
    runtime = { kind: 'configmap', configMapName: runtimeMap.metadata!.name! };
    image = request.nodeImage ?? process.env.IMGBUILD_NODE_IMAGE ?? DEFAULT_NODE_IMAGE;
  }
  // The receiver needs only the runtime; the builder's mounts depend on what the inputs make.
  const receiverOnly = renderImgbuildPod({ image, runtime, args: [] }).receiver;
  const inputs = await prepareBuildInputs({
    identity,
    files,
    registries,
    receiver: receiverOnly,
    credentials: request.credentials,
    registrySecret: request.registrySecret,
    caFile: request.caFile,
    forDisplay,
  });
  objects.push(...inputs.objects);
  const pod = renderImgbuildPod({
    image,
    runtime,
    args: inPod(inputs.caConfigMap),
    credentialsSecret: inputs.credentialsSecret,
    caConfigMap: inputs.caConfigMap,
    sourceDateEpoch: request.sourceDateEpoch,
    cpu: request.cpu,
    memory: request.memory,
  });
  const job_ = renderBuildJob({
    identity,
    initContainer: inputs.delivery.initContainer,
    builder: pod.builder,
    volumes: [...inputs.delivery.volumes, ...pod.volumes],
    podSecurityContext: pod.podSecurityContext,
    activeDeadlineSeconds: request.timeoutSeconds,
    ttlSecondsAfterFinished: BUILD_JOB_TTL_SECONDS,
    workspaceSizeLimit: DEFAULT_WORKSPACE_SIZE,
  });
  objects.push(job_);
  return {
    identity,
    objects,
    job: job_,
    builder: 'imgbuild',
    receiver: pod.receiver,
    streamed: inputs.streamed,
    destination,
    diagnosisContext: { ...DIAGNOSIS, timeoutSeconds: request.timeoutSeconds, memoryLimit: request.memory },
  };
}

function namespaceFor(cluster: ClusterOptions | undefined): string {
  if (cluster?.namespace) return cluster.namespace;
  try {
    return resolveCluster(cluster).namespace;
  } catch {
    return 'default';
  }
}

/** `--dry-run`: the objects the build would apply, as multi-document YAML (no secret material, the bundle elided). */
export async function renderInClusterBuild(request: InClusterBuildRequest): Promise<string> {
  const prepared = await prepare(request, namespaceFor(request.cluster), true);
  return renderYaml(prepared.objects);
}

/** What imgbuild in the pod wrote to its termination message: `{"result": {...}}` or `{"error": {...}}`. */
export function parsePodResult(message: string | undefined): Omit<BuildResult, 'engine'> & { engine?: string } {
  let parsed: { result?: BuildResult } | undefined;
  try {
    parsed = message ? (JSON.parse(message) as { result?: BuildResult }) : undefined;
  } catch {
    parsed = undefined;
  }
  const result = parsed?.result;
  if (!result || !/^sha256:[0-9a-f]{64}$/.test(result.digest ?? '') || typeof result.reference !== 'string') {
    throw new ClusterBuildError(`imgbuild in the pod exited 0 but its termination message holds no result: ${(message ?? '').slice(0, 200) || '(empty)'}`, {
      hint: "the node image must run the bundle with node (its entrypoint), and the pod's /dev/termination-log must be writable; rerun with --keep and look at the pod",
    });
  }
  return result;
}

/** Runs the job in the cluster and returns what the pod pushed. Every object is deleted at the end unless `keep`. */
export async function buildInCluster(request: InClusterBuildRequest): Promise<InClusterBuildResult> {
  const started = monotonicMs();
  const logger = request.logger ?? silentLogger;
  const api = new ClusterApi(resolveCluster(request.cluster));
  const prepared = await prepare(request, api.namespace, false);
  const hooks = { logger, keep: request.keep, signal: request.signal, onLog: request.onLog, onContextProgress: request.onContextProgress };
  return runBuildJob(api, prepared, hooks, async (finished) => {
    const { terminated } = finished;
    const pushed = parsePodResult(terminated.message);
    const digest = pushed.digest as Digest;
    const confirmation = await confirmInRegistry(prepared.destination, digest, request.clientFor, 'imgbuild in the pod', logger);
    const result: InClusterBuildResult = {
      ...pushed,
      engine: 'direct',
      inCluster: true,
      buildId: prepared.identity.buildId,
      namespace: api.namespace,
      confirmedInRegistry: confirmation.confirmedInRegistry,
      totalSeconds: 0,
    };
    result.podSeconds = podSeconds(finished);
    if (terminated.startedAt && terminated.finishedAt) result.builderSeconds = (new Date(terminated.finishedAt).getTime() - new Date(terminated.startedAt).getTime()) / 1000;
    if (request.verify) {
      const image = pullReference(result.reference, request.verify.pullVia);
      result.verification = await verifyInCluster(api, prepared.identity, {
        image,
        command: request.verify.command,
        expectOutput: request.verify.expectOutput,
        digest,
        diagnosisContext: prepared.diagnosisContext,
        onLog: request.onLog,
        signal: request.signal,
        restricted: true,
      });
    }
    result.totalSeconds = (monotonicMs() - started) / 1000;
    return result;
  });
}
