import { AbortedError } from './errors.js';

/** Throws an AbortedError for `what` when `signal` has been aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, signal.reason);
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts (the work itself is not stopped). */
export function orAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** `work`'s result; when it fails after `signal` aborted, an AbortedError for `what` instead. */
export async function withAbortReported<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throwIfAborted(signal, what);
    throw error;
  }
}

/**
 * A signal that aborts `graceMs` after `signal` does, so work in flight may finish first; call
 * `release` when the work is over, so the listener does not outlive it.
 */
export function abortAfterGrace(signal: AbortSignal | undefined, graceMs: number): { signal: AbortSignal | undefined; release(): void } {
  if (!signal) return { signal: undefined, release() {} };
  const delayed = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    timer = setTimeout(() => delayed.abort(signal.reason), graceMs);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: delayed.signal,
    release() {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
    },
  };
}
