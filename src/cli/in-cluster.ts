/**
 * The command-line side of `--in-cluster` (the direct engine as a restricted build pod), the
 * hidden `__context` receiver it runs in the pod, and `runner-image`. Loaded only when used: the
 * Kubernetes client is not needed otherwise.
 */
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { AddSpec } from '../image/layer.js';
import { addToImage } from '../add.js';
import { parsePlatform } from '../image/platform.js';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Logger } from '../logger.js';
import { parseReference } from '../reference.js';
import type { BuildEngine, BuildResult, DockerfileBuildRequest } from '../engines/engine.js';
import { buildInCluster, findBundle, type InClusterBuildRequest, type InClusterBuildResult, type InClusterJob, renderInClusterBuild } from '../engines/in-cluster.js';
import { BUNDLE_IN_IMAGE, type InPodAdd } from '../engines/in-cluster-render.js';
import { receiveTar, unpackFromConfigMap, waitForMarker, writeMarker } from '../kubernetes/context-receiver.js';
import type { CommandContext } from './context.js';
import { addContext, clusterOptions, contextProgress, logPrinter, resolvesHere } from './kaniko.js';
import { type KanikoFlags, parseDuration } from './kaniko-options.js';

/** The flags every --in-cluster build maps the same way. */
function requestFrom(job: InClusterJob, flags: KanikoFlags & { certDir?: string }, context: CommandContext | undefined, sourceDateEpoch: number | undefined): InClusterBuildRequest {
  if (flags.engine === 'kaniko') throw new UsageError('--in-cluster and --engine kaniko both given', '--in-cluster runs the direct engine in the cluster; --engine kaniko runs Kaniko there: pick one');
  if (flags.certDir) throw new UsageError('--cert-dir is not supported with --in-cluster', 'give the CA certificates as one PEM file with --ca-file: it is sent to the pod in a ConfigMap');
  if (flags.kanikoImage || flags.initImage || flags.nonRoot || flags.cacheRepo) {
    throw new UsageError('--kaniko-image, --init-image, --non-root and --cache-repo are Kaniko flags', 'drop them with --in-cluster (the pod is always non-root; set the image with --node-image or --runner-image)');
  }
  if (flags.nodeImage && flags.runnerImage) throw new UsageError('--node-image and --runner-image both given', 'a runner image already holds node and imgbuild: give one of them');
  if ((flags.expectOutput !== undefined || flags.pullVia !== undefined) && flags.verifyCommand === undefined) {
    throw new UsageError('--expect-output and --pull-via go with --verify-command', "add --verify-command 'SHELL COMMAND' to run a pod from the new image");
  }
  return {
    job,
    cluster: clusterOptions(flags),
    nodeImage: flags.nodeImage,
    runnerImage: flags.runnerImage,
    insecure: flags.insecure,
    caFile: flags.caFile,
    registrySecret: flags.registrySecret,
    credentials: context?.credentials,
    sourceDateEpoch,
    cpu: flags.cpu,
    memory: flags.memory,
    timeoutSeconds: flags.timeout === undefined ? undefined : Math.ceil(parseDuration(flags.timeout, '--timeout')),
    keep: flags.keep,
    verbose: flags.verbose,
    quiet: flags.quiet,
    verify: flags.verifyCommand === undefined ? undefined : { command: flags.verifyCommand, expectOutput: flags.expectOutput, pullVia: flags.pullVia },
    logger: context?.logger,
    onLog: logPrinter(flags),
    onContextProgress: process.stderr.isTTY && !flags.quiet ? contextProgress() : undefined,
    signal: context?.signal,
  };
}

async function withRegistryCheck(request: InClusterBuildRequest, destination: string, context: CommandContext): Promise<InClusterBuildResult> {
  const canConfirm = await resolvesHere(destination, context.logger);
  return buildInCluster({ ...request, clientFor: canConfirm ? context.clientFor : undefined });
}

export function printInClusterResult(result: InClusterBuildResult, output: 'text' | 'json', logger: Logger): void {
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const blobs = result.blobs;
  const counts = blobs ? `: ${blobs.uploaded} uploaded, ${blobs.mounted} mounted, ${blobs.existed} already there` : '';
  const pod = result.builderSeconds === undefined ? '' : `, the pod's imgbuild ran ${result.builderSeconds.toFixed(0)}s`;
  logger.info(`pushed ${result.reference} from the cluster (${result.platforms.join(', ')})${counts}${result.confirmedInRegistry ? ', tag confirmed in the registry' : ''}${pod}, ${result.totalSeconds.toFixed(1)}s in all`);
  process.stdout.write(`${result.reference}\n`);
}

export interface AddInCluster extends Omit<InPodAdd, 'adds'> {
  adds: AddSpec[];
}

