// `imgbuild add` streams: its peak memory does not grow with the size of the file added.
// The CLI adds a 64 MiB and a 1 GiB file of random (incompressible) bytes to a real registry
// under /usr/bin/time -v, and the 1 GiB run's peak RSS must stay within a fixed margin of the
// 64 MiB run's. A size, not a time: a build that held the file (or the layer) in memory
// would need 1 GiB more.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const MiB = 1024 * 1024;
/**
 * How much more the 1 GiB run may hold at its peak than the 64 MiB run: far below the 960 MiB
 * between the files. Measured: 0 to 85 MiB more (garbage of the hashing worker's copies, which
 * levels off: 2 GiB adds some 25 MiB to 1 GiB's peak); a file held in memory adds over 1 GiB.
 */
const MARGIN_BYTES = 128 * MiB;

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const chunk = 4 * MiB;
  async function* chunks() {
    for (let written = 0; written < bytes; written += chunk) yield randomBytes(Math.min(chunk, bytes - written));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}

/** "Maximum resident set size (kbytes): N" from GNU time -v, in bytes. */
function peakRss(stderr: string): number {
  const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  assert.ok(match, `no peak RSS in the output of /usr/bin/time -v:\n${stderr}`);
  return Number(match[1]) * 1024;
}

describe('imgbuild add keeps a flat memory peak, whatever the file size', () => {
  let registry: RunningRegistry;
  let workDir: string;
  const peaks = new Map<number, number>();

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-memory-test-')), ensureCliBuilt()]);
    await pushBaseImage(registry, 'base/app:1');
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  for (const size of [64 * MiB, 1024 * MiB]) {
    test(`add of a ${size / MiB} MiB random file: pushed whole, peak RSS measured`, { timeout: 20 * 60_000 }, async (t) => {
      const file = path.join(workDir, `random-${size / MiB}M.bin`);
      await writeRandomFile(file, size);
      try {
        const result = await runCli(
          ['add', '--from', `${registry.host}/base/app:1`, '--add', `${file}:/data/random.bin`, '--to', `${registry.host}/dest/memory:${size / MiB}m`],
          { wrapper: ['/usr/bin/time', '-v'], timeoutMs: 15 * 60_000 },
        );
        assert.equal(result.code, 0, describeResult(result));
        // The layer is really there and holds at least the file (incompressible: gzip cannot shrink it).
        const manifest = await skopeoInspect(`dest/memory:${size / MiB}m`, registry);
        assert.ok(manifest.layers.at(-1).size >= size, `the new layer has ${manifest.layers.at(-1).size} bytes for a ${size}-byte file`);
        peaks.set(size, peakRss(result.stderr));
        t.diagnostic(`peak RSS of add with a ${size / MiB} MiB file: ${(peaks.get(size)! / MiB).toFixed(1)} MiB`);
      } finally {
        await rm(file, { force: true });
      }
    });
  }

  test(`the 1 GiB peak is within ${MARGIN_BYTES / MiB} MiB of the 64 MiB peak`, () => {
    const small = peaks.get(64 * MiB);
    const large = peaks.get(1024 * MiB);
    assert.ok(small !== undefined && large !== undefined, 'a measurement is missing (see the tests above)');
    assert.ok(
      large <= small + MARGIN_BYTES,
      `peak RSS grew with the file: ${(small / MiB).toFixed(1)} MiB for 64 MiB, ${(large / MiB).toFixed(1)} MiB for 1 GiB`,
    );
  });
});
