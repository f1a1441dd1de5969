// `imgbuild add` end to end against a real registry, with the result checked by tools
// imgbuild did not write: skopeo (manifest, config, digest), umoci (unpacked rootfs) and
// runc (the seed's `cat /opt/app/hello.txt && echo OK`).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runcRun, skopeo, skopeoInspect, skopeoRegistryFlags, umociUnpack } from '../helpers/tools.js';

const HELLO = 'built-by: kaniko\nmessage: hello from kaniko build\n';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DIGEST_LINE = /^(\S+)@(sha256:[0-9a-f]{64})\n$/;

function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest printed on stdout as REPOSITORY@sha256:…, checked to name `repository`. */
function printedDigest(stdout: string, repository: string): string {
  const match = DIGEST_LINE.exec(stdout);
  assert.ok(match, `stdout is not one REPOSITORY@sha256:<hex> line: ${JSON.stringify(stdout)}`);
  assert.equal(match[1], repository);
  return match[2]!;
}

describe('imgbuild add on a plain HTTP registry', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let seedBaseManifest: { layers: Array<{ digest: string }> };

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-add-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), HELLO);
    await pushSeedBase(registry);
    seedBaseManifest = await skopeoInspect(SEED_BASE, registry);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  describe('the seed scenario', () => {
    const target = 'new-kaniko-image:latest';
    let digest: string;

    before(async () => {
      const result = await runCli(
        [
          'add',
          '--from', `${registry.host}/${SEED_BASE}`,
          '--add', 'hello.txt:/opt/app/hello.txt',
          '--workdir', '/opt/app',
          '--user', 'root',
          '--to', `${registry.host}/${target}`,
        ],
        { cwd: workDir },
      );
      assert.equal(result.code, 0, describeResult(result));
      digest = printedDigest(result.stdout, `${registry.host}/new-kaniko-image`);
    });

    test('the printed digest is the one skopeo sees for the tag', async () => {
      const summary = await skopeoInspect(target, registry, 'summary');
      assert.equal(summary.Digest, digest);
      const raw = await skopeo(['inspect', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${target}`]);
      assert.equal(sha256(raw.stdout), digest);
    });

    test('skopeo sees the base layers plus one new OCI layer, and the edited config', async () => {
      const manifest = await skopeoInspect(target, registry);
      assert.equal(manifest.mediaType, OCI_MANIFEST);
      assert.equal(manifest.layers.length, seedBaseManifest.layers.length + 1);
      assert.deepEqual(
        manifest.layers.slice(0, -1).map((layer: { digest: string }) => layer.digest),
        seedBaseManifest.layers.map((layer) => layer.digest),
      );
      assert.equal(manifest.layers.at(-1).mediaType, OCI_LAYER_GZIP);

      const config = await skopeoInspect(target, registry, 'config');
      assert.equal(config.config.WorkingDir, '/opt/app');
      assert.equal(config.config.User, 'root');
      assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
      const lastHistory = config.history.at(-1);
      assert.match(lastHistory.created_by, /hello\.txt/);
      assert.notEqual(lastHistory.empty_layer, true);
    });

    test('umoci unpacks hello.txt with the same bytes, and runc prints it and OK', async () => {
      const bundle = path.join(workDir, 'seed-bundle');
      await umociUnpack(registry, target, bundle);
      assert.equal(await readFile(path.join(bundle, 'rootfs/opt/app/hello.txt'), 'utf8'), HELLO);
      const run = await runcRun(bundle, ['sh', '-c', 'cat /opt/app/hello.txt && echo OK']);
      assert.equal(run.code, 0, `runc failed:\n${run.stderr}`);
      assert.equal(run.stdout, `${HELLO}OK\n`);
      assert.deepEqual(run.stdout.split('\n'), ['built-by: kaniko', 'message: hello from kaniko build', 'OK', '']);
    });

    test('imgbuild verify reads the file back and matches it', async () => {
      const result = await runCli(
        ['verify', `${registry.host}/${target}`, '--file', '/opt/app/hello.txt', '--expect-file', 'hello.txt'],
        { cwd: workDir },
      );
      assert.equal(result.code, 0, describeResult(result));
      assert.equal(result.stdout, HELLO);
      await assertUmociReadsBack(registry, target, '/opt/app/hello.txt', result.stdout);
    });

    test('imgbuild verify exits 1 for different content and for a missing file', async () => {
      const different = await runCli(['verify', `${registry.host}/${target}`, '--file', '/opt/app/hello.txt', '--expect-text', 'something else\n']);
      assert.equal(different.code, 1, describeResult(different));
      assert.match(different.stderr, /differs from the expected content/);
      const missing = await runCli(['verify', `${registry.host}/${target}`, '--file', '/opt/app/nope.txt']);
      assert.equal(missing.code, 1, describeResult(missing));
      assert.match(missing.stderr, /\/opt\/app\/nope\.txt is not in/);
    });
  });

  test('-o json: base layers are mounted, only the new layer and the config are uploaded', async () => {
    const result = await runCli(
      [
        'add', '-o', 'json',
        '--from', `${registry.host}/${SEED_BASE}`,
        '--add', 'hello.txt:/opt/app/hello.txt',
        '--to', `${registry.host}/json-output/app:v1`,
      ],
      { cwd: workDir },
    );
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout);
    assert.equal(output.reference, `${registry.host}/json-output/app@${output.digest}`);
    assert.equal(output.tag, 'v1');
    assert.equal(output.mediaType, OCI_MANIFEST);
    assert.deepEqual(output.platforms, ['linux/amd64']);
    assert.deepEqual(output.blobs, { existed: 0, mounted: seedBaseManifest.layers.length, uploaded: 2, copied: 0 });
    assert.ok(output.blobs.mounted >= 1);

    const manifest = await skopeoInspect('json-output/app:v1', registry);
    const summary = await skopeoInspect('json-output/app:v1', registry, 'summary');
    assert.equal(summary.Digest, output.digest);
    assert.equal(output.layer.digest, manifest.layers.at(-1).digest);
    assert.equal(output.layer.size, manifest.layers.at(-1).size);
    const config = await skopeoInspect('json-output/app:v1', registry, 'config');
    assert.equal(output.layer.diffId, config.rootfs.diff_ids.at(-1));
  });

  test('a Docker schema 2 base stays Docker: manifest, config and new layer media types', async () => {
    await pushBaseImage(registry, 'docker-base/app:1', { format: 'docker' });
    const result = await runCli(
      ['add', '--from', `${registry.host}/docker-base/app:1`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${registry.host}/docker-out/app:1`],
      { cwd: workDir },
    );
    assert.equal(result.code, 0, describeResult(result));
    const digest = printedDigest(result.stdout, `${registry.host}/docker-out/app`);
    const manifest = await skopeoInspect('docker-out/app:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(manifest.layers.length, 2);
    for (const layer of manifest.layers) assert.equal(layer.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    assert.equal((await skopeoInspect('docker-out/app:1', registry, 'summary')).Digest, digest);
    const verify = await runCli(['verify', `${registry.host}/docker-out/app:1`, '--file', '/opt/app/hello.txt', '--expect-text', HELLO]);
    assert.equal(verify.code, 0, describeResult(verify));
    await assertUmociReadsBack(registry, 'docker-out/app:1', '/opt/app/hello.txt', verify.stdout);
  });

  test('a base whose /var/run links to /run keeps the link after adding /var/run/x/file', async () => {
    await pushBaseImage(registry, 'varrun-base/app:1', { varRunSymlink: true });
    const result = await runCli(
      ['add', '--from', `${registry.host}/varrun-base/app:1`, '--add', 'hello.txt:/var/run/x/file', '--to', `${registry.host}/varrun-out/app:1`],
      { cwd: workDir },
    );
    assert.equal(result.code, 0, describeResult(result));
    const bundle = path.join(workDir, 'varrun-bundle');
    await umociUnpack(registry, 'varrun-out/app:1', bundle);
    const varRun = path.join(bundle, 'rootfs/var/run');
    assert.ok((await lstat(varRun)).isSymbolicLink(), 'rootfs/var/run is no longer a symlink');
    assert.equal(await readlink(varRun), '/run');
    assert.ok((await lstat(path.join(bundle, 'rootfs/run'))).isDirectory());
    assert.equal(await readFile(path.join(bundle, 'rootfs/run/x/file'), 'utf8'), HELLO);
    // Through the link, as a process in the container would open it (the link is absolute, so resolve it in the rootfs).
    assert.equal(await readFile(path.join(bundle, 'rootfs', await readlink(varRun), 'x/file'), 'utf8'), HELLO);
    const run = await runcRun(bundle, ['sh', '-c', 'cat /var/run/x/file && echo OK']);
    assert.equal(run.code, 0, `runc failed:\n${run.stderr}`);
    assert.equal(run.stdout, `${HELLO}OK\n`);
  });

  test('SOURCE_DATE_EPOCH makes two adds of the same file to two tags give the same digest', async () => {
    const add = (tag: string) =>
      runCli(
        ['add', '--from', `${registry.host}/${SEED_BASE}`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${registry.host}/reproducible/app:${tag}`],
        { cwd: workDir, env: { SOURCE_DATE_EPOCH: '1700000000' } },
      );
    const first = await add('a');
    assert.equal(first.code, 0, describeResult(first));
    // A later mtime on the source must not change the digest either.
    await writeFile(path.join(workDir, 'hello.txt'), HELLO);
    const second = await add('b');
    assert.equal(second.code, 0, describeResult(second));
    const firstDigest = printedDigest(first.stdout, `${registry.host}/reproducible/app`);
    assert.equal(printedDigest(second.stdout, `${registry.host}/reproducible/app`), firstDigest);
    const config = await skopeoInspect('reproducible/app:b', registry, 'config');
    assert.equal(config.created, new Date(1700000000 * 1000).toISOString().replace('.000Z', 'Z'));
  });

  test('without SOURCE_DATE_EPOCH two adds differ (the control for the test above)', async () => {
    const add = (tag: string) =>
      runCli(
        ['add', '--from', `${registry.host}/${SEED_BASE}`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${registry.host}/unpinned/app:${tag}`],
        { cwd: workDir },
      );
    const first = await add('a');
    assert.equal(first.code, 0, describeResult(first));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await add('b');
    assert.equal(second.code, 0, describeResult(second));
    assert.notEqual(printedDigest(first.stdout, `${registry.host}/unpinned/app`), printedDigest(second.stdout, `${registry.host}/unpinned/app`));
  });

  describe('imgbuild inspect', () => {
    let addedDigest: string;
    before(async () => {
      const result = await runCli(
        ['add', '--from', `${registry.host}/${SEED_BASE}`, '--add', 'hello.txt:/opt/app/hello.txt', '--workdir', '/opt/app', '--to', `${registry.host}/inspected/app:1`],
        { cwd: workDir },
      );
      assert.equal(result.code, 0, describeResult(result));
      addedDigest = printedDigest(result.stdout, `${registry.host}/inspected/app`);
    });

    test('text output names the media type, the workdir and every layer', async () => {
      const result = await runCli(['inspect', `${registry.host}/inspected/app:1`]);
      assert.equal(result.code, 0, describeResult(result));
      const manifest = await skopeoInspect('inspected/app:1', registry);
      assert.match(result.stdout, new RegExp(`^${registry.host}/inspected/app@${addedDigest}\n`));
      assert.match(result.stdout, /media type: application\/vnd\.oci\.image\.manifest\.v1\+json/);
      assert.match(result.stdout, /workdir: \/opt\/app/);
      assert.match(result.stdout, /layers \(2, /);
      for (const layer of manifest.layers) {
        const hex = String(layer.digest).slice('sha256:'.length);
        assert.ok(result.stdout.includes(hex.slice(0, 12)), `layer ${layer.digest} is not listed:\n${result.stdout}`);
      }
    });

    test('--raw prints bytes that hash to the digest add printed', async () => {
      const result = await runCli(['inspect', '--raw', `${registry.host}/inspected/app:1`]);
      assert.equal(result.code, 0, describeResult(result));
      assert.equal(sha256(result.stdout), addedDigest);
    });

    test('-o json of a single image has no index and one image', async () => {
      const result = await runCli(['inspect', '-o', 'json', `${registry.host}/inspected/app:1`]);
      assert.equal(result.code, 0, describeResult(result));
      const output = JSON.parse(result.stdout);
      assert.equal(output.digest, addedDigest);
      assert.equal(output.index, undefined);
      assert.equal(output.images.length, 1);
      assert.equal(output.images[0].platform, 'linux/amd64');
      assert.equal(output.images[0].config.workingDir, '/opt/app');
    });
  });
});
