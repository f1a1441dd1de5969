import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { AdaptiveGzip, BLOCK_SIZE, gzipInMemory, sampledEntropy, storedBlocks } from '../../src/image/adaptive-gzip.js';

async function compress(input: Buffer, level = 1, chunkSize = 65536): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += chunkSize) chunks.push(input.subarray(offset, offset + chunkSize));
  const out: Buffer[] = [];
  for await (const piece of Readable.from(chunks).pipe(new AdaptiveGzip(level))) out.push(piece as Buffer);
  return Buffer.concat(out);
}

const text = Buffer.from('line of a config file: key = value, another_key = 42\n'.repeat(60_000));
const random = randomBytes(3 * BLOCK_SIZE + 12345);
const mixed = Buffer.concat([text, random, text.subarray(0, 1000)]);

describe('AdaptiveGzip', () => {
  test('round-trips through zlib and GNU gzip, empty input included', async () => {
    for (const input of [Buffer.alloc(0), Buffer.from('x'), text, random, mixed]) {
      const gz = await compress(input);
      assert.ok(gunzipSync(gz).equals(input), `zlib round trip of ${input.length} bytes`);
      const gnu = spawnSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * 1024 * 1024 });
      assert.equal(gnu.status, 0, gnu.stderr.toString());
      assert.ok(gnu.stdout.equals(input), `gzip -d round trip of ${input.length} bytes`);
    }
  });

  test('compresses text and stores random data', async () => {
    assert.ok((await compress(text)).length < text.length / 10);
    const stored = await compress(random);
    assert.ok(stored.length > random.length && stored.length < random.length + 1024, `random: ${stored.length}`);
  });

  test('the output does not depend on how the input is chunked', async () => {
    const a = await compress(mixed, 1, 4096);
    const b = await compress(mixed, 1, 3 * 1024 * 1024 + 7);
    assert.ok(a.equals(b));
  });

  test('gzipInMemory writes the stream\'s bytes, whichever coding each block gets, over several blocks too', async () => {
    const base64 = Buffer.from(randomBytes(60_000).toString('base64')); // Huffman-only pays, repeats do not
    const inputs = [Buffer.alloc(0), Buffer.from('x'), text.subarray(0, 200_000), base64, random.subarray(0, 50_000), text.subarray(0, BLOCK_SIZE)];
    for (const input of inputs) {
      for (const level of [0, 1, 6, 9]) {
        assert.ok(gzipInMemory(input, level).equals(await compress(input, level)), `${input.length} bytes at level ${level}`);
      }
    }
    // Blocks of each kind in one input, and a last block cut short.
    for (const input of [text.subarray(0, BLOCK_SIZE + 1), mixed]) assert.ok(gzipInMemory(input, 1).equals(await compress(input, 1)), `${input.length} bytes`);
  });

  test('level 0 stores everything', async () => {
    const gz = await compress(text, 0);
    assert.ok(gz.length > text.length);
    assert.ok(gunzipSync(gz).equals(text));
  });

  test('entropy separates text from random bytes', () => {
    assert.ok(sampledEntropy(text.subarray(0, BLOCK_SIZE)) < 6);
    assert.ok(sampledEntropy(random.subarray(0, BLOCK_SIZE)) > 7.9);
  });

  test('stored blocks split at 65535 bytes', () => {
    const encoded = storedBlocks(Buffer.alloc(70_000, 1));
    assert.equal(encoded.length, 70_000 + 2 * 5);
    assert.equal(encoded.readUInt16LE(1), 65535);
    assert.equal(encoded.readUInt16LE(3), 0);
  });
});
