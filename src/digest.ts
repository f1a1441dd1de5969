import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError } from './errors.js';

/**
 * A content digest as the OCI spec writes it: `sha256:<64 hex>`, or `sha512:<128 hex>` (the other
 * algorithm the image spec registers; the embedded registry stores it, imgbuild writes sha256).
 */
export type Digest = `sha256:${string}` | `sha512:${string}`;
export type DigestAlgorithm = 'sha256' | 'sha512';

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
const STORED_DIGEST_PATTERN = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** A sha256 digest: what imgbuild writes and checks as a client. */
export function isDigest(value: string): value is Digest {
  return DIGEST_PATTERN.test(value);
}

/** A digest of either registered algorithm (sha256, sha512), as the embedded registry stores. */
export function isStoredDigest(value: string): value is Digest {
  return STORED_DIGEST_PATTERN.test(value);
}

export function algorithmOf(digest: Digest): DigestAlgorithm {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export function digestOf(algorithm: DigestAlgorithm, data: Uint8Array | string): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
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
  private readonly hash: Hash;
  private byteCount = 0;

  /** Hashes with `expected`'s algorithm (sha512 for a sha512 digest), else `algorithm`. */
  constructor(
    private readonly expected?: string,
    private readonly what = 'blob',
    private readonly algorithm: DigestAlgorithm = expected?.startsWith('sha512:') ? 'sha512' : 'sha256',
  ) {
    super();
    this.hash = createHash(algorithm);
  }

  get size(): number {
    return this.byteCount;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
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
