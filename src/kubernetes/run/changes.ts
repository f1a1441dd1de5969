/**
 * Wakes a status loop the moment the API server reports a change to some pods, instead of at the
 * next poll: a pod's phase changes are seen within milliseconds, not up to a poll interval later.
 * The loop keeps polling as a fallback (a watch can be refused by RBAC, or dropped), so the watch
 * only makes it faster, never more fragile.
 */
import { Watch } from '@kubernetes/client-node';
import type { ClusterApi } from './api.js';

export interface PodChanges {
  /** Resolves at the next reported change (at once if one came since the last call), after `fallbackMs`, or on abort. */
  next(fallbackMs: number, signal?: AbortSignal): Promise<void>;
  stop(): void;
}

/** Watches the pods of the namespace that match `selector` (a label or field selector). */
export function watchPodChanges(api: ClusterApi, selector: { label?: string; field?: string }): PodChanges {
  let changed = false;
  let wake: (() => void) | undefined;
  let stopped = false;
  let controller: AbortController | undefined;
  const notify = () => {
    changed = true;
    wake?.();
  };
  const start = async () => {
    if (stopped) return;
    const path = `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/pods`;
    const query = { labelSelector: selector.label, fieldSelector: selector.field };
    let failed = false;
    controller = await new Watch(api.cluster.kubeConfig).watch(path, query, notify, (error: unknown) => {
      // A refused watch (no "watch" verb) leaves the loop to its polling; a closed one is reopened.
      failed = error !== null && error !== undefined;
      if (!stopped && !failed) setTimeout(() => void start(), 100);
    });
    if (stopped || failed) controller.abort();
  };
  void start().catch(() => {});
  return {
    next(fallbackMs, signal) {
      if (changed || signal?.aborted) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          wake = undefined;
          changed = false;
          resolve();
        };
        const timer = setTimeout(done, fallbackMs);
        signal?.addEventListener('abort', done, { once: true });
        wake = done;
      });
    },
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}
