// Parity with a peer: each RUN-less Dockerfile of the corpus is built by `buildah bud`
// (Debian's, pushed with `buildah push`) and by `imgbuild build` into the same registry; the
// umoci-unpacked file systems (paths, contents, modes, owners, symlink targets) and the
// configs (Env, WorkingDir, User, Entrypoint, Cmd, ExposedPorts, Labels, Volumes, StopSignal,
// Healthcheck, Shell) must be the same. buildah squashes differently and writes its own
// history, so layers and history are not compared (the history is pinned in build.test.ts).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeResult, ensureCliBuilt, runCli } from '../helpers/cli.js';
import { pushBaseImage, pushSeedBase, SEED_BASE } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { run, runChecked, skopeo, skopeoRegistryFlags, umociUnpack } from '../helpers/tools.js';

interface ParityCase {
  name: string;
  /** `BASE` is replaced by the seed base's reference, `VARRUN` by one whose /var/run is a symlink to /run. */
  dockerfile: string;
  /** Context files; a value `{ symlink }` makes a symlink (make empty directories in `setup`). */
  files?: Record<string, string | { symlink: string }>;
  args?: string[];
  /** A shell script run in the context directory after `files` are written (to make archives). */
  setup?: string;
}

/**
 * Local archives for ADD: one tree (a 0700 directory, a 0600 file, a 0755 script, a symlink, a
 * hard link) owned 1234:5678, packed without a `.` entry as plain tar and with each compressor;
 * plus a gzip file that holds no tar, which ADD copies as it is.
 */
const ARCHIVES = [
  'mkdir -p src/dir && printf secret >src/dir/secret && printf "#!/bin/sh\\n" >src/run.sh',
  'chmod 0700 src/dir && chmod 0600 src/dir/secret && chmod 0755 src/run.sh && ln -s run.sh src/link && ln src/run.sh src/hard',
  'tar --owner=1234 --group=5678 --numeric-owner -C src -cf tree.tar dir run.sh link hard',
  'gzip -c tree.tar >tree.tgz && bzip2 -c tree.tar >tree.tar.bz2 && xz -c tree.tar >tree.txz && zstd -q -c tree.tar >tree.tar.zst',
  'printf "just text\\n" | gzip -c >notes.gz && rm -rf src',
].join(' && ');

