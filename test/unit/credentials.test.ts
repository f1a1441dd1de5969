import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/errors.js';
import { createCredentialStore, describeCredentialSource, type CredentialSourceOptions } from '../../src/registry/credentials.js';
import { startRegistry } from '../helpers/registry.js';
import { runChecked } from '../helpers/tools.js';

const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

const scratch = await mkdtemp(join(tmpdir(), 'imgbuild-credentials-test-'));
after(() => rm(scratch, { recursive: true, force: true }));
let sandboxCount = 0;

interface Sandbox {
  home: string;
  binDir: string;
  /** Every server address a test helper was asked about, one per line. */
  helperLog: string;
  env: NodeJS.ProcessEnv;
  writeDockerConfig(config: unknown): Promise<string>;
  writeHelper(name: string, body: string): Promise<void>;
  helperCalls(): Promise<string[]>;
}

/** A fresh HOME, an empty bin dir on PATH, and nothing from the real environment that could leak in. */
async function sandbox(): Promise<Sandbox> {
  const root = join(scratch, `case-${sandboxCount++}`);
  const home = join(root, 'home');
  const binDir = join(root, 'bin');
  await mkdir(join(home, '.docker'), { recursive: true });
  await mkdir(binDir, { recursive: true });
  const helperLog = join(root, 'helper-calls.log');
  await writeFile(helperLog, '');
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: `${binDir}:/usr/bin:/bin` };
  return {
    home,
    binDir,
    helperLog,
    env,
    async writeDockerConfig(config) {
      const path = join(home, '.docker', 'config.json');
      await writeFile(path, typeof config === 'string' ? config : JSON.stringify(config));
      return path;
    },
    /** A real executable `docker-credential-<name>`; `body` sees the server address in $server. */
    async writeHelper(name, body) {
      const path = join(binDir, `docker-credential-${name}`);
      const script = [
        '#!/bin/sh',
        '[ "$1" = get ] || { echo "unexpected action: $1" >&2; exit 3; }',
        'server=$(cat)',
        `printf '%s\\n' "$server" >> '${helperLog}'`,
        body,
      ].join('\n');
      await writeFile(path, `${script}\n`);
      await chmod(path, 0o755);
    },
    async helperCalls() {
      return (await readFile(helperLog, 'utf8')).split('\n').filter((line) => line !== '');
    },
  };
}

/** A helper that knows one server address and answers docker-credential-helpers' not-found otherwise. */
function helperKnowing(serverAddress: string, username: string, secret: string): string {
  return [
    `if [ "$server" = '${serverAddress}' ]; then`,
    `  printf '{"ServerURL":"%s","Username":"${username}","Secret":"${secret}"}\\n' "$server"`,
    'else',
    '  echo "credentials not found in native keychain"',
    '  exit 1',
    'fi',
  ].join('\n');
}

function store(box: Sandbox, extra: Partial<CredentialSourceOptions> = {}) {
  return createCredentialStore({ env: box.env, ...extra });
}

