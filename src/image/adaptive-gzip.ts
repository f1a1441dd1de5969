import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { constants, crc32, createDeflateRaw, type DeflateRaw } from 'node:zlib';
import type { HuffmanDeflater } from './huffman-deflate.js';

/**
 * A gzip writer that is fast on any content and gives the same bytes for the same input.
 *
 * The input is cut into 1 MiB blocks at fixed offsets. A block whose sampled byte entropy is
 * near 8 bits (already compressed or random data: archives, images, jars, much of a binary)
 * is written as deflate "stored" blocks, which costs a copy; any other block is deflated on
 * its own (a fresh 32 KiB window, ended with a sync flush so the segments join into one
 * deflate stream), with string matching only where a probe shows it pays, else with Huffman
 * coding alone. Deflating happens on libuv's thread pool, several blocks at once, so it
 * uses every core. The result is one ordinary single-member gzip stream.
 *
 * Measured here on a 200 MB random file: zlib's gzip at level 1 took ~6 s; this ~0.5 s.
 */

/**
 * What the main thread and the deflate workers (deflate-workers.ts) share: the constants, the
 * entropy test, stored blocks and, for the workers, the whole choice for one block made
 * synchronously. One self-contained factory using only built-ins and its arguments, so that
 * its source text can start a worker thread in the single-file bundle.
 */
export function blockCoding(zlib: typeof import('node:zlib'), huffman?: HuffmanDeflater) {
  const BLOCK_SIZE = 1024 * 1024;
  const SAMPLE_RUN = 64;
  const SAMPLE_BYTES = 64 * 1024;
  /** Bits per byte above which deflate gains nearly nothing. */
  const INCOMPRESSIBLE_ENTROPY = 7.9;
  const MAX_STORED_BLOCK = 65535;
  /** Bytes of each block compressed both ways to choose the strategy. */
  const PROBE_BYTES = 32 * 1024;
  /** Room for a probe's output in one piece. */
  const PROBE_OUTPUT_SIZE = PROBE_BYTES + 1024;
  /** String matching must beat Huffman-only coding by this much to be worth its time. */
  const REPEATS_PAY_RATIO = 0.92;
  /** Deflate's worst case grows a block by a few bytes per 16 KiB; this covers it with room to spare. */
  const DEFLATE_HEADROOM = 64 * 1024;

  /** Shannon entropy, in bits per byte, of runs of bytes sampled evenly across `block`. */
  function sampledEntropy(block: Buffer): number {
    const counts = new Uint32Array(256);
    const step = Math.max(SAMPLE_RUN, Math.floor(block.length / (SAMPLE_BYTES / SAMPLE_RUN)));
    let total = 0;
    for (let start = 0; start < block.length; start += step) {
      const end = Math.min(start + SAMPLE_RUN, block.length);
      for (let i = start; i < end; i++) counts[block[i]!]!++;
      total += end - start;
    }
    let entropy = 0;
    for (const count of counts) {
      if (count === 0) continue;
      const p = count / total;
      entropy -= p * Math.log2(p);
    }
    return entropy;
  }

  /** `data` as non-final deflate stored blocks (the stream is byte-aligned before each). */
  function storedBlocks(data: Buffer): Buffer {
    const count = Math.max(1, Math.ceil(data.length / MAX_STORED_BLOCK));
    const out = Buffer.allocUnsafe(data.length + count * 5);
    let offset = 0;
    for (let start = 0; start < data.length || offset === 0; start += MAX_STORED_BLOCK) {
      const length = Math.min(MAX_STORED_BLOCK, data.length - start);
      out[offset] = 0; // BFINAL=0, BTYPE=00 (stored), padding bits
      out.writeUInt16LE(length, offset + 1);
      out.writeUInt16LE(~length & 0xffff, offset + 3);
      data.copy(out, offset + 5, start, start + length);
      offset += 5 + length;
      if (data.length === 0) break;
    }
    return out.subarray(0, offset);
  }

  /** The slice of a block compressed both ways to choose the strategy. */
  function probeOf(block: Buffer): Buffer {
    const start = Math.max(0, Math.floor(block.length / 2) - PROBE_BYTES / 2);
    return block.subarray(start, start + PROBE_BYTES);
  }

  /** Whether the deflated block beats storing it (deflate can lose on a block the sample misjudged). */
  function smallerThanStored(deflated: Uint8Array, block: Buffer): boolean {
    return deflated.length < block.length + 5 * Math.ceil(block.length / MAX_STORED_BLOCK);
  }

  /**
   * The block as AdaptiveGzip's thread-pool path encodes it, computed synchronously (on a
   * worker thread): Huffman-only coding by `huffman` (zlib's bytes, see huffman-deflate.ts),
   * string matching by zlib.
   */
  function encodeBlockSync(block: Buffer, level: number): Buffer {
    if (level === 0 || sampledEntropy(block) > INCOMPRESSIBLE_ENTROPY) return storedBlocks(block);
    if (!huffman) throw new Error('encodeBlockSync needs the Huffman deflater');
    const probe = probeOf(block);
    const matched = zlib.deflateRawSync(probe, { level, strategy: zlib.constants.Z_DEFAULT_STRATEGY, chunkSize: PROBE_OUTPUT_SIZE });
    const repeatsPay = matched.length < huffman.deflate(probe, true).length * REPEATS_PAY_RATIO;
    const deflated = repeatsPay
      ? zlib.deflateRawSync(block, { level, strategy: zlib.constants.Z_DEFAULT_STRATEGY, finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: BLOCK_SIZE + DEFLATE_HEADROOM })
      : huffman.deflate(block, false);
    if (!smallerThanStored(deflated, block)) return storedBlocks(block);
    return Buffer.from(deflated.buffer, deflated.byteOffset, deflated.length);
  }

  return {
    BLOCK_SIZE, INCOMPRESSIBLE_ENTROPY, PROBE_OUTPUT_SIZE, REPEATS_PAY_RATIO, DEFLATE_HEADROOM,
    sampledEntropy, storedBlocks, probeOf, smallerThanStored, encodeBlockSync,
  };
}

