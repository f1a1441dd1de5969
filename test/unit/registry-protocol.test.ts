import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RegistryError } from '../../src/errors.js';
import { parseBasicAuthorization, parseHtpasswd } from '../../src/registry-server/htpasswd.js';
import {
  clientHost,
  nextPageLink,
  paginate,
  parseContentRange,
  parseListenAddress,
  parseManifestReference,
  parsePageSize,
  parseRangeHeader,
  routeRequest,
  uploadRangeHeader,
} from '../../src/registry-server/protocol.js';
import { manifestLinks } from '../../src/storage/manifest-links.js';

const D1 = `sha256:${'1'.repeat(64)}` as const;
const D2 = `sha256:${'2'.repeat(64)}` as const;
const D3 = `sha256:${'3'.repeat(64)}` as const;

describe('routeRequest', () => {
  test('base and catalog', () => {
    assert.deepEqual(routeRequest('/v2/'), { kind: 'base' });
    assert.deepEqual(routeRequest('/v2'), { kind: 'base' });
    assert.deepEqual(routeRequest('/v2/_catalog'), { kind: 'catalog' });
  });

  test('names with slashes, matched from the end', () => {
    assert.deepEqual(routeRequest('/v2/a/b/c/manifests/v1'), { kind: 'manifest', name: 'a/b/c', reference: 'v1' });
    assert.deepEqual(routeRequest(`/v2/a/blobs/${D1}`), { kind: 'blob', name: 'a', digest: D1 });
    assert.deepEqual(routeRequest('/v2/a/b/blobs/uploads/'), { kind: 'upload-start', name: 'a/b' });
    assert.deepEqual(routeRequest('/v2/a/b/blobs/uploads'), { kind: 'upload-start', name: 'a/b' });
    assert.deepEqual(routeRequest('/v2/a/blobs/uploads/1234'), { kind: 'upload', name: 'a', id: '1234' });
    assert.deepEqual(routeRequest('/v2/a/tags/list'), { kind: 'tags', name: 'a' });
    assert.deepEqual(routeRequest(`/v2/a/referrers/${D2}`), { kind: 'referrers', name: 'a', digest: D2 });
    // A repository may itself be called "manifests" or "blobs".
    assert.deepEqual(routeRequest('/v2/blobs/manifests/manifests/latest'), { kind: 'manifest', name: 'blobs/manifests', reference: 'latest' });
  });

  test('invalid names and unknown paths', () => {
    assert.deepEqual(routeRequest('/v2/UPPER/tags/list'), { kind: 'name-invalid', name: 'UPPER' });
    assert.deepEqual(routeRequest('/v2/a/../b/tags/list'), { kind: 'name-invalid', name: 'a/../b' });
    assert.deepEqual(routeRequest('/v2/_x/tags/list'), { kind: 'name-invalid', name: '_x' });
    assert.deepEqual(routeRequest('/v1/a/tags/list'), { kind: 'not-found' });
    assert.deepEqual(routeRequest('/v2/a/unknown/x'), { kind: 'not-found' });
  });

  test('manifest references are tags or sha256 digests', () => {
    assert.deepEqual(parseManifestReference('v1.0_rc-1'), { tag: 'v1.0_rc-1' });
    assert.deepEqual(parseManifestReference(D1), { digest: D1 });
    // sha512, the image spec's other registered algorithm, is stored too; others are not digests.
    const sha512 = `sha512:${'2'.repeat(128)}`;
    assert.deepEqual(parseManifestReference(sha512), { digest: sha512 });
    assert.equal(parseManifestReference(`sha512:${'2'.repeat(64)}`), undefined);
    assert.equal(parseManifestReference(`sha384:${'3'.repeat(96)}`), undefined);
    assert.equal(parseManifestReference('.hidden'), undefined);
    assert.equal(parseManifestReference('a'.repeat(129)), undefined);
  });
});

describe('parseRangeHeader', () => {
  test('whole blob without a header or with several ranges', () => {
    assert.equal(parseRangeHeader(undefined, 10), undefined);
    assert.equal(parseRangeHeader('bytes=0-1,3-4', 10), undefined);
    assert.equal(parseRangeHeader('items=0-1', 10), undefined);
  });

  test('closed, open and suffix ranges', () => {
    assert.deepEqual(parseRangeHeader('bytes=2-5', 10), { start: 2, end: 5 });
    assert.deepEqual(parseRangeHeader('bytes=2-', 10), { start: 2, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=5-100', 10), { start: 5, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=-3', 10), { start: 7, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=-30', 10), { start: 0, end: 9 });
  });

  test('unsatisfiable ranges', () => {
    assert.equal(parseRangeHeader('bytes=10-', 10), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=5-2', 10), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=0-', 0), 'unsatisfiable');
  });
});

describe('upload ranges', () => {
  test('Content-Range of a chunk', () => {
    assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
    assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199 });
    assert.equal(parseContentRange(undefined), undefined);
    assert.equal(parseContentRange('5-2'), 'invalid');
    assert.equal(parseContentRange('abc'), 'invalid');
  });

  test('Range of an upload status', () => {
    assert.equal(uploadRangeHeader(0), '0-0');
    assert.equal(uploadRangeHeader(1), '0-0');
    assert.equal(uploadRangeHeader(100), '0-99');
  });
});

