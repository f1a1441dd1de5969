import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { type FileHandle, open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Digest } from './digest.js';
import { InputError } from './errors.js';
import type { FileContentSink } from './image/read-file.js';

/**
 * Holds a file read out of a layer until the layer is verified, in memory that does not grow
 * with the file: the bytes are compared with the expected content as they arrive, and only
 * what differs from it is kept (in memory while small, then in a temporary file). Once the
 * caller knows the layer is good, `writeTo` replays the whole file: the part equal to the
 * expected content from there, the rest from the spool.
 */

/** What the file is expected to hold. */
export interface ExpectedContent {
  readonly size: number;
  /** `length` bytes from `position` (fewer only past the end). */
  read(position: number, length: number): Promise<Buffer>;
  /** Throws if the content changed since it was opened (a local file edited meanwhile). */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

export function expectedBytes(bytes: Buffer): ExpectedContent {
  return {
    size: bytes.length,
    read: async (position, length) => bytes.subarray(position, position + length),
    checkUnchanged: async () => {},
    close: async () => {},
  };
}

/** A local file as the expected content; `what` names it in errors (e.g. the flag that gave it). */
export async function expectedFile(file: string, what: string = file): Promise<ExpectedContent> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read ${what}: ${error.code ?? error.message}`, { hint: 'give a local file that holds the expected content' });
  });
  const opened = await handle.stat();
  if (!opened.isFile()) {
    await handle.close();
    throw new InputError(`${what} is not a regular file`, { hint: 'give a local file that holds the expected content' });
  }
  return {
    size: opened.size,
    async read(position, length) {
      const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, opened.size - position)));
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
        if (bytesRead === 0) throw changed(what);
        filled += bytesRead;
      }
      return buffer;
    },
    async checkUnchanged() {
      const now = await handle.stat();
      if (now.size !== opened.size || now.mtimeMs !== opened.mtimeMs) throw changed(what);
    },
    close: () => handle.close(),
  };
}

function changed(what: string): InputError {
  return new InputError(`${what} changed while it was being compared`, {
    hint: 'the comparison and anything printed are not to be trusted; run the command again when the file is not being written',
  });
}

/** Bytes kept in memory before the spool moves to a file; also the unit of reads. */
const MEMORY_BYTES = 1024 * 1024;
const BLOCK_BYTES = 1024 * 1024;

export interface ContentSpoolOptions {
  expected?: ExpectedContent;
  /** A private directory for the spool file, asked for only when the file needs one. */
  spoolDir: () => string;
  /** Also compute the file's sha256 (costs a pass over the bytes). */
  sha256?: boolean;
  /** Keep the content only up to this size (a bigger file is only counted and hashed). */
  keepAtMost?: number;
}

export interface SpooledContent {
  size: number;
  /** With an expected content: whether the file equals it, and the expected size. */
  matches?: boolean;
  expectedSize?: number;
  /** The offset of the first byte that differs (or where the shorter one ends). */
  firstDifference?: number;
  sha256?: Digest;
}

export class ContentSpool implements FileContentSink {
  private received = 0;
  /** More than keepAtMost bytes came: the content is gone, only size and hash remain. */
  private dropped = false;
  private firstDifference: number | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private file: { handle: FileHandle; path: string; bytes: number } | undefined;
  private hash: Hash | undefined;
  private expectedBlock: { start: number; bytes: Buffer } | undefined;

  constructor(private readonly options: ContentSpoolOptions) {
    this.hash = options.sha256 ? createHash('sha256') : undefined;
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash?.update(chunk);
    let keepFrom = 0;
    if (this.options.expected && this.firstDifference === undefined) {
      const at = await this.differenceIn(chunk);
      if (at === -1) {
        this.received += chunk.length;
        return;
      }
      this.firstDifference = this.received + at;
      keepFrom = at;
    }
    this.received += chunk.length;
    if (this.received > (this.options.keepAtMost ?? Infinity)) {
      this.dropped = true;
      this.held = [];
      this.heldBytes = 0;
      return;
    }
    await this.keep(chunk.subarray(keepFrom));
  }

  async reset(): Promise<void> {
    this.received = 0;
    this.dropped = false;
    this.firstDifference = undefined;
    this.held = [];
    this.heldBytes = 0;
    if (this.file) {
      await this.file.handle.truncate(0);
      this.file.bytes = 0;
    }
    if (this.hash) this.hash = createHash('sha256');
  }

  /** What arrived, once the last byte has (the caller has verified the layer). */
  result(): SpooledContent {
    const expected = this.options.expected;
    const firstDifference = expected ? (this.firstDifference ?? (this.received === expected.size ? undefined : this.received)) : undefined;
    return {
      size: this.received,
      ...(expected ? { matches: firstDifference === undefined, expectedSize: expected.size, ...(firstDifference === undefined ? {} : { firstDifference }) } : {}),
      ...(this.hash ? { sha256: `sha256:${this.hash.copy().digest('hex')}` as Digest } : {}),
    };
  }

  /** Writes the whole file to `out`, honouring back-pressure. */
  async writeTo(out: Writable): Promise<void> {
    for await (const piece of this.pieces()) {
      if (!out.write(piece)) await once(out, 'drain');
    }
    await this.options.expected?.checkUnchanged();
  }

  async toBuffer(): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for await (const piece of this.pieces()) pieces.push(piece);
    await this.options.expected?.checkUnchanged();
    return Buffer.concat(pieces);
  }

  async close(): Promise<void> {
    if (!this.file) return;
    const { handle, path: spoolPath } = this.file;
    this.file = undefined;
    await handle.close();
    await rm(spoolPath, { force: true });
  }

  /** The file in order: the prefix that equals the expected content, then what was kept. */
  private async *pieces(): AsyncGenerator<Buffer> {
    if (this.dropped) throw new Error(`the content was not kept: it is larger than ${this.options.keepAtMost} bytes`);
    const expected = this.options.expected;
    const prefix = expected ? (this.firstDifference ?? this.received) : 0;
    for (let position = 0; position < prefix; position += BLOCK_BYTES) {
      yield await expected!.read(position, Math.min(BLOCK_BYTES, prefix - position));
    }
    yield* this.held;
    if (this.file) {
      const { handle, bytes } = this.file;
      for (let position = 0; position < bytes; position += BLOCK_BYTES) {
        const block = Buffer.allocUnsafe(Math.min(BLOCK_BYTES, bytes - position));
        const { bytesRead } = await handle.read(block, 0, block.length, position);
        yield block.subarray(0, bytesRead);
      }
    }
  }

  private async keep(bytes: Buffer): Promise<void> {
    if (bytes.length === 0) return;
    if (!this.file && this.heldBytes + bytes.length <= MEMORY_BYTES) {
      // A copy: the chunk may be a view into a much larger buffer.
      this.held.push(Buffer.from(bytes));
      this.heldBytes += bytes.length;
      return;
    }
    if (!this.file) {
      const spoolPath = path.join(this.options.spoolDir(), `content-${process.pid}-${Date.now()}`);
      this.file = { handle: await open(spoolPath, 'wx+', 0o600), path: spoolPath, bytes: 0 };
    }
    // Held bytes were written before; after a reset they start the file again.
    const pending = [...this.held, bytes];
    this.held = [];
    this.heldBytes = 0;
    for (const piece of pending) {
      await this.file.handle.write(piece, 0, piece.length, this.file.bytes);
      this.file.bytes += piece.length;
    }
  }

  /** Index in `chunk` of the first byte that differs from the expected content, or -1. */
  private async differenceIn(chunk: Buffer): Promise<number> {
    const expected = this.options.expected!;
    let offset = 0;
    while (offset < chunk.length) {
      const position = this.received + offset;
      if (position >= expected.size) return offset;
      const block = await this.expectedBlockAt(position);
      const from = position - block.start;
      const length = Math.min(chunk.length - offset, block.bytes.length - from);
      const actual = chunk.subarray(offset, offset + length);
      const wanted = block.bytes.subarray(from, from + length);
      if (!actual.equals(wanted)) {
        let index = 0;
        while (actual[index] === wanted[index]) index++;
        return offset + index;
      }
      offset += length;
    }
    return -1;
  }

  private async expectedBlockAt(position: number): Promise<{ start: number; bytes: Buffer }> {
    const cached = this.expectedBlock;
    if (cached && position >= cached.start && position < cached.start + cached.bytes.length) return cached;
    const bytes = await this.options.expected!.read(position, BLOCK_BYTES);
    this.expectedBlock = { start: position, bytes };
    return this.expectedBlock;
  }
}
