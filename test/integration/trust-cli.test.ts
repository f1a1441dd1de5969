// Trust through the CLI without flags, as docker and OpenSSL find it: a CA in
// ~/.docker/certs.d/<host:port>/ca.crt under a temporary HOME, a system bundle named by
// SSL_CERT_FILE; and plain HTTP refused for a registry that is not on loopback (a real
// registry in a network namespace, reached over a veth pair) unless --insecure is given.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliOptions, type CliResult } from '../helpers/cli.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { createNetworkNamespace, type NetworkNamespace } from '../helpers/netns.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { tagDigest } from '../helpers/tools.js';

let workDir: string;
before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-trust-cli-test-'));
  await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
  await ensureCliBuilt();
});
after(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function add(registry: RunningRegistry, tag: string, options: CliOptions, extra: string[] = []): Promise<CliResult> {
  return runCli(['add', '--from', `${registry.host}/base/app:1`, '--add', 'hello.txt:/opt/hello.txt', '--to', `${registry.host}/dest/app:${tag}`, ...extra], {
    cwd: workDir,
    ...options,
  });
}

async function assertPushed(registry: RunningRegistry, tag: string, result: CliResult): Promise<void> {
  assert.equal(result.code, 0, describeResult(result));
  const printed = /@(sha256:[0-9a-f]{64})$/m.exec(result.stdout)?.[1];
  assert.equal(await tagDigest(registry, `dest/app:${tag}`), printed);
}

async function assertRefused(registry: RunningRegistry, tag: string, result: CliResult, message: RegExp): Promise<void> {
  assert.equal(result.code, 1, describeResult(result));
  assert.match(result.stderr, message, describeResult(result));
  assert.equal(await tagDigest(registry, `dest/app:${tag}`), undefined);
}

describe('a TLS registry with a private CA, trusted without flags', () => {
  let registry: RunningRegistry;

  before(async () => {
    registry = await startRegistry({ tls: true });
    await pushBaseImage(registry, 'base/app:1');
  });
  after(async () => {
    await registry?.stop();
  });

  /** A fresh HOME, optionally with the CA in .docker/certs.d/<host:port>/ca.crt. */
  async function home(name: string, withCa: boolean): Promise<string> {
    const dir = path.join(workDir, name);
    const certs = path.join(dir, '.docker', 'certs.d', registry.host);
    await mkdir(certs, { recursive: true });
    if (withCa) await copyFile(registry.caFile!, path.join(certs, 'ca.crt'));
    return dir;
  }

  // XDG_CONFIG_HOME and SSL_CERT_FILE from the developer's shell must not decide the outcome.
  const env = (extra: Record<string, string>) => ({ XDG_CONFIG_HOME: undefined, SSL_CERT_FILE: undefined, ...extra });

  test('the CA in ~/.docker/certs.d/<host:port>/ca.crt is trusted', async () => {
    const result = await add(registry, 'certs-d', { env: env({ HOME: await home('home-with-ca', true) }) });
    await assertPushed(registry, 'certs-d', result);
  });

  test('the same HOME without it: a TLS error naming --ca-file and --insecure', async () => {
    const result = await add(registry, 'no-certs-d', { env: env({ HOME: await home('home-without-ca', false) }) });
    await assertRefused(registry, 'no-certs-d', result, /TLS verification of .* failed[\s\S]*--ca-file[\s\S]*--insecure/);
  });

  test('a system bundle named by SSL_CERT_FILE is trusted', async () => {
    const bundle = path.join(workDir, 'bundle.pem');
    await copyFile(registry.caFile!, bundle);
    const result = await add(registry, 'ssl-cert-file', { env: env({ HOME: await home('home-bundle', false), SSL_CERT_FILE: bundle }) });
    await assertPushed(registry, 'ssl-cert-file', result);
  });

  test('SSL_CERT_FILE replaces the system bundle: one without the CA is a TLS error', async () => {
    const bundle = path.join(workDir, 'other-bundle.pem');
    // A valid PEM of some other CA: the registry's own server certificate chain is not in it.
    await copyFile(path.join(path.dirname(registry.caFile!), '..', 'server.crt'), bundle);
    const result = await add(registry, 'other-bundle', { env: env({ HOME: await home('home-other-bundle', false), SSL_CERT_FILE: bundle }) });
    await assertRefused(registry, 'other-bundle', result, /TLS verification of .* failed/);
  });

  test('an SSL_CERT_FILE that cannot be read is an error naming it', async () => {
    const missing = path.join(workDir, 'no-such-bundle.pem');
    const result = await add(registry, 'missing-bundle', { env: env({ HOME: await home('home-missing-bundle', false), SSL_CERT_FILE: missing }) });
    await assertRefused(registry, 'missing-bundle', result, /no-such-bundle\.pem \(SSL_CERT_FILE\)/);
  });

  test('a plain-HTTP registry on loopback: no CA file is read (the first request does not wait for them)', async () => {
    const plain = await startRegistry();
    try {
      await pushBaseImage(plain, 'base/app:1');
      const missing = path.join(workDir, 'no-such-bundle.pem');
      const result = await add(plain, 'plain', { env: env({ HOME: await home('home-plain', false), SSL_CERT_FILE: missing }) });
      await assertPushed(plain, 'plain', result);
    } finally {
      await plain.stop();
    }
  });
});

describe('a plain-HTTP registry that is not on loopback (in a network namespace)', () => {
  let namespace: NetworkNamespace;
  let registry: RunningRegistry;

  before(async () => {
    namespace = await createNetworkNamespace();
    registry = await startRegistry({ listen: { address: namespace.innerAddress, port: 5000, netns: namespace.name } });
    await pushBaseImage(registry, 'base/app:1');
  });
  after(async () => {
    await registry?.stop();
    await namespace?.remove();
  });

  test('the registry is reached on its 10.x address, not on loopback', () => {
    assert.match(registry.host, /^10\.\d+\.\d+\.\d+:5000$/);
  });

  test('without --insecure, add and inspect refuse plain HTTP and say to pass --insecure', async () => {
    const result = await add(registry, 'refused', {});
    await assertRefused(registry, 'refused', result, /--insecure/);
    assert.match(result.stderr, new RegExp(`https://${registry.host.replaceAll('.', '\\.')}`), 'the message does not say HTTPS was tried');
    const inspect = await runCli(['inspect', `${registry.host}/base/app:1`]);
    assert.equal(inspect.code, 1, describeResult(inspect));
    assert.match(inspect.stderr, /--insecure/);
  });

  test('with --insecure, add pushes over plain HTTP and inspect reads it', async () => {
    const result = await add(registry, 'allowed', {}, ['--insecure']);
    await assertPushed(registry, 'allowed', result);
    const inspect = await runCli(['inspect', '--insecure', `${registry.host}/dest/app:allowed`]);
    assert.equal(inspect.code, 0, describeResult(inspect));
  });
});
