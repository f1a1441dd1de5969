// Base images for integration tests, built from plain files with the system tar
// and gzip, laid out as an OCI image layout by hand, and pushed with skopeo.
// Nothing here uses imgbuild's own code: the fixtures must not share its bugs.
import { createHash } from 'node:crypto';
import { copyFile, chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunningRegistry } from './registry.js';
import { runChecked, skopeo, skopeoRegistryFlags } from './tools.js';

export interface FixturePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BaseImageOptions {
  /** 'docker' pushes with skopeo --format v2s2, so manifest (or list) and config carry Docker media types. */
  format?: 'oci' | 'docker';
  /** More than one => an OCI index (or, with format 'docker', a Docker manifest list) with one manifest per platform. */
  platforms?: FixturePlatform[];
  /** The base has a /run directory and /var/run -> /run, as Debian images do. */
  varRunSymlink?: boolean;
  /** Path in the image -> content; these go in a second layer on top of the busybox one. */
  extraFiles?: Record<string, string>;
  user?: string;
  workdir?: string;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
}

export interface PushedBaseImage {
  /** Digest of the manifest (or index) the registry serves for the tag. */
  digest: string;
  /** "repo:tag" as given. */
  reference: string;
}

/** The base image the seed field report builds on. */
export const SEED_BASE = 'ones/plugin-host-node:v6.33.1';

/** A kubeconfig whose one context `x` reaches `server` with a bearer token (no CA of its own). */
export function tokenKubeconfig(server: string): string {
  return ['apiVersion: v1', 'kind: Config', `clusters: [{name: c, cluster: {server: "${server}"}}]`, 'users: [{name: u, user: {token: t}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n');
}

