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
/**
 * Each stream copies its bytes into a ring in shared memory and tells the worker where they
 * are: no buffer is allocated per chunk, so neither thread piles up garbage, and a stream
 * waits when the worker is this many bytes behind.
 */
const RING_BYTES = 4 * 1024 * 1024;

// Plain CommonJS run with `eval`, so the single-file bundle needs no second file.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const streams = new Map();
parentPort.on('message', ({ id, ring, offset, length, end }) => {
  if (ring) {
    streams.set(id, { ring: new Uint8Array(ring), hash: createHash('sha256') });
    return;
  }
  const stream = streams.get(id);
  if (length) {
    stream.hash.update(stream.ring.subarray(offset, offset + length));
    parentPort.postMessage({ id, hashed: length });
  }
  if (end) {
    streams.delete(id);
    parentPort.postMessage({ id, hex: stream.hash.digest('hex') });
  }
});
`;

interface Reply {
  id: number;
  hashed?: number;
  hex?: string;
}

/** One stream's way to the worker: its ring, and messages saying what to hash from it. */
export interface DigestChannel {
  ring: Uint8Array;
  /** Tells the worker to hash ring[offset, offset + length); with `end`, to report the digest. */
  send(offset: number, length: number, end?: boolean): void;
  failure(): Error | undefined;
}

/** One worker shared by the streams of one layer; started on first use, ended by close(). */
export class DigestWorker {
  private worker: Worker | undefined;
  private failure: Error | undefined;
  private nextId = 0;
  private readonly listeners = new Map<number, (reply: Reply) => void>();

  private start(): Worker {
    if (this.worker) return this.worker;
    // No inherited flags: `--input-type=module` would make the eval'd CommonJS source an ES module.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
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
  open(onReply: (reply: Reply) => void): DigestChannel {
    const worker = this.start();
    const id = this.nextId++;
    this.listeners.set(id, onReply);
    const shared = new SharedArrayBuffer(RING_BYTES);
    worker.postMessage({ id, ring: shared });
    return {
      ring: new Uint8Array(shared),
      send: (offset, length, end = false) => worker.postMessage({ id, offset, length, end }),
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
  private readonly channel: DigestChannel | undefined;
  /** Bytes in the ring not yet hashed by the worker. */
  private queued = 0;
  /** Where the next byte goes in the ring. */
  private ringPosition = 0;
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
    this.copyToRing(this.channel, chunk).then(() => callback(), callback);
  }

  /** Copies the chunk into the ring piece by piece, waiting while the ring is full. */
  private async copyToRing(channel: DigestChannel, chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      const free = RING_BYTES - this.queued;
      if (free === 0) {
        await this.waitFor(() => this.queued < RING_BYTES);
        continue;
      }
      const at = this.ringPosition;
      const length = Math.min(chunk.length - offset, free, RING_BYTES - at);
      channel.ring.set(chunk.subarray(offset, offset + length), at);
      channel.send(at, length);
      this.queued += length;
      this.ringPosition = (at + length) % RING_BYTES;
      offset += length;
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.channel) {
      this.result = `sha256:${this.local!.digest('hex')}`;
      callback();
      return;
    }
    this.channel.send(0, 0, true);
    this.waitFor(() => this.result !== undefined).then(() => callback(), callback);
  }
}
