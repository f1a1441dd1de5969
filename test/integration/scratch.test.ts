// `imgbuild add --from scratch`: an image made only of local files, checked by skopeo and run by runc.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { FIXTURE_PASSWD, HOST_BUSYBOX } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runcRun, skopeoInspect, umociUnpack } from '../helpers/tools.js';

describe('imgbuild add --from scratch', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-scratch-test-')), ensureCliBuilt()]);
    const rootfs = path.join(workDir, 'rootfs');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await mkdir(path.join(rootfs, 'etc'), { recursive: true });
    await copyFile(HOST_BUSYBOX, path.join(rootfs, 'bin/busybox'));
    for (const applet of ['sh', 'cat', 'echo']) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await writeFile(path.join(rootfs, 'etc/passwd'), FIXTURE_PASSWD);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('a directory becomes a runnable single-layer OCI image with the config asked for', async () => {
    const result = await runCli([
      'add', '--from', 'scratch',
      '--add', `${path.join(workDir, 'rootfs')}:/`,
      '--env', 'PATH=/bin', '--entrypoint', '["/bin/sh","-c"]', '--cmd', '["echo from-scratch"]',
      '--platform', 'linux/amd64',
      '--to', `${registry.host}/scratch/busybox:1`, '-o', 'json',
    ]);
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout);
    assert.deepEqual(output.platforms, ['linux/amd64']);

    const manifest = await skopeoInspect('scratch/busybox:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.layers.length, 1);
    const config = await skopeoInspect('scratch/busybox:1', registry, 'config');
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.rootfs.diff_ids, [output.layer.diffId]);
    assert.deepEqual(config.config.Entrypoint, ['/bin/sh', '-c']);

    const bundle = path.join(workDir, 'bundle');
    await umociUnpack(registry, 'scratch/busybox:1', bundle);
    const run = await runcRun(bundle, ['/bin/sh', '-c', 'cat /etc/passwd && echo OK']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${FIXTURE_PASSWD}OK\n`);
  });

  test('--format docker gives Docker v2 schema 2 media types', async () => {
    const result = await runCli(['add', '--from', 'scratch', '--format', 'docker', '--add', `${path.join(workDir, 'rootfs')}:/`, '--to', `${registry.host}/scratch/docker:1`]);
    assert.equal(result.code, 0, describeResult(result));
    const manifest = await skopeoInspect('scratch/docker:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  test('--format oci converts a Docker base: same blobs, OCI media types, still runs', async () => {
    const result = await runCli(['add', '--from', `${registry.host}/scratch/docker:1`, '--format', 'oci', '--env', 'A=1', '--to', `${registry.host}/scratch/converted:1`]);
    assert.equal(result.code, 0, describeResult(result));
    const before = await skopeoInspect('scratch/docker:1', registry);
    const after = await skopeoInspect('scratch/converted:1', registry);
    assert.equal(after.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(after.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.deepEqual(
      after.layers.map((layer: { mediaType: string; digest: string }) => [layer.mediaType, layer.digest]),
      before.layers.map((layer: { digest: string }) => ['application/vnd.oci.image.layer.v1.tar+gzip', layer.digest]),
    );
    const bundle = path.join(workDir, 'converted-bundle');
    await umociUnpack(registry, 'scratch/converted:1', bundle);
    const run = await runcRun(bundle, ['/bin/sh', '-c', 'echo "A=$A"']);
    assert.equal(run.stdout, 'A=1\n', run.stderr);
  });

  test('several --platform with scratch is a usage error', async () => {
    const result = await runCli(['add', '--from', 'scratch', '--add', `${path.join(workDir, 'rootfs')}:/`, '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--to', `${registry.host}/scratch/x:1`]);
    assert.equal(result.code, 2, describeResult(result));
    assert.match(result.stderr, /--from scratch builds one platform/);
  });
});
