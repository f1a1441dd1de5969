import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addToImage } from './add.js';
import type { Digest } from './digest.js';
import { directEngine } from './engines/direct.js';
import { VerifyFailure } from './errors.js';
import { parseAddSpec } from './image/layer.js';
import { inspectImage } from './inspect.js';
import { silentLogger, type Logger } from './logger.js';
import { resolveEngineOptions } from './plan/options.js';
import type { RegistryClient } from './registry/client.js';
import { startRegistryServer, type RunningRegistryServer } from './registry-server/index.js';
import { readFileFromImage } from './verify.js';

/**
 * The field report's job, end to end, on this machine alone: an embedded registry in a
 * directory, a small base image made from files written here (nothing is downloaded), the
 * report's change made twice (as `imgbuild add` and as its Dockerfile with `imgbuild build`),
 * and both results read back from the registry.
 */

/** The report's base image and results, on the quickstart's registry. */
export const QUICKSTART_BASE = 'ones/plugin-host-node:v6.33.1';
export const QUICKSTART_ADD_TAG = 'new-kaniko-image:latest';
export const QUICKSTART_BUILD_TAG = 'new-kaniko-image:dockerfile';
export const QUICKSTART_FILE = '/opt/app/hello.txt';
export const QUICKSTART_HELLO = 'built-by: imgbuild\nmessage: hello from imgbuild quickstart\n';
/** The report's Dockerfile, FROM the quickstart's base. */
export const quickstartDockerfile = (base: string) => `FROM ${base}\nUSER root\nWORKDIR /opt/app\nCOPY hello.txt /opt/app/hello.txt\n`;

export type QuickstartStepName = 'registry' | 'base' | 'add' | 'build' | 'verify';

export interface QuickstartStep {
  name: QuickstartStepName;
  /** What was done, for a progress line. */
  detail: string;
}

export interface QuickstartImage {
  tag: string;
  /** `registry/repository@sha256:…` */
  reference: string;
  digest: Digest;
}

export interface VerifiedImage extends QuickstartImage {
  path: string;
  /** The file's bytes matched what was added, and USER and WORKDIR are root and /opt/app. */
  user: string;
  workdir: string;
  layersRead: number;
}

export interface QuickstartResult {
  registry: { url: string; host: string; dir: string };
  /** Where hello.txt and the Dockerfile were written (the build context). */
  contextDir: string;
  base: QuickstartImage;
  add: QuickstartImage;
  build: QuickstartImage;
  verified: VerifiedImage[];
}

export interface QuickstartOptions {
  /** An empty directory for the registry's data and the files written here; the caller removes it. */
  dir: string;
  /** Registry clients by host (the CLI's, so its trust and retry settings apply). */
  clientFor: (registry: string) => RegistryClient;
  /** Where each step is reported (info) and the details (debug). */
  logger?: Logger;
  /** The embedded registry's request log (one line per request at info). */
  registryLogger?: Logger;
  /** Stops the run: work in flight is cut and the registry closed; the call rejects with an AbortedError. */
  signal?: AbortSignal;
  onStep?: (step: QuickstartStep) => void;
}

/** A base rootfs like the report's node image: its users, the node user's home, /opt. */
async function writeBaseFiles(root: string): Promise<void> {
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await mkdir(path.join(root, 'home/node'), { recursive: true });
  await mkdir(path.join(root, 'opt'), { recursive: true });
  await mkdir(path.join(root, 'tmp'), { recursive: true });
  await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nnode:x:1000:1000:node:/home/node:/bin/sh\n');
  await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\nnode:x:1000:\n');
  await writeFile(path.join(root, 'etc/os-release'), 'NAME="imgbuild quickstart base"\nID=imgbuild-quickstart\n');
  // A relative link, as distributions ship it; it shows links survive the trip.
  await symlink('../proc/self/mounts', path.join(root, 'etc/mtab'));
}

/**
 * Runs the quickstart. Resolves with what was made and the registry still running (the
 * caller closes it); on failure or abort the registry is closed before the call rejects.
 */
