import { statSync } from 'node:fs';
import path from 'node:path';
import { addToImage } from '../../add.js';
import { UsageError } from '../../errors.js';
import { type AddSpec, parseAddSpec, parseChmod, parseChown } from '../../image/layer.js';
import { type ConfigEdits, parseCommand } from '../../image/mutate.js';
import { parsePlatform } from '../../image/platform.js';
import { parseReference } from '../../reference.js';
import type { RegistryFlags } from '../context.js';
import type { KanikoFlags } from '../kaniko-options.js';
import { terminalProgress } from '../progress.js';
import { writeResult } from '../result-file.js';
import { compressionLevel, type OutputFormat, printJson, sourceDateEpoch, withContext } from './shared.js';

export interface AddFlags extends RegistryFlags, Omit<KanikoFlags, 'output'> {
  from: string;
  to: string;
  add: string[];
  chmod?: string;
  chown?: string;
  workdir?: string;
  user?: string;
  env: string[];
  label: string[];
  entrypoint?: string;
  cmd?: string;
  platform: string[];
  volume: string[];
  expose: string[];
  compressionLevel?: string;
  format?: 'oci' | 'docker';
  output: OutputFormat;
}

/**
 * A file added to a DEST without an extension, from a SRC with one (`hello.txt:/opt/app`),
 * is usually meant to go into a directory; the base is not read, so only a warning is possible.
 */
function looksLikeDirectoryMeant(spec: AddSpec): boolean {
  if (spec.destination.endsWith('/') || path.extname(spec.destination) !== '' || path.extname(spec.source) === '') return false;
  try {
    return statSync(spec.source).isFile();
  } catch {
    return false;
  }
}

export async function runAdd(flags: AddFlags): Promise<void> {
  const adds = flags.add.map(parseAddSpec);
  const level = compressionLevel(flags.compressionLevel);
  const edits: ConfigEdits = {
    workdir: flags.workdir,
    user: flags.user,
    env: flags.env,
    labels: flags.label,
    entrypoint: flags.entrypoint === undefined ? undefined : parseCommand(flags.entrypoint, '--entrypoint'),
    cmd: flags.cmd === undefined ? undefined : parseCommand(flags.cmd, '--cmd'),
    volumes: flags.volume,
    expose: flags.expose,
  };
  const chmod = flags.chmod === undefined ? undefined : parseChmod(flags.chmod);
  const chown = flags.chown === undefined ? undefined : parseChown(flags.chown);
  if (flags.inCluster) {
    const { printInClusterResult, runAddInCluster } = await import('../in-cluster.js');
    const add = {
      from: flags.from,
      to: flags.to,
      adds,
      chmod: flags.chmod,
      chown: flags.chown,
      workdir: flags.workdir,
      user: flags.user,
      env: flags.env,
      labels: flags.label,
      entrypoint: flags.entrypoint,
      cmd: flags.cmd,
      volumes: flags.volume,
      expose: flags.expose,
      platforms: flags.platform,
      compressionLevel: level,
      format: flags.format,
    };
    if (flags.dryRun) {
      await runAddInCluster(add, flags, undefined, sourceDateEpoch());
      return;
    }
    await withContext(flags, parseReference(flags.to).registry, async (context) => {
      const result = await runAddInCluster(add, flags, context, sourceDateEpoch());
      printInClusterResult(result!, flags.output, context.logger);
    });
    return;
  }
  if (flags.engine === 'kaniko') {
    const { runAddWithKaniko } = await import('../kaniko.js');
    await runAddWithKaniko({ from: flags.from, to: flags.to, adds, edits, chmod, chown, compressionLevel: level, platform: flags.platform, format: flags.format }, flags);
    return;
  }
  if (flags.dryRun) throw new UsageError('--dry-run goes with --engine kaniko or --in-cluster', 'the direct engine applies nothing to a cluster; add --in-cluster or --engine kaniko to see the objects a cluster build would apply');
  const destination = parseReference(flags.to);
  await withContext(flags, destination.registry, async (context) => {
    for (const spec of adds) {
      if (looksLikeDirectoryMeant(spec)) {
        context.logger.warn(
          `--add ${spec.text} writes the file as ${spec.destination}; if ${spec.destination} is a directory in the base, end DEST with / to copy into it`,
        );
      }
    }
    const result = await addToImage({
      from: flags.from,
      to: flags.to,
      adds,
      layerOptions: { chmod, chown, compressionLevel: level },
      edits,
      platforms: flags.platform.map(parsePlatform),
      format: flags.format,
      sourceDateEpoch: sourceDateEpoch(),
      clientFor: context.clientFor,
      tmpDir: context.workDir(),
      signal: context.signal,
      logger: context.logger,
      events: process.stderr.isTTY && !flags.quiet ? terminalProgress() : undefined,
    });
    writeResult({ ...result });
    if (flags.output === 'json') {
      printJson(result);
      return;
    }
    const { blobs } = result;
    context.logger.info(
      `pushed ${flags.to} (${result.platforms.join(', ')}): ${blobs.uploaded} uploaded, ${blobs.mounted} mounted, ${blobs.existed} already there${blobs.copied ? `, ${blobs.copied} copied` : ''}`,
    );
    process.stdout.write(`${result.reference}\n`);
  });
}
