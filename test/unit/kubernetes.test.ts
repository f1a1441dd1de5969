import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { resolveCluster } from '../../src/kubernetes/config.js';
import { collectContextDirectory } from '../../src/kubernetes/context-files.js';
import { diagnoseFailure, diagnoseStuck } from '../../src/kubernetes/diagnose.js';

function kubeconfig(dir: string, file: string, body: { contexts: [name: string, cluster: string, namespace?: string][]; clusters: [name: string, server: string][]; current?: string }): string {
  const lines = ['apiVersion: v1', 'kind: Config', 'clusters:'];
  for (const [name, server] of body.clusters) lines.push(`- name: ${name}`, '  cluster:', `    server: ${server}`);
  lines.push('users:', '- name: u', '  user:', '    token: t');
  lines.push('contexts:');
  for (const [name, cluster, namespace] of body.contexts) lines.push(`- name: ${name}`, '  context:', `    cluster: ${cluster}`, '    user: u', ...(namespace ? [`    namespace: ${namespace}`] : []));
  if (body.current) lines.push(`current-context: ${body.current}`);
  const full = path.join(dir, file);
  writeFileSync(full, `${lines.join('\n')}\n`);
  return full;
}

describe('kubeconfig resolution, as kubectl', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'imgbuild-kubeconfig-'));
  const a = kubeconfig(dir, 'a', { clusters: [['one', 'https://one:6443']], contexts: [['dev', 'one', 'team-a']], current: 'dev' });
  const b = kubeconfig(dir, 'b', { clusters: [['one', 'https://shadowed:6443'], ['two', 'https://two:6443']], contexts: [['dev', 'two'], ['prod', 'two']], current: 'prod' });
  const emptyHome = mkdtempSync(path.join(tmpdir(), 'imgbuild-home-'));

  test('KUBECONFIG is a merged list: the first file to name a cluster, context or current-context wins', () => {
    const resolved = resolveCluster({ env: { KUBECONFIG: `${a}${path.delimiter}${path.join(dir, 'missing')}${path.delimiter}${b}`, HOME: emptyHome } });
    assert.equal(resolved.contextName, 'dev');
    assert.equal(resolved.server, 'https://one:6443');
    assert.equal(resolved.namespace, 'team-a');
    const prod = resolveCluster({ env: { KUBECONFIG: `${a}${path.delimiter}${b}`, HOME: emptyHome }, context: 'prod' });
    assert.equal(prod.server, 'https://two:6443');
    assert.equal(prod.namespace, 'default');
  });

  test('--kubeconfig reads only that file; --namespace wins over the context', () => {
    const resolved = resolveCluster({ kubeconfig: b, namespace: 'ns', env: { KUBECONFIG: a, HOME: emptyHome } });
    assert.equal(resolved.contextName, 'prod');
    assert.equal(resolved.namespace, 'ns');
    assert.throws(() => resolveCluster({ kubeconfig: b, context: 'nope', env: {} }), /context "nope" is not in the kubeconfig.*/);
  });

  test('~/.kube/config when nothing else is set', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'imgbuild-home-'));
    mkdirSync(path.join(home, '.kube'));
    kubeconfig(path.join(home, '.kube'), 'config', { clusters: [['one', 'https://home:6443']], contexts: [['c', 'one']], current: 'c' });
    assert.equal(resolveCluster({ env: { HOME: home } }).server, 'https://home:6443');
  });

  test("in a pod: the service account's token, CA, API address and namespace", () => {
    const root = mkdtempSync(path.join(tmpdir(), 'imgbuild-sa-'));
    const sa = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(path.join(sa, 'token'), 'tok');
    writeFileSync(path.join(sa, 'ca.crt'), 'ca');
    writeFileSync(path.join(sa, 'namespace'), 'builds\n');
    const resolved = resolveCluster({ env: { HOME: emptyHome, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountRoot: root });
    assert.equal(resolved.server, 'https://10.96.0.1:443');
    assert.equal(resolved.namespace, 'builds');
    assert.equal(resolved.source, 'in-cluster service account');
  });

  test('no configuration at all is a clear error naming the fixes', () => {
    assert.throws(() => resolveCluster({ env: { HOME: emptyHome } }), /no Kubernetes cluster configured/);
    assert.throws(() => resolveCluster({ env: { KUBECONFIG: path.join(dir, 'missing'), HOME: emptyHome } }), /names no existing file/);
  });
});

