import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError } from './errors.js';

/** A content digest as the OCI spec writes it: `sha256:<64 hex>`. */
export type Digest = `sha256:${string}`;

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): value is Digest {
  return DIGEST_PATTERN.test(value);
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Throws unless `data` hashes to `expected`. */
export function assertDigest(data: Uint8Array, expected: string, what: string): void {
  const actual = sha256Digest(data);
  if (actual !== expected) {
    throw new DigestMismatchError(`${what}: content has digest ${actual}, expected ${expected}`, {
      hint: 'the registry or a proxy in between served corrupted or substituted content; retry, and report it to the registry operator if it persists',
    });
  }
}

/**
 * A pass-through stream that hashes what flows through it and, when `expected` is given,
 * fails the stream at its end if the content does not match: no unverified byte is trusted.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private byteCount = 0;

  constructor(
    private readonly expected?: string,
    private readonly what = 'blob',
  ) {
    super();
  }

  get size(): number {
    return this.byteCount;
  }

  digest(): Digest {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expected !== undefined) {
      const actual = this.digest();
      if (actual !== this.expected) {
        callback(
          new DigestMismatchError(`${this.what}: content has digest ${actual}, expected ${this.expected}`, {
            hint: 'the registry or a proxy in between served corrupted content; retry the command',
          }),
        );
        return;
      }
    }
    callback();
  }
}
