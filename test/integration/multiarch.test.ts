// `imgbuild add` on multi-platform bases (an OCI index and a Docker manifest list): every
// platform keeps its place, gets the new layer (or, with --platform, only the one named),
// and the index keeps its media type. Checked with skopeo and `imgbuild verify`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, type FixturePlatform } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeo, skopeoInspect, skopeoRegistryFlags } from '../helpers/tools.js';

const CONTENT = 'multi-platform plugin config\n';
const PLATFORMS: FixturePlatform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  platform: { os: string; architecture: string; variant?: string };
}

const FORMATS = [
  {
    name: 'OCI index',
    format: 'oci' as const,
    indexMediaType: 'application/vnd.oci.image.index.v1+json',
    manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
    layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  {
    name: 'Docker manifest list',
    format: 'docker' as const,
    indexMediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifestMediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    layerMediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
];

describe('imgbuild add on multi-platform bases', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-multiarch-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'plugin.conf'), CONTENT);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const verify = (reference: string, platform: string) =>
    runCli(['verify', `${registry.host}/${reference}`, '--file', '/etc/plugin.conf', '--expect-text', CONTENT, '--platform', platform]);

  for (const kind of FORMATS) {
    describe(kind.name, () => {
      const base = `multi-${kind.format}/base:1`;
      let baseIndex: { mediaType: string; manifests: IndexEntry[] };

      before(async () => {
        await pushBaseImage(registry, base, { format: kind.format, platforms: PLATFORMS });
        baseIndex = await skopeoInspect(base, registry);
        assert.equal(baseIndex.mediaType, kind.indexMediaType);
      });

      test('every platform gets the new layer and the index keeps its media type', async () => {
        const target = `multi-${kind.format}/all:1`;
        const result = await runCli(
          ['add', '-o', 'json', '--from', `${registry.host}/${base}`, '--add', `plugin.conf:/etc/plugin.conf`, '--to', `${registry.host}/${target}`],
          { cwd: workDir },
        );
        assert.equal(result.code, 0, describeResult(result));
        const output = JSON.parse(result.stdout);
        assert.equal(output.mediaType, kind.indexMediaType);
        assert.deepEqual(output.platforms, ['linux/amd64', 'linux/arm64']);

        const raw = await skopeo(['inspect', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${target}`]);
        assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, output.digest);
        const index = JSON.parse(raw.stdout) as { mediaType: string; manifests: IndexEntry[] };
        assert.equal(index.mediaType, kind.indexMediaType);
        assert.equal(index.manifests.length, 2);
        assert.deepEqual(
          index.manifests.map((entry) => entry.platform),
          baseIndex.manifests.map((entry) => entry.platform),
        );
        for (const [position, entry] of index.manifests.entries()) {
          assert.equal(entry.mediaType, kind.manifestMediaType);
          assert.notEqual(entry.digest, baseIndex.manifests[position]!.digest, `${entry.platform.architecture} was not changed`);
          const child = await skopeoInspect(`multi-${kind.format}/all@${entry.digest}`, registry);
          const baseChild = await skopeoInspect(`${base.split(':')[0]}@${baseIndex.manifests[position]!.digest}`, registry);
          assert.equal(child.mediaType, kind.manifestMediaType);
          assert.equal(child.layers.length, baseChild.layers.length + 1);
          assert.equal(child.layers.at(-1).mediaType, kind.layerMediaType);
          assert.equal(child.layers.at(-1).digest, output.layer.digest);
          // The child's config still names its own platform.
          const config = JSON.parse(
            (await skopeo(['inspect', '--config', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/multi-${kind.format}/all@${entry.digest}`])).stdout,
          );
          assert.equal(config.architecture, entry.platform.architecture);
        }

        for (const platform of ['linux/amd64', 'linux/arm64']) {
          const check = await verify(target, platform);
          assert.equal(check.code, 0, `${platform}: ${describeResult(check)}`);
          assert.equal(check.stdout, CONTENT);
          await assertUmociReadsBack(registry, target, '/etc/plugin.conf', check.stdout, { platform });
        }
      });

      test('--platform linux/arm64 changes only arm64; amd64 keeps its digest', async () => {
        const target = `multi-${kind.format}/arm-only:1`;
        const result = await runCli(
          [
            'add', '-o', 'json', '--platform', 'linux/arm64',
            '--from', `${registry.host}/${base}`, '--add', `plugin.conf:/etc/plugin.conf`, '--to', `${registry.host}/${target}`,
          ],
          { cwd: workDir },
        );
        assert.equal(result.code, 0, describeResult(result));
        const output = JSON.parse(result.stdout);
        assert.deepEqual(output.platforms, ['linux/arm64']);

        const index = (await skopeoInspect(target, registry)) as { mediaType: string; manifests: IndexEntry[] };
        assert.equal(index.mediaType, kind.indexMediaType);
        assert.equal(index.manifests.length, 2);
        const amd64 = index.manifests.find((entry) => entry.platform.architecture === 'amd64');
        const arm64 = index.manifests.find((entry) => entry.platform.architecture === 'arm64');
        const baseAmd64 = baseIndex.manifests.find((entry) => entry.platform.architecture === 'amd64');
        const baseArm64 = baseIndex.manifests.find((entry) => entry.platform.architecture === 'arm64');
        assert.equal(amd64?.digest, baseAmd64?.digest);
        assert.notEqual(arm64?.digest, baseArm64?.digest);
        // The unchanged child was copied into the destination repository, not just referenced.
        const amd64Manifest = await skopeoInspect(`multi-${kind.format}/arm-only@${amd64!.digest}`, registry);
        assert.equal(amd64Manifest.mediaType, kind.manifestMediaType);

        const onArm = await verify(target, 'linux/arm64');
        assert.equal(onArm.code, 0, describeResult(onArm));
        assert.equal(onArm.stdout, CONTENT);
        const onAmd = await verify(target, 'linux/amd64');
        assert.equal(onAmd.code, 1, describeResult(onAmd));
        assert.match(onAmd.stderr, /\/etc\/plugin\.conf is not in .*linux\/amd64/);
      });

      test('--format converts the whole index: every child, the one not changed too', async () => {
        const other = FORMATS.find((candidate) => candidate.format !== kind.format)!;
        const target = `converted-${kind.format}/app:1`;
        const result = await runCli(
          ['add', '--from', `${registry.host}/${base}`, '--add', 'plugin.conf:/etc/plugin.conf', '--platform', 'linux/arm64', '--format', other.format, '--to', `${registry.host}/${target}`, '-o', 'json'],
          { cwd: workDir },
        );
        assert.equal(result.code, 0, describeResult(result));
        assert.equal(JSON.parse(result.stdout).mediaType, other.indexMediaType);
        const index: { mediaType: string; manifests: IndexEntry[] } = await skopeoInspect(target, registry);
        assert.equal(index.mediaType, other.indexMediaType);
        assert.deepEqual(index.manifests.map((entry) => entry.platform.architecture), ['amd64', 'arm64']);
        for (const entry of index.manifests) {
          assert.equal(entry.mediaType, other.manifestMediaType);
          const child = await skopeoInspect(`${target.split(':')[0]}@${entry.digest}`, registry);
          assert.equal(child.mediaType, other.manifestMediaType);
          for (const layer of child.layers) assert.equal(layer.mediaType, other.layerMediaType);
        }
        // amd64 was converted only: its layers are the base's, with no new one.
        const baseAmd64: IndexEntry = baseIndex.manifests.find((entry) => entry.platform.architecture === 'amd64')!;
        const baseChild = await skopeoInspect(`${base.split(':')[0]}@${baseAmd64.digest}`, registry);
        const newAmd64 = await skopeoInspect(`${target.split(':')[0]}@${index.manifests[0]!.digest}`, registry);
        assert.deepEqual(newAmd64.layers.map((layer: { digest: string }) => layer.digest), baseChild.layers.map((layer: { digest: string }) => layer.digest));
        assert.equal((await verify(target, 'linux/arm64')).code, 0);
      });

      test('--platform naming a platform the base lacks is a usage error and pushes nothing', async () => {
        const target = `multi-${kind.format}/none:1`;
        const result = await runCli(
          ['add', '--platform', 'linux/s390x', '--from', `${registry.host}/${base}`, '--add', `plugin.conf:/etc/plugin.conf`, '--to', `${registry.host}/${target}`],
          { cwd: workDir },
        );
        assert.equal(result.code, 2, describeResult(result));
        assert.match(result.stderr, /has no platform linux\/s390x/);
        assert.match(result.stderr, /linux\/amd64, linux\/arm64/);
        assert.equal(result.stdout, '');
        await assert.rejects(skopeoInspect(target, registry), /manifest unknown|not found/i);
      });
    });
  }

  test('inspect -o json lists both platforms of an index; text names them', async () => {
    const base = 'multi-inspect/base:1';
    await pushBaseImage(registry, base, { platforms: PLATFORMS });
    const json = await runCli(['inspect', '-o', 'json', `${registry.host}/${base}`]);
    assert.equal(json.code, 0, describeResult(json));
    const output = JSON.parse(json.stdout);
    const index = await skopeoInspect(base, registry);
    assert.equal(output.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      output.index.manifests.map((entry: { platform: string; digest: string }) => [entry.platform, entry.digest]),
      index.manifests.map((entry: IndexEntry) => [`${entry.platform.os}/${entry.platform.architecture}`, entry.digest]),
    );
    assert.deepEqual(
      output.images.map((image: { platform: string }) => image.platform),
      ['linux/amd64', 'linux/arm64'],
    );
    const text = await runCli(['inspect', `${registry.host}/${base}`]);
    assert.equal(text.code, 0, describeResult(text));
    assert.match(text.stdout, /media type: application\/vnd\.oci\.image\.index\.v1\+json/);
    assert.match(text.stdout, /platforms: linux\/amd64, linux\/arm64/);
  });
});