describe('.dockerignore', () => {
  test('the walk lists parents first and skips ignored entries', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'imgbuild-ctx-'));
    mkdirSync(path.join(root, 'src/nested'), { recursive: true });
    mkdirSync(path.join(root, 'node_modules'));
    writeFileSync(path.join(root, 'Dockerfile'), 'FROM x\n');
    writeFileSync(path.join(root, 'src/nested/a.txt'), 'a');
    writeFileSync(path.join(root, 'node_modules/m.js'), 'm');
    writeFileSync(path.join(root, 'debug.log'), 'l');
    writeFileSync(path.join(root, '.dockerignore'), 'node_modules\n*.log\n');
    symlinkSync('src', path.join(root, 'link'));
    const entries = await collectContextDirectory(root);
    assert.deepEqual(
      entries.map((entry) => `${entry.type}:${entry.path}`),
      ['file:.dockerignore', 'file:Dockerfile', 'symlink:link', 'directory:src', 'directory:src/nested', 'file:src/nested/a.txt'],
    );
    assert.equal((await collectContextDirectory(root, { dockerignore: false })).some((entry) => entry.path === 'debug.log'), true);
    // A `!` line re-includes a file below an ignored directory, which then travels with its parent.
    writeFileSync(path.join(root, '.dockerignore'), 'node_modules\n*.log\n!node_modules/m.js\n');
    assert.deepEqual(
      (await collectContextDirectory(root)).filter((entry) => entry.path.startsWith('node_modules')).map((entry) => `${entry.type}:${entry.path}`),
      ['directory:node_modules', 'file:node_modules/m.js'],
    );
  });

  test('<Dockerfile>.dockerignore wins over .dockerignore, and its text travels as .dockerignore for Kaniko', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'imgbuild-ctx-'));
    mkdirSync(path.join(root, 'build'));
    writeFileSync(path.join(root, 'build/app.Dockerfile'), 'FROM x\n');
    writeFileSync(path.join(root, 'build/app.Dockerfile.dockerignore'), 'secret.txt\n');
    writeFileSync(path.join(root, '.dockerignore'), 'notes.txt\n');
    writeFileSync(path.join(root, 'secret.txt'), 's');
    writeFileSync(path.join(root, 'notes.txt'), 'n');
    const { collectBuildContext } = await import('../../src/kubernetes/build-inputs.js');
    const context = await collectBuildContext({ dockerfile: { path: 'build/app.Dockerfile' }, contextDir: root });
    const paths = context.files.map((entry) => entry.path);
    assert.ok(paths.includes('notes.txt'), paths.join(' '));
    assert.ok(!paths.includes('secret.txt'), paths.join(' '));
    const sent = context.files.filter((entry) => entry.path === '.dockerignore');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.content?.toString(), 'secret.txt\n');
    // Without a Dockerfile of its own beside it, the context's .dockerignore applies and travels as it is.
    const plain = await collectBuildContext({ dockerfile: { text: 'FROM x\n' }, contextDir: root });
    assert.ok(plain.files.some((entry) => entry.path === 'secret.txt'));
    assert.ok(!plain.files.some((entry) => entry.path === 'notes.txt'));
    assert.equal(plain.files.find((entry) => entry.path === '.dockerignore')?.source, path.join(root, '.dockerignore'));
  });
});

const imageFlags = { kaniko: '--kaniko-image', 'prepare-context': '--init-image' };

function pod(status: V1Pod['status']): V1Pod {
  return { metadata: { name: 'p' }, status };
}