/** `add --in-cluster` (or its --dry-run). `context` is absent for --dry-run. */
export async function runAddInCluster(add: AddInCluster, flags: KanikoFlags & { certDir?: string }, context: CommandContext | undefined, sourceDateEpoch: number | undefined): Promise<InClusterBuildResult | undefined> {
  const { files, copies } = await addContext(add.adds);
  const adds = copies.map((copy, index) => ({
    workspacePath: copy.contextPath.replace(/\/$/, ''),
    destination: copy.destination,
    files: files.filter((file) => file.path === `add-${index}` || file.path.startsWith(`add-${index}/`)),
  }));
  const job: InClusterJob = { kind: 'add', add: { ...add }, adds };
  const request = requestFrom(job, flags, context, sourceDateEpoch);
  if (!context) {
    process.stdout.write(await renderInClusterBuild(request));
    return undefined;
  }
  return withRegistryCheck(request, add.to, context);
}

/** `build --dry-run --in-cluster`. */
export async function renderBuildInCluster(request: DockerfileBuildRequest, flags: KanikoFlags & { certDir?: string }, build: { platforms: string[]; compressionLevel?: number; format?: string }, sourceDateEpoch?: number): Promise<string> {
  return renderInClusterBuild(requestFrom(buildJob(request, build), flags, undefined, sourceDateEpoch));
}

function buildJob(request: DockerfileBuildRequest, build: { platforms: string[]; compressionLevel?: number; format?: string }): InClusterJob {
  return {
    kind: 'build',
    dockerfile: { path: path.resolve(request.dockerfilePath) },
    contextDir: request.context,
    build: { to: request.to, buildArgs: request.buildArgs, target: request.target, platforms: build.platforms, compressionLevel: build.compressionLevel, format: build.format },
  };
}

/** The in-cluster direct engine for `imgbuild build` (engines/engine.ts), inside the command's context. */
export function inClusterBuildEngine(flags: KanikoFlags & { certDir?: string }, context: CommandContext, build: { platforms: string[]; compressionLevel?: number; format?: string }, sourceDateEpoch?: number): BuildEngine {
  return {
    name: 'direct',
    async build(request: DockerfileBuildRequest): Promise<BuildResult> {
      return withRegistryCheck(requestFrom(buildJob(request, build), flags, context, sourceDateEpoch), request.to, context);
    },
  };
}

/** `imgbuild __context unpack|wait|receive|ready`: the context receiver in a Node-only pod. */
export async function runContextReceiver(action: string, flags: { from?: string; to?: string; marker?: string; seconds?: string; size?: string }): Promise<void> {
  const to = flags.to ?? '/workspace';
  switch (action) {
    case 'unpack': {
      const count = await unpackFromConfigMap(flags.from!, to);
      process.stdout.write(`context: ${count} files in ${to}\n`);
      return;
    }
    case 'wait':
      process.stdout.write('waiting for the build context to be streamed in\n');
      await waitForMarker(flags.marker!, Number(flags.seconds ?? 600));
      process.stdout.write('context received\n');
      return;
    case 'receive': {
      const count = await receiveTar(process.stdin, Number(flags.size), to, (line) => process.stdout.write(`${line}\n`));
      process.stderr.write(`context: ${count} files in ${to}\n`);
      // stdin stays open on the client's side: leave without waiting for its end.
      process.exit(0);
    }
    // falls through (process.exit does not return)
    case 'ready':
      await writeMarker(flags.marker!);
      return;
    default:
      throw new UsageError(`unknown __context action ${action}`, 'this command is run by imgbuild in its build pods');
  }
}

/** `imgbuild runner-image --node-image REF --to REF`: the bundle added to a Node image, by the direct engine. */
export async function runRunnerImage(flags: { nodeImage: string; to: string; bundle?: string; platform: string[] }, context: CommandContext): Promise<BuildResult & { bundleSha256: string }> {
  const bundle = findBundle(flags.bundle);
  const bundleSha256 = createHash('sha256').update(await readFile(bundle)).digest('hex');
  parseReference(flags.to);
  const result = await addToImage({
    from: flags.nodeImage,
    to: flags.to,
    adds: [{ text: `${bundle}:${BUNDLE_IN_IMAGE}`, source: bundle, destination: BUNDLE_IN_IMAGE }],
    layerOptions: { chmod: 0o644 },
    edits: { labels: [`dev.imgbuild.bundle.sha256=${bundleSha256}`] },
    platforms: flags.platform.map(parsePlatform),
    clientFor: context.clientFor,
    tmpDir: context.workDir(),
    signal: context.signal,
    logger: context.logger,
  });
  return { ...result, engine: 'direct', layers: [], bundleSha256 };
}
