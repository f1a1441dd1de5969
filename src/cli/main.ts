import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { addToImage } from '../add.js';
import { buildDockerfile, chooseEngineFor, directEngine } from '../engines/direct.js';
import { type BuildEngine, type EngineChoice } from '../engines/engine.js';
import { defaultCacheDir } from '../plan/base-files.js';
import { resolveEngineOptions } from '../plan/options.js';
import { ImgbuildError, InputError, UsageError, VerifyFailure } from '../errors.js';
import { type AddSpec, parseAddSpec, parseChmod, parseChown } from '../image/layer.js';
import { type ConfigEdits, parseCommand } from '../image/mutate.js';
import { parsePlatform } from '../image/platform.js';
import { inspectImage } from '../inspect.js';
import { parseReference } from '../reference.js';
import { ContentSpool, type ExpectedContent, expectedBytes, expectedFile } from '../content-spool.js';
import { readFileFromImage } from '../verify.js';
import { createContext, type CommandContext, exitCodeForSignal, type RegistryFlags } from './context.js';
import { addCleanCommand, kanikoOptions, kubeOptions, type InClusterVerifyFlags, type KanikoFlags } from './kaniko-options.js';
import { formatBytes, shortDigest, terminalProgress } from './progress.js';
import { addRegistryCommand } from './registry.js';
import { writeError, writeResult } from './result-file.js';

const VERSION = '0.1.0';

type OutputFormat = 'text' | 'json';

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