describe('diagnosis', () => {
  test('an image the node cannot pull names the image and the flag', () => {
    const diagnosis = diagnoseStuck(
      { events: [], pod: pod({ phase: 'Pending', containerStatuses: [{ name: 'kaniko', image: 'bad/kaniko:0', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'not found' } } }] }) },
      { imageFlags },
    );
    assert.match(diagnosis!.message, /cannot pull bad\/kaniko:0 for container kaniko \(ImagePullBackOff/);
    assert.match(diagnosis!.hint, /--kaniko-image/);
  });

  test('a Pod Security refusal names the level Kaniko needs and the direct engine', () => {
    const diagnosis = diagnoseStuck(
      {
        events: [{ reason: 'FailedCreate', message: 'Error creating: pods "imgbuild-x-abc" is forbidden: violates PodSecurity "restricted:latest": unrestricted capabilities', involvedObject: {}, metadata: {} }],
      },
      { imageFlags },
    );
    assert.match(diagnosis!.message, /Pod Security admission \(restricted\) refused the build pod: violates PodSecurity/);
    assert.match(diagnosis!.hint, /baseline/);
    assert.match(diagnosis!.hint, /direct engine/);
    assert.match(diagnosis!.hint, /--in-cluster/);
  });

  test('nothing is diagnosed while a healthy pod runs', () => {
    assert.equal(diagnoseStuck({ events: [], pod: pod({ phase: 'Running', containerStatuses: [{ name: 'kaniko', image: 'k', imageID: 'k', ready: true, restartCount: 0, state: { running: {} } }] }) }, { imageFlags }), undefined);
  });

  test('a Secret that does not exist (--registry-secret) stops the build at once', () => {
    const diagnosis = diagnoseStuck(
      { events: [{ reason: 'FailedMount', message: 'MountVolume.SetUp failed for volume "registry-credentials" : secret "nope" not found', involvedObject: {}, metadata: {} }] },
      { imageFlags },
    );
    assert.match(diagnosis!.message, /secret "nope" does not exist/);
    assert.match(diagnosis!.hint, /--registry-secret/);
  });

  test('unschedulable, config errors and the deadline', () => {
    assert.match(diagnoseStuck({ events: [], pod: pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes: Insufficient memory' }] }) }, { imageFlags })!.hint, /--memory/);
    assert.match(diagnoseStuck({ events: [], pod: pod({ containerStatuses: [{ name: 'kaniko', image: 'k', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "s" not found' } } }] }) }, { imageFlags })!.hint, /--registry-secret/);
    const deadline = diagnoseStuck({ events: [], job: { status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] } } }, { imageFlags, timeoutSeconds: 30 });
    assert.match(deadline!.message, /within 30 seconds/);
    assert.match(deadline!.hint, /--timeout/);
  });

  const failed = (reason: string | undefined, exitCode = 1): V1Pod =>
    pod({ phase: 'Failed', containerStatuses: [{ name: 'kaniko', image: 'k', imageID: 'k', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } }] });

  test('a builder killed at the deadline is DeadlineExceeded even before the Job says so', () => {
    const job = { spec: { template: {} }, status: { startTime: new Date('2026-01-01T00:00:00Z') } };
    const killed = { events: [], job, pod: failed('Error', 2), logTail: ['INFO running'] };
    assert.match(diagnoseFailure({ ...killed, observedAt: new Date('2026-01-01T00:00:16Z') }, { imageFlags, timeoutSeconds: 15 }).message, /within 15 seconds \(DeadlineExceeded\)/);
    assert.match(diagnoseFailure({ ...killed, observedAt: new Date('2026-01-01T00:00:05Z') }, { imageFlags, timeoutSeconds: 15 }).message, /exited with code 2/);
  });

  test('OOMKilled points at --memory, eviction at ephemeral storage', () => {
    assert.match(diagnoseFailure({ events: [], pod: failed('OOMKilled', 137) }, { imageFlags }).hint, /--memory/);
    assert.match(diagnoseFailure({ events: [], pod: failed('Error', 137) }, { imageFlags, memoryLimit: '8Mi' }).message, /ran out of memory \(killed with exit 137 under --memory 8Mi/);
    assert.doesNotMatch(diagnoseFailure({ events: [], pod: failed('Error', 137) }, { imageFlags }).message, /out of memory/);
    assert.match(diagnoseFailure({ events: [], pod: { status: { phase: 'Failed', reason: 'Evicted', message: 'low on resource: ephemeral-storage' } } }, { imageFlags }).hint, /ephemeral storage/);
  });

  test("Kaniko's own errors from its log: x509, credentials, missing base, non-root chown", () => {
    const cases: [string, RegExp, boolean?][] = [
      ['error building image: x509: certificate signed by unknown authority', /--ca-file|--insecure/],
      ['error pushing image: UNAUTHORIZED: authentication required', /docker login|--registry-secret/],
      ['error building image: unable to complete operation after 0 attempts: MANIFEST_UNKNOWN: manifest unknown', /FROM line/],
      ['error building image: chown /tmp/kaniko: operation not permitted', /direct engine/, true],
    ];
    for (const [line, hint, nonRoot] of cases) {
      const diagnosis = diagnoseFailure({ events: [], pod: failed('Error'), logTail: ['INFO starting', line] }, { imageFlags, nonRoot });
      assert.match(diagnosis.hint, hint, line);
      assert.ok(diagnosis.message.includes(line.replace(/^.*?error building image/, 'error building image')) || diagnosis.message.includes(line), diagnosis.message);
    }
  });
});

describe("Kaniko's error line", () => {
  test('the explicit error wins over the usage text Kaniko prints after it', async () => {
    const { lastErrorLine } = await import('../../src/kubernetes/diagnose.js');
    const log = ['Error: chown /tmp/kaniko: operation not permitted', 'Usage:', 'Flags:', '  -v, --verbosity string   Log level (trace, debug, info, warn, error, fatal, panic) (default "info")', ''];
    assert.equal(lastErrorLine(log), 'Error: chown /tmp/kaniko: operation not permitted');
    const diagnosis = diagnoseFailure({ events: [], pod: pod({ phase: 'Failed', containerStatuses: [{ name: 'kaniko', image: 'k', imageID: 'k', ready: false, restartCount: 0, state: { terminated: { exitCode: 1 } } }] }), logTail: log }, { imageFlags, nonRoot: true });
    assert.match(diagnosis.message, /cannot build as a non-root user: Error: chown \/tmp\/kaniko: operation not permitted/);
    assert.match(diagnosis.hint, /direct engine/);
  });
});
