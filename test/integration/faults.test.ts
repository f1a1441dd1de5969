// Retry and resume behaviour of the registry client against the real registry,
// with faults injected by a proxy in front of it: throttling, unavailability,
// connections cut in the middle of an upload, and a registry that keeps failing.
// What the client did is read from the proxy's log, never inferred from timing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { addToImage } from '../../src/add.js';
import { type Digest, sha256Digest } from '../../src/digest.js';
import { RegistryError } from '../../src/errors.js';
import { parseAddSpec } from '../../src/image/layer.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { startFaultProxy, type ProxiedRequest, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
// Small delays keep the suite fast; the attempts are what the tests count.
const FAST_RETRY = { attempts: 4, baseDelayMs: 20, maxDelayMs: 100 };
const CHUNKED: RegistryClientOptions = { monolithicUploadLimit: 1 * MiB, chunkSize: 4 * MiB, retry: FAST_RETRY };

function describeLog(log: readonly ProxiedRequest[]): string {
  return log
    .map((entry) => `${entry.method} ${entry.kind} -> ${entry.status}${entry.fault ? ` [${entry.fault}]` : ''} body ${entry.bodyBytes}/${entry.forwardedBytes}${entry.contentRange ? ` range ${entry.contentRange}` : ''}`)
    .join('\n');
}

function blobSource(bytes: Buffer) {
  return (start: number, end: number) => Readable.from([bytes.subarray(start, end)]);
}

