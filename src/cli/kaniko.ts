/**
 * The command-line side of the cluster engines: the Kubernetes and Kaniko flags, `add --engine
 * kaniko`, `verify --in-cluster` and `clean`. Library calls do the work; this file maps flags,
 * prints results on stdout and logs on stderr, and turns Ctrl-C into an abort that cleans up.
 */
import { lookup } from 'node:dns/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { exitCodeForSignal } from './context.js';
import { type CleanFlags, type InClusterVerifyFlags, type KanikoFlags, type KubeFlags, parseDuration } from './kaniko-options.js';
import { type AddSpec } from '../image/layer.js';
import type { ConfigEdits } from '../image/mutate.js';
import { createLogger, type Logger } from '../logger.js';
import { parseReference, registryApiHost } from '../reference.js';
import { RegistryClient } from '../registry/client.js';
import { createCredentialStore } from '../registry/credentials.js';
import { resolveCluster, type ClusterOptions } from '../kubernetes/config.js';
import type { ContextFile } from '../kubernetes/context-files.js';
import { collectContextDirectory } from '../kubernetes/context-files.js';
import { ClusterApi } from '../kubernetes/run/api.js';
import { cleanBuildObjects, deleteBuildObjects } from '../kubernetes/run/cleanup.js';
import { buildWithKaniko, type KanikoBuildRequest, type KanikoBuildResult, pullReference, renderKanikoBuild, verifyInCluster } from '../engines/kaniko.js';
import { dockerfileForAdd, type GeneratedCopy } from '../engines/kaniko-render.js';
import type { BuildEngine, BuildResult, DockerfileBuildRequest } from '../engines/engine.js';

export function clusterOptions(flags: KubeFlags): ClusterOptions {
  return { kubeconfig: flags.kubeconfig, context: flags.context, namespace: flags.namespace };
}

/** Whether this machine resolves the destination's registry host (a cluster-internal name does not). */
export async function resolvesHere(destination: string, logger: Logger): Promise<boolean> {
  const host = registryApiHost(parseReference(destination).registry).replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return lookup(host).then(
    () => true,
    () => {
      logger.debug(`${host} does not resolve from this machine: the tag is not confirmed from here`);
      return false;
    },
  );
}

/** Confirms tags only on registries this machine can resolve: a cluster-internal name is skipped at once. */
function reachableClientFor(flags: KanikoFlags, logger: Logger) {
  const credentials = createCredentialStore();
  const clients = new Map<string, RegistryClient>();
  const clientFor = (registry: string) => {
    let client = clients.get(registry);
    if (!client) {
      client = new RegistryClient(registry, { insecure: flags.insecure, caFile: flags.caFile, credentials, logger: createLogger('warn', () => {}) });
      clients.set(registry, client);
    }
    return client;
  };
  return { credentials, clientFor, resolvable: (destination: string) => resolvesHere(destination, logger), close: () => Promise.all([...clients.values()].map((client) => client.close())) };
}

/** A one-line progress display of a streamed context (TTY only), at most every 200 ms. */
export function contextProgress(): (sent: number, total: number) => void {
  let last = 0;
  return (sent, total) => {
    const now = Date.now();
    if (sent < total && now - last < 200) return;
    last = now;
    process.stderr.write(`\rcontext: ${(sent / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB sent${sent >= total ? '\n' : ''}`);
  };
}

/** Ctrl-C / SIGTERM abort the build (which deletes its objects); a second one exits at once. */
function interruptible(logger: Logger): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(exitCodeForSignal(signal));
    logger.warn(`${signal}: stopping the build and deleting its objects (again to exit at once)`);
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The engine interface's result: media type and platforms are known only when the registry was reachable from here. */
function asBuildResult(result: KanikoBuildResult): KanikoBuildResult & BuildResult {
  return { ...result, mediaType: result.mediaType ?? 'unknown', platforms: result.platforms ?? [] };
}

function printResult(result: KanikoBuildResult, flags: KanikoFlags, logger: Logger): void {
  if (flags.output === 'json') {
    process.stdout.write(`${JSON.stringify(asBuildResult(result), null, 2)}\n`);
    return;
  }
  const builder = result.builderSeconds === undefined ? '' : `, Kaniko ran ${result.builderSeconds.toFixed(0)}s`;
  logger.info(`pushed ${result.reference} (digest from the ${result.digestSource === 'log' ? 'log' : 'termination message'}${result.confirmedInRegistry ? ', tag confirmed in the registry' : ''}${builder}, ${result.totalSeconds.toFixed(1)}s in all)`);
  process.stdout.write(`${result.reference}\n`);
}

