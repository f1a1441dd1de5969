import type { Digest } from '../digest.js';
import { ImgbuildError } from '../errors.js';
import type { BlobOutcome } from '../image/push.js';
import type { ResolvedBuild, ResolvedRun } from '../dockerfile/types.js';
import { whereOf } from '../plan/from-dockerfile.js';

/**
 * Engines build a Dockerfile and push the result. The direct engine (direct.ts) needs no
 * container and runs RUN-less Dockerfiles; the Kaniko engine runs anything in a cluster.
 * One request, one result type, whichever engine runs it.
 */

export type EngineName = 'direct' | 'kaniko';
export type EngineChoice = EngineName | 'auto';

export interface DockerfileBuildRequest {
  /** The Dockerfile's path, as error messages and history name it. */
  dockerfilePath: string;
  dockerfileText: string;
  /** The build context directory. */
  context: string;
  /** The tag to push. */
  to: string;
  buildArgs?: Record<string, string>;
  /** The stage to build (default: the last). */
  target?: string;
  /** `KEY=VALUE` labels set on the result (`--label`), after the Dockerfile's own. */
  labels?: string[];
  /** The Dockerfile already resolved (when the engine was chosen from it), so it is not read twice. */
  resolved?: ResolvedBuild;
}

export interface BuildResult {
  engine: EngineName;
  /** `registry/repository@sha256:…` of what was pushed. */
  reference: string;
  tag: string;
  digest: Digest;
  mediaType: string;
  /** The platforms built, as `os/arch[/variant]`. */
  platforms: string[];
  /** Layers made (direct engine). */
  layers?: Array<{ digest: Digest; diffId: Digest; size: number }>;
  /** What was done for each blob (direct engine). */
  blobs?: Record<BlobOutcome, number>;
}

export interface BuildEngine {
  readonly name: EngineName;
  build(request: DockerfileBuildRequest): Promise<BuildResult>;
}

/** Which engine runs a build, and why: `auto` sends builds with RUN to Kaniko. */
export function chooseEngine(requested: EngineChoice, runs: readonly ResolvedRun[]): { engine: EngineName; reason: string } {
  const firstRun = runs[0];
  if (requested === 'direct') {
    if (firstRun) {
      throw new ImgbuildError(`${whereOf(firstRun.location)}: RUN needs a container, which the direct engine does not have`, {
        exitCode: 2,
        hint: 'build with --engine kaniko (or --engine auto), or remove the RUN',
      });
    }
    return { engine: 'direct', reason: 'asked for with --engine direct' };
  }
  if (requested === 'kaniko') return { engine: 'kaniko', reason: 'asked for with --engine kaniko' };
  if (firstRun) {
    const more = runs.length > 1 ? ` (and ${runs.length - 1} more RUN)` : '';
    return { engine: 'kaniko', reason: `${whereOf(firstRun.location)} is a RUN${more}, which needs a container` };
  }
  return { engine: 'direct', reason: 'no RUN in the stages built' };
}

/** Stands in for the Kaniko engine where it is not part of the build. */
export const kanikoUnavailable: BuildEngine = {
  name: 'kaniko',
  build() {
    return Promise.reject(
      new ImgbuildError('the Kaniko engine is not available in this build; it is needed for Dockerfiles with RUN', {
        hint: 'remove the RUN instructions so the direct engine can build it (--engine direct), or use an imgbuild build that includes the Kaniko engine',
      }),
    );
  },
};
