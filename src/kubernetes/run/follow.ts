/**
 * Live logs of one container, line by line. The API server can end a follow before the
 * container does, so the stream is reopened from the last timestamp seen until the container
 * has terminated and its log is drained.
 */
import { PassThrough } from 'node:stream';
import { Log } from '@kubernetes/client-node';
import type { ClusterApi } from './api.js';

export interface FollowOptions {
  pod: string;
  container: string;
  onLine: (line: string) => void;
  /** True once the container has terminated (its log is then complete). */
  terminated: () => boolean;
  signal?: AbortSignal;
}

const MAX_FAILURES_AFTER_END = 10;
/** How long a finished follow waits for the container's status to say terminated. */
const SETTLE_MS = 1500;
const TIMESTAMP = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/s;
/** Terminal control sequences (Kaniko colours its levels): a pod's log must not drive the user's terminal. */
const ESCAPES = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]/g;

export async function followContainerLog(api: ClusterApi, options: FollowOptions): Promise<void> {
  const log = new Log(api.cluster.kubeConfig);
  const resume: ResumePoint = { stamp: undefined, seenAtStamp: 0 };
  let failures = 0;
  for (;;) {
    if (options.signal?.aborted) return;
    const ended = options.terminated();
    const stream = new PassThrough();
    let pending = '';
    let broken = false;
    const reader = resumedReader(resume);
    const emit = (raw: string) => {
      const line = reader(raw);
      if (line !== undefined) options.onLine(line);
    };
    const done = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          emit(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      });
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => {
        broken = true;
        resolve();
      });
    });
    let controller: AbortController | undefined;
    const abort = () => controller?.abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    let complete = false;
    try {
      controller = await log.log(api.namespace, options.pod, options.container, stream, {
        follow: !ended,
        timestamps: true,
        ...(resume.stamp ? { sinceTime: resume.stamp } : {}),
      });
      await done;
      failures = 0;
      // A follow ends when the container exits and its log has been sent: once the status says
      // terminated (it may lag a moment), nothing is left to read.
      if (!ended && !broken) complete = await settles(options.terminated, options.signal);
    } catch {
      // Not ready for logs yet, or the request failed: try again below (a few times once it has ended).
      failures += 1;
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    if (pending) emit(pending);
    if (complete || (ended && (failures === 0 || failures > MAX_FAILURES_AFTER_END))) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** Whether `condition` becomes true within a short while (the status catching up with a log's end). */
async function settles(condition: () => boolean, signal?: AbortSignal): Promise<boolean> {
  for (let waited = 0; waited < SETTLE_MS; waited += 20) {
    if (condition() || signal?.aborted) return condition();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

/** Where a reopened log stream picks up: the latest timestamp printed, and how many lines carried it. */
export interface ResumePoint {
  stamp: string | undefined;
  seenAtStamp: number;
}

/**
 * Reads one stream's timestamped lines: returns the text to print, or undefined for a line a
 * stream reopened at `resume` sends again. Only lines before the resume point are repeats:
 * stdout and stderr reach the log with timestamps that need not rise, so an earlier stamp
 * inside one stream is a new line, not a repeat. Advances `resume` as lines are printed.
 */
export function resumedReader(resume: ResumePoint): (raw: string) => string | undefined {
  const from = resume.stamp;
  const seenAtFrom = resume.seenAtStamp;
  let repeatedAtFrom = 0;
  return (raw) => {
    const match = TIMESTAMP.exec(raw);
    const stamp = match?.[1];
    if (stamp && from) {
      if (stamp < from) return undefined;
      if (stamp === from) {
        repeatedAtFrom += 1;
        if (repeatedAtFrom <= seenAtFrom) return undefined;
      }
    }
    if (stamp) {
      if (!resume.stamp || stamp > resume.stamp) {
        resume.stamp = stamp;
        resume.seenAtStamp = 1;
      } else if (stamp === resume.stamp) {
        resume.seenAtStamp += 1;
      }
    }
    return (match ? match[2]! : raw).replace(ESCAPES, '');
  };
}
