// The embedded registry (`imgbuild registry serve`) against the OCI distribution-spec
// conformance suite, built from its Go module by test/tools/build-distribution-conformance.sh:
// pull, push, content discovery and content management must pass with no failed spec.
// The script builds either the current suite (a program, `bin/conformance`, configured by
// OCI_REGISTRY, OCI_API_*, OCI_DATA_*) or, from a proxy that serves only older versions, the
// classic Ginkgo one (`bin/conformance.test`, configured by OCI_TEST_*); both are run here.
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

/** The environment each suite flavour reads: the same workflows, named its way. */
function suiteEnvironment(classic: boolean): NodeJS.ProcessEnv {
  const common = { ...process.env };
  if (classic) {
    return {
      ...common,
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
    };
  }
  return {
    ...common,
    // The spec version the defaults follow: every API and data set of v1.1 is on.
    OCI_VERSION: '1.1',
    OCI_REGISTRY: registry.host,
    OCI_TLS: 'disabled',
    OCI_REPO1: 'conformance/repo1',
    OCI_REPO2: 'conformance/repo2',
    OCI_RESULTS_DIR: workDir,
    OCI_API_PULL: 'true',
    OCI_API_PUSH: 'true',
    OCI_API_TAGS_LIST: 'true',
    OCI_API_REFERRER: 'true',
    OCI_API_TAGS_DELETE: 'true',
    OCI_API_MANIFESTS_DELETE: 'true',
    OCI_API_BLOBS_DELETE: 'true',
    // Mounting without `from` finds the blob in any repository of the store.
    OCI_API_BLOBS_MOUNT_ANONYMOUS: 'true',
    // Off in the suite's v1.1 defaults, but the registry does them: check them too.
    OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
    OCI_API_BLOBS_DIGEST_HEADER: 'true',
    OCI_API_MANIFESTS_DIGEST_HEADER: 'true',
  };
}

// The current suite's per-API results (results.yaml) that make up each workflow.
const WORKFLOW_APIS: Record<string, string[]> = {
  Pull: ['Blob get', 'Blob get range', 'Blob head', 'Manifest get by digest', 'Manifest get by tag', 'Manifest head by digest', 'Manifest head by tag'],
  Push: ['Blob push', 'Blob post only', 'Blob post put', 'Blob chunked', 'Blob streaming', 'Blob mount', 'Blob anonymous mount', 'Manifest put by digest', 'Manifest put by tag', 'Manifest put with subject'],
  'Content Discovery': ['Tag listing', 'Referrers'],
  'Content Management': ['Tag delete', 'Manifest delete', 'Blob delete', 'Blob upload cancel'],
};

/** The `apis:` section of results.yaml: API name to Pass, FAIL, Skip, Disabled... */
function apiResults(yaml: string): Map<string, string> {
  const section = /^apis:\n((?: {2}.+\n)*)/m.exec(yaml)?.[1] ?? '';
  return new Map([...section.matchAll(/^ {2}(.+): (\S+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

test('the OCI conformance suite passes pull, push, content discovery and content management', { timeout: 10 * 60_000 }, async () => {
  const classic = path.basename(suite) === 'conformance.test';
  const result = await run(suite, classic ? ['-test.v'] : [], {
    cwd: workDir,
    timeoutMs: 8 * 60_000,
    env: suiteEnvironment(classic),
  });
  const junit = await readFile(path.join(workDir, 'junit.xml'), 'utf8').catch(() => '');
  const cases = testcases(junit);
  const failed = cases.filter((c) => c.status !== 'passed' && c.status !== 'skipped');
  assert.deepEqual(failed, [], `failed specs:\n${failed.map((c) => c.name).join('\n')}\n--- suite output ---\n${result.stdout.slice(-20_000)}\n--- registry log ---\n${registry.logs().slice(-5_000)}`);
  assert.equal(result.code, 0, `the suite exited ${result.code}\n${result.stdout.slice(-5_000)}${result.stderr.slice(-5_000)}`);
  if (classic) {
    for (const workflow of Object.keys(WORKFLOW_APIS)) {
      const passed = cases.filter((c) => c.name.includes(`Conformance Tests ${workflow} `) && c.status === 'passed');
      assert.ok(passed.length >= 5, `only ${passed.length} ${workflow} specs passed`);
    }
  } else {
    const apis = apiResults(await readFile(path.join(workDir, 'results.yaml'), 'utf8'));
    for (const [workflow, names] of Object.entries(WORKFLOW_APIS)) {
      const notPassed = names.filter((name) => apis.get(name) !== 'Pass').map((name) => `${name}: ${apis.get(name) ?? 'missing'}`);
      assert.deepEqual(notPassed, [], `${workflow} APIs that did not pass`);
    }
  }
  if (process.env.IMGBUILD_UPDATE_CONFORMANCE_REPORT === '1') {
    const docs = path.join(REPO_ROOT, 'docs/registry-conformance');
    await mkdir(docs, { recursive: true });
    // The current suite's junit.xml and report.html hold every request and answer (3 MB): its
    // per-API results.yaml is the report kept; the classic suite has only the other two.
    const kept = classic ? ['junit.xml', 'report.html'] : ['results.yaml'];
    for (const file of ['junit.xml', 'report.html', 'results.yaml']) await rm(path.join(docs, file), { force: true });
    for (const file of kept) await copyFile(path.join(workDir, file), path.join(docs, file));
    // Which build of the suite made the report: the module version is in its cache directory's name.
    const version = /distribution-conformance-([^/]+)\//.exec(suite)?.[1] ?? 'unknown';
    await writeFile(path.join(docs, 'suite-version.txt'), `github.com/opencontainers/distribution-spec/conformance@${version}\n`);
  }
});
