import path from 'node:path';
import { readDockerignore } from '../dockerfile/read-dockerignore.js';
import { parseDockerfile } from '../dockerfile/parser.js';
import { listBaseImages, resolveDockerfile } from '../dockerfile/resolve.js';
import type { ParsedDockerfile, ResolvedBuild, ResolveOptions } from '../dockerfile/types.js';
import { formatPlatform } from '../image/manifest.js';
import { hostPlatform, platformMatches, type PlatformSpec } from '../image/platform.js';
import { fetchRemote, fetchRemoteImage, type RemoteCache } from '../image/remote.js';
import { manifestReference, parseReference } from '../reference.js';
import { executePlan } from '../plan/execute.js';
import { planFromDockerfile, runInstructions } from '../plan/from-dockerfile.js';
import type { EngineOptions } from '../plan/options.js';
import type { Plan } from '../plan/steps.js';
import type { StorageFor } from '../storage/storage.js';
import { type BuildEngine, type BuildResult, chooseEngine, type DockerfileBuildRequest, type EngineChoice } from './engine.js';

/**
 * A Dockerfile parsed and resolved for the platform being built, with the base images' Env
 * (without a `storageFor`, from the Dockerfile alone: enough to see which stages have RUN).
 */
export async function resolveBuild(request: DockerfileBuildRequest, platform: PlatformSpec, storageFor: StorageFor | undefined, cache?: RemoteCache): Promise<ResolvedBuild> {
  const parsed: ParsedDockerfile = parseDockerfile(request.dockerfileText, { file: request.dockerfilePath });
  const options: ResolveOptions = { buildArgs: request.buildArgs, target: request.target, targetPlatform: formatPlatform(platform), buildPlatform: formatPlatform(hostPlatform()) };
  if (!storageFor) return resolveDockerfile(parsed, options);
  // Base images' ENV is visible to expansion in their stages (`FROM golang` then `WORKDIR $GOPATH`).
  const baseImageEnv: Record<string, string[]> = {};
  for (const base of listBaseImages(parsed, options)) baseImageEnv[base.name] ??= await baseEnv(base.name, platform, storageFor, cache);
  return resolveDockerfile(parsed, { ...options, baseImageEnv });
}

async function baseEnv(name: string, platform: PlatformSpec, storageFor: StorageFor, cache: RemoteCache | undefined): Promise<string[]> {
  const ref = parseReference(name);
  const location = { client: storageFor(ref.registry), repository: ref.repository, cache };
  const found = await fetchRemote(location, manifestReference(ref));
  if (found.kind === 'image') return found.config.config?.Env ?? [];
  const child = found.index.manifests.find((descriptor) => platformMatches(descriptor.platform, platform)) ?? found.index.manifests[0];
  if (!child) return [];
  return (await fetchRemoteImage(found, child.digest as `sha256:${string}`)).config.config?.Env ?? [];
}


/** The direct engine: a RUN-less Dockerfile as a plan, executed against the registry. */
export function directEngine(options: EngineOptions): BuildEngine {
  return {
    name: 'direct',
    async build(request): Promise<BuildResult> {
      const build = request.resolved ?? (await resolveBuild(request, options.platforms[0] ?? hostPlatform(), options.storageFor, options.remoteCache));
      chooseEngine('direct', runInstructions(build));
      const context = path.resolve(request.context);
      const ignore = (await readDockerignore(request.dockerfilePath, context))?.patterns ?? [];
      // `--label` sets labels on the result without a history entry, as docker build does.
      const withLabels = (made: Plan): Plan => (request.labels?.length ? { ...made, steps: [...made.steps, { kind: 'config', edits: { labels: request.labels }, where: '--label' }] } : made);
      const plan = withLabels(planFromDockerfile(build, { context, ignore }));
      // Each platform of a multi-platform base gets the Dockerfile resolved for it (TARGETARCH, ...).
      const first = formatPlatform(options.platforms[0] ?? hostPlatform());
      const planFor = async (platform: PlatformSpec) => {
        if (formatPlatform(platform) === first) return plan;
        const resolved = await resolveBuild(request, platform, options.storageFor, options.remoteCache);
        return withLabels(planFromDockerfile(resolved, { context, ignore }));
      };
      const result = await executePlan(plan, options, planFor);
      return { engine: 'direct', ...result };
    },
  };
}

/**
 * Builds with the engine asked for; `auto` reads the Dockerfile first and sends it to
 * `kaniko` when the stages built contain RUN. `onChoice` is told which engine and why.
 */
export async function buildDockerfile(
  request: DockerfileBuildRequest,
  choice: EngineChoice,
  engines: { direct: BuildEngine; kaniko: BuildEngine },
  options: EngineOptions,
  onChoice?: (engine: string, reason: string) => void,
  chooseFrom: 'registry' | 'dockerfile' = 'registry',
): Promise<BuildResult> {
  if (choice === 'kaniko') {
    onChoice?.('kaniko', 'asked for with --engine kaniko');
    return engines.kaniko.build(request);
  }
  const { engine, reason, resolved } = await chooseEngineFor(request, choice, options, chooseFrom);
  onChoice?.(engine, reason);
  // A Dockerfile resolved without its bases' Env is good for choosing, not for building.
  return engines[engine].build(chooseFrom === 'registry' ? { ...request, resolved } : request);
}

/**
 * Which engine `choice` means for this Dockerfile. `chooseFrom: 'dockerfile'` reads no registry
 * (for builds in the cluster, whose registries this machine may not reach): which stages have RUN
 * does not depend on the bases' Env.
 */
export async function chooseEngineFor(request: DockerfileBuildRequest, choice: EngineChoice, options: EngineOptions, chooseFrom: 'registry' | 'dockerfile' = 'registry'): Promise<{ engine: 'direct' | 'kaniko'; reason: string; resolved: ResolvedBuild }> {
  const resolved = await resolveBuild(request, options.platforms[0] ?? hostPlatform(), chooseFrom === 'registry' ? options.storageFor : undefined, options.remoteCache);
  return { ...chooseEngine(choice, runInstructions(resolved)), resolved };
}