describe('auths entries in the docker config', () => {
  test('base64 "auth" decodes to username and password; a ":" in the password survives', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': { auth: basic('alice', 'pa:ss:word') } } });
    assert.deepEqual({ ...(await store(box).get('localhost:5000')) }, { username: 'alice', password: 'pa:ss:word' });
  });

  test('username/password fields are used when there is no "auth"', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'registry.example.com': { username: 'bob', password: 'hunter2' } } });
    assert.deepEqual({ ...(await store(box).get('registry.example.com')) }, { username: 'bob', password: 'hunter2' });
  });

  test('identitytoken is returned as identityToken', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'myregistry.azurecr.io': { username: '00000000-0000-0000-0000-000000000000', identitytoken: 'refresh-abc' } } });
    assert.deepEqual({ ...(await store(box).get('myregistry.azurecr.io')) }, {
      username: '00000000-0000-0000-0000-000000000000',
      identityToken: 'refresh-abc',
    });
  });

  test('an unknown registry or an empty entry gives undefined (anonymous)', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': {}, 'other.io': { auth: basic('u', 'p') } } });
    const credentials = store(box);
    assert.equal(await credentials.get('localhost:5000'), undefined);
    assert.equal(await credentials.get('localhost:5001'), undefined);
    assert.equal(await credentials.get('docker.io'), undefined);
  });

  test('URL keys match the bare host, with http or https and any path', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({
      auths: {
        'https://localhost:5000/v1/': { auth: basic('https-user', 'p1') },
        'http://registry.internal:8080': { auth: basic('http-user', 'p2') },
      },
    });
    const credentials = store(box);
    assert.equal((await credentials.get('localhost:5000'))?.username, 'https-user');
    assert.equal((await credentials.get('registry.internal:8080'))?.username, 'http-user');
    assert.equal(await credentials.get('localhost'), undefined, 'a port is part of the host');
  });

  test('an exact key wins over a URL key for the same host', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({
      auths: { 'https://localhost:5000/v1/': { auth: basic('url', 'p') }, 'localhost:5000': { auth: basic('exact', 'p') } },
    });
    assert.equal((await store(box).get('localhost:5000'))?.username, 'exact');
  });

  test("Docker Hub's legacy key https://index.docker.io/v1/ serves all of Hub's names", async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'https://index.docker.io/v1/': { auth: basic('hubuser', 'hubpass') } } });
    for (const registry of ['docker.io', 'registry-1.docker.io', 'index.docker.io']) {
      const credentials = store(box);
      assert.deepEqual({ ...(await credentials.get(registry)) }, { username: 'hubuser', password: 'hubpass' }, registry);
    }
    assert.equal(await store(box).get('ghcr.io'), undefined);
  });

  test('a "docker.io" key also serves Docker Hub', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'docker.io': { auth: basic('hub2', 'p') } } });
    assert.equal((await store(box).get('registry-1.docker.io'))?.username, 'hub2');
  });

  test('DOCKER_CONFIG replaces ~/.docker', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': { auth: basic('from-home', 'p') } } });
    const elsewhere = join(box.home, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'config.json'), JSON.stringify({ auths: { 'localhost:5000': { auth: basic('from-docker-config', 'p') } } }));
    const credentials = createCredentialStore({ env: { ...box.env, DOCKER_CONFIG: elsewhere } });
    assert.equal((await credentials.get('localhost:5000'))?.username, 'from-docker-config');
  });

  test('no config files at all is fine', async () => {
    const box = await sandbox();
    assert.equal(await store(box).get('localhost:5000'), undefined);
    const missingAuthFile = createCredentialStore({ env: { ...box.env, REGISTRY_AUTH_FILE: join(box.home, 'nope.json') } });
    assert.equal(await missingAuthFile.get('localhost:5000'), undefined);
  });

  test('an empty config file is an empty configuration, as in docker', async () => {
    const box = await sandbox();
    await box.writeDockerConfig('  \n');
    assert.equal(await store(box).get('localhost:5000'), undefined);
  });
});

describe('REGISTRY_AUTH_FILE', () => {
  test('is consulted before the docker config', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': { auth: basic('docker-user', 'p') }, 'other.io': { auth: basic('docker-other', 'p') } } });
    const authFile = join(box.home, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { 'localhost:5000': { auth: basic('podman-user', 'p') } } }));
    const credentials = createCredentialStore({ env: { ...box.env, REGISTRY_AUTH_FILE: authFile } });
    assert.equal((await credentials.get('localhost:5000'))?.username, 'podman-user');
    // A registry the auth file does not know falls through to the docker config.
    assert.equal((await credentials.get('other.io'))?.username, 'docker-other');
  });
});

