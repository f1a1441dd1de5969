import { Option, type Command } from 'commander';

/** `imgbuild quickstart` (its code is loaded when it runs: src/cli/commands/quickstart.ts). */
export function addQuickstartCommand(program: Command): void {
  program
    .command('quickstart')
    .summary("run the report's job on an embedded registry, in seconds, with nothing else installed")
    .description(
      'Starts an embedded registry on a free loopback port in a temporary directory, makes a\n' +
        "small base image there from files it writes (nothing is downloaded), then does the field\n" +
        "report's job twice on the direct engine: `imgbuild add` of hello.txt at /opt/app/hello.txt\n" +
        "with USER root and WORKDIR /opt/app, and `imgbuild build` of the report's Dockerfile. It reads\n" +
        'the file back from the registry, prints each step, the digests and the commands to try\n' +
        'next, then stops the registry and removes the directory (also on Ctrl-C).',
    )
    .option('--keep', 'leave the registry running (in the foreground) and print its address; Ctrl-C stops it and removes its directory')
    .addOption(new Option('-o, --output <FORMAT>', 'result format on stdout').choices(['text', 'json']).default('text'))
    .option('-v, --verbose', 'log each registry request (client and server) on stderr')
    .option('-q, --quiet', 'log only warnings and errors on stderr')
    .addHelpText(
      'after',
      `
Examples:
  npx imgbuild quickstart
  npx imgbuild quickstart --keep      # then, in another terminal: skopeo inspect --tls-verify=false docker://ADDRESS/new-kaniko-image:latest
  npx imgbuild quickstart -o json | jq .add.digest

Steps go to stderr, results (digests, next commands) to stdout. See docs/quickstart.md.`,
    )
    .action(async (flags) => (await import('./commands/quickstart.js')).runQuickstartCommand(flags));
}
