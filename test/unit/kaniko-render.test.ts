import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { V1Job } from '@kubernetes/client-node';
import { baseRegistries, dockerfileForAdd, KANIKO_CAPABILITIES, kanikoArgs, renderKanikoContainer } from '../../src/engines/kaniko-render.js';
import {
  CONFIGMAP_CONTEXT_BUDGET,
  type ContextEntry,
  fitsInConfigMap,
  receiveContextCommand,
  renderConfigMapDelivery,
  renderExecDelivery,
  shellQuote,
} from '../../src/kubernetes/render/context-delivery.js';
import { contextTar } from '../../src/kubernetes/context-files.js';
import { buildSelector, renderBuildJob, renderConfigMap, renderDockerConfigSecret, renderVerificationPod, renderYaml } from '../../src/kubernetes/render/objects.js';

const identity = { buildId: 'b1', namespace: 'ci', createdAt: '2026-01-01T00:00:00.000Z' };
const kanikoImage = 'registry.example:5000/kaniko:debug';

function seedJob(overrides: Partial<Parameters<typeof renderKanikoContainer>[0]> = {}): V1Job {
  const entries: ContextEntry[] = [
    { path: 'Dockerfile', type: 'file', mode: 0o644, size: 10 },
    { path: 'hello.txt', type: 'file', mode: 0o644, size: 5 },
  ];
  const contents = new Map([
    ['Dockerfile', Buffer.from('FROM x\n')],
    ['hello.txt', Buffer.from('hi\n')],
  ]);
  const delivery = renderConfigMapDelivery(identity, 'busybox', entries, contents);
  const kaniko = renderKanikoContainer({ destination: 'reg:5000/app:1', dockerfile: 'Dockerfile', kanikoImage, ...overrides });
  return renderBuildJob({
    identity,
    initContainer: delivery.initContainer,
    builder: kaniko.container,
    volumes: [...delivery.volumes, ...kaniko.volumes],
    podSecurityContext: kaniko.podSecurityContext,
    activeDeadlineSeconds: overrides.cpu ? 60 : undefined,
    ttlSecondsAfterFinished: 3600,
  });
}

