// CA certificates found where docker and podman keep them: certs.d/<host:port>/*.crt.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TlsError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { trustedCertificates } from '../../src/registry/trust.js';
import { pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

describe('trust from certs.d directories', () => {
  let registry: RunningRegistry;
  let certsRoot: string;

  before(async () => {
    [registry, certsRoot] = await Promise.all([startRegistry({ tls: true, auth: true }), mkdtemp(path.join(tmpdir(), 'imgbuild-certs-d-'))]);
    await pushSeedBase(registry);
    await mkdir(path.join(certsRoot, registry.host));
    await copyFile(registry.caFile!, path.join(certsRoot, registry.host, 'ca.crt'));
  });
  after(async () => {
    await registry?.stop();
    if (certsRoot) await rm(certsRoot, { recursive: true, force: true });
  });

  const client = (certsDirs: string[]) =>
    new RegistryClient(registry.host, {
      certsDirs,
      credentials: createCredentialStore({ explicit: { registry: registry.host, ...registry.auth! } }),
    });

  test('the CA in certs.d/<host:port>/ is trusted without --ca-file', async () => {
    const found = await trustedCertificates({ registry: registry.host, certsDirs: [certsRoot] });
    assert.deepEqual(found.extraFiles, [path.join(certsRoot, registry.host, 'ca.crt')]);
    const trusting = client([certsRoot]);
    try {
      const manifest = await trusting.getManifest(SEED_BASE.split(':')[0]!, 'v6.33.1');
      assert.match(manifest.digest, /^sha256:[0-9a-f]{64}$/);
    } finally {
      await trusting.close();
    }
  });

  test('without it the same registry is a TLS error', async () => {
    const distrusting = client([path.join(certsRoot, 'nothing-here')]);
    try {
      await assert.rejects(distrusting.getManifest(SEED_BASE.split(':')[0]!, 'v6.33.1'), TlsError);
    } finally {
      await distrusting.close();
    }
  });
});