const CORPUS: ParityCase[] = [
  { name: 'report', dockerfile: 'FROM BASE\nUSER root\nWORKDIR /opt/app\nCOPY hello.txt /opt/app/hello.txt\n', files: { 'hello.txt': 'built-by: kaniko\nmessage: hello\n' } },
  { name: 'dest-existing-dir', dockerfile: 'FROM BASE\nCOPY a.txt /etc\n', files: { 'a.txt': 'a\n' } },
  { name: 'dest-new-dir', dockerfile: 'FROM BASE\nCOPY a.txt /newdir/\n', files: { 'a.txt': 'a\n' } },
  { name: 'dest-file-rename', dockerfile: 'FROM BASE\nCOPY a.txt /renamed.conf\n', files: { 'a.txt': 'a\n' } },
  { name: 'dir-merge', dockerfile: 'FROM BASE\nCOPY tree /etc/\n', files: { 'tree/app.conf': 'x=1\n', 'tree/sub/deep.conf': 'y=2\n' } },
  { name: 'empty-dir-to-new', dockerfile: 'FROM BASE\nCOPY empty /newempty/\n', setup: 'mkdir empty' },
  { name: 'empty-dir-to-existing', dockerfile: 'FROM BASE\nCOPY empty /etc/\nCOPY empty /opt/deep/er/\n', setup: 'mkdir empty' },
  { name: 'dir-to-new', dockerfile: 'FROM BASE\nCOPY tree /srv/tree\n', files: { 'tree/one': '1', 'tree/two/three': '3' } },
  { name: 'several-sources', dockerfile: 'FROM BASE\nCOPY a.txt b.txt /multi/\n', files: { 'a.txt': 'a', 'b.txt': 'b' } },
  { name: 'wildcard', dockerfile: 'FROM BASE\nCOPY *.conf /conf/\n', files: { 'one.conf': '1', 'two.conf': '2', 'three.txt': '3' } },
  { name: 'wildcard-in-dir', dockerfile: 'FROM BASE\nCOPY cfg/*.yaml /cfg/\n', files: { 'cfg/a.yaml': 'a', 'cfg/b.yml': 'b', 'cfg/c.yaml': 'c' } },
  { name: 'workdir-relative-dest', dockerfile: 'FROM BASE\nWORKDIR /srv\nCOPY a.txt rel/\nCOPY b.txt .\n', files: { 'a.txt': 'a', 'b.txt': 'b' } },
  { name: 'workdir-chain', dockerfile: 'FROM BASE\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c\nCOPY a.txt ./\n', files: { 'a.txt': 'a' } },
  { name: 'chown-names', dockerfile: 'FROM BASE\nCOPY --chown=nobody:nogroup a.txt /owned/\n', files: { 'a.txt': 'a' } },
  { name: 'chown-numeric', dockerfile: 'FROM BASE\nCOPY --chown=1234:5678 tree /numeric/\n', files: { 'tree/f': 'f', 'tree/d/g': 'g' } },
  { name: 'chmod', dockerfile: 'FROM BASE\nCOPY --chmod=0600 a.txt /secret.txt\nCOPY --chmod=755 tree /bin2/\n', files: { 'a.txt': 'a', 'tree/run.sh': '#!/bin/sh\n' } },
  { name: 'user-workdir-owner', dockerfile: 'FROM BASE\nUSER nobody\nWORKDIR /home/nobody/app\n' },
  { name: 'dockerignore', dockerfile: 'FROM BASE\nCOPY . /src/\n', files: { '.dockerignore': '*.log\nsecret/\n!keep.log\n', 'main.c': 'int main;', 'debug.log': 'x', 'keep.log': 'k', 'secret/key': 'k' } },
  { name: 'clamped-source', dockerfile: 'FROM BASE\nCOPY ../../a.txt /clamped.txt\n', files: { 'a.txt': 'a' } },
  { name: 'symlinks-in-dir', dockerfile: 'FROM BASE\nCOPY tree /links/\n', files: { 'tree/target': 't', 'tree/link': { symlink: 'target' }, 'tree/abs': { symlink: '/etc/passwd' } } },
  { name: 'config', dockerfile: 'FROM BASE\nENV A=1 B="two words"\nENV C=${A}-x\nLABEL one=1 "two"="2 2"\nEXPOSE 8080 53/udp\nVOLUME /data /cache\nSTOPSIGNAL SIGINT\n' },
  { name: 'entrypoint-cmd', dockerfile: 'FROM BASE\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo hi"]\n' },
  // buildah 1.28 runs a shell-form CMD with /bin/sh -c whatever SHELL says; BuildKit uses SHELL
  // (pinned in test/unit/plan-from-dockerfile.test.ts), so this case has SHELL and CMD apart.
  { name: 'shell-healthcheck', dockerfile: 'FROM BASE\nCMD echo $HOME\nSHELL ["/bin/sh", "-ec"]\nHEALTHCHECK --interval=5s --retries=2 CMD cat /etc/passwd\n' },
  { name: 'args', dockerfile: 'ARG DIR=/opt\nFROM BASE\nARG DIR\nARG NAME=default\nENV TARGET=$DIR/$NAME\nCOPY a.txt $DIR/$NAME/\n', files: { 'a.txt': 'a' }, args: ['--build-arg', 'NAME=given'] },
  { name: 'multi-stage-target', dockerfile: 'FROM BASE AS base\nCOPY a.txt /a\nFROM base AS app\nCOPY b.txt /b\nFROM app AS other\nCOPY c.txt /c\n', files: { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' }, args: ['--target', 'app'] },
  { name: 'scratch', dockerfile: 'FROM scratch\nCOPY tree /\n', files: { 'tree/etc/hostname': 'h\n', 'tree/bin/tool': 'x' } },
  { name: 'copy-to-root', dockerfile: 'FROM BASE\nCOPY a.txt /\n', files: { 'a.txt': 'a' } },
  // A base whose /var/run is a symlink to /run, as Debian's: DEST below it lands in /run.
  // The third COPY must see the directory the first one made through the link.
  { name: 'symlinked-parent', dockerfile: 'FROM VARRUN\nCOPY a.txt /var/run/app/\nCOPY --chown=nobody b.txt /var/run/new/dir/b.txt\nCOPY b.txt /var/run/app\n', files: { 'a.txt': 'a', 'b.txt': 'b' } },
  { name: 'add-archives', setup: ARCHIVES, dockerfile: 'FROM BASE\nADD tree.tar /plain\nADD tree.tgz /etc/\nADD tree.tar.bz2 /opt/bz2\nADD tree.txz tree.tar.zst /multi/\nADD notes.gz /kept/\n' },
  // SOURCE: an image whose /app tree is owned 1234:5678 (made by buildah from a tar, in before()).
  {
    name: 'copy-from',
    dockerfile: [
      'FROM SOURCE AS src',
      'FROM BASE',
      'COPY --from=src /app /copied/',
      'COPY --from=src /app/bin/tool /tool',
      'COPY --from=SOURCE /app/conf /conf-dir',
      'COPY --chown=nobody:nogroup --from=src /app/conf /chowned/',
      'COPY --chmod=0750 --from=src /app/bin/tool /etc',
      'COPY --from=VARRUN /var/run/ /fromrun/',
      'COPY --from=src /app/link-to-bin/tool /via-link',
      '',
    ].join('\n'),
  },
  // An earlier stage that changes files (COPY, WORKDIR, a stage built FROM it): its own layers
  // are read with its base's, owners kept unless --chown, a symlink on the source path followed.
  {
    name: 'copy-from-stage',
    dockerfile: [
      'FROM SOURCE AS assets',
      'COPY static/ /static/',
      'COPY --chown=1234:5678 tree /app/conf/',
      'WORKDIR /w',
      'FROM assets AS more',
      'COPY b.txt /static/b.txt',
      'FROM BASE',
      'COPY --from=assets /static /app/static',
      'COPY --from=assets --chown=1:1 /static/a.txt /single.txt',
      'COPY --from=assets /app/conf /conf/',
      'COPY --from=assets /app/link-to-bin/tool /via-link',
      'COPY --from=more /static /more/',
      'COPY --from=more /w /w-copy',
      '',
    ].join('\n'),
    files: { 'static/a.txt': 'a', 'static/sub/c.txt': 'c', 'static/link': { symlink: 'a.txt' }, 'tree/extra.conf': 'e', 'b.txt': 'b' },
  },
  { name: 'add-archive-workdir', setup: ARCHIVES, dockerfile: 'FROM BASE\nWORKDIR /srv\nADD tree.tgz unpacked\nADD tree.tar.zst .\n' },
];

type TreeEntry = { type: string; mode: number; uid: number; gid: number; content?: string; target?: string };

/** Every path under the rootfs with its type, mode, owner, content hash or link target. */
async function describeTree(root: string, relative = ''): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  for (const name of (await readdir(path.join(root, relative))).sort()) {
    const rel = path.posix.join(relative, name);
    const full = path.join(root, rel);
    const stats = await lstat(full);
    const entry: TreeEntry = { type: stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? 'symlink' : 'file', mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
    if (stats.isSymbolicLink()) entry.target = await readlink(full);
    else if (stats.isFile()) entry.content = createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16);
    out[`/${rel}`] = entry;
    if (stats.isDirectory()) Object.assign(out, await describeTree(root, rel));
  }
  return out;
}

const CONFIG_FIELDS = ['Env', 'WorkingDir', 'User', 'Entrypoint', 'Cmd', 'ExposedPorts', 'Labels', 'Volumes', 'StopSignal', 'Healthcheck', 'Shell'];

function comparableConfig(config: Record<string, any>): Record<string, unknown> {
  const run = config.config ?? {};
  const picked: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    let value = run[field];
    if (field === 'Labels' && value) {
      value = Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'io.buildah.version'));
      if (Object.keys(value).length === 0) value = undefined;
    }
    if (value === null || value === '' || (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)) value = undefined;
    if (value !== undefined) picked[field] = value;
  }
  return picked;
}