describe('credential helpers', () => {
  test('credHelpers runs docker-credential-<name> get with the bare host on stdin', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', 'helper-user', 'helper-secret'));
    await box.writeDockerConfig({ credHelpers: { 'localhost:5000': 'imgbuildtest' } });
    assert.deepEqual({ ...(await store(box).get('localhost:5000')) }, { username: 'helper-user', password: 'helper-secret' });
    assert.deepEqual(await box.helperCalls(), ['localhost:5000']);
  });

  test('for Docker Hub the helper is asked about https://index.docker.io/v1/', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('https://index.docker.io/v1/', 'hub-helper', 's'));
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    assert.equal((await store(box).get('registry-1.docker.io'))?.username, 'hub-helper');
    assert.deepEqual(await box.helperCalls(), ['https://index.docker.io/v1/']);
  });

  test('username <token> means the secret is an identity token', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', '<token>', 'refresh-token-xyz'));
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    assert.deepEqual({ ...(await store(box).get('localhost:5000')) }, { identityToken: 'refresh-token-xyz' });
  });

  test('"credentials not found in native keychain" is no credentials, not an error', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('somewhere-else:1', 'u', 's'));
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    assert.equal(await store(box).get('localhost:5000'), undefined);
    assert.deepEqual(await box.helperCalls(), ['localhost:5000'], 'the helper was really asked');
  });

  test('an empty answer with exit 0 is no credentials', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', `printf '{"ServerURL":"","Username":"","Secret":""}'`);
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    assert.equal(await store(box).get('localhost:5000'), undefined);
  });

  test('credHelpers wins over credsStore, which wins over auths', async () => {
    const box = await sandbox();
    await box.writeHelper('perhost', helperKnowing('localhost:5000', 'from-credHelpers', 's1'));
    await box.writeHelper(
      'store',
      [
        `case "$server" in`,
        `  localhost:5000|other.io) printf '{"ServerURL":"%s","Username":"from-credsStore","Secret":"s2"}' "$server" ;;`,
        `  *) echo "credentials not found in native keychain"; exit 1 ;;`,
        `esac`,
      ].join('\n'),
    );
    await box.writeDockerConfig({
      credHelpers: { 'localhost:5000': 'perhost' },
      credsStore: 'store',
      auths: {
        'localhost:5000': { auth: basic('from-auths', 'p') },
        'other.io': { auth: basic('from-auths', 'p') },
        'third.io': { auth: basic('from-auths', 'p') },
      },
    });
    const credentials = store(box);
    assert.equal((await credentials.get('localhost:5000'))?.username, 'from-credHelpers');
    assert.equal((await credentials.get('other.io'))?.username, 'from-credsStore');
    // The store has nothing for third.io, so the file's own entry answers.
    assert.equal((await credentials.get('third.io'))?.username, 'from-auths');
  });

  test('results are cached per registry: the helper runs once', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', 'u', 's'));
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    const credentials = store(box);
    const [first, second] = await Promise.all([credentials.get('localhost:5000'), credentials.get('localhost:5000')]);
    const third = await credentials.get('LOCALHOST:5000');
    assert.equal(first, second);
    assert.equal(first, third);
    assert.deepEqual(await box.helperCalls(), ['localhost:5000']);
  });

  test('a failing helper is an InputError naming the program, without the secret', async () => {
    const box = await sandbox();
    // Prints a secret on stderr and on stdout before failing: neither may reach the message.
    await box.writeHelper('imgbuildtest', `echo '{"Username":"u","Secret":"TOPSECRET-1"}'\necho 'password TOPSECRET-2' >&2\nexit 1`);
    await box.writeDockerConfig({ credHelpers: { 'localhost:5000': 'imgbuildtest' } });
    await assert.rejects(store(box).get('localhost:5000'), (error: unknown) => {
      assert.ok(error instanceof InputError, String(error));
      assert.match(error.message, /credential helper docker-credential-imgbuildtest failed for localhost:5000 \(exit 1\)/);
      assert.doesNotMatch(`${error.message} ${error.hint ?? ''}`, /TOPSECRET/);
      return true;
    });
  });

  test("a failing helper's plain error text is shown", async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', `echo 'keychain is locked' >&2\nexit 2`);
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    await assert.rejects(store(box).get('localhost:5000'), {
      name: 'InputError',
      message: 'credential helper docker-credential-imgbuildtest failed for localhost:5000 (exit 2): keychain is locked',
    });
  });

  test('a helper answering broken JSON is an InputError without its output', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', `printf '{"Username":"u","Secret":"TOPSECRET-3"'`);
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    await assert.rejects(store(box).get('localhost:5000'), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /docker-credential-imgbuildtest answered with something other than JSON/);
      assert.doesNotMatch(error.message, /TOPSECRET/);
      return true;
    });
  });

  test('a helper that is not installed is an InputError saying how to fix it', async () => {
    const box = await sandbox();
    const configPath = await box.writeDockerConfig({ credsStore: 'desktop' });
    await assert.rejects(store(box).get('localhost:5000'), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.equal(
        error.message,
        `credential helper docker-credential-desktop ("credsStore" in docker config ${configPath}) is not installed or not on PATH`,
      );
      assert.match(error.hint ?? '', /install docker-credential-desktop, or remove "desktop"/);
      return true;
    });
  });

  test('a helper name with a path in it is refused', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ credsStore: '../../bin/sh' });
    await assert.rejects(store(box).get('localhost:5000'), { name: 'InputError', message: /is not a plain program suffix/ });
  });

  test('a failure is not cached: fixing the helper makes the next call succeed', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', 'exit 5');
    await box.writeDockerConfig({ credsStore: 'imgbuildtest' });
    const credentials = store(box);
    await assert.rejects(credentials.get('localhost:5000'), InputError);
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', 'fixed', 's'));
    assert.equal((await credentials.get('localhost:5000'))?.username, 'fixed');
  });
});

