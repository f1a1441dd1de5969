import { parseReference } from '../../reference.js';
import type { RegistryFlags } from '../context.js';
import { type OutputFormat, printJson, withContext } from './shared.js';

export async function runRunnerImageCommand(flags: RegistryFlags & { nodeImage: string; to: string; platform: string[]; output: OutputFormat }): Promise<void> {
  const { runRunnerImage } = await import('../in-cluster.js');
  await withContext(flags, parseReference(flags.to).registry, async (context) => {
    const result = await runRunnerImage(flags, context);
    if (flags.output === 'json') printJson(result);
    else process.stdout.write(`${result.reference}\n`);
  });
}
