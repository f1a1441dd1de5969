/**
 * Why a build pod is stuck or failed, as a pure function of what the API shows (the Job, its pod,
 * their events) and the tail of the builder's log. Each diagnosis names the cause and the fix, so
 * the client can stop at once instead of waiting for the deadline.
 */
import type { CoreV1Event, V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';

export interface BuildSnapshot {
  job?: V1Job;
  pod?: V1Pod;
  /** Events about the Job and the pod, oldest first. */
  events: CoreV1Event[];
  /** Last lines of the builder's log (for a terminated builder). */
  logTail?: string[];
  /** When the snapshot was taken (the deadline check needs it: the pod dies before the Job says why). */
  observedAt?: Date;
}

export interface DiagnosisContext {
  /** The flag (or environment variable) that sets each container's image, by container name. */
  imageFlags: Record<string, string>;
  nonRoot?: boolean;
  /** Seconds the user allowed (`--timeout`), for DeadlineExceeded. */
  timeoutSeconds?: number;
  /** The builder's memory limit (`--memory`), for a kill the runtime did not label OOMKilled. */
  memoryLimit?: string;
}

export interface Diagnosis {
  message: string;
  hint: string;
}

function statuses(pod: V1Pod | undefined): V1ContainerStatus[] {
  return [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])];
}

/** A problem that will not resolve by waiting, seen while the build has not finished. */
export function diagnoseStuck(snapshot: BuildSnapshot, context: DiagnosisContext): Diagnosis | undefined {
  for (const event of snapshot.events) {
    if (event.reason === 'FailedCreate' && /violates PodSecurity/.test(event.message ?? '')) {
      const level = /PodSecurity "([a-z]+)/.exec(event.message ?? '')?.[1] ?? 'the namespace\'s';
      return {
        message: `the namespace's Pod Security admission (${level}) refused the build pod: ${event.message?.replace(/^Error creating: pods "[^"]*" is forbidden: /, '')}`,
        hint:
          'Kaniko runs as root with CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID and SETGID, which the "baseline" level allows and "restricted" does not: ' +
          'build with --in-cluster instead (the direct engine as a non-root pod that passes "restricted"; Dockerfiles without RUN), ' +
          'build in a namespace labelled pod-security.kubernetes.io/enforce=baseline, or use the direct engine from here (no --engine kaniko)',
      };
    }
    if (event.reason === 'FailedMount' && /(secret|configmap) "[^"]+" not found/i.test(event.message ?? '')) {
      const missing = /((secret|configmap) "[^"]+") not found/i.exec(event.message ?? '')![1];
      return {
        message: `the build pod cannot start: ${missing} does not exist in the namespace (${event.message})`,
        hint: /secret/i.test(missing!) ? 'create it, or check the name given to --registry-secret (it must be in the build\'s namespace)' : 'it was deleted while the build started; run the build again',
      };
    }
    if (event.reason === 'FailedCreate' && /forbidden/i.test(event.message ?? '')) {
      return { message: `the Job could not create its pod: ${event.message}`, hint: 'a quota, limit range or admission policy refuses it; ask the namespace\'s owner, or lower --cpu/--memory' };
    }
  }
  for (const status of statuses(snapshot.pod)) {
    const waiting = status.state?.waiting;
    if (!waiting) continue;
    const flag = context.imageFlags[status.name] ?? 'the image';
    if (waiting.reason === 'ErrImagePull' || waiting.reason === 'ImagePullBackOff' || waiting.reason === 'InvalidImageName') {
      return {
        message: `the node cannot pull ${status.image} for container ${status.name} (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''})`,
        hint: `check the name and that the node can reach that registry; set it with ${flag}`,
      };
    }
    if (waiting.reason === 'CreateContainerConfigError' || waiting.reason === 'CreateContainerError') {
      return {
        message: `container ${status.name} cannot be created (${waiting.reason}: ${waiting.message ?? 'no detail'})`,
        hint: /secret|configmap/i.test(waiting.message ?? '') ? 'a Secret or ConfigMap it mounts is missing: check --registry-secret' : 'the message above names the missing piece',
      };
    }
  }
  const scheduled = snapshot.pod?.status?.conditions?.find((condition) => condition.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return {
      message: `no node can run the build pod: ${scheduled.message ?? 'Unschedulable'}`,
      hint: /Insufficient/i.test(scheduled.message ?? '') ? 'lower --cpu/--memory, or free capacity in the cluster' : 'check node taints and selectors (`kubectl describe nodes`)',
    };
  }
  return diagnoseJobCondition(snapshot, context);
}

function diagnoseJobCondition(snapshot: BuildSnapshot, context: DiagnosisContext): Diagnosis | undefined {
  const failed = snapshot.job?.status?.conditions?.find((condition) => condition.type === 'Failed' && condition.status === 'True');
  if (failed?.reason === 'DeadlineExceeded') {
    return {
      message: `the build did not finish within ${context.timeoutSeconds ?? '?'} seconds (DeadlineExceeded)`,
      hint: 'raise --timeout, or make the build faster (--cache-repo reuses layers between builds)',
    };
  }
  return undefined;
}

