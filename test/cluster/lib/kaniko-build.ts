/**
 * `build --engine kaniko` until the `build` command lands: the same flags and the same entry point
 * (runKanikoBuild) the CLI's build command is to call. Usage:
 *   npx tsx test/cluster/lib/kaniko-build.ts CONTEXT --to REF [-f DOCKERFILE] [--build-arg K=V] [--target T] [kaniko flags]
 */
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ImgbuildError } from '../../../src/errors.js';
import { kanikoOptions, type KanikoFlags } from '../../../src/cli/kaniko-options.js';
import { runKanikoBuild } from '../../../src/cli/kaniko.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const program = kanikoOptions(
  new Command('kaniko-build')
    .argument('<CONTEXT>')
    .requiredOption('--to <REF>')
    .option('-f, --file <DOCKERFILE>')
    .option('--build-arg <K=V>', '', collect, [])
    .option('--label <K=V>', '', collect, [])
    .option('--target <STAGE>')
    .option('--insecure')
    .option('--ca-file <PEM>')
    .option('-v, --verbose')
    .option('-q, --quiet')
    .addOption(new Option('-o, --output <FORMAT>').choices(['text', 'json']).default('text')),
)
  .exitOverride()
  .action(async (context: string, flags: KanikoFlags & { to: string; file?: string; buildArg: string[]; label: string[]; target?: string }) => {
    await runKanikoBuild(
      { dockerfile: { path: flags.file ? path.resolve(flags.file) : 'Dockerfile' }, contextDir: context, destination: flags.to, buildArgs: flags.buildArg, labels: flags.label, target: flags.target },
      { ...flags, engine: 'kaniko' },
    );
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ImgbuildError) {
    process.stderr.write(`error: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`);
    process.exit(error.exitCode);
  }
  if (error instanceof CommanderError) process.exit(2);
  throw error;
}
