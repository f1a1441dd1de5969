import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { buildDockerfile, chooseEngineFor, directEngine } from '../../engines/direct.js';
import { type BuildEngine, type EngineChoice } from '../../engines/engine.js';
import { InputError, UsageError } from '../../errors.js';
import { parsePlatform } from '../../image/platform.js';
import { parseKeyValue } from '../../image/mutate.js';
import { defaultCacheDir } from '../../plan/base-files.js';
import { resolveEngineOptions } from '../../plan/options.js';
import { parseReference } from '../../reference.js';
import type { RegistryFlags } from '../context.js';
import type { KanikoFlags } from '../kaniko-options.js';
import { terminalProgress } from '../progress.js';
import { writeResult } from '../result-file.js';
import { compressionLevel, type OutputFormat, printJson, sourceDateEpoch, withContext } from './shared.js';

export interface BuildFlags extends RegistryFlags, Omit<KanikoFlags, 'output' | 'engine'> {
  file?: string;
  to: string;
  buildArg: string[];
  target?: string;
  label: string[];
  platform: string[];
  engine: EngineChoice;
  compressionLevel?: string;
  format?: 'oci' | 'docker';
  output: OutputFormat;
}

/** `--build-arg K=V`, or a bare `K` taking its value from the environment as docker does (skipped when unset). */
function parseBuildArgs(values: readonly string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    if (equals === 0) throw new UsageError(`--build-arg ${value} has no name`, 'write --build-arg NAME=value, or --build-arg NAME to pass it from the environment');
    if (equals > 0) args[value.slice(0, equals)] = value.slice(equals + 1);
    else if (process.env[value] !== undefined) args[value] = process.env[value]!;
  }
  return args;
}

export async function runBuild(contextDir: string, flags: BuildFlags): Promise<void> {
  const dockerfilePath = flags.file ?? path.join(contextDir, 'Dockerfile');
  const dockerfileText = await readFile(dockerfilePath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(`cannot read the Dockerfile ${dockerfilePath}: ${error.code ?? error.message}`, { hint: 'give its path with -f, or put a Dockerfile in the context directory' });
  });
  if (!statSync(contextDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`the build context ${contextDir} is not a directory`, 'give the directory COPY reads from, e.g. imgbuild build . --to ...');
  }
  const destination = parseReference(flags.to);
  await withContext(flags, destination.registry, async (context) => {
    const options = resolveEngineOptions(
      {
        to: flags.to,
        storageFor: context.clientFor,
        platforms: flags.platform.map(parsePlatform),
        format: flags.format,
        sourceDateEpoch: sourceDateEpoch(),
        compressionLevel: compressionLevel(flags.compressionLevel),
        tmpDir: context.workDir(),
        signal: context.signal,
        logger: context.logger,
        events: process.stderr.isTTY && !flags.quiet ? terminalProgress() : undefined,
      },
      defaultCacheDir,
    );
    const relative = path.relative(process.cwd(), dockerfilePath);
    // Checked here, so a Kaniko build fails before it starts too.
    for (const label of flags.label) parseKeyValue(label, '--label');
    const request = { dockerfilePath: relative && !relative.startsWith('..') ? relative : path.resolve(dockerfilePath), dockerfileText, context: contextDir, to: flags.to, buildArgs: parseBuildArgs(flags.buildArg), target: flags.target, labels: flags.label };
    const kanikoFlags = { ...flags, engine: 'kaniko' as const };
    const inCluster = { platforms: flags.platform, compressionLevel: compressionLevel(flags.compressionLevel), format: flags.format };
    // With --in-cluster the engine is chosen from the Dockerfile alone: its registries may be reachable only from the cluster.
    const chooseFrom = flags.inCluster ? 'dockerfile' : 'registry';
    if (flags.dryRun) {
      if (flags.engine !== 'kaniko' && !flags.inCluster) throw new UsageError('--dry-run goes with --engine kaniko or --in-cluster', 'the direct engine applies nothing to a cluster; add --in-cluster or --engine kaniko to see the objects a cluster build would apply');
      if (flags.inCluster && flags.engine !== 'kaniko') {
        const engine = flags.engine === 'direct' ? 'direct' : (await chooseEngineFor(request, flags.engine, options, chooseFrom)).engine;
        if (engine === 'direct') {
          process.stdout.write(await (await import('../in-cluster.js')).renderBuildInCluster(request, { ...flags, engine: undefined }, inCluster, sourceDateEpoch()));
          return;
        }
      }
      process.stdout.write(await (await import('../kaniko.js')).renderBuildWithKaniko(request, kanikoFlags));
      return;
    }
    // Loaded only when a build goes to the cluster: the Kubernetes client is not needed otherwise.
    const kaniko: BuildEngine = { name: 'kaniko', build: async (built) => (await import('../kaniko.js')).kanikoBuildEngine(kanikoFlags, context).build(built) };
    const direct: BuildEngine = flags.inCluster
      ? { name: 'direct', build: async (built) => (await import('../in-cluster.js')).inClusterBuildEngine({ ...flags, engine: undefined }, context, inCluster, sourceDateEpoch()).build(built) }
      : directEngine(options);
    const result = await buildDockerfile(request, flags.engine, { direct, kaniko }, options, (engine, reason) =>
      context.logger.info(`engine: ${engine}${flags.inCluster && engine === 'direct' ? ' in the cluster (--in-cluster)' : ''} (${reason})`), chooseFrom);
    if ((result as { inCluster?: boolean }).inCluster) {
      (await import('../in-cluster.js')).printInClusterResult(result as never, flags.output, context.logger);
      return;
    }
    writeResult({ ...result });
    if (flags.output === 'json') {
      printJson(result);
      return;
    }
    const blobs = result.blobs;
    const counts = blobs ? `: ${blobs.uploaded} uploaded, ${blobs.mounted} mounted, ${blobs.existed} already there${blobs.copied ? `, ${blobs.copied} copied` : ''}` : '';
    context.logger.info(`pushed ${flags.to} (${result.platforms.join(', ')})${counts}`);
    process.stdout.write(`${result.reference}\n`);
  });
}