describe('registry client against injected faults (real registry behind a proxy)', () => {
  let registry: RunningRegistry;
  let proxy: RunningFaultProxy;
  const clients: RegistryClient[] = [];
  let blob: Buffer;
  let blobDigest: Digest;

  const client = (options: RegistryClientOptions = { retry: FAST_RETRY }) => {
    const created = new RegistryClient(proxy.host, options);
    clients.push(created);
    return created;
  };

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    await pushBaseImage(registry, 'base/app:1');
    blob = randomBytes(20 * MiB);
    blobDigest = sha256Digest(blob);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    proxy.reset();
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test('a 429 with Retry-After: 1 on a manifest GET is retried after the asked delay, and succeeds', async () => {
    const reader = client({ retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 5 } });
    proxy.failNext({ method: 'GET', kind: 'manifest', status: 429, headers: { 'retry-after': '1' } });
    const started = Date.now();
    const manifest = await reader.getManifest('base/app', '1');
    const elapsed = Date.now() - started;
    assert.match(manifest.mediaType, /manifest/);
    const gets = proxy.matching({ method: 'GET', kind: 'manifest' });
    assert.deepEqual(gets.map((entry) => entry.status), [429, 200], describeLog(proxy.log));
    // The policy's own delay is 5 ms: only Retry-After explains a wait near a second.
    assert.ok(elapsed >= 900, `retried after ${elapsed} ms; Retry-After asked for 1000`);
  });

  test('503 twice on a blob HEAD, then the registry answers: the size is returned', async () => {
    const reader = client();
    const manifest = JSON.parse((await reader.getManifest('base/app', '1')).bytes.toString('utf8'));
    const layer = manifest.layers[0] as { digest: Digest; size: number };
    proxy.failNext({ method: 'HEAD', kind: 'blob', status: 503, times: 2 });
    assert.equal(await reader.headBlob('base/app', layer.digest), layer.size);
    const heads = proxy.matching({ method: 'HEAD', kind: 'blob' });
    assert.deepEqual(heads.map((entry) => entry.status), [503, 503, 200], describeLog(proxy.log));
  });

  /** Uploads `blob` in chunks while the proxy cuts the third PATCH after 1 MB. */
  async function uploadWithCutThirdChunk(repository: string, forwardBeforeReset: boolean) {
    const uploader = client(CHUNKED);
    proxy.resetNext({ kind: 'upload-chunk', after: 2, afterBytes: 1_000_000, forwardBeforeReset });
    await uploader.uploadBlob(repository, blobDigest, blob.length, blobSource(blob));
    const log = [...proxy.log];
    const cutAt = log.findIndex((entry) => entry.fault === 'reset');
    assert.ok(cutAt >= 0, `the proxy never cut a chunk:\n${describeLog(log)}`);
    const afterCut = log.slice(cutAt + 1);
    return { uploader, log, afterCut };
  }

  async function assertBlobVerifies(uploader: RegistryClient, repository: string) {
    assert.equal(await uploader.headBlob(repository, blobDigest), blob.length);
    const fetched = await uploader.getBlob(repository, blobDigest);
    assert.equal(sha256Digest(fetched), blobDigest);
  }

  test('a connection cut mid-PATCH before the bytes reach the registry: the upload resumes from the offset the registry reports', async () => {
    const { uploader, log, afterCut } = await uploadWithCutThirdChunk('faults/resume', false);
    assert.equal(afterCut[0]?.kind, 'upload-status', `no upload status request right after the cut:\n${describeLog(log)}`);
    assert.equal(afterCut[0]?.status, 204, describeLog(log));
    assert.equal(afterCut.filter((entry) => entry.kind === 'upload-start').length, 0, `the upload was restarted:\n${describeLog(log)}`);
    const resent = afterCut.filter((entry) => entry.kind === 'upload-chunk').reduce((sum, entry) => sum + entry.bodyBytes, 0);
    // Two chunks (8 MiB) were stored before the cut: only the other 12 MiB go again.
    assert.equal(resent, blob.length - 8 * MiB, describeLog(log));
    assert.match(afterCut.find((entry) => entry.kind === 'upload-chunk')?.contentRange ?? '', /^8388608-/);
    await assertBlobVerifies(uploader, 'faults/resume');
  });

  test('a connection cut mid-PATCH after 1 MB reached the registry: the client asks for the status, and still completes a verified blob', async () => {
    // distribution 2.8 keeps the partial bytes but not the offset in the upload state, so it
    // declares the session invalid on the status request: the client must start over.
    const { uploader, log, afterCut } = await uploadWithCutThirdChunk('faults/partial', true);
    const cut = log.find((entry) => entry.fault === 'reset')!;
    assert.equal(cut.forwardedBytes, 1_000_000);
    assert.equal(afterCut[0]?.kind, 'upload-status', `no upload status request right after the cut:\n${describeLog(log)}`);
    if (afterCut[0]?.status === 204) {
      const resent = afterCut.filter((entry) => entry.kind === 'upload-chunk').reduce((sum, entry) => sum + entry.bodyBytes, 0);
      assert.ok(resent < blob.length, `resumed, yet re-sent ${resent} bytes:\n${describeLog(log)}`);
    } else {
      assert.equal(afterCut[1]?.kind, 'upload-start', `after a refused status the upload must start a new session:\n${describeLog(log)}`);
    }
    await assertBlobVerifies(uploader, 'faults/partial');
  });

  test('a connection cut in the first PATCH before any byte is stored: the upload resumes at byte 0, not 1', async () => {
    // The registry reports an empty upload as "Range: 0-0", which also means "byte 0 stored".
    const uploader = client(CHUNKED);
    proxy.resetNext({ kind: 'upload-chunk', afterBytes: 1_000_000, forwardBeforeReset: false });
    let failure: unknown;
    try {
      await uploader.uploadBlob('faults/first-chunk', blobDigest, blob.length, blobSource(blob));
    } catch (error) {
      failure = error;
    }
    const chunks = proxy.matching({ kind: 'upload-chunk' }).filter((entry) => !entry.fault);
    assert.equal(failure, undefined, `upload failed: ${(failure as Error)?.message}\n${describeLog(proxy.log)}`);
    assert.match(chunks[0]?.contentRange ?? '', /^0-/, describeLog(proxy.log));
    await assertBlobVerifies(uploader, 'faults/first-chunk');
  });

  test('a registry that keeps answering 500 fails the push after the retry budget, names the operation, and never PUTs the manifest', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-faults-'));
    try {
      const file = path.join(dir, 'hello.txt');
      await writeFile(file, 'hello\n');
      const pusher = client({ retry: FAST_RETRY });
      proxy.failNext({ method: 'POST', kind: 'upload-start', status: 500, times: Infinity });
      await assert.rejects(
        addToImage({
          from: `${proxy.host}/base/app:1`,
          to: `${proxy.host}/faults/app:2`,
          adds: [parseAddSpec(`${file}:/opt/hello.txt`)],
          clientFor: () => pusher,
          concurrency: 1,
        }),
        (error: unknown) => {
          assert.ok(error instanceof RegistryError, `not a RegistryError: ${String(error)}`);
          assert.match(error.message, /HTTP 500/);
          assert.match(error.message, /(mounting sha256:[0-9a-f]+ from base\/app|starting an upload to faults\/app)/);
          return true;
        },
      );
      const posts = proxy.matching({ method: 'POST', kind: 'upload-start' });
      // One blob's POST was tried as often as the policy allows, and no more.
      assert.equal(posts.length, FAST_RETRY.attempts, describeLog(proxy.log));
      assert.equal(proxy.count({ method: 'PUT', kind: 'manifest' }), 0, describeLog(proxy.log));
      assert.equal(await client().resolveTag('faults/app', '2'), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** Resolves true once `condition` holds, false after `ms` without it. */
  async function eventually(condition: () => boolean, ms: number): Promise<boolean> {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 10))) {
      if (condition()) return true;
    }
    return condition();
  }

  test('a small new blob: its upload session is opened while the HEAD is still unanswered (two round trips, not three)', async () => {
    const small = randomBytes(1000);
    const digest = sha256Digest(small);
    // The HEAD is answered only once the POST has reached the proxy (or after 3 s, and then the test fails).
    const postBeforeHeadAnswer = eventually(() => proxy.count({ method: 'POST', kind: 'upload-start' }) > 0, 3000);
    proxy.failNext({ method: 'HEAD', kind: 'blob', status: 404, until: postBeforeHeadAnswer });
    assert.equal(await client().ensureBlob('overlap/app', digest, small.length, blobSource(small)), 'uploaded');
    assert.equal(await postBeforeHeadAnswer, true, `the POST waited for the HEAD:\n${describeLog(proxy.log)}`);
    assert.equal(await new RegistryClient(registry.host).headBlob('overlap/app', digest), small.length);
  });

  test('a small blob already there: "existed", and the session opened alongside is closed, nothing uploaded', async () => {
    const small = randomBytes(1000);
    const digest = sha256Digest(small);
    await client().uploadBlob('overlap/app', digest, small.length, blobSource(small));
    proxy.reset();
    const pusher = client();
    assert.equal(await pusher.ensureBlob('overlap/app', digest, small.length, blobSource(small)), 'existed');
    await pusher.close(); // waits for the session to be closed
    assert.equal(proxy.count({ kind: 'upload-start' }), 1, describeLog(proxy.log));
    assert.equal(proxy.count({ kind: 'upload-cancel' }), 1, describeLog(proxy.log));
    assert.equal(proxy.count({ kind: 'upload-complete' }), 0, describeLog(proxy.log));
  });
});
