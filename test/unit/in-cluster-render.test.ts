import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile, lstat, readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';
import type { V1ConfigMap, V1Container, V1Job, V1PodSpec } from '@kubernetes/client-node';
import { parsePodResult, renderInClusterBuild } from '../../src/engines/in-cluster.js';
import { bundleLoader, inPodAddArgs, inPodBuildArgs, launchArgs, renderImgbuildPod } from '../../src/engines/in-cluster-render.js';
import { collectContextDirectory, readContextContents } from '../../src/kubernetes/context-files.js';
import { receiveTar, unpackFromConfigMap } from '../../src/kubernetes/context-receiver.js';
import { builderError } from '../../src/kubernetes/diagnose.js';
import { markContextReadyCommand, receiveContextCommand, renderConfigMapDelivery, renderExecDelivery } from '../../src/kubernetes/render/context-delivery.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { tarToFile } from '../../src/kubernetes/run/build-job.js';

const REGISTRY = 'registry.kube-system.svc.cluster.local:5000';
const PASSWORD = 'pa55-w0rd-not-to-print';

/**
 * The Pod Security "restricted" rules (Kubernetes docs, Pod Security Standards) as checks on a
 * pod spec; the cluster tests have the API server's admission judge the same pods.
 */
function restrictedViolations(spec: V1PodSpec): string[] {
  const problems: string[] = [];
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push('host namespaces');
  for (const volume of spec.volumes ?? []) {
    const allowed = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
    const kinds = Object.keys(volume).filter((key) => key !== 'name');
    if (!kinds.every((kind) => allowed.includes(kind))) problems.push(`volume ${volume.name} is ${kinds.join(',')}`);
  }
  const podRunAsNonRoot = spec.securityContext?.runAsNonRoot;
  if (spec.securityContext?.runAsUser === 0) problems.push('pod runAsUser 0');
  const podSeccomp = spec.securityContext?.seccompProfile?.type;
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    const security = container.securityContext ?? {};
    if (security.privileged) problems.push(`${container.name} privileged`);
    if (security.allowPrivilegeEscalation !== false) problems.push(`${container.name} allowPrivilegeEscalation not false`);
    if (!(security.capabilities?.drop ?? []).includes('ALL')) problems.push(`${container.name} does not drop ALL`);
    if ((security.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE')) problems.push(`${container.name} adds capabilities`);
    if ((security.runAsNonRoot ?? podRunAsNonRoot) !== true) problems.push(`${container.name} runAsNonRoot not true`);
    if (security.runAsUser === 0) problems.push(`${container.name} runAsUser 0`);
    const seccomp = security.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${container.name} seccomp ${seccomp}`);
    if ((container.ports ?? []).some((port) => port.hostPort)) problems.push(`${container.name} hostPort`);
  }
  return problems;
}

function docs(yamlText: string) {
  return parseAllDocuments(yamlText).map((doc) => doc.toJS()).filter(Boolean) as (V1Job | V1ConfigMap)[];
}

async function seedDryRun(extra: { caFile?: string; registrySecret?: string } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'in-cluster-render-'));
  await writeFile(path.join(dir, 'hello.txt'), 'hello\n');
  const credentials = createCredentialStore({ explicit: { registry: REGISTRY, username: 'imgbuild', password: PASSWORD }, env: {} });
  const text = await renderInClusterBuild({
    job: {
      kind: 'add',
      add: { from: `${REGISTRY}/ones/plugin-host-node:v6.33.1`, to: `${REGISTRY}/new-image:latest`, workdir: '/opt/app', user: 'root' },
      adds: [{ workspacePath: 'add-0/hello.txt', destination: '/opt/app/hello.txt', files: [{ path: 'add-0/hello.txt', type: 'file', mode: 0o644, size: 6, source: path.join(dir, 'hello.txt') }] }],
    },
    cluster: { namespace: 'builds' },
    credentials,
    nodeImage: 'localhost:5000/node:22-imgbuild',
    sourceDateEpoch: 0,
    ...extra,
  });
  await rm(dir, { recursive: true, force: true });
  return text;
}

describe('--in-cluster objects', () => {
  test('the build pod passes Pod Security "restricted" by construction, with a read-only root and size-limited emptyDirs', async () => {
    const job = docs(await seedDryRun()).find((doc) => doc.kind === 'Job') as V1Job;
    const spec = job.spec!.template.spec!;
    assert.deepEqual(restrictedViolations(spec), []);
    assert.equal(spec.automountServiceAccountToken, false);
    assert.ok(spec.securityContext!.runAsUser! > 0 && spec.securityContext!.runAsGroup! > 0, 'a non-zero uid and gid');
    for (const container of [...spec.initContainers!, ...spec.containers]) {
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true, `${container.name} has a read-only root`);
      assert.equal(container.securityContext?.runAsNonRoot, true);
    }
    const emptyDirs = spec.volumes!.filter((volume) => volume.emptyDir);
    assert.deepEqual(emptyDirs.map((volume) => volume.name).sort(), ['tmp', 'workspace']);
    for (const volume of emptyDirs) assert.match(String(volume.emptyDir!.sizeLimit), /^\d+[GM]i$/, `${volume.name} has a sizeLimit`);
    assert.equal(spec.volumes!.some((volume) => 'hostPath' in volume), false);
  });

  test('the checker above catches what restricted refuses (so the test above can fail)', async () => {
    const job = docs(await seedDryRun()).find((doc) => doc.kind === 'Job') as V1Job;
    const spec = job.spec!.template.spec!;
    const broken: V1PodSpec = { ...spec, securityContext: { ...spec.securityContext, runAsNonRoot: undefined }, containers: [{ ...spec.containers[0]!, securityContext: { ...spec.containers[0]!.securityContext, runAsNonRoot: undefined, capabilities: { add: ['CHOWN'] } } }] };
    assert.deepEqual(restrictedViolations(broken), ['imgbuild does not drop ALL', 'imgbuild adds capabilities', 'imgbuild runAsNonRoot not true']);
  });

  test('the pod runs the same imgbuild command, its paths in the workspace, its result in the termination message', async () => {
    const objects = docs(await seedDryRun());
    const job = objects.find((doc) => doc.kind === 'Job') as V1Job;
    const context = objects.find((doc) => doc.metadata?.name?.endsWith('-context')) as V1ConfigMap;
    const manifest = JSON.parse(context.data!['imgbuild-context.json']!) as { path: string }[];
    assert.deepEqual(manifest.map((entry) => entry.path), ['add-0', 'add-0/hello.txt'], 'parents come first, so the receiver can lay them out');
    const builder = job.spec!.template.spec!.containers[0]!;
    const args = builder.args!;
    const command = args.slice(args.indexOf('--') + 1);
    assert.deepEqual(command, ['add', '--from', `${REGISTRY}/ones/plugin-host-node:v6.33.1`, '--to', `${REGISTRY}/new-image:latest`, '--add', '/workspace/add-0/hello.txt:/opt/app/hello.txt', '--workdir', '/opt/app', '--user', 'root']);
    const env = Object.fromEntries(builder.env!.map((item) => [item.name, item.value]));
    assert.equal(env.IMGBUILD_RESULT_FILE, '/dev/termination-log');
    assert.equal(env.SOURCE_DATE_EPOCH, '0');
    assert.equal(env.DOCKER_CONFIG, '/imgbuild/docker');
    assert.equal(builder.terminationMessagePolicy, 'File');
  });

  test('credentials go only into the Secret, which --dry-run names and never prints; the context keeps no local path', async () => {
    const text = await seedDryRun();
    assert.doesNotMatch(text, new RegExp(PASSWORD));
    assert.doesNotMatch(text, new RegExp(Buffer.from(`imgbuild:${PASSWORD}`).toString('base64').slice(0, 16)));
    assert.match(text, /# Secret imgbuild-[0-9a-f]+-credentials \(kubernetes\.io\/dockerconfigjson\)/);
    assert.doesNotMatch(text, /in-cluster-render-/, 'the local temp dir is not in any object');
  });

  test('--ca-file travels as a ConfigMap passed to imgbuild as --ca-file; --registry-secret replaces the Secret', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'in-cluster-ca-'));
    await writeFile(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const objects = docs(await seedDryRun({ caFile: path.join(dir, 'ca.pem'), registrySecret: 'team-pull-secret' }));
    const ca = objects.find((doc) => doc.metadata?.name?.endsWith('-ca')) as V1ConfigMap;
    assert.match(ca.data!['ca.crt']!, /BEGIN CERTIFICATE/);
    const job = objects.find((doc) => doc.kind === 'Job') as V1Job;
    const builder = job.spec!.template.spec!.containers[0]!;
    assert.deepEqual(builder.args!.slice(-2), ['--ca-file', '/imgbuild/ca/ca.crt']);
    assert.equal(job.spec!.template.spec!.volumes!.find((volume) => volume.secret)?.secret?.secretName, 'team-pull-secret');
    await rm(dir, { recursive: true, force: true });
  });

  test('the bundle travels gzipped in its own ConfigMap under the 1 MiB object limit, or not at all with a runner image', async () => {
    const bundle = path.resolve('dist/imgbuild.mjs');
    const present = await stat(bundle).then(() => true, () => false);
    const pod = renderImgbuildPod({ image: 'runner', runtime: { kind: 'image' }, args: ['add'] });
    assert.deepEqual(pod.builder.args, ['--no-deprecation', '/imgbuild/imgbuild.mjs', 'add']);
    assert.equal(pod.volumes.some((volume) => volume.configMap), false);
    if (!present) return; // `npm run build` makes it; the cluster tests run the real thing
    const { renderRuntimeConfigMap } = await import('../../src/engines/in-cluster-render.js');
    const { gzipSync } = await import('node:zlib');
    const raw = await readFile(bundle);
    const map = renderRuntimeConfigMap({ buildId: 'b', namespace: 'n', createdAt: '' }, gzipSync(raw, { level: 9 }));
    const size = Buffer.byteLength(JSON.stringify(map));
    assert.ok(raw.length > 1024 * 1024, 'the bundle alone is over the limit (so gzip is needed)');
    assert.ok(size < 1024 * 1024, `the runtime ConfigMap is ${size} bytes`);
    assert.deepEqual(gunzipSync(Buffer.from(map.binaryData!['imgbuild.mjs.gz']!, 'base64')), raw);
  });

  test('build: the Dockerfile and flags as the pod runs them', () => {
    assert.deepEqual(inPodBuildArgs({ to: 'r/app:1', dockerfile: 'sub/Dockerfile', buildArgs: { V: '1' }, target: 'run', platforms: ['linux/arm64'] }, { insecure: true }), [
      'build', '/workspace', '--file', '/workspace/sub/Dockerfile', '--to', 'r/app:1', '--engine', 'direct', '--build-arg', 'V=1', '--target', 'run', '--platform', 'linux/arm64', '--insecure',
    ]);
    assert.deepEqual(inPodAddArgs({ from: 'scratch', to: 'r/a:1', adds: [{ workspacePath: 'add-0', destination: '/d/' }], env: ['A=1', 'B=2'], chmod: '0600' }, {}), [
      'add', '--from', 'scratch', '--to', 'r/a:1', '--add', '/workspace/add-0:/d/', '--chmod', '0600', '--env', 'A=1', '--env', 'B=2',
    ]);
  });
});

describe('context receiver without a shell', () => {
  const receiver = { kind: 'imgbuild' as const, image: 'node', launch: launchArgs({ kind: 'configmap', configMapName: 'rt' }), container: {} };

  test('init container and exec commands run imgbuild through node, never sh', () => {
    const exec = renderExecDelivery(receiver, 60);
    assert.equal(exec.initContainer.command, undefined, 'the image entrypoint (node) runs it');
    assert.deepEqual(exec.initContainer.args!.slice(-5), ['__context', 'wait', '--marker', '/workspace/.imgbuild-context-ready', '--seconds', '60'].slice(-5));
    const receive = receiveContextCommand(1234, receiver);
    assert.equal(receive[0], '/proc/1/exe');
    assert.deepEqual(receive.slice(-6), ['__context', 'receive', '--size', '1234', '--to', '/workspace']);
    assert.equal(markContextReadyCommand(receiver)[0], '/proc/1/exe');
    assert.equal(receive[3], bundleLoader());
  });

  test('ConfigMap delivery and streamed tar both lay out files, symlinks, modes and mtimes', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'in-cluster-ctx-'));
    const source = path.join(root, 'src');
    await mkdir(path.join(source, 'sub'), { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a\n');
    await writeFile(path.join(source, 'sub', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await (await import('node:fs/promises')).symlink('a.txt', path.join(source, 'link'));
    await (await import('node:fs/promises')).utimes(path.join(source, 'a.txt'), 1_500_000_000, 1_500_000_000);
    const files = await collectContextDirectory(source);
    const delivery = renderConfigMapDelivery({ buildId: 'b', namespace: 'n', createdAt: '' }, receiver, files, await readContextContents(files));
    const mounted = path.join(root, 'configmap');
    await mkdir(mounted);
    for (const [key, value] of Object.entries(delivery.configMap!.data ?? {})) await writeFile(path.join(mounted, key), value);
    for (const [key, value] of Object.entries(delivery.configMap!.binaryData ?? {})) await writeFile(path.join(mounted, key), Buffer.from(value, 'base64'));
    const fromMap = path.join(root, 'from-map');
    await mkdir(fromMap);
    assert.equal(await unpackFromConfigMap(mounted, fromMap), 2);

    const tar = await tarToFile(files, { keepMtimes: true });
    const fromTar = path.join(root, 'from-tar');
    await mkdir(fromTar);
    const input = new PassThrough();
    input.write(await readFile(tar.file));
    // The sender keeps stdin open: the receiver must stop at the announced size on its own.
    const lines: string[] = [];
    assert.equal(await receiveTar(input, tar.size, fromTar, (line) => lines.push(line)), 2);
    assert.match(lines[0]!, new RegExp(`^${tar.sha256}\\s`));
    for (const dir of [fromMap, fromTar]) {
      assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'a\n');
      assert.equal((await stat(path.join(dir, 'sub', 'run.sh'))).mode & 0o777, 0o755);
      assert.equal(await readlink(path.join(dir, 'link')), 'a.txt');
      assert.equal(Math.floor((await lstat(path.join(dir, 'a.txt'))).mtimeMs / 1000), 1_500_000_000, `${dir} keeps the mtime`);
    }
    await rm(tar.dir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });
});

describe('the pod result', () => {
  test('read from the termination message; an error there becomes the diagnosis', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const result = parsePodResult(JSON.stringify({ result: { reference: `r/app@${digest}`, digest, tag: 'latest', mediaType: 'm', platforms: ['linux/amd64'] } }));
    assert.equal(result.digest, digest);
    assert.throws(() => parsePodResult('not json'), /holds no result/);
    assert.throws(() => parsePodResult(JSON.stringify({ result: { reference: 'r', digest: 'sha256:short' } })), /holds no result/);
    assert.deepEqual(builderError(JSON.stringify({ error: { message: 'MANIFEST_UNKNOWN: no such base', hint: 'check --from' } })), { message: 'MANIFEST_UNKNOWN: no such base', hint: 'check --from' });
    assert.equal(builderError('sha256:abc'), undefined);
  });
});