export async function runQuickstart(options: QuickstartOptions): Promise<{ result: QuickstartResult; registry: RunningRegistryServer }> {
  const logger = options.logger ?? silentLogger;
  const signal = options.signal;
  const step = (name: QuickstartStepName, detail: string) => {
    logger.info(`quickstart: ${detail}`);
    options.onStep?.({ name, detail });
  };
  const registryDir = path.join(options.dir, 'registry');
  const registry = await startRegistryServer({ dir: registryDir, listen: '127.0.0.1:0', logger: options.registryLogger, signal });
  try {
    step('registry', `registry serving ${registryDir} at ${registry.url}`);
    const host = registry.host;
    const common = { clientFor: options.clientFor, tmpDir: options.dir, logger, signal };

    const baseRoot = path.join(options.dir, 'base-rootfs');
    await writeBaseFiles(baseRoot);
    const baseTag = `${host}/${QUICKSTART_BASE}`;
    // A fixed timestamp: the same base, byte for byte, on every machine and run.
    const base = await addToImage({
      ...common,
      from: 'scratch',
      to: baseTag,
      adds: [parseAddSpec(`${baseRoot}:/`)],
      edits: { user: 'node', workdir: '/home/node', env: ['PATH=/usr/local/bin:/usr/bin:/bin'], labels: ['org.opencontainers.image.title=plugin-host-node'] },
      sourceDateEpoch: 0,
    });
    step('base', `base image ${baseTag} made from files written here (/etc/passwd with a node user, /home/node, /opt; USER node): ${base.digest}`);

    const contextDir = path.join(options.dir, 'context');
    await mkdir(contextDir, { recursive: true });
    const hello = path.join(contextDir, 'hello.txt');
    await writeFile(hello, QUICKSTART_HELLO);
    const dockerfile = quickstartDockerfile(baseTag);
    await writeFile(path.join(contextDir, 'Dockerfile'), dockerfile);

    const addTag = `${host}/${QUICKSTART_ADD_TAG}`;
    const added = await addToImage({ ...common, from: baseTag, to: addTag, adds: [parseAddSpec(`${hello}:${QUICKSTART_FILE}`)], edits: { user: 'root', workdir: '/opt/app' } });
    step('add', `imgbuild add (direct engine): ${QUICKSTART_FILE}, USER root, WORKDIR /opt/app on the base -> ${addTag}: ${added.digest}`);

    const buildTag = `${host}/${QUICKSTART_BUILD_TAG}`;
    const engineOptions = resolveEngineOptions({ to: buildTag, storageFor: options.clientFor, tmpDir: options.dir, cacheDir: false, logger, signal }, () => options.dir);
    const built = await directEngine(engineOptions).build({ dockerfilePath: 'Dockerfile', dockerfileText: dockerfile, context: contextDir, to: buildTag });
    step('build', `imgbuild build (direct engine) of the report's Dockerfile (${dockerfile.trim().split('\n').join('; ')}) -> ${buildTag}: ${built.digest}`);

    const verified: VerifiedImage[] = [];
    for (const image of [
      { tag: addTag, reference: added.reference, digest: added.digest },
      { tag: buildTag, reference: built.reference, digest: built.digest },
    ]) {
      verified.push(await verifyImage(image, options.clientFor, signal));
    }
    step('verify', `read ${QUICKSTART_FILE} back from both images (every layer read checked against its digest): it matches; USER root, WORKDIR /opt/app`);
    return {
      result: {
        registry: { url: registry.url, host, dir: registryDir },
        contextDir,
        base: { tag: baseTag, reference: base.reference, digest: base.digest },
        add: { tag: addTag, reference: added.reference, digest: added.digest },
        build: { tag: buildTag, reference: built.reference, digest: built.digest },
        verified,
      },
      registry,
    };
  } catch (error) {
    await registry.close();
    throw error;
  }
}

/** Reads the file and the run config of `image` from the registry and checks both. */
async function verifyImage(image: QuickstartImage, clientFor: (registry: string) => RegistryClient, signal: AbortSignal | undefined): Promise<VerifiedImage> {
  const read = await readFileFromImage(image.reference, QUICKSTART_FILE, clientFor, undefined, { signal });
  const lookup = read.lookup;
  if (!lookup.found) throw new VerifyFailure(`${QUICKSTART_FILE} is not in ${image.reference} (${lookup.reason})`);
  if (!lookup.content?.equals(Buffer.from(QUICKSTART_HELLO))) {
    throw new VerifyFailure(`${QUICKSTART_FILE} in ${image.reference} differs from the hello.txt that was added`);
  }
  const inspected = await inspectImage(image.reference, clientFor, { signal });
  const config = inspected.images[0]!.config;
  if (config.user !== 'root' || config.workingDir !== '/opt/app') {
    throw new VerifyFailure(`${image.reference} has USER ${config.user ?? '(none)'} and WORKDIR ${config.workingDir ?? '(none)'}, not root and /opt/app`);
  }
  return { ...image, path: QUICKSTART_FILE, user: config.user, workdir: config.workingDir, layersRead: read.layersRead };
}
