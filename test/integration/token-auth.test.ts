// Bearer-token auth against the real registry (distribution 2.8 with `auth: token:`)
// and a token server that grants per-repository permissions: anonymous refusal,
// an authenticated push through the CLI with a cross-repository mount, servers
// that answer `access_token` only, wrong passwords, and users who may not push.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuthError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, type PushedBaseImage } from '../helpers/fixtures.js';
import { startTokenAuthRegistry, type TokenAuthRegistry } from '../helpers/token-server.js';
import { skopeoInspect } from '../helpers/tools.js';

let workDir: string;
let helloFile: string;

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-token-auth-'));
  helloFile = path.join(workDir, 'hello.txt');
  await writeFile(helloFile, 'hello through a token\n');
  await ensureCliBuilt();
});
after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function addArgs(host: string, to: string, username: string, extra: string[] = []): string[] {
  return [
    'add',
    '--from', `${host}/base/app:1`,
    '--to', `${host}/${to}`,
    '--add', `${helloFile}:/opt/app/hello.txt`,
    '--username', username,
    '--password-stdin',
    '-o', 'json',
    ...extra,
  ];
}

/** The digest the registry serves for repo:tag, asked as admin with skopeo; undefined when absent. */
async function servedDigest(setup: TokenAuthRegistry, reference: string): Promise<string | undefined> {
  try {
    return (await skopeoInspect(reference, setup.registry, 'summary')).Digest as string;
  } catch (error) {
    if (/manifest unknown|not found/i.test((error as Error).message)) return undefined;
    throw error;
  }
}

describe('token auth (registry with `auth: token`, token answers in "token")', () => {
  let setup: TokenAuthRegistry;
  let base: PushedBaseImage;

  before(async () => {
    setup = await startTokenAuthRegistry();
    base = await pushBaseImage(setup.registry, 'base/app:1');
  });
  after(async () => {
    await setup?.stop();
  });

  test('an anonymous pull is refused with an AuthError that says credentials are needed and how to give them', async () => {
    const anonymous = new RegistryClient(setup.registry.host);
    try {
      await assert.rejects(anonymous.getManifest('base/app', '1'), (error: unknown) => {
        assert.ok(error instanceof AuthError, `not an AuthError: ${String(error)}`);
        assert.match(error.message, /requires authentication and no credentials were found/);
        assert.ok(error.message.includes(setup.registry.host), error.message);
        assert.match(error.hint ?? '', /--username/);
        return true;
      });
    } finally {
      await anonymous.close();
    }
    const cli = await runCli(['inspect', `${setup.registry.host}/base/app:1`]);
    assert.equal(cli.code, 1, describeResult(cli));
    assert.match(cli.stderr, /requires authentication/, describeResult(cli));
  });

  test('pusher pushes through the CLI; the base layer is mounted from base/ with one token for both scopes', async () => {
    const before = setup.tokenServer.requests.length;
    const result = await runCli(addArgs(setup.registry.host, 'dest/app:1', 'pusher'), { stdin: `${setup.passwords.pusher}\n` });
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout);
    assert.ok(output.blobs.mounted >= 1, `nothing mounted: ${result.stdout}`);
    assert.equal(output.blobs.uploaded, 2, `the new layer and config are uploaded: ${result.stdout}`);

    const requests = setup.tokenServer.requests.slice(before);
    assert.ok(requests.every((request) => request.username === 'pusher' && request.status === 200), JSON.stringify(requests));
    const mountToken = requests.find(
      (request) => request.scopes.includes('repository:dest/app:pull,push') && request.scopes.includes('repository:base/app:pull'),
    );
    assert.ok(mountToken, `no token request named both repositories:\n${JSON.stringify(requests, null, 1)}`);
    const granted = [...mountToken.granted].sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(granted, [
      { name: 'base/app', actions: ['pull'] },
      { name: 'dest/app', actions: ['pull', 'push'] },
    ]);

    assert.equal(await servedDigest(setup, 'dest/app:1'), output.digest);
    const manifest = await skopeoInspect('dest/app:1', setup.registry);
    const baseManifest = await skopeoInspect(`base/app@${base.digest}`, setup.registry);
    assert.equal(manifest.layers[0].digest, baseManifest.layers[0].digest);
    assert.equal(manifest.layers.length, baseManifest.layers.length + 1);
  });

  test('a wrong password exits 1 naming the user, and the password appears nowhere in the output', async () => {
    const wrong = 'not-the-password-Zq81';
    const result = await runCli(addArgs(setup.registry.host, 'dest/app:wrong', 'pusher'), { stdin: `${wrong}\n` });
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /refused the credentials for user "pusher"/, describeResult(result));
    assert.ok(!result.stderr.includes(wrong) && !result.stdout.includes(wrong), describeResult(result));
    assert.ok(!result.stderr.includes(setup.passwords.pusher), describeResult(result));
    assert.ok(setup.tokenServer.requests.some((request) => request.username === 'pusher' && request.status === 401));
    assert.equal(await servedDigest(setup, 'dest/app:wrong'), undefined);
  });

  test('a user without push permission gets a clear error and the tag is left as it was', async () => {
    // Make sure the tag exists first, so "unchanged" is a real check.
    const first = await runCli(addArgs(setup.registry.host, 'dest/app:guarded', 'pusher'), { stdin: setup.passwords.pusher });
    assert.equal(first.code, 0, describeResult(first));
    const digestBefore = await servedDigest(setup, 'dest/app:guarded');
    assert.ok(digestBefore);

    const result = await runCli(addArgs(setup.registry.host, 'dest/app:guarded', 'reader', ['--env', 'CHANGED=1']), {
      stdin: setup.passwords.reader,
    });
    assert.equal(result.code, 1, describeResult(result));
    // The token server accepted reader's password and granted pull only: the message must say
    // that pushing is not allowed, not that the credentials were refused (they were not).
    assert.match(result.stderr, /^error: .*"reader"/m, describeResult(result));
    assert.match(result.stderr, /^error: .*dest\/app/m, describeResult(result));
    assert.match(result.stderr, /^error: .*(not allowed|denied|permission|insufficient|may not)/im, describeResult(result));
    assert.equal(await servedDigest(setup, 'dest/app:guarded'), digestBefore);
    const readerRequests = setup.tokenServer.requests.filter((request) => request.username === 'reader');
    assert.ok(readerRequests.some((request) => request.scopes.some((scope) => scope.startsWith('repository:dest/app:') && scope.includes('push'))));
    assert.ok(readerRequests.every((request) => request.granted.every((grant) => !grant.actions.includes('push'))));
  });
});

