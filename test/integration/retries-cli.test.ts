// The CLI's own retry policy, end to end: `imgbuild add` through a fault proxy in front of a
// real registry that answers 408 (with and without Retry-After), 503, or cuts the connection
// of a GET or a HEAD before answering. The command must still succeed, and the proxy's log
// must show the retries (what was retried, how often), never inferred from timing.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy, type ProxiedRequest, type RequestMatcher, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { tagDigest } from '../helpers/tools.js';

/** The CLI's default: this many attempts of one request before it gives up (DEFAULT_RETRY in src/registry/http.ts). */
const DEFAULT_ATTEMPTS = 5;
const BASE_MANIFEST_GET: RequestMatcher = { method: 'GET', kind: 'manifest', path: /\/base\/app\/manifests\/1$/ };

function describeLog(log: readonly ProxiedRequest[]): string {
  return log.map((entry) => `${entry.method} ${entry.url.split('?')[0]} -> ${entry.status}${entry.fault ? ` [${entry.fault}]` : ''}`).join('\n');
}

describe('imgbuild add retries with its default policy (real registry behind a fault proxy)', () => {
  let registry: RunningRegistry;
  let proxy: RunningFaultProxy;
  let workDir: string;
  let run = 0;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-retries-test-')), ensureCliBuilt()]);
    proxy = await startFaultProxy(registry.host);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushBaseImage(registry, 'base/app:1');
  });
  afterEach(() => proxy.reset());
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Runs add through the proxy to a fresh tag; returns the result and the tag written. */
  async function addThroughProxy(): Promise<{ result: CliResult; tag: string }> {
    run += 1;
    const tag = `dest/app:${run}`;
    const result = await runCli(['add', '--from', `${proxy.host}/base/app:1`, '--add', 'hello.txt:/opt/hello.txt', '--to', `${proxy.host}/${tag}`], { cwd: workDir });
    return { result, tag };
  }

  /** Exit 0, and the tag holds the digest the command printed. */
  async function assertPushed({ result, tag }: { result: CliResult; tag: string }): Promise<void> {
    assert.equal(result.code, 0, `${describeResult(result)}\n--- proxy log ---\n${describeLog(proxy.log)}`);
    const printed = /@(sha256:[0-9a-f]{64})$/m.exec(result.stdout)?.[1];
    assert.ok(printed, describeResult(result));
    assert.equal(await tagDigest(registry, tag), printed);
  }

  test('408 without Retry-After on the base manifest: retried, and the push succeeds', async () => {
    proxy.failNext({ ...BASE_MANIFEST_GET, status: 408, times: 2 });
    await assertPushed(await addThroughProxy());
    assert.deepEqual(proxy.matching(BASE_MANIFEST_GET).map((entry) => entry.status), [408, 408, 200], describeLog(proxy.log));
  });

  test('408 with Retry-After: 2 on the base manifest: the retry waits as asked', async () => {
    proxy.failNext({ ...BASE_MANIFEST_GET, status: 408, headers: { 'retry-after': '2' } });
    await assertPushed(await addThroughProxy());
    const gets = proxy.matching(BASE_MANIFEST_GET);
    assert.deepEqual(gets.map((entry) => entry.status), [408, 200], describeLog(proxy.log));
    // The default policy's own first delay is at most 250 ms: only Retry-After explains 2 s.
    const gap = gets[1]!.receivedAt - gets[0]!.receivedAt;
    assert.ok(gap >= 1900, `retried ${gap} ms after the 408; Retry-After asked for 2000`);
  });

  test('a connection cut before any answer to the base manifest GET: retried', async () => {
    proxy.resetNext({ ...BASE_MANIFEST_GET, afterBytes: 0 });
    await assertPushed(await addThroughProxy());
    const gets = proxy.matching(BASE_MANIFEST_GET);
    assert.deepEqual(gets.map((entry) => entry.fault ?? entry.status), ['reset', 200], describeLog(proxy.log));
  });

  test('a connection cut before any answer to the base config GET: retried', async () => {
    const configGet: RequestMatcher = { method: 'GET', kind: 'blob' };
    proxy.resetNext({ ...configGet, afterBytes: 0 });
    await assertPushed(await addThroughProxy());
    const gets = proxy.matching(configGet);
    assert.deepEqual(gets.slice(0, 2).map((entry) => entry.fault ?? entry.status), ['reset', 200], describeLog(proxy.log));
    assert.equal(gets[0]!.url, gets[1]!.url, 'the retry asked for another blob');
  });

  test('a connection cut before any answer to a blob HEAD: retried', async () => {
    const blobHead: RequestMatcher = { method: 'HEAD', kind: 'blob' };
    proxy.resetNext({ ...blobHead, afterBytes: 0 });
    await assertPushed(await addThroughProxy());
    const heads = proxy.matching(blobHead);
    const cut = heads.findIndex((entry) => entry.fault === 'reset');
    assert.equal(cut, 0, describeLog(proxy.log));
    assert.ok(
      heads.slice(1).some((entry) => entry.url === heads[0]!.url && entry.status !== 0),
      `the HEAD that was cut was not asked again:\n${describeLog(proxy.log)}`,
    );
  });

  test('the first requests of the run all fail with 503: the command still succeeds', async () => {
    proxy.failNext({ status: 503, times: 3 });
    await assertPushed(await addThroughProxy());
    assert.deepEqual(proxy.log.slice(0, 3).map((entry) => entry.status), [503, 503, 503], describeLog(proxy.log));
    // Every request that got a 503 (the ping aside, whose answer is not retried) was asked again and answered.
    for (const failed of proxy.log.slice(0, 3).filter((entry) => entry.kind !== 'api-root')) {
      const later = proxy.log.slice(proxy.log.indexOf(failed) + 1);
      assert.ok(later.some((entry) => entry.method === failed.method && entry.url === failed.url && entry.status < 500), `${failed.method} ${failed.url} was not retried:\n${describeLog(proxy.log)}`);
    }
  });

  test(`one request failing ${DEFAULT_ATTEMPTS - 1} times is retried to success; failing ${DEFAULT_ATTEMPTS} times ends the command, tag untouched`, async () => {
    proxy.failNext({ ...BASE_MANIFEST_GET, status: 503, times: DEFAULT_ATTEMPTS - 1 });
    await assertPushed(await addThroughProxy());
    assert.equal(proxy.count(BASE_MANIFEST_GET), DEFAULT_ATTEMPTS, describeLog(proxy.log));

    proxy.reset();
    proxy.failNext({ ...BASE_MANIFEST_GET, status: 503, times: DEFAULT_ATTEMPTS });
    const { result, tag } = await addThroughProxy();
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /HTTP 503/);
    assert.equal(proxy.count(BASE_MANIFEST_GET), DEFAULT_ATTEMPTS, `gave up after other than ${DEFAULT_ATTEMPTS} attempts:\n${describeLog(proxy.log)}`);
    assert.equal(proxy.count({ method: 'PUT', kind: 'manifest' }), 0);
    assert.equal(await tagDigest(registry, tag), undefined);
  });
});
