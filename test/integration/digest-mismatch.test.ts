// No unverified byte is trusted: content that does not hash to the digest it was asked by
// (rotted in the registry's storage, or altered in transit by a proxy) stops `add` and
// `inspect` with exit 1 and a message naming the digest, and never moves the destination tag.
// Storage is altered on the real registry's disk; transit by the fault proxy.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { alterStoredBlob, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect, tagDigest } from '../helpers/tools.js';

const TWO_PLATFORMS = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];

/** Same length, still JSON: the last digit of the first `"size":N` changes (a manifest that still parses). */
function bumpFirstSize(bytes: Buffer): Buffer {
  const text = bytes.toString('utf8');
  const match = /"size":(\d+)/.exec(text);
  assert.ok(match, 'no "size" in the manifest');
  const end = match.index + match[0].length - 1;
  const digit = (Number(text[end]) + 1) % 10;
  return Buffer.from(text.slice(0, end) + digit + text.slice(end + 1), 'utf8');
}

/** Same length, still JSON: one letter of the first `busybox` becomes `x` (a config that still parses). */
function alterBusyboxText(bytes: Buffer): Buffer {
  const text = bytes.toString('utf8');
  assert.ok(text.includes('busybox'), 'no "busybox" in the config');
  return Buffer.from(text.replace('busybox', 'busyxox'), 'utf8');
}

/** One byte in the middle inverted (a layer). */
function flipMiddleByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1]! ^= 0xff;
  return copy;
}

/** Exit 1, nothing on stdout, and stderr naming `digest` as the one the content failed to match. */
function assertDigestRefused(result: CliResult, digest: string): void {
  assert.equal(result.code, 1, describeResult(result));
  assert.equal(result.stdout, '', describeResult(result));
  const match = /content has digest (sha256:[0-9a-f]{64}), expected (sha256:[0-9a-f]{64})/.exec(result.stderr);
  assert.ok(match, `no digest mismatch reported:\n${describeResult(result)}`);
  assert.equal(match[2], digest, describeResult(result));
  assert.notEqual(match[1], digest);
  assert.doesNotMatch(result.stderr, /internal error|at .*\.mjs:\d+/, 'a mismatch surfaced as a crash');
}

