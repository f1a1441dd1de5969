// imgbuild's own registry (`imgbuild registry serve`) as the engine's source and destination,
// checked by tools imgbuild did not write: skopeo copies images into and out of it, umoci
// unpacks them, and CNCF distribution (the judge) receives what the engine copies out of it.
// Then what the conformance suite does not look at: ranges, offsets, refused manifests, strict
// deletes, pagination links, one log line per request, and a clean SIGTERM. (TLS and auth:
// tls-auth.test.ts runs against this registry too.)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BlobOutcome } from '../../src/image/push.js';
import { fetchRemote } from '../../src/image/remote.js';
import { remoteImageToWrite, writeImage } from '../../src/image/write.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistryServer, type RunningRegistryServer } from '../../src/registry-server/server.js';
import { FilesystemStorage } from '../../src/storage/filesystem.js';
import { describeResult, ensureCliBuilt, runCli, startCli } from '../helpers/cli.js';
import { FIXTURE_PASSWD, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeo, skopeoInspect, skopeoRegistryFlags } from '../helpers/tools.js';

const HELLO = 'built-by: kaniko\nmessage: hello from kaniko build\n';
const SEED_ADD = ['--add', 'hello.txt:/opt/app/hello.txt', '--workdir', '/opt/app', '--user', 'root'];
const DIGEST_LINE = /^(\S+)@(sha256:[0-9a-f]{64})\n$/;
const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function printedDigest(stdout: string): string {
  const match = DIGEST_LINE.exec(stdout);
  assert.ok(match, `stdout is not one REPOSITORY@sha256:<hex> line: ${JSON.stringify(stdout)}`);
  return match[2]!;
}