describe('explicit credentials', () => {
  test('win over every file for their registry, and only for it', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', 'helper-user', 's'));
    await box.writeDockerConfig({ credsStore: 'imgbuildtest', auths: { 'other.io': { auth: basic('file-user', 'p') } } });
    const credentials = store(box, { explicit: { registry: 'localhost:5000', username: 'cli-user', password: 'cli-pass' } });
    assert.deepEqual({ ...(await credentials.get('localhost:5000')) }, { username: 'cli-user', password: 'cli-pass' });
    assert.deepEqual(await box.helperCalls(), [], 'the helper is not asked when the CLI gave credentials');
    assert.equal((await credentials.get('other.io'))?.username, 'file-user');
  });

  test('without a registry they apply to every registry', async () => {
    const box = await sandbox();
    await box.writeDockerConfig('{ this is not json');
    const credentials = store(box, { explicit: { username: 'cli-user', password: 'cli-pass' } });
    assert.equal((await credentials.get('localhost:5000'))?.username, 'cli-user');
    assert.equal((await credentials.get('docker.io'))?.username, 'cli-user');
  });

  test('a Docker Hub alias in explicit.registry matches all of Hub', async () => {
    const box = await sandbox();
    const credentials = store(box, { explicit: { registry: 'docker.io', username: 'cli-user', password: 'p' } });
    assert.equal((await credentials.get('registry-1.docker.io'))?.username, 'cli-user');
    assert.equal(await credentials.get('ghcr.io'), undefined);
  });
});