/** Runs (or with --dry-run renders) a Kaniko build from the CLI. */
export async function runKanikoBuild(request: Omit<KanikoBuildRequest, 'cluster' | 'logger'>, flags: KanikoFlags): Promise<void> {
  const logger = createLogger(flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info');
  const full = kanikoRequest(request, flags, logger);
  if (flags.dryRun) {
    process.stdout.write(await renderKanikoBuild({ ...full, credentials: createCredentialStore() }));
    return;
  }
  const registries = reachableClientFor(flags, logger);
  const interrupt = interruptible(logger);
  try {
    const canConfirm = await registries.resolvable(request.destination);
    const result = await buildWithKaniko({
      ...full,
      credentials: registries.credentials,
      clientFor: canConfirm ? registries.clientFor : undefined,
      signal: interrupt.signal,
      onLog: logPrinter(flags),
      onContextProgress: process.stderr.isTTY && !flags.quiet ? contextProgress() : undefined,
    });
    printResult(result, flags, logger);
  } finally {
    interrupt.dispose();
    await registries.close();
  }
}

export function logPrinter(flags: KanikoFlags): ((container: string, line: string) => void) | undefined {
  return flags.quiet ? undefined : (container, line) => process.stderr.write(`[${container}] ${line}\n`);
}

/** The library request from the CLI's flags. */
function kanikoRequest(request: Omit<KanikoBuildRequest, 'cluster' | 'logger'>, flags: KanikoFlags, logger: Logger): KanikoBuildRequest {
  if ((flags.expectOutput !== undefined || flags.pullVia !== undefined) && flags.verifyCommand === undefined) {
    throw new UsageError('--expect-output and --pull-via go with --verify-command', "add --verify-command 'SHELL COMMAND' to run a pod from the new image");
  }
  return {
    ...request,
    cluster: clusterOptions(flags),
    kanikoImage: flags.kanikoImage,
    initImage: flags.initImage,
    registrySecret: flags.registrySecret,
    cacheRepo: flags.cacheRepo,
    nonRoot: flags.nonRoot,
    cpu: flags.cpu,
    memory: flags.memory,
    timeoutSeconds: flags.timeout === undefined ? undefined : Math.ceil(parseDuration(flags.timeout, '--timeout')),
    keep: flags.keep,
    insecure: flags.insecure,
    caFile: flags.caFile,
    verify: flags.verifyCommand === undefined ? undefined : { command: flags.verifyCommand, expectOutput: flags.expectOutput, pullVia: flags.pullVia },
    logger,
  };
}

export interface AddForKaniko {
  from: string;
  to: string;
  adds: AddSpec[];
  edits: ConfigEdits;
  chmod?: number;
  chown?: { uid: number; gid: number };
  compressionLevel?: number;
  platform: string[];
  format?: string;
}

/** `add --engine kaniko`: each --add source goes into the context under its own directory, and a generated Dockerfile copies it. */
export async function runAddWithKaniko(add: AddForKaniko, flags: KanikoFlags): Promise<void> {
  if (add.platform.length) throw new UsageError('--platform is not supported with --engine kaniko', 'Kaniko builds for the node it runs on; drop --platform, or use the direct engine');
  if (add.format) throw new UsageError('--format is not supported with --engine kaniko', 'Kaniko writes Docker v2 schema 2 manifests; drop --format, or use the direct engine');
  if (add.from === 'scratch' && add.adds.length === 0) throw new UsageError('nothing to build', 'add files with --add SRC:DEST');
  const { files, copies } = await addContext(add.adds);
  const dockerfile = dockerfileForAdd(add.from, copies, add.edits, { chmod: add.chmod, chown: add.chown });
  await runKanikoBuild({ dockerfile: { text: dockerfile }, files, destination: add.to, compressionLevel: add.compressionLevel }, flags);
}

/**
 * `add`'s sources as a build context: each --add source under a directory of its own (`add-N/`,
 * a file keeping its name), parents first, and where each is in the context.
 */
export async function addContext(adds: AddSpec[]): Promise<{ files: ContextFile[]; copies: GeneratedCopy[] }> {
  const files: ContextFile[] = [];
  const copies: GeneratedCopy[] = [];
  for (const [index, spec] of adds.entries()) {
    const source = path.resolve(spec.source);
    let info;
    try {
      info = statSync(source);
    } catch {
      throw new UsageError(`--add ${spec.text}: ${spec.source} does not exist`, 'give an existing local file or directory as SRC');
    }
    const base = `add-${index}`;
    if (info.isDirectory()) {
      for (const entry of await collectContextDirectory(source, { dockerignore: false })) files.push({ ...entry, path: `${base}/${entry.path}` });
      files.push({ path: base, type: 'directory', mode: info.mode & 0o7777, size: 0, mtimeSeconds: Math.floor(info.mtimeMs / 1000) });
      copies.push({ contextPath: `${base}/`, destination: spec.destination });
    } else {
      const name = `${base}/${path.basename(source)}`;
      files.push({ path: name, type: 'file', mode: info.mode & 0o7777, size: info.size, source, mtimeSeconds: Math.floor(info.mtimeMs / 1000) });
      copies.push({ contextPath: name, destination: spec.destination });
    }
  }
  return { files: sortParentsFirst(files), copies };
}

function sortParentsFirst(files: ContextFile[]): ContextFile[] {
  return [...files].sort((a, b) => a.path.split('/').length - b.path.split('/').length || (a.path < b.path ? -1 : 1));
}


/** `imgbuild verify REF --in-cluster --command SH [--expect-output TEXT]`. */
export async function runVerifyInCluster(reference: string, flags: InClusterVerifyFlags): Promise<void> {
  if (!flags.command) throw new UsageError('--in-cluster needs --command', "e.g. --command 'cat /opt/app/hello.txt && echo OK'");
  const logger = createLogger(flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info');
  const api = new ClusterApi(resolveCluster(clusterOptions(flags)));
  const identity = { buildId: `v${Date.now().toString(36)}`, namespace: api.namespace, createdAt: new Date().toISOString() };
  const ref = parseReference(reference);
  const image = pullReference(reference, flags.pullVia);
  const interrupt = interruptible(logger);
  try {
    const result = await verifyInCluster(api, identity, {
      image,
      command: flags.command,
      expectOutput: flags.expectOutput,
      digest: ref.digest,
      signal: interrupt.signal,
      onLog: flags.output === 'json' ? undefined : (_container, line) => process.stdout.write(`${line}\n`),
    });
    if (flags.output === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (flags.expectOutput !== undefined) logger.info('output matches');
  } finally {
    interrupt.dispose();
    await deleteBuildObjects(api, identity.buildId).catch(() => {});
  }
}

/** `imgbuild clean [--older-than DURATION]`. */
export async function runClean(flags: CleanFlags): Promise<void> {
  const olderThanMs = flags.olderThan === undefined ? 0 : parseDuration(flags.olderThan, '--older-than') * 1000;
  const api = new ClusterApi(resolveCluster(clusterOptions(flags)));
  const result = await cleanBuildObjects(api, olderThanMs);
  if (flags.output === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    for (const item of result.deleted) process.stdout.write(`deleted ${item.kind.toLowerCase()}/${item.name}\n`);
    process.stderr.write(`${result.deleted.length} deleted in namespace ${api.namespace}${result.kept ? `, ${result.kept} newer kept` : ''}\n`);
  }
}

/** The engine interface's request in the Kaniko engine's terms (the Dockerfile path is relative to the working directory). */
function fromDockerfileBuild(request: DockerfileBuildRequest): Omit<KanikoBuildRequest, 'cluster' | 'logger'> {
  return {
    dockerfile: { path: path.resolve(request.dockerfilePath) },
    contextDir: request.context,
    destination: request.to,
    buildArgs: Object.entries(request.buildArgs ?? {}).map(([key, value]) => `${key}=${value}`),
    target: request.target,
    labels: request.labels,
  };
}

/** The Kaniko engine for `imgbuild build` (engines/engine.ts), inside the command's context (its logger, clients and Ctrl-C signal). */
export function kanikoBuildEngine(flags: KanikoFlags, context: { logger: Logger; signal?: AbortSignal; clientFor: (registry: string) => RegistryClient }): BuildEngine {
  return {
    name: 'kaniko',
    async build(request: DockerfileBuildRequest): Promise<BuildResult> {
      const full = kanikoRequest(fromDockerfileBuild(request), flags, context.logger);
      const result = await buildWithKaniko({
        ...full,
        credentials: createCredentialStore(),
        clientFor: (await resolvesHere(request.to, context.logger)) ? context.clientFor : undefined,
        signal: context.signal,
        onLog: logPrinter(flags),
        onContextProgress: process.stderr.isTTY && !flags.quiet ? contextProgress() : undefined,
      });
      return asBuildResult(result);
    },
  };
}

/** `build --dry-run --engine kaniko`: the objects the build would apply. */
export async function renderBuildWithKaniko(request: DockerfileBuildRequest, flags: KanikoFlags): Promise<string> {
  const logger = createLogger('warn');
  const full = kanikoRequest(fromDockerfileBuild(request), flags, logger);
  return renderKanikoBuild({ ...full, credentials: createCredentialStore() });
}