describe('build Job', () => {
  test('never retried or restarted, with a safety TTL and the deadline from --timeout', () => {
    const job = renderBuildJob({ identity, initContainer: { name: 'i' }, builder: { name: 'b' }, volumes: [], activeDeadlineSeconds: 90, ttlSecondsAfterFinished: 600 });
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.spec?.ttlSecondsAfterFinished, 600);
    assert.equal(job.spec?.activeDeadlineSeconds, 90);
    assert.equal(job.spec?.template.spec?.restartPolicy, 'Never');
    assert.equal(job.spec?.template.spec?.automountServiceAccountToken, false);
    const noDeadline = renderBuildJob({ identity, initContainer: { name: 'i' }, builder: { name: 'b' }, volumes: [], ttlSecondsAfterFinished: 600 });
    assert.equal('activeDeadlineSeconds' in noDeadline.spec!, false);
  });

  test('every object carries the managed-by label and the build id the cleanup selects on', () => {
    const job = seedJob();
    for (const labels of [job.metadata?.labels, job.spec?.template.metadata?.labels]) {
      assert.equal(labels?.['app.kubernetes.io/managed-by'], 'imgbuild');
      assert.equal(labels?.['imgbuild.dev/build-id'], 'b1');
    }
    assert.equal(buildSelector('b1'), 'app.kubernetes.io/managed-by=imgbuild,imgbuild.dev/build-id=b1');
    assert.equal(renderConfigMap(identity, 'x', 'context', {}).metadata?.labels?.['imgbuild.dev/build-id'], 'b1');
    assert.equal(renderVerificationPod({ identity, image: 'i', command: 'true' }).metadata?.labels?.['imgbuild.dev/build-id'], 'b1');
  });

  test('both containers mount the workspace emptyDir; the init container copies the ConfigMap in', () => {
    const spec = seedJob().spec!.template.spec!;
    assert.deepEqual(spec.volumes?.find((volume) => volume.name === 'workspace'), { name: 'workspace', emptyDir: {} });
    for (const container of [...spec.initContainers!, ...spec.containers]) {
      assert.ok(container.volumeMounts?.some((mount) => mount.name === 'workspace' && mount.mountPath === '/workspace'), container.name);
    }
    assert.deepEqual(spec.initContainers![0]!.command, ['sh', '-c', 'sh /imgbuild/context/imgbuild-unpack.sh']);
    assert.equal(spec.volumes?.find((volume) => volume.name === 'context-source')?.configMap?.name, 'imgbuild-b1-context');
  });

  test('Kaniko is never privileged: no escalation, ALL dropped, only the capabilities it needs added', () => {
    const kaniko = seedJob().spec!.template.spec!.containers[0]!;
    assert.equal(kaniko.securityContext?.privileged, false);
    assert.equal(kaniko.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(kaniko.securityContext?.capabilities, { drop: ['ALL'], add: KANIKO_CAPABILITIES });
    assert.ok(!KANIKO_CAPABILITIES.includes('SYS_ADMIN'));
    assert.deepEqual(kaniko.args?.slice(0, 4), ['--dockerfile=/workspace/Dockerfile', '--context=dir:///workspace', '--destination=reg:5000/app:1', '--digest-file=/dev/termination-log']);
  });

  test('--non-root: uid 1000, runAsNonRoot, a writable /tmp and KANIKO_DIR there, no capabilities', () => {
    const spec = seedJob({ nonRoot: true }).spec!.template.spec!;
    assert.deepEqual(spec.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    const kaniko = spec.containers[0]!;
    assert.deepEqual(kaniko.securityContext?.capabilities, { drop: ['ALL'] });
    assert.ok(kaniko.env?.some((env) => env.name === 'KANIKO_DIR' && env.value === '/tmp/kaniko'));
    assert.ok(kaniko.volumeMounts?.some((mount) => mount.mountPath === '/tmp'));
    assert.ok(spec.volumes?.some((volume) => volume.name === 'tmp' && volume.emptyDir));
  });

  test('--cpu/--memory set requests and limits alike', () => {
    const kaniko = seedJob({ cpu: '500m', memory: '1Gi' }).spec!.template.spec!.containers[0]!;
    assert.deepEqual(kaniko.resources, { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '500m', memory: '1Gi' } });
    assert.equal(seedJob().spec!.template.spec!.containers[0]!.resources, undefined);
  });

  test('credentials and the CA are mounted for Kaniko only', () => {
    const spec = seedJob({ credentialsSecret: 'creds', caBundle: { configMapName: 'ca', registries: ['reg:5000', 'base:443'] } }).spec!.template.spec!;
    const kaniko = spec.containers[0]!;
    assert.deepEqual(spec.volumes?.find((volume) => volume.name === 'registry-credentials')?.secret, { secretName: 'creds', items: [{ key: '.dockerconfigjson', path: 'config.json' }] });
    assert.ok(kaniko.env?.some((env) => env.name === 'DOCKER_CONFIG' && env.value === '/imgbuild/docker'));
    assert.ok(kaniko.args?.includes('--registry-certificate=reg:5000=/imgbuild/ca/ca.crt'));
    assert.ok(kaniko.args?.includes('--registry-certificate=base:443=/imgbuild/ca/ca.crt'));
    assert.ok(!spec.initContainers![0]!.volumeMounts?.some((mount) => mount.name === 'registry-credentials'));
  });
});