const coding = blockCoding(zlib);
export const { BLOCK_SIZE, sampledEntropy, storedBlocks } = coding;
/** Blocks being deflated at once; the pool has 4 threads by default. */
const PARALLEL_BLOCKS = 4;

// gzip member header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255).
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
// An empty final stored block closes the deflate stream.
const FINAL_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

/**
 * A zlib deflate context used for block after block, reset in between: setting one up (and
 * its output buffer) costs the main thread about 0.3 ms, as much as a thread-pool worker
 * takes to compress a small block. Reset gives the state of a fresh context, so the bytes
 * are those of a new one.
 */
class DeflateContext {
  private readonly stream: DeflateRaw;
  private output: Buffer[] = [];

  constructor(level: number, strategy: number, chunkSize: number) {
    this.stream = createDeflateRaw({ level, strategy, chunkSize });
    this.stream.on('data', (piece: Buffer) => this.output.push(piece));
  }

  /** Compresses `input` as one deflate call sequence ending with `flush`. */
  run(input: Buffer, flush: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => reject(error);
      this.stream.once('error', fail);
      this.stream.write(input);
      this.stream.flush(flush, () => {
        this.stream.off('error', fail);
        const result = this.output.length === 1 ? this.output[0]! : Buffer.concat(this.output);
        this.output = [];
        this.stream.reset();
        resolve(result);
      });
    });
  }

  close(): void {
    this.stream.close();
  }
}

/** Idle contexts by level, strategy and output size, shared by the blocks in flight. */
class DeflateContexts {
  private readonly idle = new Map<string, DeflateContext[]>();
  private closed = false;

  async run(input: Buffer, level: number, strategy: number, flush: number, chunkSize: number): Promise<Buffer> {
    const key = `${level}/${strategy}/${chunkSize}`;
    const context = this.idle.get(key)?.pop() ?? new DeflateContext(level, strategy, chunkSize);
    const result = await context.run(input, flush);
    if (this.closed) {
      context.close();
      return result;
    }
    const idle = this.idle.get(key) ?? [];
    idle.push(context);
    this.idle.set(key, idle);
    return result;
  }

  /** Closes the idle contexts now, and those still busy when they finish. */
  close(): void {
    this.closed = true;
    for (const contexts of this.idle.values()) for (const context of contexts) context.close();
    this.idle.clear();
  }
}

/**
 * Whether searching for repeated strings pays on this block: compresses a slice both ways.
 * Data with few repeats (base64, many binary tables) compresses as well with Huffman coding
 * alone, which is several times faster than deflate's string matching.
 */
async function repeatsPay(block: Buffer, level: number, contexts: DeflateContexts): Promise<boolean> {
  const probe = coding.probeOf(block);
  const [matched, huffman] = await Promise.all([
    contexts.run(probe, level, constants.Z_DEFAULT_STRATEGY, constants.Z_FINISH, coding.PROBE_OUTPUT_SIZE),
    contexts.run(probe, level, constants.Z_HUFFMAN_ONLY, constants.Z_FINISH, coding.PROBE_OUTPUT_SIZE),
  ]);
  return matched.length < huffman.length * coding.REPEATS_PAY_RATIO;
}