describe('the engine with the embedded registry as source and destination', () => {
  let ours: RunningRegistry;
  let judge: RunningRegistry;
  let workDir: string;

  before(async () => {
    [ours, judge, workDir] = await Promise.all([
      startRegistry({ server: 'imgbuild' }),
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-registry-server-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), HELLO);
    // skopeo copies the base into it.
    await pushSeedBase(ours);
  });
  after(async () => {
    await Promise.all([ours?.stop(), judge?.stop()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('add, inspect and verify on it; skopeo and umoci read the result out of it', async () => {
    const target = `${ours.host}/seed/result:1`;
    const added = await runCli(['add', '--from', `${ours.host}/${SEED_BASE}`, ...SEED_ADD, '--to', target], { cwd: workDir });
    assert.equal(added.code, 0, describeResult(added));
    const digest = printedDigest(added.stdout);
    assert.equal((await skopeoInspect('seed/result:1', ours, 'summary')).Digest, digest);
    await assertUmociReadsBack(ours, 'seed/result:1', '/opt/app/hello.txt', HELLO);

    const inspected = await runCli(['inspect', '-o', 'json', target]);
    assert.equal(inspected.code, 0, describeResult(inspected));
    assert.equal(JSON.parse(inspected.stdout).digest, digest);
    const verified = await runCli(['verify', target, '--file', '/opt/app/hello.txt', '--expect-file', 'hello.txt'], { cwd: workDir });
    assert.equal(verified.code, 0, describeResult(verified));
  });

  test('a base on it, the result on distribution, and back: skopeo copies between the two', async () => {
    const added = await runCli(['add', '--from', `${ours.host}/${SEED_BASE}`, ...SEED_ADD, '--to', `${judge.host}/from-ours:1`], { cwd: workDir });
    assert.equal(added.code, 0, describeResult(added));
    await assertUmociReadsBack(judge, 'from-ours:1', '/opt/app/hello.txt', HELLO);
    await skopeo(['copy', ...skopeoRegistryFlags(judge, 'src'), ...skopeoRegistryFlags(ours, 'dest'), `docker://${judge.host}/from-ours:1`, `docker://${ours.host}/round/trip:1`]);
    assert.equal((await skopeoInspect('round/trip:1', ours, 'summary')).Digest, printedDigest(added.stdout));
    await assertUmociReadsBack(ours, 'round/trip:1', '/opt/app/hello.txt', HELLO);
  });
});

test('the engine writes into a FilesystemStorage through the Storage interface, and the server serves it', { timeout: 120_000 }, async () => {
  const [judge, dir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-fs-storage-'))]);
  const client = new RegistryClient(judge.host);
  let server: RunningRegistryServer | undefined;
  try {
    await pushSeedBase(judge);
    const store = await FilesystemStorage.open(dir);
    const base = await fetchRemote({ client, repository: SEED_BASE.split(':')[0]! }, 'v6.33.1');
    assert.equal(base.kind, 'image');
    if (base.kind !== 'image') return;
    // Copied from the registry into the store, then within the store (blobs mounted, not copied).
    const copied = await writeImage({ storage: store, repository: 'copied/base' }, remoteImageToWrite(base), 'v1');
    const again = await fetchRemote({ client: store, repository: 'copied/base' }, 'v1');
    assert.equal(again.kind, 'image');
    if (again.kind !== 'image') return;
    const counts: Record<BlobOutcome, number> = { existed: 0, mounted: 0, uploaded: 0, copied: 0 };
    await writeImage({ storage: store, repository: 'mounted/base' }, remoteImageToWrite(again), 'v1', { counts });
    assert.equal(counts.mounted, again.manifest.layers.length + 1, JSON.stringify(counts));
    assert.equal(copied.digest, base.digest);
    server = await startRegistryServer({ dir });
    const served = { host: server.host, scheme: 'http' } as RunningRegistry;
    assert.equal((await skopeoInspect('mounted/base:v1', served, 'summary')).Digest, base.digest);
    await assertUmociReadsBack(served, 'copied/base:v1', '/etc/passwd', FIXTURE_PASSWD);
  } finally {
    await server?.close();
    await client.close();
    await judge.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

describe('the API beyond the conformance suite (startRegistryServer in process)', () => {
  let server: RunningRegistryServer;
  let dir: string;
  const logLines: string[] = [];
  const url = (p: string) => `${server.url}${p}`;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-registry-api-test-'));
    server = await startRegistryServer({ dir, logger: { debug() {}, info: (line) => logLines.push(line), warn: (line) => logLines.push(line) } });
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function pushBlob(name: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    const response = await fetch(url(`/v2/${name}/blobs/uploads/?digest=${digest}`), { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(response.status, 201);
    return digest;
  }

  async function pushManifest(name: string, reference: string, body: unknown): Promise<Response> {
    return fetch(url(`/v2/${name}/manifests/${reference}`), { method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  }

  test('range requests on blobs: 206 with Content-Range, suffixes, 416 outside the blob', async () => {
    const bytes = randomBytes(1000);
    const digest = await pushBlob('ranges/a', bytes);
    const part = await fetch(url(`/v2/ranges/a/blobs/${digest}`), { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 100-199/1000');
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
    const suffix = await fetch(url(`/v2/ranges/a/blobs/${digest}`), { headers: { Range: 'bytes=-10' } });
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(bytes.subarray(990)));
    const outside = await fetch(url(`/v2/ranges/a/blobs/${digest}`), { headers: { Range: 'bytes=1000-' } });
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get('content-range'), 'bytes */1000');
    const whole = await fetch(url(`/v2/ranges/a/blobs/${digest}`));
    assert.equal(whole.headers.get('docker-content-digest'), digest);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
  });

  test('chunked upload: a chunk at the wrong offset, or of another length than its Content-Range, gets 416 and the offset to resume from; a wrong digest is refused and the upload kept', async () => {
    const bytes = randomBytes(300);
    const started = await fetch(url('/v2/chunks/a/blobs/uploads/'), { method: 'POST' });
    assert.equal(started.status, 202);
    const location = started.headers.get('location')!;
    const patch = (start: number, end: number) =>
      fetch(url(location), { method: 'PATCH', body: bytes.subarray(start, end), headers: { 'Content-Range': `${start}-${end - 1}`, 'Content-Type': 'application/octet-stream' } });
    assert.equal((await patch(0, 100)).status, 202);
    const skipped = await patch(200, 300);
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.get('range'), '0-99');
    assert.equal(((await skipped.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'BLOB_UPLOAD_INVALID');
    // Content-Range names 100 bytes, the body holds 50: refused, and none of the 50 kept.
    const short = await fetch(url(location), { method: 'PATCH', body: bytes.subarray(100, 150), headers: { 'Content-Range': '100-199', 'Content-Type': 'application/octet-stream' } });
    assert.equal(short.status, 416);
    assert.equal(short.headers.get('range'), '0-99');
    const resumed = await patch(100, 200);
    assert.equal(resumed.status, 202);
    assert.equal(resumed.headers.get('range'), '0-199');
    // A streamed chunk: no Content-Range, appended where the upload stands.
    const streamed = await fetch(url(location), { method: 'PATCH', body: bytes.subarray(200), headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(streamed.headers.get('range'), '0-299');
    const wrong = await fetch(url(`${location}?digest=${sha256('other')}`), { method: 'PUT' });
    assert.equal(wrong.status, 400);
    assert.equal(((await wrong.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DIGEST_INVALID');
    const status = await fetch(url(location));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-299');
    const done = await fetch(url(`${location}?digest=${sha256(bytes)}`), { method: 'PUT' });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha256(bytes));
  });

  test('content that does not hash to the digest it was sent as is refused with DIGEST_INVALID and not stored', async () => {
    const claimed = sha256('what the client claims');
    const blob = await fetch(url(`/v2/liar/a/blobs/uploads/?digest=${claimed}`), { method: 'POST', body: Buffer.from('something else'), headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(blob.status, 400);
    assert.equal(((await blob.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DIGEST_INVALID');
    assert.equal((await fetch(url(`/v2/liar/a/blobs/${claimed}`), { method: 'HEAD' })).status, 404);
    const config = await pushBlob('liar/a', Buffer.from('{}'));
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers: [] };
    const byWrongDigest = await pushManifest('liar/a', claimed, manifest);
    assert.equal(byWrongDigest.status, 400);
    assert.equal(((await byWrongDigest.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DIGEST_INVALID');
    assert.equal((await fetch(url(`/v2/liar/a/manifests/${claimed}`), { method: 'HEAD' })).status, 404);
  });

  test('a manifest naming a blob or child the repository lacks is refused with MANIFEST_BLOB_UNKNOWN', async () => {
    const config = await pushBlob('refuse/a', Buffer.from('{}'));
    const missing = sha256('not pushed');
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: missing, size: 10 };
    const image = await pushManifest('refuse/a', 'v1', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers: [layer] });
    assert.equal(image.status, 400);
    assert.equal(((await image.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'MANIFEST_BLOB_UNKNOWN');
    // The blob exists in another repository: still refused here (it was never pushed or mounted here).
    const elsewhere = await pushBlob('refuse/b', Buffer.from('layer'));
    const other = await pushManifest('refuse/a', 'v2', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers: [{ ...layer, digest: elsewhere, size: 5 }] });
    assert.equal(other.status, 400);
    const index = await fetch(url('/v2/refuse/a/manifests/idx'), {
      method: 'PUT',
      body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: missing, size: 10 }] }),
      headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
    });
    assert.equal(index.status, 400);
    assert.equal((await fetch(url('/v2/refuse/a/tags/list'))).status, 200);
    assert.deepEqual(((await (await fetch(url('/v2/refuse/a/tags/list'))).json()) as { tags: string[] }).tags, []);
  });

  test('tag lists and the catalog page with n, last and a Link to the next page', async () => {
    const config = await pushBlob('pages/a', Buffer.from('{"a":1}'));
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 7 }, layers: [] };
    const tags = ['t1', 't2', 't3', 't4', 't5'];
    for (const tag of tags) assert.equal((await pushManifest('pages/a', tag, manifest)).status, 201);
    const seen: string[] = [];
    let next: string | undefined = '/v2/pages/a/tags/list?n=2';
    let pages = 0;
    while (next) {
      const response = await fetch(url(next));
      seen.push(...((await response.json()) as { tags: string[] }).tags);
      next = /^<([^>]+)>; rel="next"$/.exec(response.headers.get('link') ?? '')?.[1];
      pages++;
    }
    assert.deepEqual(seen, tags);
    assert.equal(pages, 3);
    await pushBlob('pages/b', Buffer.from('b'));
    await pushBlob('pages/c', Buffer.from('c'));
    const catalog = await fetch(url('/v2/_catalog?n=1&last=pages/a'));
    assert.deepEqual(((await catalog.json()) as { repositories: string[] }).repositories, ['pages/b']);
    assert.equal(catalog.headers.get('link'), '</v2/_catalog?n=1&last=pages%2Fb>; rel="next"');
  });

  test('referrers are listed by subject, and filtered by artifactType', async () => {
    const config = await pushBlob('refs/a', Buffer.from('{}'));
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('subject'), size: 7 };
    const artifact = (type: string) => ({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: type, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 }, layers: [], subject });
    const signed = await pushManifest('refs/a', sha256(JSON.stringify(artifact('application/x.signature'))), artifact('application/x.signature'));
    assert.equal(signed.status, 201);
    assert.equal(signed.headers.get('oci-subject'), subject.digest);
    await pushManifest('refs/a', sha256(JSON.stringify(artifact('application/x.sbom'))), artifact('application/x.sbom'));
    const all = (await (await fetch(url(`/v2/refs/a/referrers/${subject.digest}`))).json()) as { manifests: Array<{ artifactType: string }> };
    assert.deepEqual(all.manifests.map((m) => m.artifactType).sort(), ['application/x.sbom', 'application/x.signature']);
    const filtered = await fetch(url(`/v2/refs/a/referrers/${subject.digest}?artifactType=application/x.sbom`));
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(((await filtered.json()) as { manifests: Array<{ artifactType: string }> }).manifests.map((m) => m.artifactType), ['application/x.sbom']);
  });

  test('deletes: a tag alone, a manifest with its tags, a blob from one repository only', async () => {
    const config = await pushBlob('del/a', Buffer.from('{"d":1}'));
    await pushBlob('del/b', Buffer.from('{"d":1}'));
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 7 }, layers: [] };
    const digest = sha256(JSON.stringify(manifest));
    for (const tag of ['one', 'two']) assert.equal((await pushManifest('del/a', tag, manifest)).status, 201);
    const status = async (method: string, p: string) => (await fetch(url(p), { method })).status;
    assert.equal(await status('DELETE', '/v2/del/a/manifests/one'), 202);
    assert.equal(await status('GET', '/v2/del/a/manifests/one'), 404);
    assert.equal(await status('GET', '/v2/del/a/manifests/two'), 200);
    assert.equal(await status('DELETE', `/v2/del/a/manifests/${digest}`), 202);
    assert.equal(await status('GET', `/v2/del/a/manifests/${digest}`), 404);
    assert.equal(await status('GET', '/v2/del/a/manifests/two'), 404);
    assert.deepEqual(((await (await fetch(url('/v2/del/a/tags/list'))).json()) as { tags: string[] }).tags, []);
    assert.equal(await status('DELETE', `/v2/del/a/manifests/${digest}`), 404);
    assert.equal(await status('DELETE', `/v2/del/a/blobs/${config}`), 202);
    assert.equal(await status('HEAD', `/v2/del/a/blobs/${config}`), 404);
    assert.equal(await status('HEAD', `/v2/del/b/blobs/${config}`), 200);
    const unknown = await fetch(url(`/v2/del/a/blobs/${config}`), { method: 'DELETE' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'BLOB_UNKNOWN');
  });

  test('a second server on the same directory is refused while this one serves it', async () => {
    const second = await runCli(['registry', 'serve', '--dir', dir, '--listen', '127.0.0.1:0']);
    assert.equal(second.code, 1, describeResult(second));
    assert.match(second.stderr, new RegExp(`already served by another process \\(pid ${process.pid}\\)`));
    assert.equal(second.stdout, '');
  });

  test('one log line per request', async () => {
    const before = logLines.length;
    for (let i = 0; i < 3; i++) await (await fetch(url('/v2/'))).arrayBuffer();
    await (await fetch(url('/v2/nope/manifests/latest'))).arrayBuffer();
    const lines = logLines.slice(before);
    assert.equal(lines.length, 4, lines.join('\n'));
    assert.match(lines[3]!, /"GET \/v2\/nope\/manifests\/latest" 404/);
  });
});

test('aborting the signal given to startRegistryServer closes it and frees the directory', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-registry-signal-'));
  try {
    const controller = new AbortController();
    const first = await startRegistryServer({ dir, signal: controller.signal });
    assert.equal((await fetch(`${first.url}/v2/`)).status, 200);
    controller.abort();
    await first.close();
    await assert.rejects(fetch(`${first.url}/v2/`));
    const cli = await runCli(['registry', 'serve', '--dir', dir, '--listen', '127.0.0.1:0'], { timeoutMs: 3_000 });
    assert.equal(cli.timedOut, true, `a server on the freed directory should run until stopped: ${describeResult(cli)}`);
    assert.match(cli.stdout, /^http:\/\/127\.0\.0\.1:\d+\n$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('at start the server removes uploads nothing has written to for a week, and keeps the others', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-registry-purge-'));
  try {
    const lines: string[] = [];
    const first = await startRegistryServer({ dir });
    const start = async () => {
      const started = await fetch(`${first.url}/v2/idle/blobs/uploads/`, { method: 'POST' });
      const location = started.headers.get('location')!;
      await fetch(`${first.url}${location}`, { method: 'PATCH', body: randomBytes(100), headers: { 'Content-Type': 'application/octet-stream' } });
      return location;
    };
    const [stale, fresh] = [await start(), await start()];
    await first.close();
    const uploadDir = (location: string) => path.join(dir, 'uploads', location.split('/').pop()!.split('?')[0]!);
    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600_000);
    await utimes(path.join(uploadDir(stale), 'data'), eightDaysAgo, eightDaysAgo);
    const second = await startRegistryServer({ dir, logger: { debug() {}, info: (line) => lines.push(line), warn: (line) => lines.push(line) } });
    try {
      assert.equal((await fetch(`${second.url}${stale}`)).status, 404);
      assert.equal((await fetch(`${second.url}${fresh}`)).status, 204);
      await assert.rejects(stat(uploadDir(stale)));
      assert.ok(lines.some((line) => /removed 1 upload\(s\) idle for over 168 hours/.test(line)), lines.join('\n'));
    } finally {
      await second.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGTERM lets a request in flight finish, refuses new ones, and exits 0', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-registry-sigterm-'));
  try {
    const cli = await startCli(['registry', 'serve', '--dir', dir, '--listen', '127.0.0.1:0']);
    const address = await new Promise<string>((resolve) => cli.child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
    const started = await fetch(`${address}/v2/slow/blobs/uploads/`, { method: 'POST' });
    const location = started.headers.get('location')!;
    // A chunk whose body arrives in two halves, with the SIGTERM in between.
    const body = randomBytes(2000);
    const answer = new Promise<number>((resolve, reject) => {
      const request = http.request(`${address}${location}`, { method: 'PATCH', headers: { 'Content-Length': body.length, 'Content-Range': `0-${body.length - 1}` } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
      request.write(body.subarray(0, 1000));
      setTimeout(() => {
        cli.child.kill('SIGTERM');
        setTimeout(() => request.end(body.subarray(1000)), 500);
      }, 200);
    });
    assert.equal(await answer, 202);
    const result = await cli.result;
    assert.equal(result.code, 0, describeResult(result));
    assert.match(result.stderr, /SIGTERM: finishing requests in flight/);
    await assert.rejects(fetch(`${address}/v2/`), 'the registry still answers after SIGTERM');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