const buildahAvailable = (await run('buildah', ['--version']).then((result) => result.code === 0, () => false)) as boolean;

describe('parity with buildah bud', { skip: buildahAvailable ? false : 'buildah is not installed (bench/setup.sh or .ci/run installs it)' }, () => {
  let registry: RunningRegistry;
  let workDir: string;
  let storage: string[];

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-parity-')), ensureCliBuilt()]);
    storage = ['--root', path.join(workDir, 'buildah-root'), '--runroot', path.join(workDir, 'buildah-runroot'), '--storage-driver', 'vfs'];
    await pushSeedBase(registry);
    await pushBaseImage(registry, 'varrun/base:1', { varRunSymlink: true, user: 'root' });
    // The --from source: buildah unpacks a tar whose /app tree has its own owners and modes.
    const source = path.join(workDir, 'source');
    await mkdir(source, { recursive: true });
    const tree = [
      'mkdir -p app/bin app/conf/sub && printf tool >app/bin/tool && printf x=1 >app/conf/a.conf && printf y >app/conf/sub/b.conf',
      'chmod 0755 app/bin/tool && chmod 0640 app/conf/a.conf && chmod 0700 app/conf/sub && ln -s bin app/link-to-bin',
      'tar --owner=1234 --group=5678 --numeric-owner -cf app.tar app',
    ];
    await runChecked('sh', ['-ec', tree.join(' && ')], { cwd: source });
    const container = (await runChecked('buildah', [...storage, 'from', '--tls-verify=false', `${registry.host}/${SEED_BASE}`], { timeoutMs: 180_000 })).stdout.trim();
    await runChecked('buildah', [...storage, 'add', container, path.join(source, 'app.tar'), '/']);
    await runChecked('buildah', [...storage, 'commit', '--format', 'docker', container, `${registry.host}/source/app:1`], { timeoutMs: 180_000 });
    await runChecked('buildah', [...storage, 'push', '--tls-verify=false', `${registry.host}/source/app:1`], { timeoutMs: 180_000 });
  });
  after(async () => {
    await registry?.stop();
    if (workDir) {
      await run('buildah', [...storage, 'rm', '--all']).catch(() => undefined);
      await rm(workDir, { recursive: true, force: true });
    }
  });

  async function rawConfig(reference: string): Promise<Record<string, any>> {
    return JSON.parse((await skopeo(['inspect', '--config', '--raw', ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${reference}`])).stdout);
  }

  for (const parity of CORPUS) {
    test(parity.name, async () => {
      const context = path.join(workDir, 'contexts', parity.name);
      await mkdir(context, { recursive: true });
      for (const [file, content] of Object.entries(parity.files ?? {})) {
        const target = path.join(context, file);
        await mkdir(path.dirname(target), { recursive: true });
        if (typeof content === 'string') await writeFile(target, content, { mode: 0o644 });
        else await symlink(content.symlink, target);
      }
      if (parity.setup) await runChecked('sh', ['-ec', parity.setup], { cwd: context });
      const dockerfile = path.join(workDir, 'contexts', `${parity.name}.Dockerfile`);
      await writeFile(dockerfile, parity.dockerfile.replaceAll('SOURCE', `${registry.host}/source/app:1`).replaceAll('VARRUN', `${registry.host}/varrun/base:1`).replaceAll('BASE', `${registry.host}/${SEED_BASE}`));
      // buildah reads .dockerignore from the context; imgbuild too (no <Dockerfile>.dockerignore here).
      const theirs = `${registry.host}/parity/buildah-${parity.name}:1`;
      await runChecked('buildah', [...storage, 'bud', '--format', 'docker', '--tls-verify=false', ...(parity.args ?? []), '-f', dockerfile, '-t', theirs, context], { timeoutMs: 180_000 });
      await runChecked('buildah', [...storage, 'push', '--tls-verify=false', theirs], { timeoutMs: 180_000 });
      const ours = await runCli(['build', '-f', dockerfile, context, '--to', `${registry.host}/parity/imgbuild-${parity.name}:1`, ...(parity.args ?? [])], {
        env: { XDG_CACHE_HOME: path.join(workDir, 'cache') },
      });
      assert.equal(ours.code, 0, describeResult(ours));

      const trees: Array<Record<string, TreeEntry>> = [];
      for (const tool of ['buildah', 'imgbuild']) {
        const bundle = path.join(workDir, 'bundles', `${tool}-${parity.name}`);
        await mkdir(path.dirname(bundle), { recursive: true });
        await umociUnpack(registry, `parity/${tool}-${parity.name}:1`, bundle);
        trees.push(await describeTree(path.join(bundle, 'rootfs')));
        await rm(bundle, { recursive: true, force: true });
      }
      assert.deepEqual(trees[1], trees[0], 'the unpacked file systems differ (actual: imgbuild, expected: buildah)');
      assert.deepEqual(comparableConfig(await rawConfig(`parity/imgbuild-${parity.name}:1`)), comparableConfig(await rawConfig(`parity/buildah-${parity.name}:1`)));
    });
  }
});

