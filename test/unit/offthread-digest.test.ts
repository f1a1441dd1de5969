import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestWorker, OffThreadDigestingStream } from '../../src/image/offthread-digest.js';
import { seededBytes } from '../helpers/layer-fixtures.js';

/** Streams `data` in pieces of `piece` bytes through the digesting stream; returns digest, size and the bytes that came out. */
async function digestThrough(stream: OffThreadDigestingStream, data: Buffer, piece: number): Promise<{ digest: string; size: number; out: Buffer }> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += piece) pieces.push(data.subarray(offset, offset + piece));
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(pieces), stream, sink);
  return { digest: stream.digest(), size: stream.size, out: Buffer.concat(out) };
}

describe('OffThreadDigestingStream', () => {
  // Empty, tiny, and more than the worker may have queued (so the stream waits for it), in odd-sized pieces.
  const sizes = [0, 1, 100_000, 20 * 1024 * 1024 + 12345];

  for (const where of ['on the worker', 'in place']) {
    test(`${where}: digest and size equal a plain sha256 of the bytes, which pass through unchanged`, async () => {
      const worker = where === 'on the worker' ? new DigestWorker() : undefined;
      try {
        for (const size of sizes) {
          const data = seededBytes(`digest-${size}`, size);
          const result = await digestThrough(new OffThreadDigestingStream(worker), data, 256 * 1024 + 7);
          assert.equal(result.digest, `sha256:${createHash('sha256').update(data).digest('hex')}`, `size ${size}`);
          assert.equal(result.size, size);
          assert.ok(result.out.equals(data), `size ${size}: bytes changed on the way`);
        }
      } finally {
        await worker?.close();
      }
    });
  }

  test('two streams share one worker at once without mixing their bytes', async () => {
    const worker = new DigestWorker();
    try {
      const a = seededBytes('stream-a', 16 * 1024 * 1024 + 3);
      const b = seededBytes('stream-b', 16 * 1024 * 1024 + 5);
      const [resultA, resultB] = await Promise.all([
        digestThrough(new OffThreadDigestingStream(worker), a, 1024 * 1024),
        digestThrough(new OffThreadDigestingStream(worker), b, 65536),
      ]);
      assert.equal(resultA.digest, `sha256:${createHash('sha256').update(a).digest('hex')}`);
      assert.equal(resultB.digest, `sha256:${createHash('sha256').update(b).digest('hex')}`);
    } finally {
      await worker.close();
    }
  });

  test('a worker that dies fails the stream instead of hanging', async () => {
    const worker = new DigestWorker();
    const stream = new OffThreadDigestingStream(worker);
    const data = seededBytes('dies', 16 * 1024 * 1024);
    async function* slowly(): AsyncGenerator<Buffer> {
      yield data.subarray(0, 1024);
      await worker.close(); // the worker is gone mid-stream
      yield data.subarray(1024);
    }
    await assert.rejects(pipeline(slowly(), stream, new Writable({ write: (_c, _e, cb) => cb() })), /hashing worker/);
  });
});
