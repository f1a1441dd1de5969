import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceError, UsageError } from '../../src/errors.js';
import {
  formatReference,
  isLoopbackRegistry,
  manifestReference,
  parseReference,
  registryApiHost,
  repositoryName,
  withDigest,
  withTag,
  type ImageReference,
} from '../../src/reference.js';

const HEX = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);
const DIGEST = `sha256:${HEX}` as const;
const EXPECTED_FORM = '(expected [HOST[:PORT]/]NAME[:TAG|@sha256:DIGEST])';

/** Asserts `text` is refused with a ReferenceError quoting it and mentioning `problem`. */
function assertRefused(text: string, problem: RegExp): void {
  assert.throws(
    () => parseReference(text),
    (error: unknown) => {
      assert.ok(error instanceof ReferenceError, `expected ReferenceError, got ${String(error)}`);
      assert.ok(error instanceof UsageError);
      assert.equal(error.exitCode, 2);
      assert.ok(error.message.startsWith(`invalid reference ${JSON.stringify(text)}: `), error.message);
      assert.ok(error.message.endsWith(EXPECTED_FORM), error.message);
      assert.match(error.message, problem);
      return true;
    },
  );
}

describe('parseReference: normalisation like docker', () => {
  const cases: Array<[string, ImageReference]> = [
    ['busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['library/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker.io/library/busybox:musl', { registry: 'docker.io', repository: 'library/busybox', tag: 'musl' }],
    ['index.docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['bitnami/nginx', { registry: 'docker.io', repository: 'bitnami/nginx', tag: 'latest' }],
    ['ones/plugin-host-node:v6.33.1', { registry: 'docker.io', repository: 'ones/plugin-host-node', tag: 'v6.33.1' }],
    ['a/b/c/d', { registry: 'docker.io', repository: 'a/b/c/d', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/app:v1', { registry: 'localhost:5000', repository: 'app', tag: 'v1' }],
    ['127.0.0.1:5000/ones/plugin-host-node:v6.33.1', { registry: '127.0.0.1:5000', repository: 'ones/plugin-host-node', tag: 'v6.33.1' }],
    [
      'registry.kube-system.svc.cluster.local:5000/new-kaniko-image:latest',
      { registry: 'registry.kube-system.svc.cluster.local:5000', repository: 'new-kaniko-image', tag: 'latest' },
    ],
    ['ghcr.io/owner/repo', { registry: 'ghcr.io', repository: 'owner/repo', tag: 'latest' }],
    ['Registry.Example.COM/team/app', { registry: 'Registry.Example.COM', repository: 'team/app', tag: 'latest' }],
    ['myhost:5000/app', { registry: 'myhost:5000', repository: 'app', tag: 'latest' }],
    ['[::1]:5000/app:v2', { registry: '[::1]:5000', repository: 'app', tag: 'v2' }],
    ['[fe80::1]/app', { registry: '[fe80::1]', repository: 'app', tag: 'latest' }],
    // Without a "/" the colon is a tag separator, exactly as docker reads it.
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    // A first component without ".", ":" and not "localhost" is a namespace, not a host.
    ['myregistry/app', { registry: 'docker.io', repository: 'myregistry/app', tag: 'latest' }],
    [`busybox@${DIGEST}`, { registry: 'docker.io', repository: 'library/busybox', digest: DIGEST }],
    [`busybox:1.36@${DIGEST}`, { registry: 'docker.io', repository: 'library/busybox', tag: '1.36', digest: DIGEST }],
    [`localhost:5000/a/b@${DIGEST}`, { registry: 'localhost:5000', repository: 'a/b', digest: DIGEST }],
    ['x/a.b_c__d--e-f', { registry: 'docker.io', repository: 'x/a.b_c__d--e-f', tag: 'latest' }],
    // A "." in the first component makes it a host, even when it would also be a valid path component.
    ['a.b/x', { registry: 'a.b', repository: 'x', tag: 'latest' }],
    ['app:_under.SCORE-tag', { registry: 'docker.io', repository: 'library/app', tag: '_under.SCORE-tag' }],
  ];
  for (const [text, expected] of cases) {
    test(text, () => {
      assert.deepEqual(parseReference(text), expected);
    });
  }

  test('digest-only reference has no tag property at all', () => {
    const ref = parseReference(`busybox@${DIGEST}`);
    assert.equal('tag' in ref, false);
  });

  test('defaultTag applies only when neither tag nor digest is given', () => {
    assert.equal(parseReference('busybox', { defaultTag: 'stable' }).tag, 'stable');
    assert.equal(parseReference('busybox:1', { defaultTag: 'stable' }).tag, '1');
    assert.equal(parseReference(`busybox@${DIGEST}`, { defaultTag: 'stable' }).tag, undefined);
  });

  test('an invalid defaultTag is refused', () => {
    assert.throws(() => parseReference('busybox', { defaultTag: '-bad' }), ReferenceError);
  });

  test('a tag of 128 characters is accepted, 129 refused', () => {
    const longest = 'v' + 'x'.repeat(127);
    assert.equal(parseReference(`app:${longest}`).tag, longest);
    assertRefused(`app:${longest}x`, /tag "v+x+" is not valid/);
  });

  test('a repository of 255 characters is accepted, 256 refused', () => {
    const repository = `team/${'a'.repeat(250)}`;
    assert.equal(repository.length, 255);
    assert.equal(parseReference(`localhost:5000/${repository}`).repository, repository);
    assertRefused(`localhost:5000/${repository}b`, /256 characters, longer than the maximum 255/);
  });
});

describe('parseReference: refusals say what is wrong', () => {
  test('the documented example message, exactly', () => {
    assert.throws(() => parseReference('Foo:bar'), {
      name: 'ReferenceError',
      message: `invalid reference "Foo:bar": repository name must be lowercase ${EXPECTED_FORM}`,
    });
  });

  const refusals: Array<[string, RegExp]> = [
    ['', /reference is empty/],
    ['busy box', /whitespace/],
    ['MyOrg/app', /must be lowercase/],
    ['localhost:5000/Team/app', /must be lowercase/],
    [HEX, /64-character hexadecimal image ID/],
    ['app:', /tag is empty/],
    ['app:-dash', /tag "-dash" is not valid/],
    ['app:.dot', /tag ".dot" is not valid/],
    // "app:a" before a "/" reads as HOST:PORT, as in docker.
    ['app:a/b', /registry port "a" is not a number/],
    ['app:t!', /tag "t!" is not valid/],
    ['app@', /digest is empty/],
    ['app@sha256', /has no algorithm/],
    [`app@sha512:${'a'.repeat(128)}`, /"sha512" is not supported, only sha256/],
    [`app@md5:${'a'.repeat(32)}`, /"md5" is not supported/],
    [`app@1sha:${HEX}`, /algorithm "1sha" is malformed/],
    ['app@sha256:abc', /exactly 64 lowercase hexadecimal/],
    [`app@sha256:${HEX.toUpperCase()}`, /exactly 64 lowercase hexadecimal/],
    [`app@sha256:${HEX}0`, /exactly 64 lowercase hexadecimal/],
    [`app@${DIGEST}@${DIGEST}`, /more than one "@"/],
    ['/app', /empty path component/],
    ['app/', /empty path component/],
    ['team//app', /empty path component/],
    ['localhost:5000/', /repository name is empty|empty path component/],
    [':tag', /repository name is empty/],
    ['-app', /path component "-app" is not valid/],
    ['app-', /path component "app-" is not valid/],
    ['a..b', /path component "a..b" is not valid/],
    ['a___b', /path component "a___b" is not valid/],
    ['a.-b', /path component "a.-b" is not valid/],
    ['-bad.host/app', /registry host "-bad.host" is not a valid host name/],
    ['bad_host.io/app', /registry host "bad_host.io" is not a valid host name/],
    ['host:port/app', /registry port "port" is not a number/],
    ['host:99999/app', /registry port "99999" is not a number/],
    ['host:/app', /registry port "" is not a number/],
    ['[::1/app', /has "\[" without "\]"/],
    ['[::1]x/app', /unexpected "x" after IPv6 address/],
    ['[zz::1]:5000/app', /not a valid IPv6 address/],
    ['[1:2:3]:5000/app', /not a valid IPv6 address/],
  ];
  for (const [text, problem] of refusals) {
    test(JSON.stringify(text), () => assertRefused(text, problem));
  }

  test('the quoted input escapes control characters instead of printing them raw', () => {
    assert.throws(() => parseReference('app\u001b[31m'), (error: unknown) => {
      assert.ok(error instanceof ReferenceError);
      assert.ok(!error.message.includes('\u001b'), 'raw escape character must not reach the terminal');
      assert.ok(error.message.includes('\\u001b'));
      return true;
    });
  });
});

describe('formatting and derived references', () => {
  test('formatReference keeps docker.io explicit and round-trips', () => {
    const inputs = [
      'busybox',
      'ones/plugin-host-node:v6.33.1',
      '[::1]:5000/app:v2',
      `localhost:5000/a/b@${DIGEST}`,
      `busybox:1.36@${DIGEST}`,
    ];
    const expected = [
      'docker.io/library/busybox:latest',
      'docker.io/ones/plugin-host-node:v6.33.1',
      '[::1]:5000/app:v2',
      `localhost:5000/a/b@${DIGEST}`,
      `docker.io/library/busybox:1.36@${DIGEST}`,
    ];
    inputs.forEach((input, index) => {
      const formatted = formatReference(parseReference(input));
      assert.equal(formatted, expected[index]);
      assert.deepEqual(parseReference(formatted), parseReference(input), `round trip of ${input}`);
    });
  });

  test('repositoryName is registry/repository without tag or digest', () => {
    assert.equal(repositoryName(parseReference(`busybox:1@${DIGEST}`)), 'docker.io/library/busybox');
    assert.equal(repositoryName(parseReference('127.0.0.1:5000/x/y:z')), '127.0.0.1:5000/x/y');
  });

  test('withDigest drops the tag and does not modify the original', () => {
    const original = parseReference('localhost:5000/app:v1');
    const pinned = withDigest(original, DIGEST);
    assert.deepEqual(pinned, { registry: 'localhost:5000', repository: 'app', digest: DIGEST });
    assert.equal(formatReference(pinned), `localhost:5000/app@${DIGEST}`);
    assert.equal(original.tag, 'v1');
  });

  test('withTag drops any digest and validates the tag', () => {
    const original = parseReference(`localhost:5000/app:v1@${DIGEST}`);
    assert.deepEqual(withTag(original, 'v2'), { registry: 'localhost:5000', repository: 'app', tag: 'v2' });
    assert.throws(() => withTag(original, 'bad tag'), { name: 'ReferenceError', message: /invalid tag "bad tag"/ });
  });

  test('manifestReference prefers the digest, else the tag', () => {
    assert.equal(manifestReference(parseReference('app:v1')), 'v1');
    assert.equal(manifestReference(parseReference(`app:v1@${DIGEST}`)), DIGEST);
    assert.equal(manifestReference(parseReference(`app@${DIGEST}`)), DIGEST);
    assert.throws(() => manifestReference({ registry: 'r.io', repository: 'x' }), /neither tag nor digest/);
  });
});

describe('registry hosts', () => {
  test('registryApiHost maps only docker.io', () => {
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost(parseReference('busybox').registry), 'registry-1.docker.io');
    assert.equal(registryApiHost('localhost:5000'), 'localhost:5000');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
    assert.equal(registryApiHost('[::1]:5000'), '[::1]:5000');
  });

  const loopback = ['localhost', 'localhost:5000', 'LOCALHOST:5000', '127.0.0.1', '127.0.0.1:5000', '127.255.1.2:443', '[::1]', '[::1]:5000', '[0:0:0:0:0:0:0:1]:5000'];
  const notLoopback = [
    'docker.io',
    'registry-1.docker.io',
    '128.0.0.1:5000',
    '10.0.0.1',
    '127.0.0.1.nip.io',
    'localhost.example.com',
    '[::2]:5000',
    '[fe80::1]',
    'user@127.0.0.1',
    '127.0.0.1/evil',
    '',
    '[::1',
  ];
  for (const registry of loopback) {
    test(`${JSON.stringify(registry)} is loopback`, () => assert.equal(isLoopbackRegistry(registry), true));
  }
  for (const registry of notLoopback) {
    test(`${JSON.stringify(registry)} is not loopback`, () => assert.equal(isLoopbackRegistry(registry), false));
  }
});
