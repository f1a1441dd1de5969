// The registry dies in the middle of a large upload. Killed for good: `imgbuild add` must
// fail with a message about the upload/registry, and the destination tag must not move.
// Killed and restarted within a second: the CLI's retries (~5 attempts with backoff) must
// carry the upload through, and the pushed file must read back byte for byte.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, startCli, type RunningCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const BIG_FILE_BYTES = 300 * 1024 * 1024;
const GENERATE_CHUNK_BYTES = 16 * 1024 * 1024;
// Kill once this much of the big layer reached the registry: surely mid-upload (the layer
// is ~300 MB), and no small blob (config) ever gets there.
const KILL_AFTER_UPLOADED_BYTES = 16 * 1024 * 1024;
const UPLOAD_WAIT_MS = 120_000;

async function writeRandomFile(file: string, size: number): Promise<void> {
  const out = createWriteStream(file);
  for (let written = 0; written < size; written += GENERATE_CHUNK_BYTES) {
    if (!out.write(randomBytes(Math.min(GENERATE_CHUNK_BYTES, size - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Bytes in the registry's open upload sessions for `repository` (filesystem driver layout). */
async function uploadedBytes(registry: RunningRegistry, repository: string): Promise<number> {
  const uploads = path.join(registry.dataDir, 'docker/registry/v2/repositories', repository, '_uploads');
  const sessions = await readdir(uploads).catch(() => [] as string[]);
  let largest = 0;
  for (const session of sessions) {
    const size = await stat(path.join(uploads, session, 'data')).then((s) => s.size, () => 0);
    largest = Math.max(largest, size);
  }
  return largest;
}

/** Waits until the CLI has sent `bytes` of one blob to `repository`; fails if the CLI ends first. */
async function waitForUpload(cli: RunningCli, registry: RunningRegistry, repository: string, bytes: number): Promise<number> {
  let exited = false;
  cli.result.then(() => (exited = true), () => (exited = true));
  const deadline = Date.now() + UPLOAD_WAIT_MS;
  for (;;) {
    const seen = await uploadedBytes(registry, repository);
    if (seen >= bytes) return seen;
    if (exited) assert.fail(`the CLI ended before uploading ${bytes} bytes:\n${describeResult(await cli.result)}`);
    if (Date.now() > deadline) assert.fail(`no upload of ${bytes} bytes to ${repository} within ${UPLOAD_WAIT_MS} ms`);
    await sleep(20);
  }
}

describe('the registry killed during a 300 MB upload', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let bigFile: string;

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-interrupted-test-')),
      ensureCliBuilt(),
    ]);
    bigFile = path.join(workDir, 'big.bin');
    await writeRandomFile(bigFile, BIG_FILE_BYTES);
    await writeFile(path.join(workDir, 'small.txt'), 'small\n');
    await pushSeedBase(registry);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  // Level 0: gzip at level 1 runs at ~20 MB/s on random bytes on a busy 2-core machine;
  // the test is about the upload, not the compression.
  const addArgs = (to: string) => [
    'add', '-v', '-o', 'json', '--compression-level', '0',
    '--from', `${registry.host}/${SEED_BASE}`,
    '--add', 'big.bin:/data/big.bin',
    '--to', `${registry.host}/${to}`,
  ];

  test('killed for good: the add fails naming the registry, and the tag keeps its old digest', async (t: TestContext) => {
    const repository = 'interrupted/app';
    const old = await pushBaseImage(registry, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
    const cli = await startCli(addArgs(`${repository}:current`), { cwd: workDir, timeoutMs: 150_000 });
    const seen = await waitForUpload(cli, registry, repository, KILL_AFTER_UPLOADED_BYTES);
    registry.kill();
    const killedAt = Date.now();
    const result = await cli.result;
    t.diagnostic(`killed after ${seen} bytes reached the registry; the CLI gave up ${Date.now() - killedAt} ms later`);
    t.diagnostic(`CLI said: ${result.stderr.split('\n').filter((line) => /^(error|hint):/.test(line)).join(' | ')}`);
    assert.equal(result.code, 1, describeResult(result));
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^error: .*(upload of (?:sha256:[0-9a-f]{64}|new layer) to interrupted\/app failed|cannot reach registry 127\.0\.0\.1:\d+)/m);
    assert.match(result.stderr, /ECONNREFUSED|ECONNRESET|socket|closed/i);
    assert.match(result.stderr, /^hint: /m);
    assert.doesNotMatch(result.stderr, /internal error/);

    await registry.restart();
    assert.equal((await skopeoInspect(`${repository}:current`, registry, 'summary')).Digest, old.digest);
    const verify = await runCli(['verify', `${registry.host}/${repository}:current`, '--file', '/data/big.bin']);
    assert.equal(verify.code, 1, describeResult(verify));
  });

  test('killed and restarted within a second: the add completes and the file reads back', async (t: TestContext) => {
    const repository = 'resumed/app';
    await pushBaseImage(registry, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
    const cli = await startCli(addArgs(`${repository}:current`), { cwd: workDir, timeoutMs: 150_000 });
    const seen = await waitForUpload(cli, registry, repository, KILL_AFTER_UPLOADED_BYTES);
    registry.kill();
    await sleep(300);
    await registry.restart();
    const result = await cli.result;
    // The label is the blob's digest, or "new layer" when the layer was sent while being built.
    const resumedAt = /resuming upload of (?:sha256:[0-9a-f]{64}|new layer) at byte (\d+)/.exec(result.stderr);
    const restartedFromZero = /restarting (?:sha256:[0-9a-f]{64}|new layer) from byte 0/.test(result.stderr);
    t.diagnostic(
      `killed after ${seen} bytes; ${resumedAt ? `resumed at byte ${resumedAt[1]}` : restartedFromZero ? 'restarted from byte 0' : 'no resume logged'}`,
    );
    // distribution refuses to resume a session whose data file holds more than the last
    // acknowledged chunk (a chunk cut off mid-way), so a client can only start over then.
    const refused = /upload resumed at wrong off\w+: \d+ != \d+/.exec(registry.logs());
    if (refused) t.diagnostic(`registry log: ${refused[0]}`);
    assert.equal(result.code, 0, describeResult(result));
    // The kill hit the upload: the CLI had to resume or restart it.
    assert.ok(resumedAt || restartedFromZero, `no resume or restart in the log:\n${result.stderr}`);

    const output = JSON.parse(result.stdout);
    const manifest = await skopeoInspect(`${repository}:current`, registry);
    assert.equal((await skopeoInspect(`${repository}:current`, registry, 'summary')).Digest, output.digest);
    assert.equal(manifest.layers.at(-1).digest, output.layer.digest);
    assert.equal(manifest.layers.at(-1).size, output.layer.size);

    const verify = await runCli(
      ['verify', `${registry.host}/${repository}:current`, '--file', '/data/big.bin', '--expect-file', bigFile],
      { stdout: 'discard', timeoutMs: 120_000 },
    );
    assert.equal(verify.code, 0, describeResult(verify));
    assert.equal(verify.stdoutBytes, BIG_FILE_BYTES);
  });

  test('Ctrl-C during the upload: exit 130, the tag keeps its old digest, no temporary file is left', async () => {
    const repository = 'ctrl-c/app';
    const old = await pushBaseImage(registry, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
    const scratch = await mkdtemp(path.join(tmpdir(), 'imgbuild-ctrl-c-tmp-'));
    try {
      const cli = await startCli(addArgs(`${repository}:current`), { cwd: workDir, timeoutMs: 150_000, env: { TMPDIR: scratch } });
      await waitForUpload(cli, registry, repository, KILL_AFTER_UPLOADED_BYTES);
      cli.child.kill('SIGINT');
      const result = await cli.result;
      assert.equal(result.code, 130, describeResult(result));
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /interrupted \(SIGINT\)/);
      assert.equal((await skopeoInspect(`${repository}:current`, registry, 'summary')).Digest, old.digest);
      assert.deepEqual(await readdir(scratch), [], 'the layer file and work directory are removed');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