describe('digest mismatches stop add and inspect, and leave the destination tag alone', () => {
  let registry: RunningRegistry;
  let other: RunningRegistry;
  let proxy: RunningFaultProxy;
  let workDir: string;
  let base: { manifest: string; config: string; layer: string };
  let multi: { index: string; amd64: string };
  const keptTag = 'dest/app:kept';
  const kept: { here?: string; other?: string } = {};
  let restore: (() => Promise<void>) | undefined;

  before(async () => {
    [registry, other, workDir] = await Promise.all([
      startRegistry(),
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-digest-test-')),
      ensureCliBuilt(),
    ]);
    proxy = await startFaultProxy(registry.host);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    // The second layer is this base's own: the other registry does not have it, so add must copy it.
    const pushed = await pushBaseImage(registry, 'base/app:1', { extraFiles: { '/etc/base-only': 'base only\n' } });
    const manifest = await skopeoInspect('base/app:1', registry);
    base = { manifest: pushed.digest, config: manifest.config.digest, layer: manifest.layers[1].digest };
    const index = await pushBaseImage(registry, 'base/multi:1', { platforms: TWO_PLATFORMS });
    const raw = await skopeoInspect('base/multi:1', registry);
    multi = { index: index.digest, amd64: raw.manifests.find((m: any) => m.platform.architecture === 'amd64').digest };
    kept.here = (await pushKept(registry)).digest;
    kept.other = (await pushKept(other)).digest;
  });
  const pushKept = (where: RunningRegistry) => pushBaseImage(where, keptTag, { extraFiles: { '/etc/kept': 'kept\n' } });
  afterEach(async () => {
    await restore?.();
    restore = undefined;
    proxy.reset();
    // A test that failed by moving the tag must not fail the next ones too.
    for (const [where, digest] of [[registry, kept.here], [other, kept.other]] as const) {
      if ((await tagDigest(where, keptTag)) !== digest) await pushKept(where);
    }
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([registry?.stop(), other?.stop()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const add = (from: string, to: string) =>
    runCli(['add', '--from', from, '--add', 'hello.txt:/opt/hello.txt', '--to', to], { cwd: workDir });

  async function assertKept(where: RunningRegistry, digest: string | undefined) {
    assert.equal(await tagDigest(where, keptTag), digest, `${keptTag} moved on ${where.host}`);
  }

  describe('stored bytes altered on the registry disk', () => {
    test('add: a base manifest asked for by digest', async () => {
      restore = await alterStoredBlob(registry, base.manifest, bumpFirstSize);
      const result = await add(`${registry.host}/base/app@${base.manifest}`, `${registry.host}/${keptTag}`);
      assertDigestRefused(result, base.manifest);
      await assertKept(registry, kept.here);
    });

    test('add: a platform manifest reached through an index', async () => {
      restore = await alterStoredBlob(registry, multi.amd64, bumpFirstSize);
      const result = await add(`${registry.host}/base/multi:1`, `${registry.host}/${keptTag}`);
      assertDigestRefused(result, multi.amd64);
      await assertKept(registry, kept.here);
    });

    test('add: the base config', async () => {
      restore = await alterStoredBlob(registry, base.config, alterBusyboxText);
      const result = await add(`${registry.host}/base/app:1`, `${registry.host}/${keptTag}`);
      assertDigestRefused(result, base.config);
      await assertKept(registry, kept.here);
    });

    test('add: a base layer copied to another registry', async () => {
      restore = await alterStoredBlob(registry, base.layer, flipMiddleByte);
      const result = await add(`${registry.host}/base/app:1`, `${other.host}/${keptTag}`);
      assertDigestRefused(result, base.layer);
      await assertKept(other, kept.other);
    });

    test('inspect: the config of the image', async () => {
      restore = await alterStoredBlob(registry, base.config, alterBusyboxText);
      const result = await runCli(['inspect', `${registry.host}/base/app:1`]);
      assertDigestRefused(result, base.config);
    });

    test('inspect: a platform manifest of an index', async () => {
      restore = await alterStoredBlob(registry, multi.amd64, bumpFirstSize);
      const result = await runCli(['inspect', `${registry.host}/base/multi:1`]);
      assertDigestRefused(result, multi.amd64);
    });
  });

  describe('bodies altered in transit by a proxy', () => {
    test('add: the base manifest asked for by tag (the registry stated its digest)', async () => {
      proxy.alterNext({ method: 'GET', kind: 'manifest', path: /\/base\/app\/manifests\/1$/, alter: bumpFirstSize });
      const result = await add(`${proxy.host}/base/app:1`, `${proxy.host}/${keptTag}`);
      assert.equal(proxy.count({ method: 'GET', kind: 'manifest' }) > 0 && proxy.log.some((e) => e.fault === 'altered'), true, 'the proxy altered nothing');
      assertDigestRefused(result, base.manifest);
      assert.equal(proxy.count({ method: 'PUT', kind: 'manifest' }), 0);
      await assertKept(registry, kept.here);
    });

    test('add: the base config blob', async () => {
      proxy.alterNext({ method: 'GET', kind: 'blob', path: new RegExp(`${base.config}$`), alter: alterBusyboxText });
      const result = await add(`${proxy.host}/base/app:1`, `${proxy.host}/${keptTag}`);
      assert.ok(proxy.log.some((e) => e.fault === 'altered'), 'the proxy altered nothing');
      assertDigestRefused(result, base.config);
      assert.equal(proxy.count({ method: 'PUT', kind: 'manifest' }), 0);
      await assertKept(registry, kept.here);
    });

    test('add: a base layer copied to another registry', async () => {
      proxy.alterNext({ method: 'GET', kind: 'blob', path: new RegExp(`${base.layer}$`), alter: flipMiddleByte });
      const result = await add(`${proxy.host}/base/app:1`, `${other.host}/${keptTag}`);
      assert.ok(proxy.log.some((e) => e.fault === 'altered'), 'the proxy altered nothing');
      assertDigestRefused(result, base.layer);
      await assertKept(other, kept.other);
    });

    test('add: a base manifest asked for by digest, from a registry that states no digest', async () => {
      proxy.alterNext({ method: 'GET', kind: 'manifest', alter: bumpFirstSize, dropHeaders: ['docker-content-digest'] });
      const result = await add(`${proxy.host}/base/app@${base.manifest}`, `${proxy.host}/${keptTag}`);
      assert.ok(proxy.log.some((e) => e.fault === 'altered'), 'the proxy altered nothing');
      assertDigestRefused(result, base.manifest);
      assert.equal(proxy.count({ method: 'PUT', kind: 'manifest' }), 0);
      await assertKept(registry, kept.here);
    });

    test('inspect: the manifest asked for by tag', async () => {
      proxy.alterNext({ method: 'GET', kind: 'manifest', alter: bumpFirstSize });
      const result = await runCli(['inspect', `${proxy.host}/base/app:1`]);
      assert.ok(proxy.log.some((e) => e.fault === 'altered'), 'the proxy altered nothing');
      assertDigestRefused(result, base.manifest);
    });

    test('inspect: the index by digest, from a registry that states no digest', async () => {
      proxy.alterNext({ method: 'GET', kind: 'manifest', alter: bumpFirstSize, dropHeaders: ['docker-content-digest'] });
      const result = await runCli(['inspect', `${proxy.host}/base/multi@${multi.index}`]);
      assert.ok(proxy.log.some((e) => e.fault === 'altered'), 'the proxy altered nothing');
      assertDigestRefused(result, multi.index);
    });
  });
});
