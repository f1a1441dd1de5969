// Interrupting a copy between registries (the base on one registry, the result pushed to another):
// Ctrl-C (SIGINT) and SIGTERM to the CLI, and an AbortSignal given to addToImage. Each must stop
// the work, close the destination's upload session, leave no temporary file, and not move the tag.
//
// The copy is caught in the act, not by timing: the destination is behind a proxy that holds the
// second chunk of the copied base layer (never answering it), so the interrupt lands while the
// copied blob sits in the temporary directory and its upload session is open. The test first sees
// the copy's file there (the positive control), then interrupts, then looks again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { addToImage } from '../../src/add.js';
import { AbortedError } from '../../src/errors.js';
import { inspectImage } from '../../src/inspect.js';
import { readFileFromImage } from '../../src/verify.js';
import { parseAddSpec } from '../../src/image/layer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { describeResult, ensureCliBuilt, startCli, type RunningCli } from '../helpers/cli.js';
import { startFaultProxy, type ProxiedRequest, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { skopeoInspect } from '../helpers/tools.js';

const MiB = 1024 * 1024;
// Base64 of random bytes: gzip keeps ~3/4 of it, so the base layer is ~48 MiB, more than one
// 32 MiB chunk (the CLI's default), and its upload has a second chunk for the proxy to hold.
const BIG_BASE_FILE_CHARS = 64 * MiB;
const WAIT_MS = 120_000;
const BASE = 'big/base:1';

/** Every file under `dir`, relative, with its size. */
async function filesUnder(dir: string): Promise<Array<{ file: string; size: number }>> {
  let entries: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      entries = await readdir(dir, { recursive: true });
      break;
    } catch (error) {
      // A directory the CLI removed while it was being listed (a small blob's copy): look again.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 100) throw error;
    }
  }
  const files: Array<{ file: string; size: number }> = [];
  for (const entry of entries) {
    const info = await stat(path.join(dir, entry)).catch(() => undefined);
    if (info?.isFile()) files.push({ file: entry, size: info.size });
  }
  return files;
}

/** The upload session id in an upload URL (`/v2/<repo>/blobs/uploads/<id>?...`). */
function sessionOf(entry: ProxiedRequest): string {
  return /\/blobs\/uploads\/([^/?]+)/.exec(entry.url)?.[1] ?? '';
}