describe('broken config files', () => {
  test('invalid JSON is an InputError naming the file, not quoting its content', async () => {
    const box = await sandbox();
    const path = await box.writeDockerConfig('{"auths": {"localhost:5000": {"auth": "TOPSECRET-4"}},,}');
    await assert.rejects(store(box).get('localhost:5000'), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.ok(error.message.startsWith(`docker config ${path} is not valid JSON`), error.message);
      assert.doesNotMatch(error.message, /TOPSECRET/);
      assert.equal(error.cause, undefined, 'the parser error, which quotes content, is not attached');
      return true;
    });
  });

  test('invalid JSON in REGISTRY_AUTH_FILE names that file', async () => {
    const box = await sandbox();
    const authFile = join(box.home, 'auth.json');
    await writeFile(authFile, '{"auths":');
    const credentials = createCredentialStore({ env: { ...box.env, REGISTRY_AUTH_FILE: authFile } });
    await assert.rejects(credentials.get('localhost:5000'), {
      name: 'InputError',
      message: new RegExp(`^auth file ${authFile} \\(REGISTRY_AUTH_FILE\\) is not valid JSON`),
    });
  });

  test('a wrong shape names the field', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': { auth: 42 } } });
    await assert.rejects(store(box).get('localhost:5000'), { name: 'InputError', message: /unexpected shape at "auths.localhost:5000.auth"/ });
  });

  test('an "auth" that is not base64 of user:password names the entry, not the value', async () => {
    const box = await sandbox();
    await box.writeDockerConfig({ auths: { 'localhost:5000': { auth: '!!TOPSECRET-5!!' }, 'other.io': { auth: Buffer.from('TOPSECRET-6').toString('base64') } } });
    const credentials = store(box);
    await assert.rejects(credentials.get('localhost:5000'), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /auths entry "localhost:5000": "auth" is not valid base64/);
      assert.doesNotMatch(error.message, /TOPSECRET/);
      return true;
    });
    await assert.rejects(credentials.get('other.io'), (error: unknown) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /"auth" does not decode to "username:password"/);
      assert.doesNotMatch(error.message, /TOPSECRET/);
      return true;
    });
  });
});

describe('describeCredentialSource', () => {
  test('names where each credential came from, never its secret', async () => {
    const box = await sandbox();
    await box.writeHelper('imgbuildtest', helperKnowing('localhost:5000', 'helper-user', 'HELPER-SECRET'));
    const path = await box.writeDockerConfig({
      credHelpers: { 'localhost:5000': 'imgbuildtest' },
      auths: { 'https://other.io/v1/': { auth: basic('u', 'FILE-SECRET') } },
    });
    const credentials = store(box);
    const fromHelper = await credentials.get('localhost:5000');
    const fromFile = await credentials.get('other.io');
    assert.equal(
      describeCredentialSource(fromHelper),
      `credential helper docker-credential-imgbuildtest ("credHelpers" in docker config ${path})`,
    );
    assert.equal(describeCredentialSource(fromFile), `docker config ${path}, auths entry "https://other.io/v1/"`);

    const explicit = await store(box, { explicit: { username: 'u', password: 'CLI-SECRET' } }).get('x.io');
    assert.equal(describeCredentialSource(explicit), 'credentials given with --username and --password-stdin');
  });

  test('for no credential, lists the files searched in order', async () => {
    const box = await sandbox();
    const authFile = join(box.home, 'auth.json');
    assert.equal(
      describeCredentialSource(undefined, { env: { ...box.env, REGISTRY_AUTH_FILE: authFile } }),
      `no credentials found in auth file ${authFile} (REGISTRY_AUTH_FILE) or docker config ${join(box.home, '.docker', 'config.json')}`,
    );
  });
});

describe('interoperability with a real login', () => {
  test('an auth file written by `skopeo login` against a real registry reads back as the same credentials', async () => {
    const registry = await startRegistry({ auth: true });
    try {
      const auth = registry.auth;
      assert.ok(auth !== undefined);
      const box = await sandbox();
      const authFile = join(box.home, 'skopeo-auth.json');
      // skopeo checks the password against the registry before writing it, so the file holds working credentials.
      await runChecked('skopeo', ['login', '--authfile', authFile, '--tls-verify=false', '--username', auth.username, '--password-stdin', registry.host], {
        input: auth.password,
        env: { ...process.env, HOME: box.home },
      });
      const credentials = createCredentialStore({ env: { ...box.env, REGISTRY_AUTH_FILE: authFile } });
      assert.deepEqual({ ...(await credentials.get(registry.host)) }, { username: auth.username, password: auth.password });
      assert.equal(describeCredentialSource(await credentials.get(registry.host)), `auth file ${authFile} (REGISTRY_AUTH_FILE), auths entry "${registry.host}"`);
    } finally {
      await registry.stop();
    }
  });
});
