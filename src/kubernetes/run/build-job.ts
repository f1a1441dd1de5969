/**
 * Running one build Job to its end, whichever builder is in it (Kaniko, or imgbuild itself):
 * create its objects, follow the pod and the logs, stream the context when it did not fit in a
 * ConfigMap, stop at once with a diagnosis when the pod is stuck or fails, hand the builder's
 * terminated state to the engine, and delete every object at the end (success, failure, Ctrl-C)
 * unless asked to keep them.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CoreV1Event, V1ConfigMap, V1ContainerStateTerminated, V1Job, V1OwnerReference, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Digest } from '../../digest.js';
import { ImgbuildError } from '../../errors.js';
import { inspectImage } from '../../inspect.js';
import type { Logger } from '../../logger.js';
import type { RegistryClient } from '../../registry/client.js';
import type { CredentialStore } from '../../registry/credentials.js';
import { contextTar, type ContextFile } from '../context-files.js';
import { diagnoseFailure, diagnoseStuck, isExplicitErrorLine, type BuildSnapshot, type DiagnosisContext } from '../diagnose.js';
import type { ContextReceiver } from '../render/context-delivery.js';
import { type BuildIdentity, type DockerConfigAuths, isOwnerConfigMap } from '../render/objects.js';
import type { ClusterApi } from './api.js';
import { watchPodChanges } from './changes.js';
import { deleteBuildObjects, deleteObjects } from './cleanup.js';
import { followContainerLog } from './follow.js';
import { streamContext } from './stream-context.js';

/** The build failed in the cluster: a diagnosis with its fix. */
export class ClusterBuildError extends ImgbuildError {}

/** The build was interrupted (Ctrl-C, SIGTERM, an aborted signal); its objects were deleted. */
export class BuildInterrupted extends ImgbuildError {
  constructor(reason: string) {
    super(`build interrupted (${reason}); its objects in the cluster were deleted`, { exitCode: 130 });
  }
}

/** A context tar written to a temp file, to be streamed over exec. */
export interface TarFile {
  file: string;
  size: number;
  sha256: string;
  dir: string;
}

export interface BuildJobPlan {
  identity: BuildIdentity;
  /** Created in this order; the Job comes last. */
  objects: (V1ConfigMap | V1Secret | V1Job)[];
  job: V1Job;
  /** The container that builds; its termination message carries the result. */
  builder: string;
  /** Who receives a streamed context in the init container (a shell image, or imgbuild). */
  receiver: string | ContextReceiver;
  streamed?: TarFile;
  diagnosisContext: DiagnosisContext;
}

export interface BuildJobHooks {
  logger: Logger;
  keep?: boolean;
  signal?: AbortSignal;
  /** Each log line of the pod's containers. */
  onLog?: (container: string, line: string) => void;
  onContextProgress?: (sent: number, total: number) => void;
}

export interface FinishedBuilder {
  terminated: V1ContainerStateTerminated;
  /** When the kubelet started the pod (before image pulls and the init container). */
  podStartedAt?: Date;
  /** Last lines of the builder's log. */
  logTail: string[];
}

const TTL_SECONDS = 3600;
export const BUILD_JOB_TTL_SECONDS = TTL_SECONDS;
/** Between status reads when no watch event wakes the loop sooner (see changes.ts). */
const POLL_MS = 1000;
const LOG_TAIL = 60;
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** The local credentials for the registries a build touches, as a docker config's `auths`. */
export async function credentialsFor(store: CredentialStore, registries: string[]): Promise<DockerConfigAuths | undefined> {
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

/** The context as a tar in a temp file, with its size and sha256 (checked by the receiver). */
export async function tarToFile(files: ContextFile[], options: { keepMtimes?: boolean } = {}): Promise<TarFile> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-context-'));
  const file = path.join(dir, 'context.tar');
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    contextTar(files, options),
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

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new BuildInterrupted(String(signal.reason ?? 'aborted'));
}

