import { inspectImage } from '../../inspect.js';
import { parseReference } from '../../reference.js';
import type { RegistryFlags } from '../context.js';
import { formatBytes, shortDigest } from '../progress.js';
import { type OutputFormat, printJson, withContext } from './shared.js';

export interface InspectFlags extends RegistryFlags {
  raw?: boolean;
  output: OutputFormat;
}

export async function runInspect(reference: string, flags: InspectFlags): Promise<void> {
  const ref = parseReference(reference);
  await withContext(flags, ref.registry, async (context) => {
    const result = await inspectImage(reference, context.clientFor, { signal: context.signal });
    if (flags.raw) {
      process.stdout.write(result.raw);
      return;
    }
    if (flags.output === 'json') {
      const { raw: _raw, ...rest } = result;
      printJson(rest);
      return;
    }
    const lines = [`${result.reference}`, `media type: ${result.mediaType}`];
    if (result.index) lines.push(`platforms: ${result.images.map((image) => image.platform).join(', ')}`);
    for (const image of result.images) {
      lines.push('', `${image.platform}  ${image.digest}`);
      if (result.index) lines.push(`  media type: ${image.mediaType}`);
      const run = image.config;
      if (run.created) lines.push(`  created: ${run.created}`);
      if (run.user) lines.push(`  user: ${run.user}`);
      if (run.workingDir) lines.push(`  workdir: ${run.workingDir}`);
      if (run.entrypoint) lines.push(`  entrypoint: ${JSON.stringify(run.entrypoint)}`);
      if (run.cmd) lines.push(`  cmd: ${JSON.stringify(run.cmd)}`);
      for (const env of run.env ?? []) lines.push(`  env: ${env}`);
      for (const [key, value] of Object.entries(run.labels ?? {})) lines.push(`  label: ${key}=${value}`);
      for (const volume of run.volumes ?? []) lines.push(`  volume: ${volume}`);
      for (const port of run.exposedPorts ?? []) lines.push(`  expose: ${port}`);
      lines.push(`  layers (${image.layers.length}, ${formatBytes(image.totalSize)}):`);
      for (const layer of image.layers) lines.push(`    ${shortDigest(layer.digest)}  ${formatBytes(layer.size).padStart(8)}  ${layer.mediaType}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
