import { Command, CommanderError, Option } from 'commander';
import { ImgbuildError } from '../errors.js';
import { addCleanCommand, kanikoOptions, kubeOptions } from './kaniko-options.js';
import { addQuickstartCommand } from './quickstart.js';
import { addRegistryCommand } from './registry.js';
import { writeError } from './result-file.js';

// Each command's code is loaded only when that command runs: start-up time is part of every
// call, and `--help` or `add` need neither the Dockerfile frontend nor the Kubernetes client.

const VERSION = '0.1.0';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function registryOptions(command: Command): Command {
  return command
    .option('--insecure', 'allow plain HTTP and skip TLS certificate checks for the registries named')
    .option('--ca-file <PEM>', 'trust the CA certificates in this PEM file for TLS')
    .option('--cert-dir <DIR>', 'trust the *.crt CA certificates in this directory (as skopeo --cert-dir); certs.d/<host:port>/ of docker and podman and the system bundle ($SSL_CERT_FILE if set) are trusted without it')
    .option('--username <NAME>', 'user for the registry of the image written or read (--to for add), with --password-stdin; otherwise docker config and credential helpers are used')
    .option('--password-stdin', 'read the password for --username from standard input')
    .addOption(new Option('-o, --output <FORMAT>', 'result format on stdout').choices(['text', 'json']).default('text'))
    .option('-v, --verbose', 'log each registry step on stderr')
    .option('-q, --quiet', 'log only warnings and errors on stderr');
}

