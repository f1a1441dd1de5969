// `imgbuild verify` trusts no byte it has not checked: the layer that holds the file is read to
// its end and checked against its digest before anything is printed, so a layer altered on the
// registry's disk or in transit ends in exit 1 naming the digest, with nothing on stdout. And it
// reads a big file in memory that does not grow with the file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, startCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { alterStoredBlob, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runChecked } from '../helpers/tools.js';

const HELLO = 'hello from a verified layer\n';
const MiB = 1024 * 1024;

/** One byte inverted in the middle of a blob: inside the random file that follows hello.txt. */
function flipMiddleByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1]! ^= 0xff;
  return copy;
}

/** Exit 1 naming `digest`; stdout empty and no "matches": nothing was passed off as verified. */
function assertRefusedNaming(result: CliResult, digest: string): void {
  assert.equal(result.code, 1, describeResult(result));
  assert.equal(result.stdout, '', `bytes of an unverified layer reached stdout:\n${describeResult(result)}`);
  assert.match(result.stderr, new RegExp(`expected ${digest}`), describeResult(result));
  assert.doesNotMatch(result.stderr, /matches|internal error/, describeResult(result));
}

/** `add --from scratch` of `source` (a file or DIR/) to DEST; returns the pushed layer's digest. */
async function addFromScratch(source: string, destination: string, to: string, cwd: string): Promise<string> {
  const result = await runCli(['add', '-o', 'json', '--from', 'scratch', '--add', `${source}:${destination}`, '--to', to], { cwd, timeoutMs: 300_000 });
  assert.equal(result.code, 0, describeResult(result));
  return JSON.parse(result.stdout).layer.digest as string;
}

describe('verify checks the whole layer before it prints', () => {
  let registry: RunningRegistry;
  let proxy: RunningFaultProxy;
  let workDir: string;
  let layer: string;
  let restore: (() => Promise<void>) | undefined;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-verify-test-')), ensureCliBuilt()]);
    proxy = await startFaultProxy(registry.host);
    // One layer: a-hello.txt first, then 2 MiB of random bytes, so a change in the middle of the
    // blob lies after the file verify looks for.
    const content = path.join(workDir, 'content');
    await mkdir(content);
    await writeFile(path.join(content, 'a-hello.txt'), HELLO);
    await writeFile(path.join(content, 'z-random.bin'), randomBytes(2 * MiB));
    layer = await addFromScratch('content/', '/opt/app/', `${registry.host}/verify/app:1`, workDir);
  });
  afterEach(async () => {
    await restore?.();
    restore = undefined;
    proxy.reset();
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const verify = (host: string, ...extra: string[]) => runCli(['verify', `${host}/verify/app:1`, '--file', '/opt/app/a-hello.txt', ...extra]);

  test('the untouched image verifies (the control for the tests below)', async () => {
    const result = await verify(registry.host, '--expect-text', HELLO);
    assert.equal(result.code, 0, describeResult(result));
    assert.equal(result.stdout, HELLO);
  });

  test('a file that differs still fails when the reader closes the pipe after the first bytes', async () => {
    const running = await startCli(['verify', `${registry.host}/verify/app:1`, '--file', '/opt/app/z-random.bin', '--expect-text', HELLO], { stdout: 'discard' });
    running.child.stdout!.once('data', () => running.child.stdout!.destroy());
    const result = await running.result;
    assert.ok(result.stdoutBytes > 0 && result.stdoutBytes < 2 * MiB, `the pipe was not closed early (${result.stdoutBytes} bytes read)`);
    assert.equal(result.code, 1, describeResult(result));
  });

  test('a layer blob flipped in the registry storage: exit 1 naming its digest, nothing printed', async () => {
    restore = await alterStoredBlob(registry, layer, flipMiddleByte);
    assertRefusedNaming(await verify(registry.host, '--expect-text', HELLO), layer);
    assertRefusedNaming(await verify(registry.host), layer);
    assertRefusedNaming(await verify(registry.host, '-o', 'json', '--expect-text', HELLO), layer);
  });

  test('a layer blob body altered in transit: exit 1 naming its digest, nothing printed', async () => {
    proxy.alterNext({ method: 'GET', kind: 'blob', path: new RegExp(`${layer}$`), alter: flipMiddleByte });
    const result = await verify(proxy.host, '--expect-text', HELLO);
    assert.ok(proxy.log.some((entry) => entry.fault === 'altered'), 'the proxy altered nothing');
    assertRefusedNaming(result, layer);
  });
});

describe('verify of a big file runs in flat memory', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-verify-rss-')), ensureCliBuilt()]);
    // Records the process's peak RSS (KiB) when it exits, whatever the exit path.
    await writeFile(
      path.join(workDir, 'report-rss.cjs'),
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.IMGBUILD_TEST_RSS_FILE, String(process.resourceUsage().maxRSS)));\n",
    );
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function sha256OfFile(file: string): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  /** Adds `bytes` of random data, then verifies it with --expect-file; returns verify's peak RSS. */
  async function verifyPeakRss(name: string, bytes: number): Promise<number> {
    const file = path.join(workDir, name);
    await runChecked('sh', ['-c', `head -c ${bytes} /dev/urandom > '${file}'`], { timeoutMs: 300_000 });
    const reference = `${registry.host}/verify/${name}:1`;
    await addFromScratch(name, `/data/${name}`, reference, workDir);
    const rssFile = path.join(workDir, `${name}.rss`);
    const running = await startCli(['verify', reference, '--file', `/data/${name}`, '--expect-file', file], {
      stdout: 'discard',
      timeoutMs: 300_000,
      env: { NODE_OPTIONS: `--require ${path.join(workDir, 'report-rss.cjs')}`, IMGBUILD_TEST_RSS_FILE: rssFile },
    });
    const printed = createHash('sha256');
    running.child.stdout!.on('data', (chunk: Buffer) => printed.update(chunk));
    const result = await running.result;
    assert.equal(result.code, 0, describeResult(result));
    assert.equal(result.stdoutBytes, bytes);
    assert.equal(printed.digest('hex'), await sha256OfFile(file), 'verify printed other bytes than the file');
    await rm(file);
    return Number(await readFile(rssFile, 'utf8')) * 1024;
  }

  test('peak RSS for 1 GiB is within 64 MiB of that for 64 MiB', { timeout: 900_000 }, async (t) => {
    const small = await verifyPeakRss('small.bin', 64 * MiB);
    const big = await verifyPeakRss('big.bin', 1024 * MiB);
    t.diagnostic(`verify peak RSS: 64 MiB file ${(small / MiB).toFixed(0)} MiB, 1 GiB file ${(big / MiB).toFixed(0)} MiB`);
    assert.ok(big - small < 64 * MiB, `peak RSS grew with the file: ${(small / MiB).toFixed(0)} MiB for 64 MiB, ${(big / MiB).toFixed(0)} MiB for 1 GiB`);
  });
});
