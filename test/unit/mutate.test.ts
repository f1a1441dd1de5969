import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sha256Digest } from '../../src/digest.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import {
  appendLayer,
  convertManifest,
  convertMediaType,
  creationTime,
  describeEdits,
  editRunConfig,
  encodeImage,
  parseCommand,
  parseKeyValue,
  replaceIndexChildren,
} from '../../src/image/mutate.js';

const digestOf = (text: string) => sha256Digest(text);

function baseImage(manifestMediaType: string) {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: manifestMediaType === MediaType.dockerManifest ? MediaType.dockerConfig : MediaType.ociConfig, digest: digestOf('config'), size: 6 },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: digestOf('layer0'), size: 100 }],
    annotations: { keep: 'me' },
  };
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['/bin/sh'], WorkingDir: '/srv', Labels: { old: 'x' } },
    rootfs: { type: 'layers', diff_ids: [digestOf('diff0')] },
    history: [{ created_by: 'base' }],
    custom_field: 'kept',
  } as ImageConfig;
  return { manifest, manifestMediaType, config };
}

const layer = { digest: digestOf('new-gz'), diffId: digestOf('new-tar'), size: 42, createdBy: 'imgbuild add hello.txt:/opt/app/hello.txt' };

describe('appendLayer', () => {
  test('appends descriptor, diff_id and history; keeps unknown fields', () => {
    const result = appendLayer(baseImage(MediaType.ociManifest), layer, {}, '2024-01-01T00:00:00Z');
    assert.equal(result.manifest.layers.length, 2);
    assert.deepEqual(result.manifest.layers[1], { mediaType: MediaType.ociLayerGzip, digest: layer.digest, size: 42 });
    assert.deepEqual(result.config.rootfs.diff_ids, [digestOf('diff0'), layer.diffId]);
    assert.deepEqual(result.config.history?.at(-1), { created: '2024-01-01T00:00:00Z', created_by: layer.createdBy });
    assert.equal(result.config.created, '2024-01-01T00:00:00Z');
    assert.equal((result.config as Record<string, unknown>).custom_field, 'kept');
    assert.deepEqual(result.manifest.annotations, { keep: 'me' });
  });

  test('a Docker base gets a Docker layer media type', () => {
    const result = appendLayer(baseImage(MediaType.dockerManifest), layer, {}, '2024-01-01T00:00:00Z');
    assert.equal(result.manifest.layers[1]?.mediaType, MediaType.dockerLayerGzip);
    assert.equal(result.manifest.mediaType, MediaType.dockerManifest);
  });

  test('config edits add an empty_layer history entry before the layer entry', () => {
    const result = appendLayer(baseImage(MediaType.ociManifest), layer, { user: 'root', workdir: '/opt/app' }, 't');
    const history = result.config.history ?? [];
    assert.deepEqual(history.slice(-2), [
      { created: 't', created_by: 'imgbuild: USER root; WORKDIR /opt/app', empty_layer: true },
      { created: 't', created_by: layer.createdBy },
    ]);
    assert.equal(result.config.config?.User, 'root');
    assert.equal(result.config.config?.WorkingDir, '/opt/app');
  });

  test('the input is not mutated', () => {
    const base = baseImage(MediaType.ociManifest);
    const before = JSON.stringify(base);
    appendLayer(base, layer, { env: ['A=2'] }, 't');
    assert.equal(JSON.stringify(base), before);
  });
});

describe('editRunConfig', () => {
  test('env replaces an existing key and appends a new one', () => {
    const next = editRunConfig({ Env: ['PATH=/bin', 'A=1'] }, { env: ['A=2', 'B=x=y'] });
    assert.deepEqual(next.Env, ['PATH=/bin', 'A=2', 'B=x=y']);
  });
  test('relative workdir resolves against the previous one', () => {
    assert.equal(editRunConfig({ WorkingDir: '/srv' }, { workdir: 'app' }).WorkingDir, '/srv/app');
    assert.equal(editRunConfig(undefined, { workdir: 'app' }).WorkingDir, '/app');
  });
  test('entrypoint resets an inherited cmd unless cmd is given too', () => {
    assert.equal(editRunConfig({ Cmd: ['/bin/sh'] }, { entrypoint: ['/app'] }).Cmd, null);
    assert.deepEqual(editRunConfig({ Cmd: ['/bin/sh'] }, { entrypoint: ['/app'], cmd: ['--x'] }).Cmd, ['--x']);
  });
  test('labels merge', () => {
    assert.deepEqual(editRunConfig({ Labels: { a: '1' } }, { labels: ['b=2', 'a=3'] }).Labels, { a: '3', b: '2' });
  });
});

