// Which CA bundle counts as "the system's": SSL_CERT_FILE when set, as OpenSSL and Go read it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { systemBundle, trustedCertificates } from '../../src/registry/trust.js';

test('SSL_CERT_FILE names the system bundle, whatever exists at the usual paths', () => {
  assert.deepEqual(systemBundle({ SSL_CERT_FILE: '/srv/bundle.pem' }), { file: '/srv/bundle.pem', label: 'SSL_CERT_FILE' });
});

test('without SSL_CERT_FILE the bundle is one of the distributions\' paths, or none', () => {
  const found = systemBundle({});
  if (found) assert.equal(found.label, 'the system CA bundle');
  assert.ok(found === undefined || ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'].includes(found.file));
});

test('an SSL_CERT_FILE that cannot be read is an InputError naming it', async () => {
  await assert.rejects(
    trustedCertificates({ registry: 'reg.example:5000', certsDirs: [], env: { SSL_CERT_FILE: '/nonexistent/bundle.pem' } }),
    (error: unknown) => error instanceof InputError && /\/nonexistent\/bundle\.pem \(SSL_CERT_FILE\)/.test(error.message),
  );
});
