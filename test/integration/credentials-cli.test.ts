// Credentials found as docker finds them, through the CLI, against a real registry that needs
// them (distribution 2.8 with token auth): a per-host `credHelpers` program, a `credsStore`,
// and an `identitytoken` that the token server exchanges in an OAuth2 refresh-token grant.
// The helpers are small scripts this test writes onto PATH; no secret may reach stdout or
// stderr, even with --verbose.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startTokenAuthRegistry, type TokenAuthRegistry } from '../helpers/token-server.js';
import { tagDigest } from '../helpers/tools.js';

const IDENTITY_TOKEN = `idt-${randomBytes(16).toString('hex')}`;

/**
 * Writes `docker-credential-<name>` into binDir: a shell script that, like a real helper,
 * reads the server address on stdin for `get`, appends it to `<name>.asked`, and prints the
 * answer for that server or "credentials not found in native keychain" with exit 1.
 */
async function writeCredentialHelper(binDir: string, name: string, answers: Record<string, { Username: string; Secret: string }>): Promise<string> {
  const askedFile = path.join(binDir, `${name}.asked`);
  const cases = Object.entries(answers)
    .map(([server, answer]) => `  '${server}') printf '%s' '${JSON.stringify({ ServerURL: server, ...answer })}' ;;`)
    .join('\n');
  const script = [
    '#!/bin/sh',
    '[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }',
    'read -r server',
    `printf '%s\\n' "$server" >> '${askedFile}'`,
    'case "$server" in',
    cases,
    "  *) echo 'credentials not found in native keychain'; exit 1 ;;",
    'esac',
    '',
  ].join('\n');
  const file = path.join(binDir, `docker-credential-${name}`);
  await writeFile(file, script);
  await chmod(file, 0o755);
  return askedFile;
}

describe('credentials through the CLI as docker finds them (token-auth registry)', () => {
  let setup: TokenAuthRegistry;
  let workDir: string;
  let binDir: string;
  let host: string;

  before(async () => {
    [setup, workDir] = await Promise.all([
      startTokenAuthRegistry({ refreshTokens: { [IDENTITY_TOKEN]: 'pusher' } }),
      mkdtemp(path.join(tmpdir(), 'imgbuild-credentials-test-')),
      ensureCliBuilt(),
    ]);
    host = setup.registry.host;
    binDir = path.join(workDir, 'bin');
    await mkdir(binDir);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushBaseImage(setup.registry, 'base/app:1');
  });
  after(async () => {
    await setup?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** A DOCKER_CONFIG directory holding `config`. */
  async function dockerConfig(name: string, config: object): Promise<string> {
    const dir = path.join(workDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }

  /**
   * add to dest/app:TAG with -v (every log line a secret could slip into), credentials from
   * DOCKER_CONFIG only; run as the `imgbuild` command, whose bundle loads child_process (for
   * the helpers) only when a helper runs (scripts/bundle.mjs, lazyBuiltins).
   */
  function addWithConfig(configDir: string, tag: string): Promise<CliResult> {
    return runCli(['add', '-v', '--from', `${host}/base/app:1`, '--add', 'hello.txt:/opt/hello.txt', '--to', `${host}/dest/app:${tag}`], {
      launcher: true,
      cwd: workDir,
      env: { DOCKER_CONFIG: configDir, PATH: `${binDir}:${process.env.PATH}` },
    });
  }

  function assertNoSecret(result: CliResult): void {
    for (const secret of [setup.passwords.pusher, IDENTITY_TOKEN, Buffer.from(`pusher:${setup.passwords.pusher}`).toString('base64')]) {
      assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), `a secret appears in the output:\n${describeResult(result)}`);
    }
  }

  async function assertPushedAsPusher(result: CliResult, tag: string, since: number, grantType?: string): Promise<void> {
    assert.equal(result.code, 0, describeResult(result));
    assertNoSecret(result);
    // Read before skopeo (as admin) asks for tokens of its own.
    const requests = setup.tokenServer.requests.slice(since);
    const printed = /@(sha256:[0-9a-f]{64})$/m.exec(result.stdout)?.[1];
    assert.equal(await tagDigest(setup.registry, `dest/app:${tag}`), printed);
    assert.ok(requests.length > 0, 'no token was asked for');
    assert.ok(
      requests.every((request) => request.username === 'pusher' && request.status === 200 && request.grantType === grantType),
      `token requests were not all pusher's${grantType ? ` ${grantType} grants` : ''}:\n${JSON.stringify(requests, null, 1)}`,
    );
  }

  test('a credHelpers entry for the host runs docker-credential-<name> with the host on stdin', async () => {
    const asked = await writeCredentialHelper(binDir, 'imgbuild-test-perhost', { [host]: { Username: 'pusher', Secret: setup.passwords.pusher } });
    const config = await dockerConfig('per-host', { credHelpers: { [host]: 'imgbuild-test-perhost' }, auths: { [host]: {} } });
    const since = setup.tokenServer.requests.length;
    const result = await addWithConfig(config, 'helper');
    await assertPushedAsPusher(result, 'helper', since);
    assert.deepEqual((await readFile(asked, 'utf8')).trim().split('\n'), [host], 'the helper was not asked (once) for the host');
  });

  test('a credsStore answers for every host', async () => {
    const asked = await writeCredentialHelper(binDir, 'imgbuild-test-store', { [host]: { Username: 'pusher', Secret: setup.passwords.pusher } });
    const config = await dockerConfig('store', { credsStore: 'imgbuild-test-store' });
    const since = setup.tokenServer.requests.length;
    const result = await addWithConfig(config, 'store');
    await assertPushedAsPusher(result, 'store', since);
    assert.deepEqual((await readFile(asked, 'utf8')).trim().split('\n'), [host]);
  });

  test('an identitytoken in auths is exchanged by a refresh-token grant, never sent as a password', async () => {
    const config = await dockerConfig('identity', { auths: { [host]: { identitytoken: IDENTITY_TOKEN } } });
    const since = setup.tokenServer.requests.length;
    const result = await addWithConfig(config, 'identity');
    await assertPushedAsPusher(result, 'identity', since, 'refresh_token');
  });

  test('a helper answering with the <token> user hands over an identity token, exchanged the same way', async () => {
    await writeCredentialHelper(binDir, 'imgbuild-test-oauth', { [host]: { Username: '<token>', Secret: IDENTITY_TOKEN } });
    const config = await dockerConfig('oauth-helper', { credHelpers: { [host]: 'imgbuild-test-oauth' } });
    const since = setup.tokenServer.requests.length;
    const result = await addWithConfig(config, 'oauth-helper');
    await assertPushedAsPusher(result, 'oauth-helper', since, 'refresh_token');
  });

  test('a refresh token the server does not accept: exit 1, no tag, and the token is not printed', async () => {
    const config = await dockerConfig('bad-identity', { auths: { [host]: { identitytoken: `${IDENTITY_TOKEN}-revoked` } } });
    const result = await addWithConfig(config, 'bad-identity');
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /refused the credentials/, describeResult(result));
    assertNoSecret(result);
    assert.ok(!result.stderr.includes(`${IDENTITY_TOKEN}-revoked`), describeResult(result));
    assert.equal(await tagDigest(setup.registry, 'dest/app:bad-identity'), undefined);
  });
});
