// The Huffman-only deflater must give zlib's bytes exactly (layer digests depend on them), and
// the deflate workers must give the same gzip stream as the thread-pool path.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { constants, deflateRawSync, gunzipSync } from 'node:zlib';
import { AdaptiveGzip, type BlockEncoder } from '../../src/image/adaptive-gzip.js';
import { DeflateWorkers } from '../../src/image/deflate-workers.js';
import { createHuffmanDeflater } from '../../src/image/huffman-deflate.js';

function zlibHuffmanOnly(input: Buffer, final: boolean): Buffer {
  return deflateRawSync(input, {
    level: 1,
    strategy: constants.Z_HUFFMAN_ONLY,
    finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    chunkSize: input.length + 64 * 1024,
  });
}

/** Deterministic pseudo-random bytes, so a failure can be reproduced. */
function seeded(length: number, seed: number, pick: (random: () => number) => number): Buffer {
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  return Buffer.from(Array.from({ length }, () => pick(random)));
}

const base64 = randomBytes(900_000).toString('base64');
const BLOCK_SYMBOLS = 16_383;
const inputs: Array<[string, Buffer]> = [
  ['one byte', Buffer.from('a')],
  ['base64, 1 MiB', Buffer.from(base64.slice(0, 1024 * 1024))],
  ['base64, exactly one block', Buffer.from(base64.slice(0, BLOCK_SYMBOLS))],
  ['base64, one block and a byte', Buffer.from(base64.slice(0, BLOCK_SYMBOLS + 1))],
  ['base64, exactly two blocks', Buffer.from(base64.slice(0, 2 * BLOCK_SYMBOLS))],
  ['random bytes (stored blocks win)', randomBytes(100_000)],
  ['zeros', Buffer.alloc(50_000)],
  ['two symbols', Buffer.from('ab'.repeat(30_000))],
  ['source text', readFileSync(new URL('../../src/image/layer.ts', import.meta.url))],
  ['skewed (fixed codes win on small blocks)', seeded(40_000, 1, (r) => (r() < 0.9 ? 65 : Math.floor(r() ** 8 * 256)))],
  ['a long tail of rare bytes', seeded(300_000, 2, (r) => Math.floor(256 * r() ** 3))],
  // Fibonacci frequencies give a tree deeper than 15 levels: the length-limiting path.
  ['Fibonacci frequencies', seeded(120_000, 3, (r) => Math.min(24, Math.floor(-Math.log(r() + 1e-12) / Math.log(1.618))))],
  ['a slice of the node binary', readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + 500_000)],
];

describe('createHuffmanDeflater', () => {
  const deflater = createHuffmanDeflater();
  for (const [name, input] of inputs) {
    test(`${name}: the bytes zlib gives, after a sync flush and as a final block`, () => {
      for (const final of [false, true]) {
        const expected = zlibHuffmanOnly(input, final);
        const actual = Buffer.from(deflater.deflate(input, final));
        assert.ok(actual.equals(expected), `${name}, final=${final}: ${actual.length} bytes, zlib ${expected.length}`);
      }
    });
  }

  test('an input larger than the memory it has grown to so far', () => {
    const input = Buffer.from(base64.repeat(4).slice(0, 3 * 1024 * 1024 + 17));
    assert.ok(Buffer.from(deflater.deflate(input, false)).equals(zlibHuffmanOnly(input, false)));
  });
});

async function gzip(input: Buffer, encoder?: BlockEncoder): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += 300_000) chunks.push(input.subarray(offset, offset + 300_000));
  const out: Buffer[] = [];
  for await (const piece of Readable.from(chunks).pipe(new AdaptiveGzip(1, encoder))) out.push(piece as Buffer);
  return Buffer.concat(out);
}

describe('DeflateWorkers', () => {
  test('give the thread-pool path\'s gzip stream: stored, Huffman-only and string-matching blocks', async () => {
    const text = Buffer.from(readFileSync(new URL('../../src/image/layer.ts', import.meta.url), 'utf8').repeat(200));
    // Words from a 2,000-word vocabulary: string matching gains about a quarter over Huffman
    // coding alone, near the threshold where the probe picks it.
    const vocabulary = Array.from({ length: 2000 }, (_, i) => base64.slice(i * 8, i * 8 + 3 + (i % 6)).toLowerCase());
    const picks = seeded(600_000, 4, (r) => Math.floor(r() * 256));
    const words = Array.from({ length: 300_000 }, (_, i) => vocabulary[(picks[2 * i]! * 256 + picks[2 * i + 1]!) % 2000]).join(' ');
    const input = Buffer.concat([Buffer.from(base64), randomBytes(2 * 1024 * 1024), text, Buffer.from(words), Buffer.alloc(1024 * 1024 + 5)]);
    const workers = new DeflateWorkers(2);
    try {
      const expected = await gzip(input);
      const actual = await gzip(input, workers);
      assert.ok(actual.equals(expected), `workers: ${actual.length} bytes, pool: ${expected.length}`);
      assert.ok(gunzipSync(actual).equals(input));
    } finally {
      await workers.close();
    }
  });

  test('closing the workers fails blocks still being encoded, and later ones, instead of hanging', async () => {
    const workers = new DeflateWorkers(1);
    const pending = assert.rejects(workers.encode(Buffer.from(base64.slice(0, 100_000)), 1), /closed before the layer was written/);
    await workers.close();
    await pending;
    await assert.rejects(workers.encode(Buffer.from('x'), 1), /closed/);
  });
});
