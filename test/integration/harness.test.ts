// Proves the integration test harness against the real tools: registries start
// and enforce TLS and auth, fixtures have the media types and layout asked for,
// and an unpacked fixture runs under runc.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIXTURE_PASSWD, pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { getV2Status, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runcRun, skopeo, skopeoInspect, skopeoRegistryFlags, umociUnpack } from '../helpers/tools.js';

const basicAuth = (registry: RunningRegistry) =>
  `Basic ${Buffer.from(`${registry.auth!.username}:${registry.auth!.password}`).toString('base64')}`;

describe('plain HTTP registry', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry({ deleteEnabled: true });
  });
  after(async () => {
    await registry?.stop();
  });

  test('serves /v2/ on a loopback port without auth', async () => {
    assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(registry.scheme, 'http');
    assert.equal(await getV2Status(registry), 200);
    assert.equal(registry.auth, undefined);
  });

  test('an OCI fixture is an OCI manifest with an OCI config, and the returned digest is the served one', async () => {
    const pushed = await pushBaseImage(registry, 'fixtures/oci:1', { env: ['PATH=/bin', 'A=1'], workdir: '/work' });
    const manifest = await skopeoInspect('fixtures/oci:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const summary = await skopeoInspect('fixtures/oci:1', registry, 'summary');
    assert.equal(pushed.digest, summary.Digest);
    const config = await skopeoInspect('fixtures/oci:1', registry, 'config');
    assert.deepEqual(config.config.Env, ['PATH=/bin', 'A=1']);
    assert.equal(config.config.WorkingDir, '/work');
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.rootfs.diff_ids.length, 1);
  });

  test('the layer blob lies in dataDir, where tests can reach it', async () => {
    const manifest = await skopeoInspect('fixtures/oci:1', registry);
    const hex = String(manifest.layers[0].digest).slice('sha256:'.length);
    const blobFile = path.join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const blob = await readFile(blobFile);
    assert.equal(createHash('sha256').update(blob).digest('hex'), hex);
  });

  test('extraFiles land in a second layer', async () => {
    await pushBaseImage(registry, 'fixtures/extra:1', { extraFiles: { '/opt/app/hello.txt': 'hello\n' } });
    const manifest = await skopeoInspect('fixtures/extra:1', registry);
    assert.equal(manifest.layers.length, 2);
  });

  test('a docker fixture is Docker schema 2 with a Docker config', async () => {
    await pushBaseImage(registry, 'fixtures/docker:1', { format: 'docker' });
    const manifest = await skopeoInspect('fixtures/docker:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  test('a 2-platform fixture is an OCI index of 2 manifests with distinct digests', async () => {
    const pushed = await pushBaseImage(registry, 'fixtures/multi:1', {
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    const index = await skopeoInspect('fixtures/multi:1', registry);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.manifests.length, 2);
    assert.deepEqual(
      index.manifests.map((m: { platform: unknown }) => m.platform),
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    );
    assert.notEqual(index.manifests[0].digest, index.manifests[1].digest);
    const arm = await skopeoInspect(`fixtures/multi@${index.manifests[1].digest}`, registry);
    assert.equal(arm.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const raw = await skopeo(['inspect', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/fixtures/multi:1`]);
    assert.equal(pushed.digest, `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`);
  });

  test('a 2-platform docker fixture is a Docker manifest list of Docker manifests', async () => {
    await pushBaseImage(registry, 'fixtures/multi-docker:1', {
      format: 'docker',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const list = await skopeoInspect('fixtures/multi-docker:1', registry);
    assert.equal(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(list.manifests.length, 2);
    for (const entry of list.manifests) {
      assert.equal(entry.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    }
  });

  test('kill() and restart() keep the port and the data', async () => {
    const hostBefore = registry.host;
    registry.kill();
    await assert.rejects(getV2Status(registry));
    await registry.restart();
    assert.equal(registry.host, hostBefore);
    const manifest = await skopeoInspect('fixtures/oci:1', registry);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.match(registry.logs(), /registry exited \(code null, signal SIGKILL\)/);
  });
});

describe('TLS registry with basic auth', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry({ tls: true, auth: true });
  });
  after(async () => {
    await registry?.stop();
  });

  test('rejects anonymous requests with 401 and accepts the credentials over verified TLS', async () => {
    assert.equal(registry.scheme, 'https');
    assert.ok(registry.caFile && registry.auth);
    const caPem = await readFile(registry.caFile, 'utf8');
    assert.equal(await getV2Status(registry, undefined, caPem), 401);
    assert.equal(await getV2Status(registry, basicAuth(registry), caPem), 200);
    assert.equal(await getV2Status(registry, `Basic ${Buffer.from('tester:wrong').toString('base64')}`, caPem), 401);
  });

  test('the server certificate is not trusted without the test CA', async () => {
    await assert.rejects(getV2Status(registry, basicAuth(registry)), /self[- ]signed|unable to verify|certificate/i);
  });

  test('dockerConfigDir holds the credentials for the host', async () => {
    assert.ok(registry.dockerConfigDir);
    const config = JSON.parse(await readFile(path.join(registry.dockerConfigDir, 'config.json'), 'utf8'));
    const encoded: string = config.auths[registry.host].auth;
    assert.equal(Buffer.from(encoded, 'base64').toString(), `${registry.auth!.username}:${registry.auth!.password}`);
  });

  test('the seed base can be pushed and inspected with the credentials', async () => {
    const pushed = await pushSeedBase(registry);
    const summary = await skopeoInspect(SEED_BASE, registry, 'summary');
    assert.equal(summary.Digest, pushed.digest);
    const config = await skopeoInspect(SEED_BASE, registry, 'config');
    assert.equal(config.config.User, 'root');
  });

  test('skopeo without credentials is refused', async () => {
    await assert.rejects(
      skopeo(['inspect', '--raw', '--cert-dir', registry.certDir!, `docker://${registry.host}/${SEED_BASE}`]),
      /unauthorized|authentication required/i,
    );
  });
});

describe('unpacking and running a fixture', () => {
  let registry: RunningRegistry;
  let workDir: string;
  before(async () => {
    registry = await startRegistry();
    workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-harness-test-'));
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('umoci unpacks the /var/run -> /run symlink', async () => {
    await pushBaseImage(registry, 'fixtures/varrun:1', { varRunSymlink: true });
    const bundle = path.join(workDir, 'varrun-bundle');
    await umociUnpack(registry, 'fixtures/varrun:1', bundle);
    const varRun = path.join(bundle, 'rootfs/var/run');
    assert.ok((await lstat(varRun)).isSymbolicLink());
    assert.equal(await readlink(varRun), '/run');
    assert.ok((await lstat(path.join(bundle, 'rootfs/run'))).isDirectory());
    assert.equal((await lstat(path.join(bundle, 'rootfs/tmp'))).mode & 0o7777, 0o1777);
  });

  test('a fixture without varRunSymlink has no /var/run', async () => {
    await pushBaseImage(registry, 'fixtures/plain:1');
    const bundle = path.join(workDir, 'plain-bundle');
    await umociUnpack(registry, 'fixtures/plain:1', bundle);
    assert.equal(existsSync(path.join(bundle, 'rootfs/var/run')), false);
  });

  test('runc prints the passwd file and OK', async () => {
    await pushBaseImage(registry, 'fixtures/run:1');
    const bundle = path.join(workDir, 'run-bundle');
    await umociUnpack(registry, 'fixtures/run:1', bundle);
    const result = await runcRun(bundle, ['/bin/sh', '-c', 'cat /etc/passwd && echo OK']);
    assert.equal(result.code, 0, `runc failed:\n${result.stderr}`);
    assert.equal(result.stdout, `${FIXTURE_PASSWD}OK\n`);
  });
});
