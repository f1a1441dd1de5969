// The Kaniko engine's command line without a cluster: --dry-run output (what would be applied,
// credentials never in it), the kubeconfig namespace, and flag errors. The cluster runs are in
// test/cluster/kaniko-*.sh on the testbed.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { describeResult, runCli } from '../helpers/cli.js';

const work = mkdtempSync(path.join(tmpdir(), 'imgbuild-kaniko-cli-'));
writeFileSync(path.join(work, 'hello.txt'), 'built-by: kaniko\n');
writeFileSync(path.join(work, 'blob.bin'), Buffer.from([0, 1, 2, 255]));
const docker = path.join(work, 'docker');
const password = 'pa55-never-printed';
const auth = Buffer.from(`builder:${password}`).toString('base64');
writeFileSync(path.join(work, 'kubeconfig'), [
  'apiVersion: v1', 'kind: Config',
  'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
  'users: [{name: u, user: {token: t}}]',
  'contexts: [{name: ctx, context: {cluster: c, user: u, namespace: from-context}}]',
  'current-context: ctx', '',
].join('\n'));

const seedArgs = ['add', '--engine', 'kaniko', '--dry-run', '--insecure', '--from', 'reg.example:5000/ones/plugin-host-node:v6.33.1',
  '--add', 'hello.txt:/opt/app/hello.txt', '--add', 'blob.bin:/opt/app/', '--user', 'root', '--workdir', '/opt/app', '--to', 'reg.example:5000/new-kaniko-image:latest'];

describe('add --engine kaniko --dry-run', () => {
  test('prints the ConfigMap and Job it would apply, in the context namespace, with no credential material', async () => {
    mkdirSync(docker, { recursive: true });
    writeFileSync(path.join(docker, 'config.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth } } }));
    const result = await runCli(seedArgs, { cwd: work, env: { KUBECONFIG: path.join(work, 'kubeconfig'), DOCKER_CONFIG: docker } });
    assert.equal(result.code, 0, describeResult(result));
    assert.ok(!result.stdout.includes(password) && !result.stdout.includes(auth) && !result.stderr.includes(password), 'credential material printed');
    const documents = parseAllDocuments(result.stdout).map((document) => document.toJS()).filter(Boolean);
    assert.deepEqual(documents.map((document) => document.kind), ['ConfigMap', 'ConfigMap', 'Job']);
    for (const document of documents) assert.equal(document.metadata.namespace, 'from-context');
    assert.match(result.stdout, /# Secret imgbuild-[0-9a-f]+-credentials \(kubernetes.io\/dockerconfigjson\)/);
    const [owner, configMap, job] = documents;
    // Created first: the others name it as their owner when they are created (see renderOwnerConfigMap).
    assert.match(owner.metadata.name, /^imgbuild-[0-9a-f]+-owner$/);
    assert.equal(owner.data, undefined);
    assert.equal(Object.values(configMap.data).includes('built-by: kaniko\n'), true);
    assert.deepEqual(Object.values(configMap.binaryData), [Buffer.from([0, 1, 2, 255]).toString('base64')]);
    const kaniko = job.spec.template.spec.containers[0];
    assert.ok(kaniko.args.includes('--destination=reg.example:5000/new-kaniko-image:latest'));
    const credentials = job.spec.template.spec.volumes.find((volume: { name: string }) => volume.name === 'registry-credentials');
    assert.match(credentials.secret.secretName, /^imgbuild-[0-9a-f]+-credentials$/);
    const dockerfile = Object.entries(configMap.data as Record<string, string>).find(([key]) => key.endsWith('Dockerfile.imgbuild'))![1];
    assert.equal(dockerfile, 'FROM reg.example:5000/ones/plugin-host-node:v6.33.1\nCOPY ["add-0/hello.txt","/opt/app/hello.txt"]\nCOPY ["add-1/blob.bin","/opt/app/"]\nWORKDIR /opt/app\nUSER root\n');
  });

  test('--namespace wins; no credentials means no Secret', async () => {
    const result = await runCli([...seedArgs, '-n', 'builds'], { cwd: work, env: { KUBECONFIG: path.join(work, 'kubeconfig'), DOCKER_CONFIG: path.join(work, 'empty') } });
    assert.equal(result.code, 0, describeResult(result));
    assert.ok(!result.stdout.includes('Secret'));
    for (const document of parseAllDocuments(result.stdout).map((doc) => doc.toJS()).filter(Boolean)) assert.equal(document.metadata.namespace, 'builds');
  });

  test('flag errors exit 2 with the fix', async () => {
    const noEngine = await runCli(seedArgs.filter((arg) => arg !== 'kaniko' && arg !== '--engine'), { cwd: work });
    assert.equal(noEngine.code, 2, describeResult(noEngine));
    assert.match(noEngine.stderr, /--dry-run goes with --engine kaniko/);
    const platform = await runCli([...seedArgs, '--platform', 'linux/arm64'], { cwd: work });
    assert.equal(platform.code, 2, describeResult(platform));
    assert.match(platform.stderr, /--platform is not supported with --engine kaniko/);
    const timeout = await runCli([...seedArgs, '--timeout', 'soon'], { cwd: work, env: { KUBECONFIG: path.join(work, 'kubeconfig') } });
    assert.equal(timeout.code, 2, describeResult(timeout));
    assert.match(timeout.stderr, /--timeout soon is not a duration/);
  });

  test('no cluster configured: a real build says how to point at one', async () => {
    const result = await runCli(seedArgs.filter((arg) => arg !== '--dry-run'), { cwd: work, env: { KUBECONFIG: undefined, HOME: work } });
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /no Kubernetes cluster configured/);
    assert.match(result.stderr, /hint: pass --kubeconfig FILE or set KUBECONFIG/);
  });
});