describe('parsers', () => {
  test('parseKeyValue refuses a missing key', () => {
    assert.deepEqual(parseKeyValue('A=b=c', '--env'), ['A', 'b=c']);
    assert.throws(() => parseKeyValue('=x', '--env'), /--env "=x" is not KEY=VALUE/);
    assert.throws(() => parseKeyValue('novalue', '--label'), /--label "novalue" is not KEY=VALUE/);
  });
  test('parseCommand: exec form, shell form, bad JSON', () => {
    assert.deepEqual(parseCommand('["/bin/app","-x"]', '--cmd'), ['/bin/app', '-x']);
    assert.deepEqual(parseCommand('echo hi', '--cmd'), ['/bin/sh', '-c', 'echo hi']);
    assert.throws(() => parseCommand('["/bin/app",', '--cmd'), /not a valid JSON array/);
    assert.throws(() => parseCommand('[1,2]', '--entrypoint'), /JSON array of strings/);
  });
  test('describeEdits is undefined without edits', () => {
    assert.equal(describeEdits({}), undefined);
    assert.equal(describeEdits({ cmd: ['a'] }), 'imgbuild: CMD ["a"]');
  });
  test('creationTime honours SOURCE_DATE_EPOCH', () => {
    assert.equal(creationTime(1700000000), '2023-11-14T22:13:20Z');
    assert.equal(creationTime(undefined, () => new Date('2020-01-02T03:04:05.678Z')), '2020-01-02T03:04:05.678Z');
  });
});

describe('encodeImage and indexes', () => {
  test('the manifest points at the encoded config and digests match the bytes', () => {
    const encoded = encodeImage(appendLayer(baseImage(MediaType.ociManifest), layer, {}, 't'));
    assert.equal(encoded.manifest.config.digest, sha256Digest(encoded.configBytes));
    assert.equal(encoded.manifest.config.size, encoded.configBytes.length);
    assert.equal(encoded.manifestDigest, sha256Digest(encoded.manifestBytes));
    assert.deepEqual(JSON.parse(encoded.manifestBytes.toString()), encoded.manifest);
  });

  test('replaceIndexChildren swaps only named children and keeps platforms and order', () => {
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifestList,
      manifests: [
        { mediaType: MediaType.dockerManifest, digest: digestOf('amd'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.dockerManifest, digest: digestOf('arm'), size: 2, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    };
    const next = replaceIndexChildren(index, new Map([[digestOf('arm'), { digest: digestOf('arm2'), size: 9, mediaType: MediaType.dockerManifest }]]));
    assert.equal(next.index.manifests[0]?.digest, digestOf('amd'));
    assert.deepEqual(next.index.manifests[1], { mediaType: MediaType.dockerManifest, digest: digestOf('arm2'), size: 9, platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(next.index.mediaType, MediaType.dockerManifestList);
    assert.equal(next.digest, sha256Digest(next.bytes));
  });
});

describe('volumes and exposed ports', () => {
  test('are added to what the base declares', () => {
    const next = editRunConfig({ Volumes: { '/a': {} }, ExposedPorts: { '80/tcp': {} } }, { volumes: ['/busybox'], expose: ['53/udp', '8080'] });
    assert.deepEqual(next.Volumes, { '/a': {}, '/busybox': {} });
    assert.deepEqual(next.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8080/tcp': {} });
    assert.equal(describeEdits({ volumes: ['/busybox'], expose: ['8080'] }), 'imgbuild: VOLUME /busybox; EXPOSE 8080');
  });
  test('bad values are usage errors', () => {
    assert.throws(() => editRunConfig(undefined, { volumes: ['data'] }), /--volume data is not an absolute path/);
    assert.throws(() => editRunConfig(undefined, { expose: ['70000'] }), /--expose 70000 is not PORT/);
    assert.throws(() => editRunConfig(undefined, { expose: ['80/http'] }), /--expose 80\/http/);
  });
});

describe('converting between Docker and OCI media types', () => {
  test('a Docker manifest becomes OCI with the same blobs, and back', () => {
    const docker = baseImage(MediaType.dockerManifest).manifest;
    docker.layers = [{ mediaType: MediaType.dockerLayerGzip, digest: digestOf('l'), size: 1 }];
    const oci = convertManifest(docker, 'oci');
    assert.equal(oci.mediaType, MediaType.ociManifest);
    assert.equal(oci.config.mediaType, MediaType.ociConfig);
    assert.deepEqual(oci.layers, [{ mediaType: MediaType.ociLayerGzip, digest: digestOf('l'), size: 1 }]);
    const back = convertManifest({ ...oci, annotations: { a: 'b' } }, 'docker');
    assert.equal(back.mediaType, MediaType.dockerManifest);
    assert.equal(back.annotations, undefined, 'Docker v2 schema 2 has no annotations');
    assert.deepEqual(back.layers, docker.layers);
  });

  test('a type with no equivalent is refused, naming it', () => {
    assert.equal(convertMediaType(MediaType.ociIndex, 'docker'), MediaType.dockerManifestList);
    assert.equal(convertMediaType(MediaType.ociLayerGzip, 'oci'), MediaType.ociLayerGzip);
    assert.throws(() => convertMediaType(MediaType.ociLayerZstd, 'docker'), /tar\+zstd has no Docker equivalent/);
  });
});
