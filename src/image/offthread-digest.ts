// SHA-256 of a stream computed on a worker thread, so the main thread is free to read files
// and feed the compressor while the layer is hashed. A worker costs tens of milliseconds of
// CPU to start, as much as hashing some 60 MB, so callers use it only for big streams
// (see OFF_THREAD_WORTH).
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Digest } from '../digest.js';

/** Stream size from which hashing on the worker pays for starting it. */
export const OFF_THREAD_WORTH = 64 * 1024 * 1024;
/** Bytes sent to the worker and not yet hashed before a stream waits for it. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

// Plain CommonJS run with `eval`, so the single-file bundle needs no second file.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', ({ id, chunk, end }) => {
  let hash = hashes.get(id);
  if (!hash) hashes.set(id, (hash = createHash('sha256')));
  if (chunk) {
    hash.update(chunk);
    parentPort.postMessage({ id, hashed: chunk.byteLength });
  }
  if (end) {
    hashes.delete(id);
    parentPort.postMessage({ id, hex: hash.digest('hex') });
  }
});
`;

interface Reply {
  id: number;
  hashed?: number;
  hex?: string;
}

/** One worker shared by the streams of one layer; started on first use, ended by close(). */
export class DigestWorker {
  private worker: Worker | undefined;
  private failure: Error | undefined;
  private nextId = 0;
  private readonly listeners = new Map<number, (reply: Reply) => void>();

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (reply: Reply) => this.listeners.get(reply.id)?.(reply));
    const fail = (error: Error): void => {
      this.failure ??= error;
      for (const listener of this.listeners.values()) listener({ id: -1 });
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the hashing worker stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  /** A channel for one stream's bytes; `onReply` hears acknowledgements and the digest. */
  open(onReply: (reply: Reply) => void): { send(chunk: Uint8Array, end?: boolean): void; failure(): Error | undefined } {
    const worker = this.start();
    const id = this.nextId++;
    this.listeners.set(id, onReply);
    return {
      send: (chunk, end = false) => {
        // A copy of just the view, transferred: the caller's buffer stays usable downstream.
        const copy = new Uint8Array(chunk);
        worker.postMessage({ id, chunk: copy, end }, [copy.buffer]);
      },
      failure: () => this.failure,
    };
  }

  /** Ends the worker; a stream still using it fails rather than wait for a digest forever. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    worker.removeAllListeners('exit');
    this.failure ??= new Error('the hashing worker was closed before the stream ended');
    for (const listener of this.listeners.values()) listener({ id: -1 });
    this.listeners.clear();
    await worker.terminate();
  }
}

/**
 * A pass-through stream that hashes what flows through it, like DigestingStream: on the
 * worker when one is given, else in place.
 */
export class OffThreadDigestingStream extends Transform {
  private byteCount = 0;
  private readonly local: Hash | undefined;
  private readonly channel: ReturnType<DigestWorker['open']> | undefined;
  private queued = 0;
  private wake: (() => void) | undefined;
  private result: Digest | undefined;

  constructor(worker?: DigestWorker) {
    super();
    if (worker) this.channel = worker.open((reply) => this.onReply(reply));
    else this.local = createHash('sha256');
  }

  get size(): number {
    return this.byteCount;
  }

  /** The sha256 of everything that passed; only once the stream has ended. */
  digest(): Digest {
    if (this.result === undefined) throw new Error('digest() called before the stream ended');
    return this.result;
  }

  private onReply(reply: Reply): void {
    if (reply.hashed !== undefined) this.queued -= reply.hashed;
    if (reply.hex !== undefined) this.result = `sha256:${reply.hex}`;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async waitFor(done: () => boolean): Promise<void> {
    while (!done()) {
      const failure = this.channel?.failure();
      if (failure) throw failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.byteCount += chunk.length;
    this.push(chunk);
    if (!this.channel) {
      this.local!.update(chunk);
      callback();
      return;
    }
    this.channel.send(chunk);
    this.queued += chunk.length;
    if (this.queued <= MAX_QUEUED_BYTES) {
      callback();
      return;
    }
    this.waitFor(() => this.queued <= MAX_QUEUED_BYTES / 2).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.channel) {
      this.result = `sha256:${this.local!.digest('hex')}`;
      callback();
      return;
    }
    this.channel.send(new Uint8Array(0), true);
    this.waitFor(() => this.result !== undefined).then(() => callback(), callback);
  }
}
