// A large new layer is uploaded while it is built; then the base fetch fails. The upload must be
// abandoned and its session closed, which the registry itself proves: it answered the DELETE of
// the very session it had taken chunks into, that session is gone from its storage, and the
// layer's blob is absent (HEAD 404).
//
// The order is forced, not hoped for: a proxy holds the base manifest request and answers it
// 404 only once the registry has accepted a chunk of the new layer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { addToImage } from '../../src/add.js';
import { AbortedError, NotFoundError } from '../../src/errors.js';
import { buildLayer, parseAddSpec } from '../../src/image/layer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startFaultProxy, type ProxiedRequest, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
const REPOSITORY = 'abandoned/app';
const SOURCE_DATE_EPOCH = 1_700_000_000;
const WAIT_MS = 120_000;

async function randomFile(file: string, megabytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < megabytes; i++) if (!out.write(randomBytes(MiB))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

function uploadsDir(registry: RunningRegistry): string {
  return path.join(registry.dataDir, 'docker/registry/v2/repositories', REPOSITORY, '_uploads');
}

/** The upload session id in an upload URL (`/v2/<repo>/blobs/uploads/<id>?...`). */
function sessionOf(entry: ProxiedRequest): string {
  return /\/blobs\/uploads\/([^/?]+)/.exec(entry.url)?.[1] ?? '';
}

describe('a failed base fetch abandons the layer upload started while the layer was built', () => {
  let registry: RunningRegistry;
  let proxy: RunningFaultProxy;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-abandon-test-'))]);
    proxy = await startFaultProxy(registry.host);
    await randomFile(path.join(workDir, 'big.bin'), 96);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('the registry saw the session it took chunks into deleted, and has no blob for the layer', async () => {
    const adds = [parseAddSpec(`${path.join(workDir, 'big.bin')}:/big.bin`)];
    // Level 0: the test is about the upload, not gzip's speed on random bytes.
    const layerOptions = { compressionLevel: 0 };
    let releaseBase!: () => void;
    proxy.failNext({
      method: 'GET',
      kind: 'manifest',
      status: 404,
      body: { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] },
      until: new Promise<void>((resolve) => (releaseBase = resolve)),
    });
    const client = new RegistryClient(proxy.host, { monolithicUploadLimit: MiB, chunkSize: 4 * MiB });
    try {
      // The client's first request finds the scheme, and the others wait for its answer: ask
      // something first, so the held base request is not that one.
      await client.headBlob(REPOSITORY, `sha256:${'0'.repeat(64)}`);
      let ended = false;
      const adding = addToImage({
        from: `${proxy.host}/no/such-base:1`,
        to: `${proxy.host}/${REPOSITORY}:1`,
        adds,
        layerOptions,
        sourceDateEpoch: SOURCE_DATE_EPOCH,
        clientFor: () => client,
      });
      adding.then(() => (ended = true), () => (ended = true));

      // Wait until the registry has accepted a chunk of the new layer and the next one is on its
      // way (its bytes arriving); only then does the base fail.
      const deadline = Date.now() + WAIT_MS;
      let accepted: ProxiedRequest | undefined;
      const chunkInFlight = () => proxy.matching({ kind: 'upload-chunk' }).some((entry) => entry.status === 0 && !entry.fault && entry.forwardedBytes > 0);
      while (!(accepted = proxy.matching({ kind: 'upload-chunk' }).find((entry) => entry.status === 202)) || !chunkInFlight()) {
        assert.ok(!ended, 'the add ended before the layer upload was under way');
        assert.ok(Date.now() < deadline, `no chunk accepted and another in flight within ${WAIT_MS} ms`);
        await sleep(2);
      }
      const session = sessionOf(accepted);
      // Positive control: the registry holds the partial upload in its storage.
      assert.ok((await stat(path.join(uploadsDir(registry), session, 'data'))).size > 0, 'the registry holds no bytes of the upload');
      assert.equal(proxy.count({ kind: 'manifest' }), 1, 'the base manifest request is still held');
      releaseBase();

      await assert.rejects(adding, NotFoundError);

      // The client let the chunk in flight finish (distribution cannot cancel a session whose chunk
      // was cut), closed that very session, and the registry answered the DELETE.
      const deletes = proxy.matching({ kind: 'upload-cancel' }).filter((entry) => sessionOf(entry) === session);
      assert.deepEqual(deletes.map((entry) => entry.status), [204], JSON.stringify(proxy.log.map((e) => `${e.method} ${e.kind} ${e.status} ${sessionOf(e)}`)));
      assert.match(registry.logs(), new RegExp(`"DELETE /v2/${REPOSITORY}/blobs/uploads/${session}[^"]*" 204`));
      assert.equal(proxy.matching({ kind: 'upload-complete' }).filter((entry) => sessionOf(entry) === session).length, 0);
      // distribution removes a cancelled session's data and start time (it keeps an empty hash state directory).
      const left = await readdir(path.join(uploadsDir(registry), session)).catch((): string[] => []);
      assert.ok(!left.includes('data') && !left.includes('startedat'), `the registry still holds the session: ${left.join(', ')}`);

      // The layer the add would have pushed is not in the registry.
      const layer = await buildLayer(adds, { ...layerOptions, sourceDateEpoch: SOURCE_DATE_EPOCH, tmpDir: workDir });
      await layer.dispose();
      const head = await fetch(`http://${registry.host}/v2/${REPOSITORY}/blobs/${layer.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
    } finally {
      releaseBase();
      await client.close();
    }
  });

  test('an AbortSignal during the early upload: AbortedError once the session is closed and the layer file removed', async () => {
    const repository = 'aborted/early';
    const scratch = await mkdtemp(path.join(tmpdir(), 'imgbuild-abandon-tmp-'));
    const client = new RegistryClient(proxy.host, { monolithicUploadLimit: MiB, chunkSize: 4 * MiB });
    try {
      const controller = new AbortController();
      // The base's 404 is held back until the abort, so only the abort can end the add.
      proxy.failNext({ method: 'GET', kind: 'manifest', status: 404, until: new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => setTimeout(resolve, 0))) });
      const adding = addToImage({
        from: `${proxy.host}/no/such-base:1`,
        to: `${proxy.host}/${repository}:1`,
        adds: [parseAddSpec(`${path.join(workDir, 'big.bin')}:/big.bin`)],
        layerOptions: { compressionLevel: 0 },
        clientFor: () => client,
        tmpDir: scratch,
        signal: controller.signal,
      });
      adding.catch(() => {});
      let accepted: ProxiedRequest | undefined;
      while (!(accepted = proxy.matching({ kind: 'upload-chunk', path: new RegExp(`^/v2/${repository}/`) }).find((entry) => entry.status === 202))) await sleep(10);
      // Positive control: the layer file is in tmpDir.
      assert.ok((await readdir(scratch)).some((name) => /^imgbuild-layer-.*\.tar\.gz$/.test(name)), 'no layer file in tmpDir');
      controller.abort();
      await assert.rejects(adding, AbortedError);
      assert.deepEqual(await readdir(scratch), []);
      const deletes = proxy.matching({ kind: 'upload-cancel' }).filter((entry) => sessionOf(entry) === sessionOf(accepted!));
      assert.deepEqual(deletes.map((entry) => entry.status), [204]);
    } finally {
      await client.close();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
