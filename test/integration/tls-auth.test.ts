// The seed job against a registry with TLS from a private CA and htpasswd auth, with
// credentials from each place imgbuild reads them: DOCKER_CONFIG, --username with
// --password-stdin, and a podman-style REGISTRY_AUTH_FILE. Run against CNCF distribution and
// against imgbuild's own registry (`imgbuild registry serve`).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliOptions } from '../helpers/cli.js';
import { pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { assertUmociReadsBack } from '../helpers/readback.js';
import { getV2Status, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const HELLO = 'built-by: kaniko\nmessage: hello from kaniko build\n';

for (const server of ['distribution', 'imgbuild'] as const) describe(`imgbuild add on a TLS registry with htpasswd auth (${server})`, () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry({ tls: true, auth: true, server }),
      mkdtemp(path.join(tmpdir(), 'imgbuild-tls-auth-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), HELLO);
    await pushSeedBase(registry);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** The seed add to `repository:latest`, then a verify of the result, both with the same credentials. */
  async function addAndVerify(repository: string, credentialFlags: string[], options: CliOptions, trustFlags = ['--ca-file', registry.caFile!]): Promise<void> {
    const target = `${registry.host}/${repository}:latest`;
    const added = await runCli(
      [
        'add', ...trustFlags, ...credentialFlags,
        '--from', `${registry.host}/${SEED_BASE}`,
        '--add', 'hello.txt:/opt/app/hello.txt', '--workdir', '/opt/app', '--user', 'root',
        '--to', target,
      ],
      { cwd: workDir, ...options },
    );
    assert.equal(added.code, 0, describeResult(added));
    const match = /^(\S+)@(sha256:[0-9a-f]{64})\n$/.exec(added.stdout);
    assert.ok(match, `unexpected stdout ${JSON.stringify(added.stdout)}`);
    assert.equal(match[1], `${registry.host}/${repository}`);
    // skopeo, with its own credentials and trust, sees the same digest.
    assert.equal((await skopeoInspect(`${repository}:latest`, registry, 'summary')).Digest, match[2]);
    const config = await skopeoInspect(`${repository}:latest`, registry, 'config');
    assert.equal(config.config.WorkingDir, '/opt/app');

    const verified = await runCli(
      ['verify', ...trustFlags, ...credentialFlags, target, '--file', '/opt/app/hello.txt', '--expect-file', 'hello.txt'],
      { cwd: workDir, ...options },
    );
    assert.equal(verified.code, 0, describeResult(verified));
    assert.equal(verified.stdout, HELLO);
    await assertUmociReadsBack(registry, `${repository}:latest`, '/opt/app/hello.txt', verified.stdout);
  }

  test('with DOCKER_CONFIG and --ca-file', async () => {
    await addAndVerify('docker-config/new-kaniko-image', [], { env: { DOCKER_CONFIG: registry.dockerConfigDir } });
  });

  test('with --username and --password-stdin, and no docker config', async () => {
    await addAndVerify('password-stdin/new-kaniko-image', ['--username', registry.auth!.username, '--password-stdin'], {
      stdin: `${registry.auth!.password}\n`,
    });
  });

  test('with REGISTRY_AUTH_FILE in podman auth.json form', async () => {
    const authFile = path.join(workDir, 'auth.json');
    const encoded = Buffer.from(`${registry.auth!.username}:${registry.auth!.password}`).toString('base64');
    await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { auth: encoded } } }));
    await addAndVerify('auth-file/new-kaniko-image', [], { env: { REGISTRY_AUTH_FILE: authFile } });
  });

  test('with --insecure instead of the CA: certificate checks off, still over TLS', async () => {
    await addAndVerify('insecure/new-kaniko-image', [], { env: { DOCKER_CONFIG: registry.dockerConfigDir } }, ['--insecure']);
  });

  test('with --cert-dir, a directory holding the CA as a .crt file', async () => {
    await addAndVerify('cert-dir/new-kaniko-image', [], { env: { DOCKER_CONFIG: registry.dockerConfigDir } }, ['--cert-dir', registry.certDir!]);
  });

  test('no credentials, or a wrong password, are refused', async () => {
    const anonymous = await runCli(['inspect', '--ca-file', registry.caFile!, `${registry.host}/${SEED_BASE}`]);
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr, /401|auth|credential/i, describeResult(anonymous));
    const caPem = await readFile(registry.caFile!, 'utf8');
    const basic = (password: string) => `Basic ${Buffer.from(`${registry.auth!.username}:${password}`).toString('base64')}`;
    assert.equal(await getV2Status(registry, undefined, caPem), 401);
    assert.equal(await getV2Status(registry, basic('wrong'), caPem), 401);
    assert.equal(await getV2Status(registry, basic(registry.auth!.password), caPem), 200);
  });

  if (server === 'imgbuild') {
    test('its request log names the user and never the password', async () => {
      const line = new RegExp(`^127\\.0\\.0\\.1 ${registry.auth!.username} "GET /v2/" 200 `, 'm');
      // The child's stderr arrives on its own time.
      for (let waited = 0; !line.test(registry.logs()) && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.match(registry.logs(), line);
      assert.ok(!registry.logs().includes(registry.auth!.password));
    });
  }
});