export const HOST_BUSYBOX = '/bin/busybox';
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const FIXTURE_PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const FIXTURE_GROUP = 'root:x:0:\nnogroup:x:65534:\n';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LAYOUT_TAG = 'fixture';
const EPOCH = '1970-01-01T00:00:00Z';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Writes bytes as a content-addressed blob of the layout and returns its descriptor. */
async function writeBlob(layoutDir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = sha256(bytes);
  await writeFile(path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

async function writeFileInTree(rootDir: string, imagePath: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const relative = path.posix.normalize(imagePath).replace(/^\/+/, '');
  if (relative === '' || relative.startsWith('..')) throw new Error(`fixture file path ${JSON.stringify(imagePath)} is not inside the image`);
  const target = path.join(rootDir, relative);
  await makeDirs(rootDir, path.posix.dirname(relative));
  await writeFile(target, content);
  await chmod(target, mode);
}

/** mkdir -p with 0755 for every level, whatever the umask. */
async function makeDirs(rootDir: string, relativeDir: string): Promise<void> {
  let current = rootDir;
  for (const part of relativeDir.split('/').filter((p) => p !== '' && p !== '.')) {
    current = path.join(current, part);
    await mkdir(current, { recursive: true });
    await chmod(current, 0o755);
  }
}

async function buildBusyboxTree(rootDir: string, options: BaseImageOptions): Promise<void> {
  await makeDirs(rootDir, 'bin');
  await copyFile(HOST_BUSYBOX, path.join(rootDir, 'bin', 'busybox'));
  await chmod(path.join(rootDir, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'echo', 'ls']) {
    await symlink('busybox', path.join(rootDir, 'bin', applet));
  }
  await writeFileInTree(rootDir, '/etc/passwd', FIXTURE_PASSWD);
  await writeFileInTree(rootDir, '/etc/group', FIXTURE_GROUP);
  await makeDirs(rootDir, 'root');
  await chmod(path.join(rootDir, 'root'), 0o700);
  await makeDirs(rootDir, 'tmp');
  await chmod(path.join(rootDir, 'tmp'), 0o1777);
  if (options.varRunSymlink) {
    await makeDirs(rootDir, 'run');
    await makeDirs(rootDir, 'var');
    await symlink('/run', path.join(rootDir, 'var', 'run'));
  }
}

/** A reproducible gzip layer of everything under rootDir, as (compressed blob, diff_id). */
async function tarLayer(rootDir: string, workDir: string, name: string): Promise<{ gzipped: Buffer; diffId: string }> {
  const tarFile = path.join(workDir, `${name}.tar`);
  const entries = (await readdir(rootDir)).sort();
  await runChecked('tar', [
    '--create', '--file', tarFile, '--directory', rootDir,
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--', ...entries,
  ]);
  const diffId = sha256(await readFile(tarFile));
  await runChecked('gzip', ['--no-name', '--keep', tarFile]);
  return { gzipped: await readFile(`${tarFile}.gz`), diffId };
}

function imageConfig(platform: FixturePlatform, diffIds: string[], history: string[], options: BaseImageOptions): unknown {
  const runConfig: Record<string, unknown> = { Env: options.env ?? [DEFAULT_PATH_ENV] };
  if (options.user !== undefined) runConfig.User = options.user;
  if (options.workdir !== undefined) runConfig.WorkingDir = options.workdir;
  if (options.entrypoint !== undefined) runConfig.Entrypoint = options.entrypoint;
  runConfig.Cmd = options.cmd ?? ['/bin/sh'];
  return {
    created: EPOCH,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: history.map((createdBy) => ({ created: EPOCH, created_by: createdBy })),
  };
}

/**
 * Writes an OCI image layout for the options and returns its directory; the
 * image (or index) is tagged LAYOUT_TAG in index.json.
 */
async function writeFixtureLayout(workDir: string, options: BaseImageOptions): Promise<string> {
  const layoutDir = path.join(workDir, 'layout');
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  const history: string[] = [];

  const baseTree = path.join(workDir, 'rootfs-base');
  await mkdir(baseTree);
  await buildBusyboxTree(baseTree, options);
  const base = await tarLayer(baseTree, workDir, 'base');
  layers.push(await writeBlob(layoutDir, OCI_LAYER_GZIP, base.gzipped));
  diffIds.push(base.diffId);
  history.push('imgbuild test fixture: busybox rootfs');

  const extraFiles = Object.entries(options.extraFiles ?? {});
  if (extraFiles.length > 0) {
    const extraTree = path.join(workDir, 'rootfs-extra');
    await mkdir(extraTree);
    for (const [imagePath, content] of extraFiles) await writeFileInTree(extraTree, imagePath, content);
    const extra = await tarLayer(extraTree, workDir, 'extra');
    layers.push(await writeBlob(layoutDir, OCI_LAYER_GZIP, extra.gzipped));
    diffIds.push(extra.diffId);
    history.push(`imgbuild test fixture: extra files ${extraFiles.map(([p]) => p).join(' ')}`);
  }

  const platforms = options.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  if (platforms.length === 0) throw new Error('pushBaseImage: platforms must not be empty');
  const manifests: Array<Descriptor & { platform: FixturePlatform }> = [];
  for (const platform of platforms) {
    // Same layers for every platform (it is a fixture); the config differs, so the digests do.
    const config = await writeBlob(layoutDir, OCI_CONFIG, jsonBytes(imageConfig(platform, diffIds, history, options)));
    const manifest = await writeBlob(layoutDir, OCI_MANIFEST, jsonBytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));
    manifests.push({ ...manifest, platform });
  }

  // skopeo 1.9 resolves the tag to one descriptor of index.json; for several
  // platforms that descriptor points at a nested index, which `copy --all` copies whole.
  const top: Descriptor =
    manifests.length === 1
      ? { mediaType: OCI_MANIFEST, digest: manifests[0]!.digest, size: manifests[0]!.size }
      : await writeBlob(layoutDir, OCI_INDEX, jsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  await writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': LAYOUT_TAG } }],
    }),
  );
  return layoutDir;
}

/**
 * Builds a busybox-based base image from files and pushes it to
 * registry/reference ("repo:tag") with skopeo.
 */
export async function pushBaseImage(
  registry: RunningRegistry,
  reference: string,
  options: BaseImageOptions = {},
): Promise<PushedBaseImage> {
  const workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-fixture-'));
  try {
    const layoutDir = await writeFixtureLayout(workDir, options);
    const multiPlatform = (options.platforms?.length ?? 1) > 1;
    const destination = `docker://${registry.host}/${reference}`;
    await skopeo([
      'copy',
      ...(multiPlatform ? ['--all'] : []),
      ...(options.format === 'docker' ? ['--format', 'v2s2'] : []),
      ...skopeoRegistryFlags(registry, 'dest'),
      `oci:${layoutDir}:${LAYOUT_TAG}`,
      destination,
    ]);
    // The digest the registry serves for the tag, asked of the registry rather than predicted.
    const raw = await skopeo(['inspect', '--raw', ...skopeoRegistryFlags(registry, ''), destination]);
    return { digest: sha256(Buffer.from(raw.stdout, 'utf8')), reference };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** What the seed scenario builds on: busybox, /etc/passwd, user root, tagged SEED_BASE. */
export function pushSeedBase(registry: RunningRegistry): Promise<PushedBaseImage> {
  return pushBaseImage(registry, SEED_BASE, { user: 'root' });
}
