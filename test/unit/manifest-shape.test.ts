// The hand-written checks of manifests, indexes and configs (src/image/manifest.ts): what a
// registry serves is refused, naming every problem's path, when it breaks the image spec's shape;
// unknown fields are kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DocumentShapeError, imageConfigSchema, imageIndexSchema, imageManifestSchema } from '../../src/image/manifest.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const descriptor = (extra: Record<string, unknown> = {}) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: DIGEST, size: 12, ...extra });

function issuesOf(parse: () => unknown): string[] {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof DocumentShapeError, String(error));
    return error.issues;
  }
  assert.fail('the document was accepted');
}

describe('manifest', () => {
  test('a valid manifest is returned as it is, unknown fields included', () => {
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: descriptor(), layers: [descriptor({ urls: ['https://x'], annotations: { a: 'b' } })], subject: descriptor(), extra: { kept: true } };
    assert.equal(imageManifestSchema.parse(manifest), manifest);
  });

  test('every problem is named by its path', () => {
    const issues = issuesOf(() =>
      imageManifestSchema.parse({ schemaVersion: 1, config: descriptor({ digest: 'sha256:XYZ' }), layers: [descriptor({ size: -1 }), descriptor({ platform: { architecture: 'amd64' } })], annotations: { n: 1 } }),
    );
    assert.deepEqual(issues, [
      'schemaVersion: expected 2',
      'config.digest: unsupported or malformed digest',
      'layers.0.size: expected a whole number of bytes',
      'layers.1.platform.os: expected a string',
      'annotations.n: expected a string',
    ]);
    assert.deepEqual(issuesOf(() => imageManifestSchema.parse([])), ['(document): expected an object']);
    assert.deepEqual(issuesOf(() => imageManifestSchema.parse({ schemaVersion: 2, config: descriptor(), layers: null })), ['layers: expected a list']);
  });
});

describe('index', () => {
  test('platforms with variant and os.version pass; a manifest without mediaType fails', () => {
    const index = { schemaVersion: 2, manifests: [descriptor({ platform: { architecture: 'arm', os: 'linux', variant: 'v7', 'os.version': '1', 'os.features': ['x'] } })] };
    assert.equal(imageIndexSchema.parse(index), index);
    assert.deepEqual(issuesOf(() => imageIndexSchema.parse({ schemaVersion: 2, manifests: [{ digest: DIGEST, size: 1 }] })), ['manifests.0.mediaType: expected a string']);
  });
});

describe('config', () => {
  const config = (extra: Record<string, unknown> = {}) => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [DIGEST] }, ...extra });

  test('null Env, Cmd, Entrypoint and Labels are allowed, as docker writes them', () => {
    const document = config({ config: { Env: null, Cmd: null, Entrypoint: null, Labels: null, ExposedPorts: { '80/tcp': {} }, User: 'root' }, history: [{ created_by: 'x', empty_layer: true }] });
    assert.equal(imageConfigSchema.parse(document), document);
  });

  test('wrong types and a rootfs that is not layers are refused', () => {
    const issues = issuesOf(() =>
      imageConfigSchema.parse(config({ os: undefined, config: { Env: 'A=1', Labels: { a: 2 }, Volumes: { '/data': 1 } }, rootfs: { type: 'other', diff_ids: [1] }, history: [{ empty_layer: 'yes' }] })),
    );
    assert.deepEqual(issues, [
      'os: expected a string',
      'config.Env: expected a list of strings',
      'config.Labels.a: expected a string',
      'config.Volumes./data: expected an object',
      'rootfs.type: expected "layers"',
      'rootfs.diff_ids.0: expected a string',
      'history.0.empty_layer: expected true or false',
    ]);
  });
});