describe('pagination', () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  test('pages of n after last', () => {
    assert.deepEqual(paginate(names, 2, undefined), { items: ['a', 'b'], next: 'b' });
    assert.deepEqual(paginate(names, 2, 'b'), { items: ['c', 'd'], next: 'd' });
    assert.deepEqual(paginate(names, 2, 'd'), { items: ['e'], next: undefined });
    assert.deepEqual(paginate(names, 5, undefined), { items: names, next: undefined });
    assert.deepEqual(paginate(names, undefined, 'c'), { items: ['d', 'e'], next: undefined });
    assert.deepEqual(paginate(names, 0, undefined), { items: [], next: undefined });
    // `last` need not be an item.
    assert.deepEqual(paginate(names, 1, 'bb'), { items: ['c'], next: 'c' });
  });

  test('n and the Link header', () => {
    assert.equal(parsePageSize(null), undefined);
    assert.equal(parsePageSize('10'), 10);
    assert.equal(parsePageSize('-1'), 'invalid');
    assert.equal(parsePageSize('x'), 'invalid');
    assert.equal(nextPageLink('/v2/a/tags/list', 2, 'b'), '</v2/a/tags/list?n=2&last=b>; rel="next"');
  });
});

describe('listen addresses', () => {
  test('host:port forms', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(parseListenAddress(':5000'), { host: '0.0.0.0', port: 5000 });
    assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
    assert.equal(parseListenAddress('5000'), undefined);
    assert.equal(parseListenAddress('host:70000'), undefined);
    assert.equal(parseListenAddress('::1:5000'), undefined);
  });

  test('the name clients use', () => {
    assert.equal(clientHost('0.0.0.0', 5000), '127.0.0.1:5000');
    assert.equal(clientHost('::', 5000), '[::1]:5000');
    assert.equal(clientHost('::1', 5000), '[::1]:5000');
    assert.equal(clientHost('10.0.0.1', 5000), '10.0.0.1:5000');
  });
});

describe('manifestLinks', () => {
  const image = (extra: Record<string, unknown> = {}) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.example.config+json', digest: D1, size: 2 },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D2, size: 3 },
          { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: D3, size: 3, urls: ['https://example.invalid/x'] },
        ],
        ...extra,
      }),
    );

  test('an image names its config and distributable layers; artifactType falls back to the config type', () => {
    const links = manifestLinks(image({ subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D3, size: 1 } }), undefined);
    assert.deepEqual(links.blobs, [D1, D2]);
    assert.deepEqual(links.manifests, []);
    assert.equal(links.subject, D3);
    assert.equal(links.artifactType, 'application/vnd.example.config+json');
  });

  test('an index names its children', () => {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: 'x/y', manifests: [{ mediaType: 'a', digest: D1, size: 1 }] }));
    const links = manifestLinks(index, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(links.manifests, [D1]);
    assert.equal(links.artifactType, 'x/y');
    assert.equal(links.mediaType, 'application/vnd.oci.image.index.v1+json');
  });

  test('refuses what is not a manifest', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        assert.ok(error instanceof RegistryError);
        return error.code;
      }
      return undefined;
    };
    assert.equal(code(() => manifestLinks(Buffer.from('{'), undefined)), 'MANIFEST_INVALID');
    assert.equal(code(() => manifestLinks(Buffer.from('{"schemaVersion":1}'), undefined)), 'MANIFEST_INVALID');
    assert.equal(code(() => manifestLinks(image(), 'application/vnd.oci.image.index.v1+json')), 'MANIFEST_INVALID');
    assert.equal(code(() => manifestLinks(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'md5:00' }, layers: [] })), undefined)), 'DIGEST_INVALID');
  });
});

describe('htpasswd', () => {
  const hash = '$2y$05$FjqGgxkZTISA7bAzWXTg2.gqjrhKe/bIkGaw/Ae25Uw5.oj0Bu4Ue';
  test('reads bcrypt entries, skips blanks and comments', () => {
    const users = parseHtpasswd(`# users\nalice:${hash}\n\nbob:${hash}\n`);
    assert.deepEqual([...users.keys()], ['alice', 'bob']);
  });

  test('refuses other hashes, naming the line and the fix', () => {
    assert.throws(() => parseHtpasswd(`alice:${hash}\nbob:{SHA}abc=`, 'users'), /users line 2 is not "user:bcrypt-hash"/);
  });

  test('Basic authorization headers', () => {
    const header = `Basic ${Buffer.from('alice:pa:ss').toString('base64')}`;
    assert.deepEqual(parseBasicAuthorization(header), { user: 'alice', password: 'pa:ss' });
    assert.equal(parseBasicAuthorization('Bearer abc'), undefined);
    assert.equal(parseBasicAuthorization(undefined), undefined);
  });
});