export function buildProgram(): Command {
  const program = new Command('imgbuild')
    .description('Build and push container images without a Docker daemon or privileged pods.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  registryOptions(kanikoOptions(
    program
      .command('add')
      .summary('add files and config changes to an image in a registry, and push the result')
      .description(
        'Append one layer built from local files to an existing image and push it under a new name.\n' +
          'Base layers are never downloaded: they stay in the registry or are mounted across repositories.\n' +
          'A multi-platform base gets the layer on every platform (or those named with --platform).',
      )
      .requiredOption('--from <REF>', 'the base image, e.g. registry:5000/ones/plugin-host-node:v6.33.1, or scratch for none')
      .requiredOption('--to <REF>', 'the tag to push, e.g. registry:5000/new-image:latest')
      .option('--add <SRC:DEST>', 'copy a local file or directory to DEST (absolute; ending in / means into that directory); repeatable', collect, [])
      .option('--chmod <MODE>', 'permission bits for the added files, e.g. 0644')
      .option('--chown <UID:GID>', 'numeric owner of the added files (default 0:0)')
      .option('--workdir <DIR>', 'set the working directory (WORKDIR)')
      .option('--user <USER>', 'set the user (USER), e.g. root or 1000:1000')
      .option('--env <KEY=VALUE>', 'set an environment variable; repeatable', collect, [])
      .option('--label <KEY=VALUE>', 'set a label; repeatable', collect, [])
      .option('--entrypoint <CMD>', 'set the entrypoint: a JSON array (exec form) or a shell command')
      .option('--cmd <CMD>', 'set the command: a JSON array (exec form) or a shell command')
      .option('--volume <PATH>', 'declare a volume (VOLUME); repeatable', collect, [])
      .option('--expose <PORT[/PROTO]>', 'declare an exposed port (EXPOSE); repeatable', collect, [])
      .option('--platform <OS/ARCH>', 'change only this platform of a multi-platform base; repeatable', collect, [])
      .option('--compression-level <0-9>', 'gzip level of the new layer (default 1)')
      .addOption(new Option('--format <TYPE>', "write the result in OCI or Docker v2 schema 2 media types (default: the base's; OCI for scratch)").choices(['oci', 'docker'])),
  ))
    .addHelpText(
      'after',
      `
Examples:
  # the seed job: add hello.txt, set USER and WORKDIR, push under a new name
  imgbuild add --from registry.local:5000/ones/plugin-host-node:v6.33.1 \\
    --add ./hello.txt:/opt/app/hello.txt --user root --workdir /opt/app \\
    --to registry.local:5000/new-kaniko-image:latest

  # the same, built by a Kaniko Job in the cluster, then run once from the new image
  imgbuild add --engine kaniko --insecure --from registry.kube-system.svc.cluster.local:5000/ones/plugin-host-node:v6.33.1 \\
    --add ./hello.txt:/opt/app/hello.txt --user root --workdir /opt/app \\
    --to registry.kube-system.svc.cluster.local:5000/new-kaniko-image:latest \\
    --verify-command 'cat /opt/app/hello.txt && echo OK' --pull-via localhost:5000

  # the same on the direct engine as a non-root pod, in a namespace that enforces Pod Security "restricted"
  imgbuild add --in-cluster -n team-a --ca-file ./registry-ca.pem \\
    --from registry.kube-system.svc.cluster.local:5000/ones/plugin-host-node:v6.33.1 \\
    --add ./hello.txt:/opt/app/hello.txt --user root --workdir /opt/app \\
    --to registry.kube-system.svc.cluster.local:5000/new-image:latest

  # a CA bundle into a directory, on a registry with a private CA
  imgbuild add --from reg:443/app:1 --add ./ca.crt:/usr/local/share/ca-certificates/ \\
    --ca-file ./registry-ca.pem --to reg:443/app:1-ca

Prints the pushed image as REPOSITORY@sha256:DIGEST (--output json for more).
Credentials come from docker's config (DOCKER_CONFIG, ~/.docker/config.json, credential
helpers) or REGISTRY_AUTH_FILE; or pass --username NAME --password-stdin.
SOURCE_DATE_EPOCH fixes file and image timestamps for reproducible digests.`,
    )
    .action(async (flags) => (await import('./commands/add.js')).runAdd(flags));

  registryOptions(kanikoOptions(
    program
      .command('build')
      .summary('build a Dockerfile and push the image (no daemon; RUN-less Dockerfiles need no container)')
      .description(
        'Build a Dockerfile and push the result. Without RUN the direct engine builds it from the registry: ' +
          'base layers are never uploaded again, each COPY/ADD becomes one layer and every instruction one ' +
          'history entry, as docker writes them. With RUN it needs the Kaniko engine.',
      )
      .argument('<CONTEXT>', 'the build context directory COPY and ADD read from')
      .option('-f, --file <DOCKERFILE>', 'the Dockerfile (default: CONTEXT/Dockerfile)')
      .requiredOption('--to <REF>', 'the tag to push, e.g. registry:5000/new-image:latest')
      .option('--build-arg <K=V>', 'set a build-time variable (ARG); a bare K takes its value from the environment; repeatable', collect, [])
      .option('--target <STAGE>', 'build this stage (default: the last)')
      .option('--label <KEY=VALUE>', 'set a label on the result; repeatable', collect, [])
      .option('--platform <OS/ARCH>', 'change only this platform of a multi-platform base; repeatable', collect, [])
      .addOption(new Option('--engine <ENGINE>', 'auto: direct unless the stages built have RUN, then kaniko').choices(['auto', 'direct', 'kaniko']).default('auto'))
      .option('--compression-level <0-9>', 'gzip level of the new layers (default 1)')
      .addOption(new Option('--format <TYPE>', "write the result in OCI or Docker v2 schema 2 media types (default: the base's; OCI for scratch)").choices(['oci', 'docker'])),
    { engineOption: false },
  ))
    .addHelpText(
      'after',
      `
Examples:
  # the report's Dockerfile: FROM ..., USER root, WORKDIR /opt/app, COPY hello.txt /opt/app/hello.txt
  imgbuild build . --to registry.local:5000/new-kaniko-image:latest

  imgbuild build -f deploy/Dockerfile --build-arg VERSION=1.2 --target runtime ./src --to reg:5000/app:1.2

  # in the cluster: without RUN as a restricted pod on the direct engine, with RUN on Kaniko
  imgbuild build . --in-cluster -n team-a --to registry.kube-system.svc.cluster.local:5000/app:1

Prints the pushed image as REPOSITORY@sha256:DIGEST (--output json for more).
Where COPY's meaning depends on the base's files (is DEST a directory, --chown names, does
WORKDIR exist) the base layers are indexed once and cached in $XDG_CACHE_HOME/imgbuild.`,
    )
    .action(async (context, flags) => (await import('./commands/build.js')).runBuild(context, flags));

  registryOptions(
    program
      .command('inspect')
      .summary('show an image: media type, platforms, layers, config')
      .argument('<REF>', 'image reference')
      .option('--raw', 'print the manifest bytes exactly as the registry serves them'),
  )
    .addHelpText('after', '\nExamples:\n  imgbuild inspect localhost:5000/new-kaniko-image:latest\n  imgbuild inspect --raw localhost:5000/app:1 | jq .')
    .action(async (reference, flags) => (await import('./commands/inspect.js')).runInspect(reference, flags));

  registryOptions(
    program
      .command('verify')
      .summary('read a file out of an image in the registry and check its content')
      .argument('<REF>', 'image reference')
      .option('--file <PATH>', 'absolute path of the file in the image')
      .option('--expect-file <LOCAL>', 'exit 1 unless the file equals this local file')
      .option('--expect-text <TEXT>', 'exit 1 unless the file equals this text')
      .option('--platform <OS/ARCH>', 'platform of a multi-platform image (default: this machine)')
      .option('--in-cluster', 'instead of reading a file, run --command in a pod from the image in the cluster, print its output')
      .option('--command <SH>', 'with --in-cluster: the shell command to run')
      .option('--expect-output <TEXT>', 'with --in-cluster: exit 1 unless the output is exactly this')
      .option('--pull-via <HOST:PORT>', "with --in-cluster: the registry address the nodes pull through (replaces REF's)"),
  )
    .description(
      'Read a file from the image without pulling it: layers are read top down\n' +
        '(whiteouts honoured), only as far as needed. Each layer read is read to its\n' +
        'end and checked against its digest and diff_id before anything is printed;\n' +
        'meanwhile the file waits in a temp file (with --expect-*, only the bytes that\n' +
        'differ from the expected content), so memory stays flat. Then the file goes\n' +
        'to stdout (-o json: size, sha256, and the content up to 1 MiB). Exits 1 when\n' +
        'a layer does not match its digest, or the file is absent or differs.',
    )
    .addHelpText('after', '\nExamples:\n  imgbuild verify localhost:5000/new-kaniko-image:latest --file /opt/app/hello.txt --expect-file ./hello.txt')
    .action(async (reference, flags) => (await import('./commands/verify.js')).runVerify(reference, flags));
  kubeOptions(program.commands.find((command) => command.name() === 'verify')!);

  registryOptions(
    program
      .command('runner-image')
      .summary('make an image that runs --in-cluster builds: imgbuild added to a Node image')
      .description(
        'Add imgbuild (its one-file bundle, at /imgbuild/imgbuild.mjs) to a Node >= 20 image whose entrypoint is node,\n' +
          'and push it. `add/build --in-cluster --runner-image REF` then needs no ConfigMap for imgbuild itself.',
      )
      .requiredOption('--node-image <REF>', 'the Node image to add imgbuild to')
      .requiredOption('--to <REF>', 'the tag to push')
      .option('--platform <OS/ARCH>', 'only this platform of a multi-platform Node image; repeatable', collect, []),
  )
    .addHelpText('after', '\nExamples:\n  imgbuild runner-image --node-image registry:5000/node:22 --to registry:5000/imgbuild-runner:0.1.0')
    .action(async (flags) => (await import('./commands/runner-image.js')).runRunnerImageCommand(flags));

  // Run by imgbuild in its --in-cluster build pods, whose image may have no shell: lays the build context out.
  program
    .command('__context', { hidden: true })
    .argument('<ACTION>', 'unpack | wait | receive | ready')
    .option('--from <DIR>')
    .option('--to <DIR>')
    .option('--marker <FILE>')
    .option('--seconds <N>')
    .option('--size <BYTES>')
    .action(async (action: string, flags: Record<string, string>) => (await import('./in-cluster.js')).runContextReceiver(action, flags));

  addCleanCommand(program);
  addRegistryCommand(program);
  addQuickstartCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return 2; // commander has printed the problem
    }
    if (error instanceof ImgbuildError) {
      writeError(error);
      process.stderr.write(`error: ${error.message}\n`);
      if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
      return error.exitCode;
    }
    writeError({ message: `internal error: ${(error as Error)?.message ?? String(error)}`, hint: 'this is a bug in imgbuild; the pod log has the stack' });
    process.stderr.write(`internal error: ${(error as Error)?.stack ?? String(error)}\nThis is a bug in imgbuild; please report it with the command you ran.\n`);
    return 70;
  }
}