describe('Kaniko arguments', () => {
  const base = { destination: 'r/a:1', dockerfile: 'Dockerfile', kanikoImage };
  test('--insecure skips TLS verification (pulls too) and allows plain HTTP', () => {
    const args = kanikoArgs({ ...base, insecure: true });
    for (const flag of ['--skip-tls-verify', '--insecure', '--insecure-pull']) assert.ok(args.includes(flag), flag);
    assert.ok(!args.includes('--skip-tls-verify-pull'), 'Kaniko never reads --skip-tls-verify-pull');
    assert.ok(!kanikoArgs(base).some((arg) => arg.startsWith('--skip-tls') || arg.startsWith('--insecure')));
  });
  test('build args, target, labels, cache repository', () => {
    const args = kanikoArgs({ ...base, buildArgs: ['A=1', 'B=two words'], target: 'final', labels: ['k=v'], cacheRepo: 'r/cache' });
    for (const flag of ['--build-arg=A=1', '--build-arg=B=two words', '--target=final', '--label=k=v', '--cache=true', '--cache-repo=r/cache']) assert.ok(args.includes(flag), flag);
  });
});

describe('context delivery', () => {
  test('text in data, binary in binaryData', () => {
    const map = renderConfigMap(identity, 'n', 'context', { 'a.txt': Buffer.from('hello\n'), 'b.bin': Buffer.from([0, 0xff, 0x10]) });
    assert.deepEqual(map.data, { 'a.txt': 'hello\n' });
    assert.deepEqual(map.binaryData, { 'b.bin': Buffer.from([0, 0xff, 0x10]).toString('base64') });
  });

  test('the unpack script recreates directories, modes, symlinks and awkward names', () => {
    const entries: ContextEntry[] = [
      { path: 'dir with space', type: 'directory', mode: 0o750, size: 0 },
      { path: "dir with space/it's.sh", type: 'file', mode: 0o755, size: 3 },
      { path: 'link', type: 'symlink', mode: 0o777, size: 0, linkTarget: 'dir with space' },
    ];
    const delivery = renderConfigMapDelivery(identity, 'busybox', entries, new Map([["dir with space/it's.sh", Buffer.from('ok\n')]]));
    const script = delivery.configMap!.data!['imgbuild-unpack.sh']!;
    assert.match(script, /mkdir -p 'dir with space' && chmod 750 'dir with space'/);
    assert.match(script, /cp \/imgbuild\/context\/1-it_s\.sh 'dir with space\/it'\\''s\.sh' && chmod 755/);
    assert.match(script, /ln -s 'dir with space' link/);
    assert.equal(delivery.configMap!.data!['1-it_s.sh'], 'ok\n');
    assert.equal(shellQuote('plain/path.txt'), 'plain/path.txt');
  });

  test('a context over the ConfigMap budget goes over exec: the init container waits for the sentinel file', () => {
    assert.ok(fitsInConfigMap([{ path: 'a', type: 'file', mode: 0o644, size: 100_000 }]));
    assert.ok(!fitsInConfigMap([{ path: 'a', type: 'file', mode: 0o644, size: CONFIGMAP_CONTEXT_BUDGET }]));
    const exec = renderExecDelivery('busybox', 60);
    assert.equal(exec.configMap, undefined);
    assert.match(exec.initContainer.command![2]!, /until \[ -e \/workspace\/\.imgbuild-context-ready \]/);
  });

  test('the receiving command, run by busybox as in the init container: reads exactly the byte count with stdin left open, unpacks, prints the sha256', async () => {
    const workspace = mkdtempSync(path.join(tmpdir(), 'imgbuild-receive-'));
    const tarBytes = await buffer(contextTar([
      { path: 'app', type: 'directory', mode: 0o755, size: 0 },
      { path: 'app/hello.txt', type: 'file', mode: 0o640, size: 3, content: Buffer.from('hi\n') },
      { path: 'app/big.bin', type: 'file', mode: 0o644, size: 300_000, content: Buffer.alloc(300_000, 7) },
    ]));
    const [shell, flag, script] = receiveContextCommand(tarBytes.length, 'busybox', workspace);
    const child = spawn('busybox', [shell!, flag!, script!], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    // More bytes than announced, and stdin never ended: the command must stop at the count by itself.
    child.stdin.write(Buffer.concat([tarBytes, Buffer.from('not part of the context')]));
    const code = await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    child.stdin.destroy();
    assert.equal(code, 0, `the command did not finish by itself with stdin open: ${stderr}`);
    assert.equal(stdout.split(/\s/)[0], createHash('sha256').update(tarBytes).digest('hex'));
    assert.equal(readFileSync(path.join(workspace, 'app/hello.txt'), 'utf8'), 'hi\n');
    assert.equal(statSync(path.join(workspace, 'app/hello.txt')).mode & 0o777, 0o640);
    assert.equal(statSync(path.join(workspace, 'app/big.bin')).size, 300_000);
    assert.deepEqual(readdirSync(workspace), ['app'], 'the fifo and the hash file are removed');
  });
});

describe('dry-run YAML', () => {
  test('parses as Kubernetes documents and never contains secret material', () => {
    const secret = renderDockerConfigSecret(identity, 'imgbuild-b1-credentials', { auths: { 'reg:5000': { auth: Buffer.from('user:hunter2').toString('base64') } } });
    const yaml = renderYaml([secret, seedJob({ credentialsSecret: 'imgbuild-b1-credentials' })]);
    assert.ok(!yaml.includes('hunter2') && !yaml.includes(Buffer.from('user:hunter2').toString('base64')) && !yaml.includes('dockerconfigjson":'));
    assert.match(yaml, /# Secret imgbuild-b1-credentials \(kubernetes.io\/dockerconfigjson\)/);
    const documents = parseAllDocuments(yaml).map((document) => document.toJS()).filter(Boolean);
    assert.deepEqual(documents.map((document) => document.kind), ['Job']);
    assert.ok(!yaml.includes('&a') && !yaml.includes('*a'), 'no YAML aliases');
  });
});

describe('add as a Dockerfile', () => {
  test('COPY first, then the config edits, values quoted against expansion', () => {
    const text = dockerfileForAdd(
      'reg:5000/base:1',
      [{ contextPath: 'add-0/hello.txt', destination: '/opt/app/hello.txt' }, { contextPath: 'add-1/', destination: '/srv/' }],
      { workdir: '/opt/app', user: 'root', env: ['A=$HOME "x"'], labels: ['k=v'], entrypoint: ['/bin/app'], cmd: ['--serve'], volumes: ['/data'], expose: ['8080/tcp'] },
      { chmod: 0o644, chown: { uid: 1000, gid: 1000 } },
    );
    assert.equal(
      text,
      [
        'FROM reg:5000/base:1',
        'COPY --chown=1000:1000 --chmod=0644 ["add-0/hello.txt","/opt/app/hello.txt"]',
        'COPY --chown=1000:1000 --chmod=0644 ["add-1/","/srv/"]',
        'WORKDIR /opt/app',
        'USER root',
        'ENV A="\\$HOME \\"x\\""',
        'LABEL k="v"',
        'ENTRYPOINT ["/bin/app"]',
        'CMD ["--serve"]',
        'VOLUME ["/data"]',
        'EXPOSE 8080/tcp',
        '',
      ].join('\n'),
    );
  });

  test('registries named by FROM lines, not stages, scratch or ARG-built names', () => {
    const dockerfile = 'ARG BASE=x\nFROM reg:5000/a:1 AS build\nFROM build\nFROM scratch\nfrom --platform=linux/amd64 other.example/b\nFROM $BASE\nFROM busybox\n';
    assert.deepEqual(baseRegistries(dockerfile), ['reg:5000', 'other.example', 'docker.io']);
  });
});

describe('--pull-via', () => {
  test('replaces the registry part of the reference, keeping repository and digest or tag', async () => {
    const { pullReference } = await import('../../src/engines/kaniko.js');
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(pullReference(`registry.kube-system.svc.cluster.local:5000/new-kaniko-image@${digest}`, 'localhost:5000'), `localhost:5000/new-kaniko-image@${digest}`);
    assert.equal(pullReference('reg:5000/team/app:v1', 'localhost:5000'), 'localhost:5000/team/app:v1');
    assert.equal(pullReference('reg:5000/team/app:v1'), 'reg:5000/team/app:v1');
  });
});
