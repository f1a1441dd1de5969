/**
 * Running a command once in a pod from a built image (`--verify-command`, `verify --in-cluster`):
 * the pod is followed, its output checked, and (with a digest) its imageID compared. The pod is
 * deleted by the caller's cleanup, with the build's other objects.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Digest } from '../../digest.js';
import { VerifyFailure } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { parseReference } from '../../reference.js';
import { diagnoseStuck, type DiagnosisContext } from '../diagnose.js';
import { type BuildIdentity, renderVerificationPod } from '../render/objects.js';
import type { ClusterApi } from './api.js';
import { ClusterBuildError, containerStatus, throwIfAborted } from './build-job.js';
import { type PodChanges, watchPodChanges } from './changes.js';
import { followContainerLog } from './follow.js';

/** Between status reads when no watch event wakes the loop sooner (see changes.ts). */
const POLL_MS = 1000;

/** Replaces the registry part of a reference (`--pull-via localhost:5000`). */
export function pullReference(reference: string, pullVia?: string): string {
  if (!pullVia) return reference;
  const ref = parseReference(reference);
  return `${pullVia}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
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
  /** Run as a non-root user with nothing else allowed, so the pod passes Pod Security "restricted". */
  restricted?: boolean;
  logger?: Logger;
}

/** Runs `command` in a pod from `image`, follows its log and checks it; the pod is deleted by the caller's cleanup. */
export async function verifyInCluster(api: ClusterApi, identity: BuildIdentity, options: InClusterVerifyOptions): Promise<{ image: string; output: string; imageId?: string }> {
  const pod = renderVerificationPod({ identity, image: options.image, command: options.command, activeDeadlineSeconds: 600, restricted: options.restricted });
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
    if (stuck) throw new ClusterBuildError(`verification pod: ${stuck.message}`, { hint: stuck.hint });
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

