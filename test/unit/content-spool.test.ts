import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ContentSpool, expectedBytes, expectedFile } from '../../src/content-spool.js';
import { sha256Digest } from '../../src/digest.js';
import { InputError } from '../../src/errors.js';

const MiB = 1024 * 1024;

/** Feeds `content` in uneven chunks, as a tar entry would. */
async function feed(spool: ContentSpool, content: Buffer, chunk = 100_003): Promise<void> {
  for (let offset = 0; offset < content.length; offset += chunk) await spool.write(content.subarray(offset, offset + chunk));
}

async function written(spool: ContentSpool): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  await spool.writeTo(out);
  return Buffer.concat(chunks);
}

describe('ContentSpool', () => {
  let dir: string;
  let spoolDirAsked = 0;
  const spoolDir = () => {
    spoolDirAsked++;
    return dir;
  };
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-spool-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('content equal to the expected file: matches, nothing spooled, replayed whole', async () => {
    const content = randomBytes(3 * MiB + 17);
    const file = path.join(dir, 'expected-equal');
    await writeFile(file, content);
    const expected = await expectedFile(file);
    const spool = new ContentSpool({ expected, spoolDir, sha256: true });
    spoolDirAsked = 0;
    await feed(spool, content);
    assert.deepEqual(spool.result(), { size: content.length, matches: true, expectedSize: content.length, sha256: sha256Digest(content) });
    assert.equal(spoolDirAsked, 0, 'a matching file was spooled to disk');
    assert.ok((await written(spool)).equals(content));
    await spool.close();
    await expected.close();
  });

  test('a difference past the memory limit: its offset, and the actual bytes replayed', async () => {
    const wanted = randomBytes(3 * MiB);
    const actual = Buffer.from(wanted);
    actual[2 * MiB + 5]! ^= 1;
    const spool = new ContentSpool({ expected: expectedBytes(wanted), spoolDir });
    await feed(spool, actual);
    assert.equal(spool.result().matches, false);
    assert.equal(spool.result().firstDifference, 2 * MiB + 5);
    assert.ok((await written(spool)).equals(actual));
    await spool.close();
  });

  test('shorter and longer than expected differ where the shorter ends', async () => {
    const wanted = Buffer.from('hello world\n');
    const shorter = new ContentSpool({ expected: expectedBytes(wanted), spoolDir });
    await feed(shorter, Buffer.from('hello'));
    assert.deepEqual(shorter.result(), { size: 5, matches: false, expectedSize: 12, firstDifference: 5 });
    assert.equal((await written(shorter)).toString(), 'hello');
    const longer = new ContentSpool({ expected: expectedBytes(wanted), spoolDir });
    await feed(longer, Buffer.from('hello world\nand more'), 4);
    assert.equal(longer.result().firstDifference, 12);
    assert.equal((await written(longer)).toString(), 'hello world\nand more');
  });

  test('without an expectation a big file goes to a spool file, removed on close', async () => {
    const content = randomBytes(3 * MiB);
    const spool = new ContentSpool({ spoolDir, sha256: true });
    await feed(spool, content);
    assert.equal((await readdir(dir)).filter((name) => name.startsWith('content-')).length, 1);
    assert.deepEqual(spool.result(), { size: content.length, sha256: sha256Digest(content) });
    assert.ok((await written(spool)).equals(content));
    assert.ok((await spool.toBuffer()).equals(content));
    await spool.close();
    assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith('content-')), []);
  });

  test('keepAtMost: a bigger file is counted and hashed, never spooled', async () => {
    const content = randomBytes(3 * MiB);
    const spool = new ContentSpool({ spoolDir, sha256: true, keepAtMost: MiB });
    spoolDirAsked = 0;
    await feed(spool, content);
    assert.deepEqual(spool.result(), { size: content.length, sha256: sha256Digest(content) });
    assert.equal(spoolDirAsked, 0);
    await assert.rejects(spool.toBuffer(), /not kept/);
    const small = new ContentSpool({ spoolDir, keepAtMost: MiB });
    await feed(small, Buffer.from('small'));
    assert.equal((await small.toBuffer()).toString(), 'small');
  });

  test('reset forgets what came before, in memory and on disk', async () => {
    for (const first of [Buffer.from('short'), randomBytes(2 * MiB)]) {
      const spool = new ContentSpool({ spoolDir, sha256: true });
      await feed(spool, first);
      await spool.reset();
      await feed(spool, Buffer.from('second'));
      assert.equal((await spool.toBuffer()).toString(), 'second');
      assert.equal(spool.result().sha256, sha256Digest('second'));
      await spool.close();
    }
  });

  test('an expected file that changes while it is compared fails the replay', async () => {
    const file = path.join(dir, 'expected-changing');
    await writeFile(file, 'steady\n');
    const expected = await expectedFile(file, '--expect-file x');
    const spool = new ContentSpool({ expected, spoolDir });
    await feed(spool, Buffer.from('steady\n'));
    await appendFile(file, 'more\n');
    await assert.rejects(written(spool), (error: Error) => error instanceof InputError && /--expect-file x changed/.test(error.message));
    await expected.close();
  });

  test('a missing or non-regular expected file is an input error naming it', async () => {
    await assert.rejects(expectedFile(path.join(dir, 'nope'), '--expect-file nope'), /cannot read --expect-file nope: ENOENT/);
    await assert.rejects(expectedFile(dir, '--expect-file dir'), /--expect-file dir is not a regular file/);
  });
});
