// `imgbuild quickstart`, run as a user runs it (the built CLI, in a clean environment): it must
// print each step and the digests, verify the file from its registry, and leave nothing behind:
// its temporary directory gone and its registry's port closed, after a normal run, after Ctrl-C
// in the middle, and after --keep's registry is stopped with Ctrl-C. What --keep serves is read
// by tools we did not write (skopeo, umoci).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, REPO_ROOT, runCli, startCli, type RunningCli } from '../helpers/cli.js';
import { run, runChecked, skopeo } from '../helpers/tools.js';

const WAIT_MS = 60_000;
const HELLO = 'built-by: imgbuild\nmessage: hello from imgbuild quickstart\n';

/** Resolves with everything written to the stream once `pattern` matches it. */
function waitForOutput(cli: RunningCli, stream: 'stdout' | 'stderr', pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} on ${stream} within ${WAIT_MS} ms; so far:\n${text}`)), WAIT_MS);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (pattern.test(text)) {
        clearTimeout(timer);
        cli.child[stream]!.off('data', onData);
        resolve(text);
      }
    };
    cli.child[stream]!.on('data', onData);
    cli.child.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited before ${pattern} appeared on ${stream}; it printed:\n${text}`));
    });
  });
}

/** Whether something accepts TCP connections at host:port. */
function accepts(host: string): Promise<boolean> {
  const [address, port] = [host.slice(0, host.lastIndexOf(':')), Number(host.slice(host.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = connect({ host: address, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The registry address from the "registry serving DIR at URL" step line. */
function registryFrom(stderr: string): { host: string; dir: string } {
  const match = /quickstart: registry serving (\S+) at http:\/\/(\S+)/.exec(stderr);
  assert.ok(match, `no registry step line in:\n${stderr}`);
  return { dir: match[1]!, host: match[2]! };
}

describe('imgbuild quickstart', () => {
  // A private TMPDIR: whatever the CLI leaves in it is found.
  let temp: string;
  before(async () => {
    await ensureCliBuilt();
    temp = await mkdtemp(path.join(tmpdir(), 'imgbuild-quickstart-test-'));
  });
  after(async () => {
    await rm(temp, { recursive: true, force: true });
  });
  const env = () => ({ TMPDIR: temp });

  test('runs the report job, prints the steps and digests, verifies, and leaves nothing behind', async () => {
    const result = await runCli(['quickstart'], { env: env(), timeoutMs: WAIT_MS });
    assert.equal(result.code, 0, describeResult(result));
    for (const step of ['registry serving', 'base image', 'imgbuild add (direct engine)', 'imgbuild build (direct engine)', 'read /opt/app/hello.txt back']) {
      assert.ok(result.stderr.includes(`quickstart: ${step}`), `step "${step}" missing:\n${describeResult(result)}`);
    }
    const { host, dir } = registryFrom(result.stderr);
    assert.ok(dir.startsWith(temp), `the registry's directory ${dir} is not in TMPDIR ${temp}`);
    assert.match(result.stdout, new RegExp(`^add {7}${host}/new-kaniko-image:latest@sha256:[0-9a-f]{64}$`, 'm'), describeResult(result));
    assert.match(result.stdout, new RegExp(`^build {5}${host}/new-kaniko-image:dockerfile@sha256:[0-9a-f]{64}$`, 'm'), describeResult(result));
    assert.match(result.stdout, /^verified {2}\/opt\/app\/hello\.txt in both images matches/m);
    assert.match(result.stdout, /npx imgbuild verify \S+ --in-cluster/, 'the commands to try next are missing');
    assert.deepEqual(await readdir(temp), [], 'the quickstart left files in TMPDIR');
    assert.equal(await accepts(host), false, `the registry still listens on ${host}`);
  });

  test('-o json gives the digests and what was verified', async () => {
    const result = await runCli(['quickstart', '-o', 'json'], { env: env(), timeoutMs: WAIT_MS });
    assert.equal(result.code, 0, describeResult(result));
    const json = JSON.parse(result.stdout);
    assert.match(json.add.digest, /^sha256:[0-9a-f]{64}$/);
    assert.match(json.build.digest, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(json.add.digest, json.build.digest);
    assert.deepEqual(
      json.verified.map((image: { tag: string; path: string; user: string; workdir: string }) => [image.tag, image.path, image.user, image.workdir]),
      [
        [json.add.tag, '/opt/app/hello.txt', 'root', '/opt/app'],
        [json.build.tag, '/opt/app/hello.txt', 'root', '/opt/app'],
      ],
    );
    assert.equal(json.kept, false);
    assert.deepEqual(await readdir(temp), []);
  });

  test('npx imgbuild runs it (the imgbuild command: the launcher on the CommonJS bundle), as after npm ci', async () => {
    const npx = path.join(path.dirname(process.execPath), 'npx');
    const result = await run(npx, ['--offline', 'imgbuild', 'quickstart', '-o', 'json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, TMPDIR: temp, NODE_OPTIONS: '' },
      timeoutMs: WAIT_MS,
    });
    assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
    const json = JSON.parse(result.stdout);
    assert.equal(json.verified.length, 2);
    assert.deepEqual(await readdir(temp), []);
  });

  test('Ctrl-C in the middle stops it, closes the registry and removes its directory', async () => {
    const cli = await startCli(['quickstart'], { env: env(), timeoutMs: WAIT_MS });
    // Caught in the act: the registry is up and the base pushed, the scenario not yet run.
    const stderr = await waitForOutput(cli, 'stderr', /quickstart: base image/);
    const { host, dir } = registryFrom(stderr);
    assert.ok((await readdir(temp)).length > 0, 'the temporary directory should exist while it runs');
    cli.child.kill('SIGINT');
    const result = await cli.result;
    assert.equal(result.code, 130, describeResult(result));
    assert.match(result.stderr, /interrupted \(SIGINT\)/);
    assert.doesNotMatch(result.stdout, /^verified/m, 'it reported success after Ctrl-C');
    assert.deepEqual(await readdir(temp), [], `the quickstart left ${dir} or other files in TMPDIR`);
    assert.equal(await accepts(host), false, `the registry still listens on ${host}`);
  });

  test('--keep leaves the registry serving the images (read by skopeo and umoci) until Ctrl-C', async () => {
    const cli = await startCli(['quickstart', '--keep', '-o', 'json'], { env: env(), timeoutMs: WAIT_MS * 2 });
    // Both watched from the start: the JSON is printed before the "kept running" line.
    const [stdout, stderr] = await Promise.all([waitForOutput(cli, 'stdout', /^\}$/m), waitForOutput(cli, 'stderr', /registry kept running/)]);
    const { host } = registryFrom(stderr);
    const json = JSON.parse(stdout);
    assert.equal(json.kept, true, `no JSON result on stdout:\n${stdout}`);
    assert.equal(json.registry.host, host);

    const image = `docker://${host}/new-kaniko-image:latest`;
    const summary = JSON.parse((await skopeo(['inspect', '--tls-verify=false', image])).stdout);
    assert.equal(summary.Digest, json.add.digest, 'skopeo sees another digest than the quickstart printed');
    const config = JSON.parse((await skopeo(['inspect', '--config', '--tls-verify=false', image])).stdout);
    assert.equal(config.config.User, 'root');
    assert.equal(config.config.WorkingDir, '/opt/app');
    // The whole image as a runtime would unpack it: skopeo copies it out, umoci unpacks it.
    const work = await mkdtemp(path.join(tmpdir(), 'imgbuild-quickstart-keep-'));
    try {
      await skopeo(['copy', '--src-tls-verify=false', image, `oci:${work}/layout:kept`]);
      await runChecked('umoci', ['unpack', '--image', `${work}/layout:kept`, `${work}/bundle`]);
      assert.equal(await readFile(`${work}/bundle/rootfs/opt/app/hello.txt`, 'utf8'), HELLO);
      assert.match(await readFile(`${work}/bundle/rootfs/etc/passwd`, 'utf8'), /^node:x:1000:1000:/m);
    } finally {
      await rm(work, { recursive: true, force: true });
    }

    assert.equal(await accepts(host), true, 'the kept registry should still listen');
    cli.child.kill('SIGINT');
    const result = await cli.result;
    assert.equal(result.code, 0, describeResult(result));
    assert.deepEqual(await readdir(temp), [], 'the kept registry directory was not removed after Ctrl-C');
    assert.equal(await accepts(host), false, `the registry still listens on ${host} after Ctrl-C`);
  });
});