export function containerStatus(pod: V1Pod | undefined, name: string) {
  return [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])].find((status) => status.name === name);
}

async function snapshot(api: ClusterApi, jobName: string, buildId: string, withEvents: boolean): Promise<BuildSnapshot> {
  const [job, pods] = await Promise.all([api.read<V1Job>('batch/v1', 'Job', jobName), api.list<V1Pod>('v1', 'Pod', { label: `job-name=${jobName}` })]);
  const pod = pods.find((item) => item.metadata?.labels?.['imgbuild.dev/build-id'] === buildId) ?? pods[0];
  let events: CoreV1Event[] = [];
  if (withEvents) {
    const names = [jobName, pod?.metadata?.name].filter((name): name is string => Boolean(name));
    const lists = await Promise.all(names.map((name) => api.list<CoreV1Event>('v1', 'Event', { field: `involvedObject.name=${name}` }).catch(() => [] as CoreV1Event[])));
    events = lists.flat();
  }
  return { job, pod, events };
}

/**
 * Runs the build Job and calls `onFinished` when its builder exited 0 (the engine reads its
 * result there and may run a verification pod, before the objects are deleted).
 */
export async function runBuildJob<T>(api: ClusterApi, plan: BuildJobPlan, hooks: BuildJobHooks, onFinished: (finished: FinishedBuilder) => Promise<T>): Promise<T> {
  const { identity } = plan;
  const jobName = plan.job.metadata!.name!;
  const { logger, signal } = hooks;
  logger.info(`building in namespace ${api.namespace} (context ${api.cluster.contextName}) as job/${jobName}`);
  let created = false;
  // The build's own objects go as soon as the builder has finished, while `onFinished` runs (a verification pod).
  let deletingBuild: Promise<void> = Promise.resolve();
  try {
    throwIfAborted(signal);
    let owner: V1OwnerReference | undefined;
    for (const object of plan.objects) {
      created = true;
      const made = await api.create(owner ? { ...object, metadata: { ...object.metadata, ownerReferences: [owner] } } : object);
      if (isOwnerConfigMap(object)) owner = { apiVersion: 'v1', kind: 'ConfigMap', name: made.metadata!.name!, uid: made.metadata!.uid! };
    }
    logger.debug(`created ${plan.objects.map((object) => `${object.kind!.toLowerCase()}/${object.metadata!.name}`).join(', ')}`);
    const finished = await watchBuild(api, plan, jobName, hooks);
    // A failure here is retried (and reported) by the deletion by label at the end.
    if (!hooks.keep) deletingBuild = deleteObjects(api, plan.objects).catch(() => {});
    return await onFinished(finished);
  } catch (error) {
    if (signal?.aborted && !(error instanceof BuildInterrupted)) throw new BuildInterrupted(String(signal.reason ?? 'aborted'));
    throw error;
  } finally {
    if (plan.streamed) await rm(plan.streamed.dir, { recursive: true, force: true });
    if (created && !hooks.keep) {
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

async function watchBuild(api: ClusterApi, plan: BuildJobPlan, jobName: string, hooks: BuildJobHooks): Promise<FinishedBuilder> {
  const { signal, logger } = hooks;
  const onLog = hooks.onLog ?? (() => {});
  const { identity, builder } = plan;
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
          if (container === builder) {
            tail.push(line);
            if (tail.length > LOG_TAIL) tail.shift();
            // A builder may print its usage after an error, which pushes the error out of the tail.
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
      // Events only while something may be wrong: before the pod runs (at most twice a second), or every few seconds.
      const pending = !latest.pod || latest.pod.status?.phase === 'Pending';
      const sinceEvents = Date.now() - eventsReadAt;
      const withEvents = (pending && sinceEvents >= POLL_MS / 2) || sinceEvents >= 5 * POLL_MS;
      if (withEvents) eventsReadAt = Date.now();
      latest = await snapshot(api, jobName, identity.buildId, withEvents);
      const stuck = diagnoseStuck(latest, plan.diagnosisContext);
      if (stuck) throw new ClusterBuildError(stuck.message, { hint: stuck.hint });
      const pod = latest.pod;
      const podName = pod?.metadata?.name;
      if (pod && podName) {
        const init = containerStatus(pod, 'prepare-context');
        const status = containerStatus(pod, builder);
        for (const [name, state] of [['prepare-context', init?.state], [builder, status?.state]] as const) {
          if (state?.running) trace(`${name}: running`);
          if (state?.terminated) trace(`${name}: terminated (exit ${state.terminated.exitCode})`);
        }
        if (init?.state?.running || init?.state?.terminated) follow(podName, 'prepare-context');
        if (plan.streamed && !contextSent && init?.state?.running) {
          logger.info(`streaming the context (${plan.streamed.size} bytes of tar) into ${podName}`);
          await streamContext(api, podName, 'prepare-context', plan.streamed, { onProgress: hooks.onContextProgress, signal, receiver: plan.receiver });
          logger.debug('context received and checked');
          contextSent = true;
        }
        if (status?.state?.running || status?.state?.terminated) follow(podName, builder);
        const terminated = status?.state?.terminated;
        const initFailed = init?.state?.terminated && init.state.terminated.exitCode !== 0;
        if (terminated || initFailed || pod.status?.phase === 'Failed') {
          await Promise.all(followers.values());
          logger.debug('logs drained');
          if (terminated?.exitCode === 0) return { terminated, podStartedAt: pod.status?.startTime, logTail: [...tail] };
          const final = await snapshot(api, jobName, identity.buildId, true);
          final.logTail = logTail();
          final.observedAt = new Date();
          const diagnosis = diagnoseFailure(final.pod ? final : { ...final, pod }, plan.diagnosisContext);
          throw new ClusterBuildError(diagnosis.message, { hint: diagnosis.hint });
        }
      }
      const failed = latest.job?.status?.conditions?.find((condition) => condition.type === 'Failed' && condition.status === 'True');
      if (failed) {
        const diagnosis = diagnoseFailure({ ...latest, logTail: logTail() }, plan.diagnosisContext);
        throw new ClusterBuildError(diagnosis.message, { hint: diagnosis.hint });
      }
      await changes.next(POLL_MS, signal);
    }
  } finally {
    changes.stop();
  }
}

/** Seconds from the pod's start to the builder's exit (the digest), when both are known. */
export function podSeconds(finished: FinishedBuilder): number | undefined {
  const { podStartedAt } = finished;
  const end = finished.terminated.finishedAt;
  return podStartedAt && end ? (new Date(end).getTime() - new Date(podStartedAt).getTime()) / 1000 : undefined;
}

export interface RegistryConfirmation {
  confirmedInRegistry: boolean;
  mediaType?: string;
  platforms?: string[];
}

/**
 * Checks that `destination` (a tag) serves the digest the pod reported, when this machine can
 * reach the registry (`clientFor` given); a tag serving another digest is an error.
 */
export async function confirmInRegistry(destination: string, digest: Digest, clientFor: ((registry: string) => RegistryClient) | undefined, builderName: string, logger: Logger): Promise<RegistryConfirmation> {
  if (!clientFor) return { confirmedInRegistry: false };
  try {
    const served = await inspectImage(destination, clientFor);
    if (served.digest !== digest) {
      throw new ClusterBuildError(`${destination} serves ${served.digest}, not the ${digest} ${builderName} reported`, {
        hint: `another push moved the tag meanwhile, or ${builderName} pushed elsewhere; check the destination`,
      });
    }
    return { confirmedInRegistry: true, mediaType: served.mediaType, platforms: served.images.map((image) => image.platform) };
  } catch (error) {
    if (error instanceof ClusterBuildError) throw error;
    logger.debug(`not confirmed from here (${(error as Error).message}); the digest is ${builderName}'s`);
    return { confirmedInRegistry: false };
  }
}