describe('token auth with a token server that answers only "access_token"', () => {
  let setup: TokenAuthRegistry;
  let base: PushedBaseImage;

  before(async () => {
    setup = await startTokenAuthRegistry({ tokenField: 'access_token' });
    base = await pushBaseImage(setup.registry, 'base/app:1');
  });
  after(async () => {
    await setup?.stop();
  });

  test('a token that lacks the scope a request needs is replaced once, when the registry answers 401', async () => {
    const client = new RegistryClient(setup.registry.host, {
      credentials: createCredentialStore({ explicit: { registry: setup.registry.host, username: 'reader', password: setup.passwords.reader } }),
    });
    try {
      setup.tokenServer.grantNothingToNext(1);
      const before = setup.tokenServer.requests.length;
      const manifest = await client.getManifest('base/app', '1');
      assert.equal(manifest.digest, base.digest);
      const asked = setup.tokenServer.requests.slice(before);
      // First token: accepted but empty; the registry's 401 names the scope; the second grants it.
      assert.equal(asked.length, 2, JSON.stringify(asked));
      assert.deepEqual(asked.map((request) => request.granted), [[], [{ name: 'base/app', actions: ['pull'] }]]);
      assert.ok(asked[1]!.scopes.includes('repository:base/app:pull'));
    } finally {
      await client.close();
    }
  });

  test('pusher pushes through the CLI with the access_token', async () => {
    const result = await runCli(addArgs(setup.registry.host, 'dest/app:1', 'pusher'), { stdin: setup.passwords.pusher });
    assert.equal(result.code, 0, describeResult(result));
    const output = JSON.parse(result.stdout);
    assert.equal(await servedDigest(setup, 'dest/app:1'), output.digest);
    assert.ok(setup.tokenServer.requests.some((request) => request.username === 'pusher' && request.status === 200));
  });
});