describe('an interrupted copy between registries', () => {
  let source: RunningRegistry;
  let destination: RunningRegistry;
  let proxy: RunningFaultProxy;
  let workDir: string;
  let release: () => void = () => {};

  before(async () => {
    [source, destination, workDir] = await Promise.all([startRegistry(), startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-interrupt-test-')), ensureCliBuilt()]);
    proxy = await startFaultProxy(destination.host);
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    await pushBaseImage(source, BASE, { extraFiles: { '/data/big.txt': randomBytes((BIG_BASE_FILE_CHARS * 3) / 4).toString('base64') } });
  });
  afterEach(() => {
    release();
    proxy.reset();
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([source?.stop(), destination?.stop()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Holds the second chunk sent to `repository` unanswered until the test ends. */
  function holdSecondChunk(repository: string): void {
    const held = new Promise<void>((resolve) => (release = resolve));
    proxy.failNext({ kind: 'upload-chunk', path: new RegExp(`^/v2/${repository}/`), after: 1, status: 503, until: held });
  }

  /**
   * Waits until the copy is in the act: its second chunk held by the proxy, and the copied blob a
   * file in `tmp`. Returns that file (the positive control: the temporary directory did hold it).
   */
  async function waitForCopyInFlight(repository: string, tmp: string, ended: () => boolean): Promise<{ file: string; size: number }> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const held = proxy.matching({ kind: 'upload-chunk', path: new RegExp(`^/v2/${repository}/`) }).length >= 2;
      const copy = (await filesUnder(tmp)).find((entry) => /(^|\/)imgbuild-copy-[^/]+\/blob$/.test(entry.file) && entry.size > 0);
      if (held && copy) return copy;
      assert.ok(!ended(), 'the add ended before its copy was caught in flight');
      assert.ok(Date.now() < deadline, `no copy in flight to ${repository} within ${WAIT_MS} ms:\n${JSON.stringify(proxy.log.map((e) => `${e.method} ${e.kind} ${e.status}`))}`);
      await sleep(20);
    }
  }

  /** The destination's sessions: each one that got bytes was closed (DELETE) by the client, none completed. */
  function assertSessionsClosed(repository: string): void {
    const chunks = proxy.matching({ kind: 'upload-chunk', path: new RegExp(`^/v2/${repository}/`) });
    const sessions = new Set(chunks.map(sessionOf));
    const cancelled = new Set(proxy.matching({ kind: 'upload-cancel', path: new RegExp(`^/v2/${repository}/`) }).filter((e) => e.status === 204).map(sessionOf));
    assert.ok(sessions.size > 0);
    for (const session of sessions) assert.ok(cancelled.has(session), `upload session ${session} was left open: ${JSON.stringify(proxy.log.map((e) => `${e.method} ${e.kind} ${e.status}`))}`);
    const completed = proxy.matching({ kind: 'upload-complete', path: new RegExp(`^/v2/${repository}/`) }).map(sessionOf);
    assert.deepEqual(completed.filter((session) => sessions.has(session)), [], 'the interrupted upload was completed');
  }

  for (const [signal, exitCode] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    test(`${signal} to the CLI: exit ${exitCode}, the copy's file gone from TMPDIR, the session closed, the tag unchanged`, async () => {
      const repository = `interrupted/${signal.toLowerCase()}`;
      const old = await pushBaseImage(destination, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
      const scratch = await mkdtemp(path.join(tmpdir(), 'imgbuild-interrupt-tmp-'));
      let cli: RunningCli | undefined;
      try {
        holdSecondChunk(repository);
        cli = await startCli(
          ['add', '--from', `${source.host}/${BASE}`, '--add', 'hello.txt:/hello.txt', '--to', `${proxy.host}/${repository}:current`, '-o', 'json'],
          { cwd: workDir, env: { TMPDIR: scratch }, timeoutMs: WAIT_MS },
        );
        let ended = false;
        cli.result.then(() => (ended = true), () => (ended = true));
        const copy = await waitForCopyInFlight(repository, scratch, () => ended);
        assert.ok(copy.size > 0, 'positive control: the copied blob was in the temporary directory before the signal');

        cli.child.kill(signal);
        const result = await cli.result;
        assert.equal(result.code, exitCode, describeResult(result));
        assert.equal(result.stdout, '');
        assert.match(result.stderr, new RegExp(`interrupted \\(${signal}\\)`));
        assert.doesNotMatch(result.stderr, /internal error/);
        assert.deepEqual(await filesUnder(scratch), [], `left behind in TMPDIR:\n${describeResult(result)}`);
        assert.deepEqual(await readdir(scratch), []);
        assertSessionsClosed(repository);
        assert.equal((await skopeoInspect(`${repository}:current`, destination, 'summary')).Digest, old.digest);
      } finally {
        cli?.child.kill('SIGKILL');
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }

  // Cleanup that cannot finish (the registry never answers the DELETE) must not hold the command:
  // a second Ctrl-C ends it at once, and without one it ends after its cleanup limit. Either way
  // the work dir, and the copy in it, is removed.
  for (const second of [true, false]) {
    test(`SIGINT while the registry never answers the DELETE: ${second ? 'a second SIGINT exits at once' : 'the CLI exits after its cleanup limit'}, TMPDIR left empty`, async () => {
      const repository = `stuck/${second ? 'twice' : 'once'}`;
      const old = await pushBaseImage(destination, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
      const scratch = await mkdtemp(path.join(tmpdir(), 'imgbuild-interrupt-tmp-'));
      let cli: RunningCli | undefined;
      try {
        holdSecondChunk(repository);
        proxy.failNext({ kind: 'upload-cancel', path: new RegExp(`^/v2/${repository}/`), status: 503, until: new Promise(() => {}) });
        cli = await startCli(
          ['add', '--from', `${source.host}/${BASE}`, '--add', 'hello.txt:/hello.txt', '--to', `${proxy.host}/${repository}:current`],
          { cwd: workDir, env: { TMPDIR: scratch }, timeoutMs: WAIT_MS },
        );
        let ended = false;
        cli.result.then(() => (ended = true), () => (ended = true));
        await waitForCopyInFlight(repository, scratch, () => ended);
        cli.child.kill('SIGINT');
        while (proxy.count({ kind: 'upload-cancel', path: new RegExp(`^/v2/${repository}/`) }) === 0) {
          assert.ok(!ended, 'the CLI ended before it tried to close the upload session');
          await sleep(10);
        }
        if (second) cli.child.kill('SIGINT');
        const result = await cli.result;
        assert.equal(result.code, 130, describeResult(result));
        assert.match(result.stderr, second ? /interrupted again \(SIGINT\): exiting without waiting/ : /cleanup did not finish within \d+ s; exiting/);
        assert.deepEqual(await readdir(scratch), [], `left behind in TMPDIR:\n${describeResult(result)}`);
        assert.equal((await skopeoInspect(`${repository}:current`, destination, 'summary')).Digest, old.digest);
      } finally {
        cli?.child.kill('SIGKILL');
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }

  test('addToImage with an AbortSignal: rejects with AbortedError after closing the session and removing the copy', async () => {
    const repository = 'aborted/library';
    const old = await pushBaseImage(destination, `${repository}:current`, { extraFiles: { '/etc/old': 'old\n' } });
    const scratch = await mkdtemp(path.join(tmpdir(), 'imgbuild-abort-tmp-'));
    const clients = new Map<string, RegistryClient>();
    const clientFor = (host: string) => {
      if (!clients.has(host)) clients.set(host, new RegistryClient(host, { monolithicUploadLimit: 4 * MiB, chunkSize: 8 * MiB }));
      return clients.get(host)!;
    };
    try {
      holdSecondChunk(repository);
      const controller = new AbortController();
      let ended = false;
      const adding = addToImage({
        from: `${source.host}/${BASE}`,
        to: `${proxy.host}/${repository}:current`,
        adds: [parseAddSpec(`${path.join(workDir, 'hello.txt')}:/hello.txt`)],
        clientFor,
        tmpDir: scratch,
        signal: controller.signal,
      });
      adding.then(() => (ended = true), () => (ended = true));
      const copy = await waitForCopyInFlight(repository, scratch, () => ended);
      assert.ok(copy.size > 0, 'positive control: the copied blob was in tmpDir before the abort');

      controller.abort();
      await assert.rejects(adding, (error: unknown) => {
        assert.ok(error instanceof AbortedError, `not an AbortedError: ${(error as Error)?.stack}`);
        assert.equal(error.name, 'AbortError');
        assert.match(error.message, /aborted/);
        return true;
      });
      // No waiting: the promise settles only after the cleanup.
      assert.deepEqual(await readdir(scratch), []);
      assertSessionsClosed(repository);
      assert.equal((await skopeoInspect(`${repository}:current`, destination, 'summary')).Digest, old.digest);
    } finally {
      await Promise.all([...clients.values()].map((client) => client.close()));
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('addToImage aborted during a one-request upload: the session it opened is closed too', { timeout: WAIT_MS }, async () => {
    const repository = 'aborted/monolithic';
    await pushBaseImage(destination, 'small/base:1');
    const held = new Promise<void>((resolve) => (release = resolve));
    proxy.failNext({ kind: 'upload-complete', path: new RegExp(`^/v2/${repository}/`), status: 503, until: held });
    const client = new RegistryClient(proxy.host);
    try {
      const controller = new AbortController();
      const adding = addToImage({
        from: `${proxy.host}/small/base:1`,
        to: `${proxy.host}/${repository}:1`,
        adds: [parseAddSpec(`${path.join(workDir, 'hello.txt')}:/hello.txt`)],
        clientFor: () => client,
        concurrency: 1,
        signal: controller.signal,
      });
      adding.catch(() => {});
      while (proxy.count({ kind: 'upload-complete', path: new RegExp(`^/v2/${repository}/`) }) === 0) await sleep(10);
      controller.abort();
      await assert.rejects(adding, AbortedError);
      const [cut] = proxy.matching({ kind: 'upload-complete', path: new RegExp(`^/v2/${repository}/`) });
      const deleted = proxy.matching({ kind: 'upload-cancel', path: new RegExp(`^/v2/${repository}/`) }).filter((entry) => entry.status === 204).map(sessionOf);
      assert.deepEqual(deleted, [sessionOf(cut!)]);
    } finally {
      await client.close();
    }
  });

  // A request the registry never answers (held by the proxy) is what only an abort can end.
  for (const [what, kind, read] of [
    ['inspectImage', 'manifest', (signal: AbortSignal, clientFor: (host: string) => RegistryClient) => inspectImage(`${proxy.host}/small/base:1`, clientFor, { signal })],
    ['readFileFromImage', 'blob', (signal: AbortSignal, clientFor: (host: string) => RegistryClient) => readFileFromImage(`${proxy.host}/small/base:1`, '/etc/passwd', clientFor, undefined, { signal })],
  ] as const) {
    test(`${what} with an AbortSignal: a request left unanswered is cut and the call rejects with AbortedError`, { timeout: WAIT_MS }, async () => {
      await pushBaseImage(destination, 'small/base:1');
      const held = new Promise<void>((resolve) => (release = resolve));
      proxy.failNext({ method: 'GET', kind, status: 503, until: held });
      const client = new RegistryClient(proxy.host);
      try {
        const controller = new AbortController();
        const reading = read(controller.signal, () => client);
        reading.catch(() => {});
        while (proxy.count({ method: 'GET', kind }) === 0) await sleep(10);
        controller.abort();
        await assert.rejects(reading, AbortedError);
      } finally {
        await client.close();
      }
    });
  }
});