async function encodeBlock(block: Buffer, level: number, contexts: DeflateContexts): Promise<Buffer> {
  if (level === 0 || sampledEntropy(block) > coding.INCOMPRESSIBLE_ENTROPY) return storedBlocks(block);
  const strategy = (await repeatsPay(block, level, contexts)) ? constants.Z_DEFAULT_STRATEGY : constants.Z_HUFFMAN_ONLY;
  // An output buffer that holds the whole block's result: with zlib's 16 KiB default, each
  // block came back in dozens of pieces, each a callback and a copy on the main thread.
  const deflated = await contexts.run(block, level, strategy, constants.Z_SYNC_FLUSH, BLOCK_SIZE + coding.DEFLATE_HEADROOM);
  return coding.smallerThanStored(deflated, block) ? deflated : storedBlocks(block);
}

/** zlib's own Huffman-only coding, for blocks coded synchronously on the main thread. */
const zlibHuffman: HuffmanDeflater = {
  deflate: (input, final) =>
    zlib.deflateRawSync(input, { level: 1, strategy: constants.Z_HUFFMAN_ONLY, finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH }),
};
let syncCoding: ReturnType<typeof blockCoding> | undefined;

/**
 * What AdaptiveGzip writes for `data`, made synchronously in memory, block by block as the
 * stream cuts it: for small layers, where streams and the thread pool cost more than the
 * compression (a 1 KiB add). Any size works; callers keep it to a few blocks.
 */
export function gzipInMemory(data: Buffer, level: number): Buffer {
  syncCoding ??= blockCoding(zlib, zlibHuffman);
  const parts: Buffer[] = [GZIP_HEADER];
  for (let offset = 0; offset < data.length; offset += BLOCK_SIZE) parts.push(syncCoding.encodeBlockSync(data.subarray(offset, offset + BLOCK_SIZE), level));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length % 2 ** 32, 4);
  parts.push(FINAL_BLOCK, trailer);
  return Buffer.concat(parts);
}

/** Encodes one block off the main thread (see deflate-workers.ts); same bytes as encodeBlock. */
export interface BlockEncoder {
  encode(block: Buffer, level: number): Promise<Buffer>;
}

export class AdaptiveGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private crc = 0;
  private inputLength = 0;
  private headerWritten = false;
  /** Encodings in flight, in input order. */
  private inFlight: Array<Promise<Buffer>> = [];
  private readonly contexts = new DeflateContexts();

  /** `encoder`: where blocks are encoded instead of the thread pool (same bytes either way). */
  constructor(
    private readonly level: number,
    private readonly encoder?: BlockEncoder,
  ) {
    super();
  }

  private enqueue(block: Buffer): void {
    this.crc = crc32(block, this.crc);
    this.inputLength += block.length;
    const encoding = this.encoder ? this.encoder.encode(block, this.level) : encodeBlock(block, this.level, this.contexts);
    encoding.catch(() => {}); // awaited in order by drain(); this only avoids an early unhandled rejection
    this.inFlight.push(encoding);
  }

  /** Pushes finished encodings in order, waiting while too many are in flight (or all, at the end). */
  private async drain(keep: number): Promise<void> {
    if (!this.headerWritten) {
      this.push(GZIP_HEADER);
      this.headerWritten = true;
    }
    while (this.inFlight.length > keep) this.push(await this.inFlight.shift()!);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let offset = 0;
    if (this.pendingLength > 0) {
      // Complete the block begun by earlier chunks.
      offset = Math.min(chunk.length, BLOCK_SIZE - this.pendingLength);
      this.pending.push(chunk.subarray(0, offset));
      this.pendingLength += offset;
      if (this.pendingLength === BLOCK_SIZE) {
        this.enqueue(Buffer.concat(this.pending, BLOCK_SIZE));
        this.pending = [];
        this.pendingLength = 0;
      }
    }
    // Whole blocks are taken as views of the chunk, without a copy; upstream never reuses a chunk.
    for (; chunk.length - offset >= BLOCK_SIZE; offset += BLOCK_SIZE) this.enqueue(chunk.subarray(offset, offset + BLOCK_SIZE));
    if (offset < chunk.length) {
      this.pending.push(chunk.subarray(offset));
      this.pendingLength += chunk.length - offset;
    }
    this.drain(PARALLEL_BLOCKS - 1).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingLength > 0) this.enqueue(Buffer.concat(this.pending, this.pendingLength));
    this.pending = [];
    this.drain(0).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.inputLength % 2 ** 32, 4);
      this.push(FINAL_BLOCK);
      this.push(trailer);
      this.contexts.close();
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.contexts.close();
    callback(error);
  }
}
