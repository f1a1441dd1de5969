// A base on one registry, the result pushed to another: base layers cannot be mounted, so they
// are copied (verified on the way) and the result must be complete in the destination.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runcRun, skopeoInspect, umociUnpack } from '../helpers/tools.js';

const HELLO = 'built-by: imgbuild\nmessage: across registries\n';

describe('imgbuild add from one registry to another', () => {
  let source: RunningRegistry;
  let destination: RunningRegistry;
  let workDir: string;

  before(async () => {
    [source, destination, workDir] = await Promise.all([
      startRegistry(),
      startRegistry({ tls: true, auth: true }),
      mkdtemp(path.join(tmpdir(), 'imgbuild-cross-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), HELLO);
    await pushSeedBase(source);
    await pushBaseImage(source, 'multi/base:1', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
  });
  after(async () => {
    await Promise.all([source?.stop(), destination?.stop()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const env = () => ({ DOCKER_CONFIG: destination.dockerConfigDir! });

  test('base layers are copied, the image is complete and runs', async () => {
    const result = await runCli(
      ['add', '--from', `${source.host}/${SEED_BASE}`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${destination.host}/copied/app:1`, '--ca-file', destination.caFile!, '-o', 'json'],
      { cwd: workDir, env: env() },
    );
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout);
    const baseManifest = await skopeoInspect(SEED_BASE, source);
    assert.equal(output.blobs.copied, baseManifest.layers.length, describeResult(result));
    assert.equal(output.blobs.mounted, 0);

    const manifest = await skopeoInspect('copied/app:1', destination);
    assert.deepEqual(
      manifest.layers.slice(0, -1).map((layer: { digest: string }) => layer.digest),
      baseManifest.layers.map((layer: { digest: string }) => layer.digest),
    );
    const bundle = path.join(workDir, 'bundle');
    await umociUnpack(destination, 'copied/app:1', bundle);
    assert.equal(await readFile(path.join(bundle, 'rootfs/opt/app/hello.txt'), 'utf8'), HELLO);
    const run = await runcRun(bundle, ['/bin/sh', '-c', 'cat /opt/app/hello.txt && echo OK']);
    assert.equal(run.stdout, `${HELLO}OK\n`, run.stderr);
  });

  test('a multi-platform base arrives whole: every platform, every blob', async () => {
    const result = await runCli(
      ['add', '--from', `${source.host}/multi/base:1`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${destination.host}/copied/multi:1`, '--ca-file', destination.caFile!, '-o', 'json'],
      { cwd: workDir, env: env() },
    );
    assert.equal(result.code, 0, describeResult(result));
    assert.deepEqual(JSON.parse(result.stdout).platforms, ['linux/amd64', 'linux/arm64']);
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const verify = await runCli(
        ['verify', `${destination.host}/copied/multi:1`, '--file', '/opt/app/hello.txt', '--expect-text', HELLO, '--platform', platform, '--ca-file', destination.caFile!],
        { env: env() },
      );
      assert.equal(verify.code, 0, describeResult(verify));
      await assertUmociReadsBack(destination, 'copied/multi:1', '/opt/app/hello.txt', verify.stdout, { platform });
      // The base's own files came along too (copied layers, not just the new one).
      const passwd = await runCli(['verify', `${destination.host}/copied/multi:1`, '--file', '/etc/passwd', '--platform', platform, '--ca-file', destination.caFile!], { env: env() });
      assert.equal(passwd.code, 0, describeResult(passwd));
      assert.match(passwd.stdout, /^root:x:0:0:/);
    }
  });
});
