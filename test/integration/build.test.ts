// `imgbuild build` on the direct engine against a real registry; results checked with
// skopeo (config, history), umoci (unpacked files, modes, owners) and runc (the report's
// `cat /opt/app/hello.txt && echo OK`).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runChecked, runcRun, skopeo, skopeoInspect, skopeoRegistryFlags, umociUnpack } from '../helpers/tools.js';

const HELLO = 'built-by: kaniko\nmessage: hello from kaniko build\n';
const DIGEST_LINE = /^(\S+)@(sha256:[0-9a-f]{64})\n$/;

describe('imgbuild build on the direct engine', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let cacheHome: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-build-test-')), ensureCliBuilt()]);
    cacheHome = path.join(workDir, 'cache');
    await pushSeedBase(registry);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** A context directory with these files (a trailing / makes a directory). */
  async function context(name: string, files: Record<string, string>): Promise<string> {
    const dir = path.join(workDir, name);
    for (const [file, content] of Object.entries(files)) {
      const target = path.join(dir, file);
      if (file.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    return dir;
  }

  /** The config blob exactly as stored (skopeo's parsed --config drops Docker-only fields such as Healthcheck). */
  async function rawConfig(reference: string): Promise<any> {
    const result = await skopeo(['inspect', '--config', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${reference}`]);
    return JSON.parse(result.stdout);
  }

  function build(dir: string, to: string, extra: string[] = [], env: Record<string, string | undefined> = {}) {
    return runCli(['build', dir, '--to', `${registry.host}/${to}`, ...extra], { cwd: dir, env: { XDG_CACHE_HOME: cacheHome, ...env } });
  }

  /** Builds `dir` as `to`, requires success, and unpacks the image with umoci; returns its rootfs. */
  async function buildAndUnpack(dir: string, to: string): Promise<string> {
    const result = await build(dir, to);
    assert.equal(result.code, 0, describeResult(result));
    const bundle = path.join(workDir, `${to.replace(/[/:]/g, '-')}-bundle`);
    await umociUnpack(registry, to, bundle);
    return path.join(bundle, 'rootfs');
  }

  describe("the report's Dockerfile, verbatim", () => {
    let dir: string;
    let first: Awaited<ReturnType<typeof build>>;

    before(async () => {
      dir = await context('seed', {
        Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nUSER root\nWORKDIR /opt/app\nCOPY hello.txt /opt/app/hello.txt\n`,
        'hello.txt': HELLO,
      });
      first = await build(dir, 'new-kaniko-image:latest', ['--verbose']);
      assert.equal(first.code, 0, describeResult(first));
    });

    test('prints the pushed digest, the one skopeo sees for the tag', async () => {
      const match = DIGEST_LINE.exec(first.stdout);
      assert.ok(match, first.stdout);
      assert.equal(match[1], `${registry.host}/new-kaniko-image`);
      assert.equal((await skopeoInspect('new-kaniko-image:latest', registry, 'summary')).Digest, match[2]);
      assert.match(first.stderr, /engine: direct \(no RUN in the stages built\)/);
    });

    test('reads the base manifest once, though both the ENV expansion and the build need it', () => {
      const [repository, tag] = SEED_BASE.split(':');
      const gets = first.stderr.split('\n').filter((line) => line.includes(`GET http://${registry.host}/v2/${repository}/manifests/${tag} `));
      assert.equal(gets.length, 1, first.stderr);
    });

    test('one history entry per instruction as BuildKit writes them; WORKDIR and COPY make layers', async () => {
      const config = await skopeoInspect('new-kaniko-image:latest', registry, 'config');
      assert.equal(config.config.User, 'root');
      assert.equal(config.config.WorkingDir, '/opt/app');
      const added = config.history.slice(-3).map((entry: Record<string, unknown>) => [entry.created_by, entry.empty_layer ?? false, entry.comment]);
      assert.deepEqual(added, [
        ['USER root', true, 'buildkit.dockerfile.v0'],
        ['WORKDIR /opt/app', false, 'buildkit.dockerfile.v0'],
        ['COPY hello.txt /opt/app/hello.txt # buildkit', false, 'buildkit.dockerfile.v0'],
      ]);
      const manifest = await skopeoInspect('new-kaniko-image:latest', registry);
      assert.equal(manifest.layers.length, 3, 'the base layer, WORKDIR and COPY');
      assert.equal(config.rootfs.diff_ids.length, 3);
    });

    test('the image unpacked with umoci prints the two lines and OK under runc', async () => {
      const bundle = path.join(workDir, 'seed-bundle');
      await umociUnpack(registry, 'new-kaniko-image:latest', bundle);
      const appDir = await stat(path.join(bundle, 'rootfs/opt/app'));
      assert.equal(appDir.mode & 0o7777, 0o755);
      assert.equal(appDir.uid, 0);
      const run = await runcRun(bundle, ['sh', '-c', 'cat /opt/app/hello.txt && echo OK']);
      assert.equal(run.code, 0, `runc failed:\n${run.stderr}`);
      assert.deepEqual(run.stdout.split('\n'), ['built-by: kaniko', 'message: hello from kaniko build', 'OK', '']);
    });

    test('the base index is cached per layer: a second build downloads no base layer', async () => {
      assert.match(first.stderr, /indexing base layer sha256:/);
      const cached = await readdir(path.join(cacheHome, 'imgbuild', 'layer-index'));
      assert.ok(cached.length >= 1, 'no layer index was cached');
      const second = await build(dir, 'new-kaniko-image:again', ['--verbose']);
      assert.equal(second.code, 0, describeResult(second));
      assert.doesNotMatch(second.stderr, /indexing base layer/);
    });
  });

  test('config instructions land in the config with their values and history', async () => {
    const dir = await context('config', {
      Dockerfile: [
        `ARG BASE=${registry.host}/${SEED_BASE}`,
        'FROM $BASE',
        'ARG VERSION=0',
        'ENV APP_VERSION=$VERSION MODE=prod',
        'LABEL org.example.version=$VERSION "description"="two words"',
        'EXPOSE 8080 53/udp',
        'VOLUME /data',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=30s --retries=3 CMD cat /etc/passwd',
        'SHELL ["/bin/sh", "-ec"]',
        'ENTRYPOINT ["/bin/sh"]',
        'CMD echo $MODE',
        'ONBUILD COPY . /app',
        '',
      ].join('\n'),
    });
    // A bare --build-arg NAME takes the value from the environment, as docker does; --label wins over LABEL, with no history entry.
    const result = await build(dir, 'config/app:1', ['--build-arg', 'VERSION', '--label', 'description=from the command line', '--label', 'built.by=imgbuild'], { VERSION: '1.2' });
    assert.equal(result.code, 0, describeResult(result));
    const config = await rawConfig('config/app:1');
    const run = config.config;
    assert.ok(run.Env.includes('APP_VERSION=1.2') && run.Env.includes('MODE=prod'), JSON.stringify(run.Env));
    assert.equal(run.Labels['org.example.version'], '1.2');
    assert.equal(run.Labels.description, 'from the command line');
    assert.equal(run.Labels['built.by'], 'imgbuild');
    assert.deepEqual(Object.keys(run.ExposedPorts).sort(), ['53/udp', '8080/tcp']);
    assert.deepEqual(Object.keys(run.Volumes), ['/data']);
    assert.equal(run.StopSignal, 'SIGINT');
    assert.deepEqual(run.Healthcheck, { Test: ['CMD-SHELL', 'cat /etc/passwd'], Interval: 30e9, Retries: 3 });
    assert.deepEqual(run.Shell, ['/bin/sh', '-ec']);
    assert.deepEqual(run.Entrypoint, ['/bin/sh']);
    assert.deepEqual(run.Cmd, ['/bin/sh', '-ec', 'echo $MODE']);
    assert.deepEqual(run.OnBuild, ['COPY . /app']);
    const history = config.history.map((entry: { created_by: string }) => entry.created_by);
    // ONBUILD leaves no history entry, as in BuildKit.
    assert.deepEqual(history.slice(-10), [
      'ARG VERSION=1.2',
      'ENV APP_VERSION=1.2 MODE=prod',
      'LABEL org.example.version=1.2 description=two words',
      'EXPOSE map[53/udp:{} 8080/tcp:{}]',
      'VOLUME [/data]',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK {Test:[CMD-SHELL cat /etc/passwd] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}',
      'SHELL [/bin/sh -ec]',
      'ENTRYPOINT ["/bin/sh"]',
      'CMD ["/bin/sh" "-ec" "echo $MODE"]',
    ]);
    assert.equal(config.history.every((entry: { empty_layer?: boolean }, index: number) => index === 0 || entry.empty_layer === true), true, 'config instructions make no layer');
  });

  test('COPY follows the image: DEST that is a directory, WORKDIR-relative DEST, --chown names, --chmod, directory merge, clamped sources', async () => {
    const dir = await context('copy', {
      Dockerfile: [
        `FROM ${registry.host}/${SEED_BASE}`,
        'WORKDIR /srv',
        'COPY a.txt /etc',
        'COPY a.txt rel/',
        'COPY --chown=nobody:nogroup --chmod=0600 a.txt /owned.txt',
        'COPY --chown=65534 tree /merged/',
        'COPY ../../a.txt clamped.txt',
        'COPY tree/*.txt /wild/',
        'COPY *.none /nothing/',
        'COPY --chmod=u+x,go-r tree/sub/two.txt /symbolic.txt',
        '',
      ].join('\n'),
      '.dockerignore': 'tree/**/secret*\n',
      'a.txt': 'A\n',
      'tree/one.txt': '1\n',
      'tree/skip.md': 'no\n',
      'tree/sub/two.txt': '2\n',
      'tree/sub/secret.txt': 'hidden\n',
    });
    const rootfs = await buildAndUnpack(dir, 'copy/app:1');
    assert.equal(await readFile(path.join(rootfs, 'etc/a.txt'), 'utf8'), 'A\n', 'COPY a.txt /etc copies into the existing /etc');
    assert.equal(await readFile(path.join(rootfs, 'srv/rel/a.txt'), 'utf8'), 'A\n', 'a relative DEST is relative to WORKDIR');
    assert.equal(await readFile(path.join(rootfs, 'srv/clamped.txt'), 'utf8'), 'A\n', '../ cannot leave the context');
    const owned = await stat(path.join(rootfs, 'owned.txt'));
    assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o7777], [65534, 65534, 0o600]);
    assert.equal(await readFile(path.join(rootfs, 'merged/sub/two.txt'), 'utf8'), '2\n');
    const merged = await stat(path.join(rootfs, 'merged/one.txt'));
    assert.deepEqual([merged.uid, merged.gid], [65534, 65534]);
    assert.deepEqual((await readdir(path.join(rootfs, 'merged/sub'))).sort(), ['two.txt'], '.dockerignore keeps secret.txt out');
    assert.deepEqual((await readdir(path.join(rootfs, 'wild'))).sort(), ['one.txt'], 'a wildcard copies its matches into the directory');
    assert.equal(await stat(path.join(rootfs, 'nothing')).then(() => true, () => false), false, 'a wildcard that matches nothing copies nothing');
    const sourceMode = (await stat(path.join(dir, 'tree/sub/two.txt'))).mode & 0o777;
    assert.equal((await stat(path.join(rootfs, 'symbolic.txt'))).mode & 0o777, (sourceMode | 0o100) & ~0o044, '--chmod=u+x,go-r edits the source mode');
  });

  test('multi-stage: --target builds a stage FROM an earlier one', async () => {
    const dir = await context('stages', {
      Dockerfile: [`FROM ${registry.host}/${SEED_BASE} AS base`, 'COPY a.txt /a.txt', 'FROM base AS app', 'COPY b.txt /b.txt', 'FROM app AS extra', 'COPY c.txt /c.txt', ''].join('\n'),
      'a.txt': 'a',
      'b.txt': 'b',
      'c.txt': 'c',
    });
    const result = await build(dir, 'stages/app:1', ['--target', 'app']);
    assert.equal(result.code, 0, describeResult(result));
    const history = (await skopeoInspect('stages/app:1', registry, 'config')).history.map((entry: { created_by: string }) => entry.created_by);
    assert.deepEqual(history.slice(-2), ['COPY a.txt /a.txt # buildkit', 'COPY b.txt /b.txt # buildkit']);
  });

  test('COPY --parents keeps the directories of each source under DEST, below a /./ pivot when there is one', async () => {
    const dir = await context('parents', {
      Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nCOPY --parents ./x/a.txt ./y/a.txt /parents/\nCOPY --parents ./x/./sub/*.txt /pivot/\n`,
      'x/a.txt': 'xa',
      'y/a.txt': 'ya',
      'x/sub/one.txt': '1',
      'x/sub/two.md': '2',
    });
    const rootfs = await buildAndUnpack(dir, 'parents/app:1');
    assert.equal(await readFile(path.join(rootfs, 'parents/x/a.txt'), 'utf8'), 'xa');
    assert.equal(await readFile(path.join(rootfs, 'parents/y/a.txt'), 'utf8'), 'ya');
    assert.deepEqual(await readdir(path.join(rootfs, 'pivot')), ['sub']);
    assert.deepEqual(await readdir(path.join(rootfs, 'pivot/sub')), ['one.txt']);
  });

  test('COPY/ADD --exclude leave out what the patterns match, relative to each source after wildcard expansion (context or --from image), as BuildKit does', async () => {
    const dir = await context('exclude', {
      Dockerfile:
        `FROM ${registry.host}/${SEED_BASE}\n` +
        'COPY --exclude=*.txt --exclude=sub/skip dir/ /dest/\n' +
        'COPY --exclude=*.md --exclude=!keep.md --exclude=sub src* /wild/\n' +
        'ADD --exclude=*.txt one.txt /single/\n' +
        `COPY --from=${registry.host}/${SEED_BASE} --exclude=passwd /etc/ /from-etc/\n` +
        `COPY --from=${registry.host}/${SEED_BASE} --exclude=passwd /etc/passwd /from-single/\n` +
        'COPY --parents --exclude=px/skip.txt px/*.txt /par/\n',
      'px/a.txt': 'pa',
      'px/skip.txt': 'ps',
      'dir/a.txt': 'a',
      'dir/b.bin': 'b',
      'dir/sub/c.txt': 'c',
      'dir/sub/skip/s.bin': 's',
      'dir/sub/keep/k.bin': 'k',
      'src1/x.md': 'x',
      'src1/keep.md': 'keep',
      'src1/y.bin': 'y',
      'src1/sub/z.bin': 'z',
      'src2/w.md': 'w',
      'src2/v.bin': 'v',
      'srcfile.md': 'f',
      'one.txt': '1',
    });
    const rootfs = await buildAndUnpack(dir, 'exclude/app:1');
    const tree = async (at: string): Promise<string[]> =>
      (await readdir(path.join(rootfs, at), { recursive: true, withFileTypes: true }))
        .map((entry) => `${path.relative(path.join(rootfs, at), path.join(entry.parentPath, entry.name))}${entry.isDirectory() ? '/' : ''}`)
        .sort();
    // `*.txt` matches only the source's own entries (sub/c.txt stays); an excluded directory goes with its contents.
    assert.deepEqual(await tree('dest'), ['b.bin', 'sub/', 'sub/c.txt', 'sub/keep/', 'sub/keep/k.bin']);
    // Each wildcard match is a source of its own: a matched file is never excluded itself; `!` re-includes.
    assert.deepEqual(await tree('wild'), ['keep.md', 'srcfile.md', 'v.bin', 'y.bin']);
    assert.equal(await readFile(path.join(rootfs, 'wild/keep.md'), 'utf8'), 'keep');
    assert.deepEqual(await tree('single'), ['one.txt']);
    // --from sources too: the image's /etc without passwd; a single file is not excluded by its own name.
    const etc = await tree('etc');
    assert.ok(etc.includes('passwd'));
    assert.deepEqual(await tree('from-etc'), etc.filter((name) => name !== 'passwd'));
    assert.deepEqual(await tree('from-single'), ['passwd']);
    // With --parents BuildKit copies from the context root (or the /./ pivot): patterns are relative to it.
    assert.deepEqual(await tree('par'), ['px/', 'px/a.txt']);
    const history = (await skopeoInspect('exclude/app:1', registry, 'config')).history.map((entry: { created_by: string }) => entry.created_by);
    assert.deepEqual(history.slice(-6, -3), ['COPY dir/ /dest/ # buildkit', 'COPY src* /wild/ # buildkit', 'ADD one.txt /single/ # buildkit']);
  });

  test('COPY --from an earlier stage that changes files reads its base and its own layers; only the target is pushed', async () => {
    const base = `${registry.host}/${SEED_BASE}`;
    const dir = await context('from-stage', {
      Dockerfile:
        `FROM ${base} AS assets\n` +
        'COPY static/ /static/\n' +
        'WORKDIR /w\n' +
        'COPY --chown=7:8 w.txt ./\n' +
        `FROM ${base}\n` +
        'COPY --from=assets /static /app/static\n' +
        'COPY --from=assets --chown=1:1 /static/a.txt /single.txt\n' +
        'COPY --from=assets /w /from-w/\n' +
        'COPY --from=assets /etc/passwd /passwd-copy\n',
      'static/a.txt': 'a',
      'static/sub/c.txt': 'c',
      'w.txt': 'w',
    });
    // Incompressible and above the 32 MiB one-request limit: a layer the target pushed would be uploaded while it is built.
    await writeFile(path.join(dir, 'static/big.bin'), randomBytes(33 * 1024 * 1024));
    const rootfs = await buildAndUnpack(dir, 'fromstage/app:1');
    assert.equal(await readFile(path.join(rootfs, 'app/static/a.txt'), 'utf8'), 'a');
    assert.equal(await readFile(path.join(rootfs, 'app/static/sub/c.txt'), 'utf8'), 'c');
    const single = await stat(path.join(rootfs, 'single.txt'));
    assert.deepEqual([single.uid, single.gid], [1, 1]);
    // The stage's own owner is kept without --chown; its base's files are there too.
    const copied = await stat(path.join(rootfs, 'from-w/w.txt'));
    assert.deepEqual([copied.uid, copied.gid], [7, 8]);
    assert.equal(await readFile(path.join(rootfs, 'passwd-copy'), 'utf8'), await readFile(path.join(rootfs, 'etc/passwd'), 'utf8'));
    // The earlier stage is not pushed: the image has the base's layers and the four COPY layers, and no /static or /w.
    const [baseManifest, manifest] = await Promise.all([skopeoInspect(SEED_BASE, registry), skopeoInspect('fromstage/app:1', registry)]);
    assert.equal(manifest.layers.length, baseManifest.layers.length + 4);
    // Nor are its layers: the repository holds the blobs of the target's manifest, no more.
    const linked = await readdir(path.join(registry.dataDir, 'docker/registry/v2/repositories/fromstage/app/_layers/sha256'));
    assert.deepEqual(linked.sort(), [manifest.config, ...manifest.layers].map((descriptor: { digest: string }) => descriptor.digest.slice('sha256:'.length)).sort());
    assert.equal(await stat(path.join(rootfs, 'static')).then(() => true, () => false), false);
    assert.equal(await stat(path.join(rootfs, 'w')).then(() => true, () => false), false);
    const history = (await skopeoInspect('fromstage/app:1', registry, 'config')).history.map((entry: { created_by: string }) => entry.created_by);
    assert.deepEqual(history.slice(-4), ['COPY /static /app/static # buildkit', 'COPY --chown=1:1 /static/a.txt /single.txt # buildkit', 'COPY /w /from-w/ # buildkit', 'COPY /etc/passwd /passwd-copy # buildkit']);
  });

  test('COPY from a here-document writes its content (expanded unless quoted), mode 0644', async () => {
    const dir = await context('heredoc', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nENV NAME=world\nCOPY <<EOF <<'RAW' /etc/greetings/\nhello $NAME\nEOF\nliteral $NAME\nRAW\n` });
    const rootfs = await buildAndUnpack(dir, 'heredoc/app:1');
    assert.equal(await readFile(path.join(rootfs, 'etc/greetings/EOF'), 'utf8'), 'hello world\n');
    assert.equal(await readFile(path.join(rootfs, 'etc/greetings/RAW'), 'utf8'), 'literal $NAME\n');
    assert.equal((await stat(path.join(rootfs, 'etc/greetings/EOF'))).mode & 0o7777, 0o644);
  });

  test('FROM scratch gets PATH as BuildKit gives it; USER root needs no /etc/passwd', async () => {
    const dir = await context('scratch', { Dockerfile: 'FROM scratch\nUSER root\nWORKDIR /app\nCOPY a.txt .\n', 'a.txt': 'a' });
    const result = await build(dir, 'scratch/app:1', ['--output', 'json']);
    assert.equal(result.code, 0, describeResult(result));
    const json = JSON.parse(result.stdout);
    assert.equal(json.engine, 'direct');
    assert.equal(json.layers.length, 2, 'WORKDIR /app and COPY');
    const config = await skopeoInspect('scratch/app:1', registry, 'config');
    assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  test('ADD of a URL downloads the file as docker does: named from the URL, mode 0600, checked with --checksum', async () => {
    const content = '#!/bin/sh\necho tool\n';
    const server = createServer((request, response) => {
      if (request.url !== '/files/tool.sh') return void response.writeHead(404).end();
      response.writeHead(200, { 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' }).end(content);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/tool.sh`;
    try {
      const checksum = `sha256:${createHash('sha256').update(content).digest('hex')}`;
      const dir = await context('add-url', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nADD ${url} /opt/tools/\nADD --checksum=${checksum} ${url} /renamed\n` });
      const rootfs = await buildAndUnpack(dir, 'addurl/app:1');
      for (const file of ['opt/tools/tool.sh', 'renamed']) {
        assert.equal(await readFile(path.join(rootfs, file), 'utf8'), content);
        assert.equal((await stat(path.join(rootfs, file))).mode & 0o7777, 0o600);
      }

      const wrong = await context('add-url-wrong', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /x\n` });
      const refused = await build(wrong, 'addurl/wrong:1');
      assert.equal(refused.code, 1, describeResult(refused));
      assert.match(refused.stderr, /Dockerfile:2: .*tool\.sh has checksum sha256:[0-9a-f]{64}, not the sha256:0{64} --checksum asks for/);
    } finally {
      server.close();
    }
  });

  test('ADD unpacks a local archive as BuildKit does: entries keep their owners and modes whatever --chown/--chmod say, DEST is made with --chown, `.` is skipped', async () => {
    const dir = await context('add-archive', {
      Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nADD --chown=nobody:nogroup --chmod=0600 tree.tar.gz /chowned\nADD dot.tar /etc\nADD notes.gz /kept/\n`,
      'tree/sub/f.txt': 'f\n',
      'tree/x.sh': '#!/bin/sh\n',
    });
    const script = [
      'chmod 0750 tree/sub && chmod 0640 tree/sub/f.txt && chmod 0755 tree/x.sh',
      'tar --owner=1234 --group=5678 --numeric-owner -C tree -czf tree.tar.gz sub x.sh',
      'chmod 0700 tree && tar --owner=1234 --group=5678 --numeric-owner -C tree -cf dot.tar . && rm -rf tree',
      'printf "text\\n" | gzip -c >notes.gz',
    ];
    await runChecked('sh', ['-ec', script.join(' && ')], { cwd: dir });
    const rootfs = await buildAndUnpack(dir, 'addarchive/app:1');
    const owner = async (file: string) => {
      const stats = await stat(path.join(rootfs, file));
      return [stats.uid, stats.gid, stats.mode & 0o7777];
    };
    assert.deepEqual(await owner('chowned'), [65534, 65534, 0o755], 'DEST is made 0755 for the --chown user');
    assert.deepEqual(await owner('chowned/sub'), [1234, 5678, 0o750]);
    assert.deepEqual(await owner('chowned/sub/f.txt'), [1234, 5678, 0o640]);
    assert.deepEqual(await owner('chowned/x.sh'), [1234, 5678, 0o755]);
    assert.deepEqual(await owner('etc'), [0, 0, 0o755], "the archive's `.` entry leaves /etc as it was");
    assert.deepEqual(await owner('etc/sub/f.txt'), [1234, 5678, 0o640]);
    assert.ok((await readdir(path.join(rootfs, 'etc'))).includes('passwd'), 'unpacking merges with what /etc holds');
    assert.deepEqual(await readdir(path.join(rootfs, 'kept')), ['notes.gz'], 'a gzip file that holds no tar is copied as it is');
  });

  test('ADD of an xz archive without the xz program says what to install', async () => {
    const dir = await context('add-xz', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nADD a.tar.xz /x/\n`, 'a.txt': 'a' });
    await runChecked('sh', ['-ec', 'tar -cf - a.txt | xz -c >a.tar.xz'], { cwd: dir });
    const result = await build(dir, 'err/xz:1', [], { PATH: '/nonexistent' });
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /Dockerfile:2: a\.tar\.xz is xz-compressed, and unpacking it needs the 'xz' program, which is not installed/);
    assert.match(result.stderr, /apt-get install xz-utils/);
  });

  describe('errors name the Dockerfile line', () => {
    test('RUN with --engine direct', async () => {
      const dir = await context('run-direct', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nRUN echo hi\n` });
      const result = await build(dir, 'err/run:1', ['--engine', 'direct']);
      assert.equal(result.code, 2, describeResult(result));
      assert.match(result.stderr, /Dockerfile:2: RUN needs a container/);
    });

    test('RUN with --engine auto goes to Kaniko, which says how to point it at a cluster when none is configured', async () => {
      const dir = await context('run-auto', { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\nCOPY Dockerfile /\nRUN echo hi\n` });
      const home = await mkdtemp(path.join(workDir, 'home-'));
      const result = await build(dir, 'err/auto:1', [], { KUBECONFIG: undefined, HOME: home, KUBERNETES_SERVICE_HOST: undefined });
      assert.equal(result.code, 1, describeResult(result));
      assert.match(result.stderr, /engine: kaniko \(Dockerfile:3 is a RUN, which needs a container\)/);
      assert.match(result.stderr, /no Kubernetes cluster configured/);
      assert.match(result.stderr, /hint: pass --kubeconfig FILE or set KUBECONFIG/);
    });

    test('a base with ONBUILD triggers (which docker would run) is refused, naming the FROM line', async () => {
      await pushBaseImage(registry, 'onbuild/base:1', {});
      const made = await build(await context('onbuild-made', { Dockerfile: `FROM ${registry.host}/onbuild/base:1\nONBUILD COPY . /app\n` }), 'onbuild/parent:1');
      assert.equal(made.code, 0, describeResult(made));
      const dir = await context('onbuild-child', { Dockerfile: `# child\nFROM ${registry.host}/onbuild/parent:1\nCOPY Dockerfile /\n` });
      const result = await build(dir, 'onbuild/child:1');
      assert.equal(result.code, 1, describeResult(result));
      assert.match(result.stderr, /Dockerfile:2: the base image .*onbuild\/parent:1 has ONBUILD triggers \(COPY \. \/app\), which docker runs here and the direct engine does not yet/);
      assert.equal(await skopeoInspect('onbuild/child:1', registry).then(() => true, () => false), false, 'a refused build pushed its tag');
    });

    test('COPY --from: a wildcard, a path the image lacks, a path an earlier stage lacks', async () => {
      const base = `${registry.host}/${SEED_BASE}`;
      const cases: Array<[string, RegExp]> = [
        [`FROM ${base} AS built\nCOPY a.txt /a\nFROM ${base}\nCOPY --from=built /b /b\n`, /Dockerfile:4: \/b is not in stage built\n.*and the --from stage/],
        [`FROM ${base}\nCOPY --from=${base} /etc/*.conf /x/\n`, /Dockerfile:2: wildcards in COPY --from sources \(\/etc\/\*\.conf\) are not supported on the direct engine yet/],
        [`FROM ${base}\nCOPY --from=${base} /no/such /x\n`, new RegExp(`Dockerfile:2: /no/such is not in ${base.replace(/[.]/g, '\\.')}\n.*and the --from image`)],
      ];
      for (const [index, [dockerfile, expected]] of cases.entries()) {
        const dir = await context(`err-from-${index}`, { Dockerfile: dockerfile, 'a.txt': 'a' });
        const result = await build(dir, `err/from:${index}`);
        assert.notEqual(result.code, 0, describeResult(result));
        assert.match(result.stderr, expected);
      }
    });

    test('a missing source, several sources into a non-directory, an unknown --chown name', async () => {
      const cases: Array<[string, RegExp]> = [
        ['COPY missing.txt /x', /Dockerfile:2: missing.txt is not in the build context/],
        ['COPY a.txt b.txt /x', /Dockerfile:2: with more than one source, the destination must be a directory and end with a \//],
        ['ADD archive.tar /x/', /Dockerfile:2: archive.tar holds '\.\.\/a.txt', which would be written outside the destination/],
        ['COPY --chown=nosuchuser a.txt /x', /Dockerfile:2: --chown=nosuchuser: no user "nosuchuser" in the image's \/etc\/passwd/],
      ];
      for (const [index, [line, expected]] of cases.entries()) {
        const dir = await context(`err-${index}`, { Dockerfile: `FROM ${registry.host}/${SEED_BASE}\n${line}\n`, 'a.txt': 'a', 'b.txt': 'b' });
        if (line.includes('archive.tar')) await runChecked('tar', ['-cPf', path.join(dir, 'archive.tar'), '--transform', 's,^,../,', '-C', dir, 'a.txt']);
        const result = await build(dir, `err/case:${index}`);
        assert.notEqual(result.code, 0, describeResult(result));
        assert.match(result.stderr, expected);
        const tags = await skopeoInspect(`err/case:${index}`, registry).then(() => true, () => false);
        assert.equal(tags, false, 'a failed build pushed its tag');
      }
    });
  });

  test('a multi-platform base keeps every platform', async () => {
    await pushBaseImage(registry, 'multi/base:1', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    const dir = await context('multi', {
      Dockerfile: `FROM ${registry.host}/multi/base:1\nARG TARGETARCH\nCOPY a.txt /a.txt\nCOPY tool-$TARGETARCH /tool\n`,
      'a.txt': 'a',
      'tool-amd64': 'amd64 build',
      'tool-arm64': 'arm64 build',
    });
    const result = await build(dir, 'multi/app:1', ['--output', 'json']);
    assert.equal(result.code, 0, describeResult(result));
    assert.deepEqual(JSON.parse(result.stdout).platforms.sort(), ['linux/amd64', 'linux/arm64']);
    const index = await skopeoInspect('multi/app:1', registry);
    assert.equal(index.manifests.length, 2);
    // Each platform gets the Dockerfile resolved for it: TARGETARCH picks its own file.
    for (const architecture of ['amd64', 'arm64']) {
      const read = await runCli(['verify', `${registry.host}/multi/app:1`, '--file', '/tool', '--platform', `linux/${architecture}`, '--expect-text', `${architecture} build`]);
      assert.equal(read.code, 0, describeResult(read));
    }
  });

  test('COPY --from an earlier stage on a multi-platform base reads each platform\'s own build of that stage', async () => {
    await pushBaseImage(registry, 'multi/base:2', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    const dir = await context('multi-stage-from', {
      Dockerfile: `FROM ${registry.host}/multi/base:2 AS tools\nARG TARGETARCH\nCOPY tool-$TARGETARCH /tool\nFROM ${registry.host}/multi/base:2\nCOPY --from=tools /tool /tool\n`,
      'tool-amd64': 'amd64 build',
      'tool-arm64': 'arm64 build',
    });
    const result = await build(dir, 'multi/from-stage:1');
    assert.equal(result.code, 0, describeResult(result));
    for (const architecture of ['amd64', 'arm64']) {
      const read = await runCli(['verify', `${registry.host}/multi/from-stage:1`, '--file', '/tool', '--platform', `linux/${architecture}`, '--expect-text', `${architecture} build`]);
      assert.equal(read.code, 0, describeResult(read));
    }
  });
});