const KANIKO_PATTERNS: { test: RegExp; diagnose: (line: string, context: DiagnosisContext) => Diagnosis }[] = [
  {
    test: /x509:|certificate signed by unknown authority|tls: failed to verify/i,
    diagnose: (line) => ({
      message: `Kaniko does not trust a registry's TLS certificate: ${line}`,
      hint: 'pass --ca-file PEM with the registry\'s CA, or --insecure to skip verification (test registries only)',
    }),
  },
  {
    test: /UNAUTHORIZED|DENIED|authentication required|unauthorized to access|status code 401|status code 403/i,
    diagnose: (line) => ({
      message: `a registry refused Kaniko's credentials: ${line}`,
      hint: 'log in to that registry on this machine (docker login HOST) so imgbuild passes the credentials, or name a dockerconfigjson Secret with --registry-secret',
    }),
  },
  {
    test: /MANIFEST_UNKNOWN|manifest unknown|NAME_UNKNOWN|retrieving image .*not found|unable to find image/i,
    diagnose: (line) => ({
      message: `a base image does not exist: ${line}`,
      hint: 'check the FROM line (name and tag), and that the registry holds it',
    }),
  },
  {
    test: /(chown|lchown|mkdir|operation not permitted|permission denied)/i,
    diagnose: (line, context) =>
      context.nonRoot
        ? {
            message: `Kaniko cannot build as a non-root user: ${line}`,
            hint:
              'Kaniko unpacks the base image and snapshots the filesystem as root (it chowns its own directory and every file it extracts), so it stops here under runAsNonRoot. ' +
              'Drop --non-root (Kaniko then needs the Pod Security "baseline" level), or use the direct engine, which needs no root at all',
          }
        : { message: `Kaniko was refused a file operation: ${line}`, hint: 'the pod lacks a capability Kaniko needs, or a volume is read-only; check the namespace\'s policies' },
  },
];

/**
 * The line that says what went wrong in Kaniko's log: the last explicit error (`Error: …` before its
 * usage text, `error building image: …`, an ERRO/FATA or level=error line), else the last line that
 * mentions an error and is not a flag's description.
 */
const EXPLICIT_ERROR = /^(Error: |ERRO\[|FATA\[)|error building image|error checking push|level=(error|fatal)/i;

/** A line in which Kaniko states an error (kept by the caller even when later output scrolls it out of the tail). */
export function isExplicitErrorLine(line: string): boolean {
  return EXPLICIT_ERROR.test(line.trim());
}

export function lastErrorLine(lines: string[]): string | undefined {
  const explicitLine = [...lines].reverse().find(isExplicitErrorLine);
  const line = explicitLine ?? [...lines].reverse().find((item) => /error|fatal|failed/i.test(item) && !/^\s*-/.test(item));
  return line?.replace(/^.*?(error building image|level=(error|fatal)\s*msg=)/i, '$1').replace(/^(ERRO|FATA)\[\d+\]\s*/, '').trim();
}

/** Why a builder container that terminated non-zero, or a pod that failed, did so. */
export function diagnoseFailure(snapshot: BuildSnapshot, context: DiagnosisContext): Diagnosis {
  const stuck = diagnoseStuck(snapshot, context);
  if (stuck) return stuck;
  // The Job controller kills the pod at the deadline and only then marks the Job DeadlineExceeded.
  const started = snapshot.job?.status?.startTime;
  if (context.timeoutSeconds && started && snapshot.observedAt && snapshot.observedAt.getTime() - new Date(started).getTime() >= context.timeoutSeconds * 1000) {
    return diagnoseJobCondition({ ...snapshot, job: { ...snapshot.job, status: { ...snapshot.job!.status, conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] } } }, context)!;
  }
  if (snapshot.pod?.status?.reason === 'Evicted') {
    return {
      message: `the node evicted the build pod: ${snapshot.pod.status.message ?? ''}`.trim(),
      hint: 'the node ran short of ephemeral storage or memory; free it, or build on a node with more disk (the context and the unpacked base image live in the pod)',
    };
  }
  for (const status of statuses(snapshot.pod)) {
    const terminated = status.state?.terminated;
    if (!terminated || terminated.exitCode === 0) continue;
    if (terminated.reason === 'OOMKilled' || (terminated.exitCode === 137 && context.memoryLimit)) {
      const how = terminated.reason === 'OOMKilled' ? 'OOMKilled' : `killed with exit 137 under --memory ${context.memoryLimit}, the kernel's out-of-memory kill`;
      return { message: `container ${status.name} ran out of memory (${how})`, hint: 'raise --memory (Kaniko holds file hashes and layer data in memory for large images)' };
    }
    // imgbuild as the builder (--in-cluster) leaves its own error and hint in the termination message.
    const reported = builderError(terminated.message);
    if (reported) return reported;
    const lines = snapshot.logTail ?? [];
    const errorLine = lastErrorLine(lines);
    const haystack = errorLine ?? terminated.message ?? '';
    for (const pattern of KANIKO_PATTERNS) {
      if (pattern.test.test(haystack)) return pattern.diagnose(haystack, context);
    }
    return {
      message: `container ${status.name} exited with code ${terminated.exitCode}${haystack ? `: ${haystack}` : ''}`,
      hint: 'its log is above; rerun with --keep to inspect the pod with kubectl',
    };
  }
  const deadline = diagnoseJobCondition(snapshot, context);
  if (deadline) return deadline;
  const failed = snapshot.job?.status?.conditions?.find((condition) => condition.type === 'Failed' && condition.status === 'True');
  return { message: `the build Job failed${failed ? ` (${failed.reason}: ${failed.message})` : ''}`, hint: 'rerun with --keep and inspect the Job with kubectl describe' };
}

/** `{"error": {"message", "hint"}}`, as imgbuild writes it to its result file when a command fails in a pod. */
export function builderError(message: string | undefined): Diagnosis | undefined {
  if (!message?.trimStart().startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(message) as { error?: { message?: string; hint?: string } };
    if (!parsed.error?.message) return undefined;
    return { message: parsed.error.message, hint: parsed.error.hint ?? 'its log is above; rerun with --keep to inspect the pod with kubectl' };
  } catch {
    return undefined;
  }
}
