// Bad input to `imgbuild add`: each case must say what is wrong (asserted by fragments of
// the message), exit 2 for usage errors and 1 otherwise, print nothing on stdout, and
// leave the destination tag exactly where it was (checked with skopeo).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliOptions, type CliResult } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const DESTINATION = 'errors/dest:current';

interface Expectation {
  code: number;
  /** Every one must appear in stderr. */
  messages: RegExp[];
}

function assertFailure(result: CliResult, expected: Expectation): void {
  assert.equal(result.code, expected.code, describeResult(result));
  assert.equal(result.stdout, '', 'a failed command printed a result on stdout');
  for (const message of expected.messages) assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /internal error|at .*\.mjs:\d+/, 'a user error surfaced as a crash with a stack');
}

describe('imgbuild add with bad input, plain HTTP registry', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let destinationDigest: string;

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry(),
      mkdtemp(path.join(tmpdir(), 'imgbuild-errors-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushSeedBase(registry);
    destinationDigest = (await pushBaseImage(registry, DESTINATION, { extraFiles: { '/etc/known': 'known\n' } })).digest;
    assert.equal((await skopeoInspect(DESTINATION, registry, 'summary')).Digest, destinationDigest);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Runs add with the seed base, hello.txt and the pre-pushed destination unless `args` overrides them. */
  async function failingAdd(
    overrides: { from?: string; add?: string; to?: string; extra?: string[] },
    expected: Expectation,
    options: CliOptions = {},
  ): Promise<void> {
    const args = [
      'add',
      '--from', overrides.from ?? `${registry.host}/${SEED_BASE}`,
      '--add', overrides.add ?? 'hello.txt:/opt/app/hello.txt',
      '--to', overrides.to ?? `${registry.host}/${DESTINATION}`,
      ...(overrides.extra ?? []),
    ];
    assertFailure(await runCli(args, { cwd: workDir, ...options }), expected);
    assert.equal((await skopeoInspect(DESTINATION, registry, 'summary')).Digest, destinationDigest, 'the destination tag moved');
  }

  test('a malformed --from reference', async () => {
    await failingAdd({ from: `${registry.host}/Ones/Plugin-Host:v1` }, { code: 2, messages: [/Ones\/Plugin-Host:v1/, /lowercase/] });
  });

  test('a malformed --to reference', async () => {
    await failingAdd({ to: `${registry.host}/errors/dest:-bad` }, { code: 2, messages: [/errors\/dest:-bad/, /tag/] });
  });

  test('a base that does not exist', async () => {
    await failingAdd({ from: `${registry.host}/errors/missing:1` }, { code: 1, messages: [/errors\/missing:1 not found/] });
  });

  test('a source file that does not exist', async () => {
    await failingAdd({ add: 'no-such-file.txt:/opt/app/hello.txt' }, { code: 1, messages: [/no-such-file\.txt does not exist/] });
  });

  test('a relative destination', async () => {
    await failingAdd({ add: 'hello.txt:opt/app/hello.txt' }, { code: 2, messages: [/'opt\/app\/hello\.txt' is not an absolute path/, /--add hello\.txt:\/opt\/app\/hello\.txt/] });
  });

  test('a destination escaping the image root', async () => {
    await failingAdd({ add: 'hello.txt:/../../etc/x' }, { code: 2, messages: [/\/\.\.\/\.\.\/etc\/x/, /climbs above the image root/] });
  });

  test('--password-stdin without --username', async () => {
    await failingAdd({ extra: ['--password-stdin'] }, { code: 2, messages: [/--password-stdin needs --username/] }, { stdin: 'secret\n' });
  });

  test('--username without --password-stdin', async () => {
    await failingAdd({ extra: ['--username', 'tester'] }, { code: 2, messages: [/--username needs --password-stdin/] });
  });

  test('--to naming a digest', async () => {
    await failingAdd({ to: `${registry.host}/errors/dest@${destinationDigest}` }, { code: 2, messages: [/names a digest/, /must be a tag/] });
  });

  test('a TMPDIR that does not exist', async () => {
    const missing = path.join(workDir, 'no-such-tmp');
    await failingAdd({}, { code: 1, messages: [new RegExp(`cannot make a temporary directory in ${missing}: ENOENT`), /point TMPDIR at an existing directory/] }, { env: { TMPDIR: missing } });
  });

  test('--to with a tag and a digest', async () => {
    await failingAdd({ to: `${registry.host}/errors/dest:current@${destinationDigest}` }, { code: 2, messages: [/names a digest/] });
  });

  test('nothing to change', async () => {
    const result = await runCli(['add', '--from', `${registry.host}/${SEED_BASE}`, '--to', `${registry.host}/${DESTINATION}`]);
    assertFailure(result, { code: 2, messages: [/nothing to change/, /--add SRC:DEST/] });
    assert.equal((await skopeoInspect(DESTINATION, registry, 'summary')).Digest, destinationDigest);
  });

  test('a missing required option', async () => {
    const result = await runCli(['add', '--from', `${registry.host}/${SEED_BASE}`, '--add', 'hello.txt:/x'], { cwd: workDir });
    assertFailure(result, { code: 2, messages: [/required option '--to <REF>'/] });
  });

  test('an invalid SOURCE_DATE_EPOCH', async () => {
    await failingAdd({}, { code: 2, messages: [/SOURCE_DATE_EPOCH="yesterday" is not a number/] }, { env: { SOURCE_DATE_EPOCH: 'yesterday' } });
  });

  test('a new tag is not created by a failing add', async () => {
    const result = await runCli(
      ['add', '--from', `${registry.host}/errors/missing:1`, '--add', 'hello.txt:/opt/app/hello.txt', '--to', `${registry.host}/errors/fresh:1`],
      { cwd: workDir },
    );
    assertFailure(result, { code: 1, messages: [/not found/] });
    await assert.rejects(skopeoInspect('errors/fresh:1', registry), /manifest unknown|name unknown|not found/i);
  });

  test('inspect and verify of a tag that does not exist exit 1', async () => {
    const inspect = await runCli(['inspect', `${registry.host}/errors/missing:1`]);
    assertFailure(inspect, { code: 1, messages: [/errors\/missing:1 not found/] });
    const verify = await runCli(['verify', `${registry.host}/errors/missing:1`, '--file', '/etc/passwd']);
    assertFailure(verify, { code: 1, messages: [/errors\/missing:1 not found/] });
  });

  test('verify with both --expect-file and --expect-text', async () => {
    const result = await runCli(['verify', `${registry.host}/${DESTINATION}`, '--file', '/etc/known', '--expect-file', 'hello.txt', '--expect-text', 'x'], { cwd: workDir });
    assertFailure(result, { code: 2, messages: [/--expect-file and --expect-text both given/] });
  });

  test('a registry that is not running', async () => {
    const result = await runCli(
      ['add', '--from', '127.0.0.1:9/app:1', '--add', 'hello.txt:/opt/app/hello.txt', '--to', '127.0.0.1:9/app:2'],
      { cwd: workDir, timeoutMs: 60_000 },
    );
    assertFailure(result, { code: 1, messages: [/cannot reach registry 127\.0\.0\.1:9/, /ECONNREFUSED/] });
  });
});

describe('imgbuild add with bad credentials or trust, TLS registry with auth', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let destinationDigest: string;

  before(async () => {
    [registry, workDir] = await Promise.all([
      startRegistry({ tls: true, auth: true }),
      mkdtemp(path.join(tmpdir(), 'imgbuild-errors-tls-test-')),
      ensureCliBuilt(),
    ]);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushSeedBase(registry);
    destinationDigest = (await pushBaseImage(registry, DESTINATION, { extraFiles: { '/etc/known': 'known\n' } })).digest;
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function failingAdd(extra: string[], expected: Expectation, options: CliOptions = {}): Promise<void> {
    const args = [
      'add', ...extra,
      '--from', `${registry.host}/${SEED_BASE}`,
      '--add', 'hello.txt:/opt/app/hello.txt',
      '--to', `${registry.host}/${DESTINATION}`,
    ];
    assertFailure(await runCli(args, { cwd: workDir, ...options }), expected);
    assert.equal((await skopeoInspect(DESTINATION, registry, 'summary')).Digest, destinationDigest, 'the destination tag moved');
  }

  test('a wrong password with --password-stdin names the user and the credentials', async () => {
    await failingAdd(
      ['--ca-file', registry.caFile!, '--username', 'tester', '--password-stdin'],
      { code: 1, messages: [/refused the credentials for user "tester"/, new RegExp(registry.host.replaceAll('.', '\\.')), /hint: check the username and password/] },
      { stdin: 'not-the-password\n' },
    );
  });

  test('a wrong password in the docker config names the user', async () => {
    const configDir = path.join(workDir, 'wrong-docker-config');
    await rm(configDir, { recursive: true, force: true });
    await mkdir(configDir);
    const encoded = Buffer.from('tester:wrong').toString('base64');
    await writeFile(path.join(configDir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: encoded } } }));
    await failingAdd(['--ca-file', registry.caFile!], { code: 1, messages: [/refused the credentials for user "tester"/] }, { env: { DOCKER_CONFIG: configDir } });
  });

  test('no credentials at all says so and how to give them', async () => {
    await failingAdd(['--ca-file', registry.caFile!], { code: 1, messages: [/requires authentication and no credentials were found/, /--password-stdin/] });
  });

  test('an untrusted certificate without --ca-file names --insecure and --ca-file', async () => {
    await failingAdd([], { code: 1, messages: [/TLS verification of 127\.0\.0\.1:\d+ failed/, /--ca-file/, /--insecure/] }, { env: { DOCKER_CONFIG: registry.dockerConfigDir } });
  });

  test('a --ca-file that does not exist', async () => {
    await failingAdd(['--ca-file', path.join(workDir, 'missing-ca.pem')], { code: 1, messages: [/cannot read CA file .*missing-ca\.pem/] }, { env: { DOCKER_CONFIG: registry.dockerConfigDir } });
  });
});