function sourceDateEpoch(): number | undefined {
  const value = process.env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH="${value}" is not a number of seconds`, 'set it to an integer such as $(git log -1 --format=%ct), or unset it');
  return Number(value);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withContext<T>(flags: RegistryFlags, credentialRegistry: string | undefined, run: (context: CommandContext) => Promise<T>): Promise<T> {
  const context = await createContext(flags, credentialRegistry);
  try {
    return await run(context);
  } catch (error) {
    // Whatever the interrupted work ended with, the interrupt is what the user needs to hear.
    const signal = context.interruptedBy;
    if (signal) throw new ImgbuildError(`interrupted (${signal}): stopped and cleaned up`, { exitCode: exitCodeForSignal(signal), cause: error });
    throw error;
  } finally {
    await context.close();
  }
}

interface AddFlags extends RegistryFlags, Omit<KanikoFlags, 'output'> {
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

function compressionLevel(text: string | undefined): number | undefined {
  const level = text === undefined ? undefined : Number(text);
  if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
    throw new UsageError(`--compression-level ${text} is not 0-9`, 'use 1 (fast, the default) to 9 (smallest)');
  }
  return level;
}

async function runAdd(flags: AddFlags): Promise<void> {
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
    const { printInClusterResult, runAddInCluster } = await import('./in-cluster.js');
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
    const { runAddWithKaniko } = await import('./kaniko.js');
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

interface BuildFlags extends RegistryFlags, Omit<KanikoFlags, 'output' | 'engine'> {
  file?: string;
  to: string;
  buildArg: string[];
  target?: string;
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

async function runBuild(contextDir: string, flags: BuildFlags): Promise<void> {
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
    const request = { dockerfilePath: relative && !relative.startsWith('..') ? relative : path.resolve(dockerfilePath), dockerfileText, context: contextDir, to: flags.to, buildArgs: parseBuildArgs(flags.buildArg), target: flags.target };
    const kanikoFlags = { ...flags, engine: 'kaniko' as const };
    const inCluster = { platforms: flags.platform, compressionLevel: compressionLevel(flags.compressionLevel), format: flags.format };
    // With --in-cluster the engine is chosen from the Dockerfile alone: its registries may be reachable only from the cluster.
    const chooseFrom = flags.inCluster ? 'dockerfile' : 'registry';
    if (flags.dryRun) {
      if (flags.engine !== 'kaniko' && !flags.inCluster) throw new UsageError('--dry-run goes with --engine kaniko or --in-cluster', 'the direct engine applies nothing to a cluster; add --in-cluster or --engine kaniko to see the objects a cluster build would apply');
      if (flags.inCluster && flags.engine !== 'kaniko') {
        const engine = flags.engine === 'direct' ? 'direct' : (await chooseEngineFor(request, flags.engine, options, chooseFrom)).engine;
        if (engine === 'direct') {
          process.stdout.write(await (await import('./in-cluster.js')).renderBuildInCluster(request, { ...flags, engine: undefined }, inCluster, sourceDateEpoch()));
          return;
        }
      }
      process.stdout.write(await (await import('./kaniko.js')).renderBuildWithKaniko(request, kanikoFlags));
      return;
    }
    // Loaded only when a build goes to the cluster: the Kubernetes client is not needed otherwise.
    const kaniko: BuildEngine = { name: 'kaniko', build: async (built) => (await import('./kaniko.js')).kanikoBuildEngine(kanikoFlags, context).build(built) };
    const direct: BuildEngine = flags.inCluster
      ? { name: 'direct', build: async (built) => (await import('./in-cluster.js')).inClusterBuildEngine({ ...flags, engine: undefined }, context, inCluster, sourceDateEpoch()).build(built) }
      : directEngine(options);
    const result = await buildDockerfile(request, flags.engine, { direct, kaniko }, options, (engine, reason) =>
      context.logger.info(`engine: ${engine}${flags.inCluster && engine === 'direct' ? ' in the cluster (--in-cluster)' : ''} (${reason})`), chooseFrom);
    if ((result as { inCluster?: boolean }).inCluster) {
      (await import('./in-cluster.js')).printInClusterResult(result as never, flags.output, context.logger);
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

interface InspectFlags extends RegistryFlags {
  raw?: boolean;
  output: OutputFormat;
}

async function runInspect(reference: string, flags: InspectFlags): Promise<void> {
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

interface VerifyFlags extends RegistryFlags, Omit<InClusterVerifyFlags, 'output'> {
  file?: string;
  inCluster?: boolean;
  expectFile?: string;
  expectText?: string;
  platform?: string;
  output: OutputFormat;
}

/** Text as text; anything that is not valid UTF-8 without NULs as base64. */
function contentField(content: Buffer): { content: string } | { contentBase64: string } {
  const text = content.toString('utf8');
  return !text.includes('\0') && Buffer.from(text, 'utf8').equals(content) ? { content: text } : { contentBase64: content.toString('base64') };
}

/** Files up to this size are embedded in --output json; bigger ones are named by size and sha256. */
const JSON_CONTENT_LIMIT = 1024 * 1024;

async function runVerify(reference: string, flags: VerifyFlags): Promise<void> {
  if (flags.inCluster) return (await import('./kaniko.js')).runVerifyInCluster(reference, flags);
  const file = flags.file;
  if (file === undefined) throw new UsageError('verify needs --file PATH (or --in-cluster --command SH)', 'name the file to read, e.g. --file /opt/app/hello.txt');
  if (flags.expectFile !== undefined && flags.expectText !== undefined) {
    throw new UsageError('--expect-file and --expect-text both given', 'compare against one of them');
  }
  const ref = parseReference(reference);
  let expected: ExpectedContent | undefined;
  if (flags.expectText !== undefined) expected = expectedBytes(Buffer.from(flags.expectText));
  if (flags.expectFile !== undefined) expected = await expectedFile(flags.expectFile, `--expect-file ${flags.expectFile}`);
  try {
    await withContext(flags, ref.registry, async (context) => {
      // The file's bytes wait in the spool until every layer read has passed its digest checks:
      // nothing reaches stdout before that, so what is printed is what the image holds.
      const json = flags.output === 'json';
      const spool = new ContentSpool({ expected, spoolDir: () => context.workDir(), sha256: json, ...(json ? { keepAtMost: JSON_CONTENT_LIMIT } : {}) });
      try {
        await verifyWithSpool(reference, { ...flags, file }, context, spool);
      } finally {
        await spool.close();
      }
    });
  } finally {
    await expected?.close();
  }
}

async function verifyWithSpool(reference: string, flags: VerifyFlags & { file: string }, context: CommandContext, spool: ContentSpool): Promise<void> {
  const result = await readFileFromImage(reference, flags.file, context.clientFor, flags.platform ? parsePlatform(flags.platform) : undefined, { sink: spool, signal: context.signal });
  const lookup = result.lookup;
  const content = spool.result();
  const matches = lookup.found && content.matches !== false;
  if (flags.output === 'json') {
    const embedded = lookup.found && content.size <= JSON_CONTENT_LIMIT ? contentField(await spool.toBuffer()) : {};
    printJson({
      reference: result.reference,
      platform: result.platform,
      path: result.path,
      found: lookup.found,
      ...(lookup.found ? { size: content.size, sha256: content.sha256, layer: lookup.layerDigest, ...embedded } : { reason: lookup.reason }),
      ...(content.matches === undefined ? {} : { matches }),
      layersRead: result.layersRead,
      layerCount: result.layerCount,
    });
  } else if (lookup.found) {
    // The verdict is known before the file is printed: a reader that closes the pipe early
    // (the EPIPE handler exits with process.exitCode) still gets the failure.
    if (!matches) process.exitCode = 1;
    await spool.writeTo(process.stdout);
  }
  if (!lookup.found) {
    const why = lookup.reason === 'whiteout' ? 'it was deleted by a whiteout in a layer' : (lookup.detail ?? 'no layer has it');
    throw new VerifyFailure(`${flags.file} is not in ${result.reference} (${result.platform}): ${why}`, {
      hint: 'check the path, and the platform with --platform; `imgbuild inspect` shows the layers',
    });
  }
  context.logger.debug(`read ${flags.file} from layer ${lookup.layerDigest} (${result.layersRead} of ${result.layerCount} layers fetched, each checked against its digest)`);
  if (!matches) {
    throw new VerifyFailure(
      `${flags.file} in ${result.reference} differs from the expected content from byte ${content.firstDifference} on (${content.size} bytes in the image, ${content.expectedSize} expected)`,
      { hint: 'the image does not hold what you expected: rebuild it, or check that --to and the verified reference are the same' },
    );
  }
  if (content.matches) context.logger.info(`${flags.file}: matches`);
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

  # a CA bundle into a directory, on a registry with a private CA
  imgbuild add --from reg:443/app:1 --add ./ca.crt:/usr/local/share/ca-certificates/ \\
    --ca-file ./registry-ca.pem --to reg:443/app:1-ca

Prints the pushed image as REPOSITORY@sha256:DIGEST (--output json for more).
Credentials come from docker's config (DOCKER_CONFIG, ~/.docker/config.json, credential
helpers) or REGISTRY_AUTH_FILE; or pass --username NAME --password-stdin.
SOURCE_DATE_EPOCH fixes file and image timestamps for reproducible digests.`,
    )
    .action(runAdd);

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

Prints the pushed image as REPOSITORY@sha256:DIGEST (--output json for more).
Where COPY's meaning depends on the base's files (is DEST a directory, --chown names, does
WORKDIR exist) the base layers are indexed once and cached in $XDG_CACHE_HOME/imgbuild.`,
    )
    .action(runBuild);

  registryOptions(
    program
      .command('inspect')
      .summary('show an image: media type, platforms, layers, config')
      .argument('<REF>', 'image reference')
      .option('--raw', 'print the manifest bytes exactly as the registry serves them'),
  )
    .addHelpText('after', '\nExamples:\n  imgbuild inspect localhost:5000/new-kaniko-image:latest\n  imgbuild inspect --raw localhost:5000/app:1 | jq .')
    .action(runInspect);

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
    .action(runVerify);
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
    .action(async (flags: RegistryFlags & { nodeImage: string; to: string; platform: string[]; output: OutputFormat }) => {
      const { runRunnerImage } = await import('./in-cluster.js');
      await withContext(flags, parseReference(flags.to).registry, async (context) => {
        const result = await runRunnerImage(flags, context);
        if (flags.output === 'json') printJson(result);
        else process.stdout.write(`${result.reference}\n`);
      });
    });

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
