// AdaptiveGzip's blocks encoded on worker threads: each worker makes the whole choice for a
// block (stored, Huffman-only, or string matching) as the thread-pool path does, but codes
// Huffman-only blocks with huffman-deflate.ts, which gives zlib's bytes for less CPU. That is
// the compressible case (text without long repeats, such as base64), where zlib's Huffman
// coding was the main cost of a layer. Starting a worker costs tens of milliseconds, so
// layers use them only when big (see layer.ts).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type BlockEncoder, blockCoding } from './adaptive-gzip.js';
import { createHuffmanDeflater } from './huffman-deflate.js';

// Plain CommonJS run with `eval`, so the single-file bundle needs no second file: the two
// factories are self-contained, and their source text is all the worker needs. (`__name` is
// what a keep-names transform, as under tsx, may wrap functions in.)
const WORKER_SOURCE = `
var __name = (target) => target;
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const coding = (${blockCoding.toString()})(zlib, (${createHuffmanDeflater.toString()})());
parentPort.on('message', ({ id, block, level }) => {
  try {
    const encoded = coding.encodeBlockSync(Buffer.from(block.buffer, block.byteOffset, block.length), level);
    const owned = encoded.byteOffset === 0 && encoded.length === encoded.buffer.byteLength ? encoded : Uint8Array.prototype.slice.call(encoded);
    // The input's memory goes back too, for the next block: garbage here is collected late.
    parentPort.postMessage({ id, encoded: owned, input: block.buffer }, [owned.buffer, block.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.stack || error) });
  }
});
`;

interface Reply {
  id: number;
  encoded?: Uint8Array;
  /** The memory the block was sent in, given back for reuse. */
  input?: ArrayBuffer;
  error?: string;
}

/** Input buffers kept for reuse: enough for the blocks AdaptiveGzip keeps in flight. */
const SPARE_INPUTS = 8;

interface Job {
  resolve(encoded: Buffer): void;
  reject(error: Error): void;
}

/** A few workers shared by one layer's blocks; started on first use, ended by close(). */
export class DeflateWorkers implements BlockEncoder {
  private workers: Array<{ worker: Worker; busy: number }> = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failure: Error | undefined;
  private readonly spareInputs: ArrayBuffer[] = [];

  constructor(private readonly count = Math.max(1, Math.min(4, availableParallelism()))) {}

  private start(): void {
    for (let i = 0; i < this.count; i++) {
      // No inherited flags: `--input-type=module` would make the eval'd CommonJS source an ES module.
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
      const slot = { worker, busy: 0 };
      worker.on('message', (reply: Reply) => {
        slot.busy--;
        if (reply.input && this.spareInputs.length < SPARE_INPUTS) this.spareInputs.push(reply.input);
        const job = this.jobs.get(reply.id);
        this.jobs.delete(reply.id);
        if (!job) return;
        if (reply.encoded) job.resolve(Buffer.from(reply.encoded.buffer, reply.encoded.byteOffset, reply.encoded.length));
        else job.reject(new Error(`a deflate worker failed: ${reply.error}`));
      });
      const fail = (error: Error): void => this.fail(error);
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`a deflate worker stopped (exit code ${code})`)));
      this.workers.push(slot);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const job of this.jobs.values()) job.reject(this.failure);
    this.jobs.clear();
  }

  /** The block's encoding, as AdaptiveGzip's thread-pool path would give it. */
  encode(block: Buffer, level: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.workers.length === 0) this.start();
    const slot = this.workers.reduce((least, candidate) => (candidate.busy < least.busy ? candidate : least));
    const id = this.nextId++;
    // A copy the worker owns: the block is a view of a larger chunk, which would be copied whole.
    const spare = this.spareInputs.pop();
    const copy = spare && spare.byteLength >= block.length ? new Uint8Array(spare, 0, block.length) : new Uint8Array(block.length);
    copy.set(block);
    return new Promise<Buffer>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage({ id, block: copy, level }, [copy.buffer]);
    });
  }

  /** Ends the workers; blocks still being encoded fail rather than wait forever. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    for (const { worker } of workers) worker.removeAllListeners('exit');
    this.fail(new Error('the deflate workers were closed before the layer was written'));
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }
}
