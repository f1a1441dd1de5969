// The embedded registry (`imgbuild registry serve`) against the OCI distribution-spec
// conformance suite, built from its Go module by test/tools/build-distribution-conformance.sh:
// pull, push, content discovery and content management must pass with no failed spec.
// IMGBUILD_UPDATE_CONFORMANCE_REPORT=1 copies the suite's report to docs/registry-conformance/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';

let suite: string;
let registry: RunningRegistry;
let workDir: string;

before(async () => {
  suite = execFileSync('bash', [path.join(REPO_ROOT, 'test/tools/build-distribution-conformance.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  })
    .toString()
    .trim();
  registry = await startRegistry({ server: 'imgbuild' });
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-conformance-'));
}, { timeout: 20 * 60_000 });

after(async () => {
  await registry?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface Outcome {
  name: string;
  status: string;
}

function testcases(junit: string): Outcome[] {
  return [...junit.matchAll(/<testcase name="([^"]*)"[^>]*status="([^"]*)"/g)].map((match) => ({ name: match[1]!, status: match[2]! }));
}

test('the OCI conformance suite passes pull, push, content discovery and content management', { timeout: 10 * 60_000 }, async () => {
  const result = await run(suite, ['-test.v'], {
    cwd: workDir,
    timeoutMs: 8 * 60_000,
    env: {
      ...process.env,
      OCI_ROOT_URL: `http://${registry.host}`,
      OCI_NAMESPACE: 'conformance/repo1',
      OCI_CROSSMOUNT_NAMESPACE: 'conformance/repo2',
      OCI_TEST_PULL: '1',
      OCI_TEST_PUSH: '1',
      OCI_TEST_CONTENT_DISCOVERY: '1',
      OCI_TEST_CONTENT_MANAGEMENT: '1',
      // Mounting without `from` finds the blob in any repository of the store.
      OCI_AUTOMATIC_CROSSMOUNT: '1',
      OCI_REPORT_DIR: workDir,
      OCI_HIDE_SKIPPED_WORKFLOWS: '0',
    },
  });
  const junit = await readFile(path.join(workDir, 'junit.xml'), 'utf8').catch(() => '');
  const cases = testcases(junit);
  const failed = cases.filter((c) => c.status !== 'passed' && c.status !== 'skipped');
  assert.deepEqual(failed, [], `failed specs:\n${failed.map((c) => c.name).join('\n')}\n--- suite output ---\n${result.stdout.slice(-20_000)}\n--- registry log ---\n${registry.logs().slice(-5_000)}`);
  assert.equal(result.code, 0, `the suite exited ${result.code}\n${result.stdout.slice(-5_000)}${result.stderr.slice(-5_000)}`);
  for (const workflow of ['Pull', 'Push', 'Content Discovery', 'Content Management']) {
    const passed = cases.filter((c) => c.name.includes(`Conformance Tests ${workflow} `) && c.status === 'passed');
    assert.ok(passed.length >= 5, `only ${passed.length} ${workflow} specs passed`);
  }
  if (process.env.IMGBUILD_UPDATE_CONFORMANCE_REPORT === '1') {
    const docs = path.join(REPO_ROOT, 'docs/registry-conformance');
    await mkdir(docs, { recursive: true });
    for (const file of ['junit.xml', 'report.html']) await copyFile(path.join(workDir, file), path.join(docs, file));
    // Which build of the suite made the report: the module version is in its cache directory's name.
    const version = /distribution-conformance-([^/]+)\//.exec(suite)?.[1] ?? 'unknown';
    await writeFile(path.join(docs, 'suite-version.txt'), `github.com/opencontainers/distribution-spec/conformance@${version}\n`);
  }
});
