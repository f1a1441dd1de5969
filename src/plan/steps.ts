import type { ChmodSpec } from '../dockerfile/types.js';
import type { ConfigEdits } from '../image/mutate.js';

/**
 * A build as pure data: a base and ordered steps, each with the history entry it leaves.
 * `add` flags and Dockerfiles both become plans; the executor (execute.ts) runs them.
 */

/** The history text a step leaves in the image config, as docker writes it. */
export interface StepHistory {
  createdBy: string;
  /** BuildKit marks Dockerfile steps with `buildkit.dockerfile.v0`; `add` steps have none. */
  comment?: string;
}

/** Where a step came from, so errors speak the caller's language: `Dockerfile:4` or `--add`. */
export interface StepOrigin {
  /** E.g. `Dockerfile:4` or `--add hello.txt:/opt/app/`. */
  where: string;
}

/** Owner of copied files: numbers, or `user[:group]` with names looked up in the image's /etc/passwd and /etc/group. */
export type OwnerSpec = { uid: number; gid: number } | { names: string };

/** Sources going to one destination. */
export interface CopyItem {
  /**
   * Local paths. With `context` they are relative to it and may not leave it; without,
   * they are paths on this machine (relative to the working directory).
   */
  sources: string[];
  /** Absolute path in the image, or relative to the working directory; a trailing `/` means a directory. */
  destination: string;
  /** As the user wrote it, for messages. */
  text: string;
  /** Sources that are here-documents (`COPY <<EOF /dest`): name → content, written as a 0644 file of that name. */
  heredocs?: Record<string, string>;
}

export interface CopyStep extends StepOrigin {
  kind: 'copy';
  items: CopyItem[];
  /** The build context the sources are read from (COPY); absent for `add`'s local paths. */
  context?: string;
  chown?: OwnerSpec;
  /** Permission bits for every copied entry, or a symbolic change of each entry's own mode. */
  chmod?: number | ChmodSpec;
  /** `.dockerignore` patterns: what the context does not offer. */
  ignore?: string[];
  /**
   * --exclude: patterns (`.dockerignore` syntax) for entries not to copy, relative to each
   * source after wildcard expansion (to the pivot with --parents); a source itself and the
   * entries of an archive ADD unpacks are never excluded, as in BuildKit.
   */
  exclude?: string[];
  /** ADD: a local tar archive is unpacked rather than copied, and `http(s)://` sources are downloaded. */
  unpackArchives?: boolean;
  /** --parents: each source keeps its directories (below a `/./` pivot) under DEST. */
  parents?: boolean;
  /**
   * --from: the image (a reference, or `scratch`) whose files the sources name, instead of the
   * context; entries keep that image's owners unless --chown is given.
   */
  fromImage?: string;
  /**
   * --from an earlier stage that changes files: `fromImage` is then the stage's name, and this
   * its plan, run (not pushed) before its files are read: its base's layers and its own.
   */
  fromStage?: Plan;
  /** ADD --checksum: the digest a downloaded source must have (`sha256:<hex>`). */
  checksum?: string;
  /**
   * 'as-written' (`add`): a DEST without `/` is the path of the file, whatever the image has
   * there. 'docker' (COPY/ADD): a DEST that is a directory in the image means "into it", a
   * relative DEST is relative to WORKDIR, several sources need a directory DEST.
   */
  destinations: 'as-written' | 'docker';
  history: StepHistory;
}

export interface ConfigStep extends StepOrigin {
  kind: 'config';
  edits: ConfigEdits;
  /** None for an instruction docker records without a history entry (ONBUILD). */
  history?: StepHistory;
}

/**
 * WORKDIR: sets the working directory, and creates it (0755, owned by the current user) when
 * the image lacks it. Its history is `WORKDIR <absolute directory>`, known once it runs.
 */
export interface WorkdirStep extends StepOrigin {
  kind: 'workdir';
  /** Absolute, or relative to the working directory before it. */
  path: string;
  history: Omit<StepHistory, 'createdBy'>;
}

export type PlanStep = CopyStep | ConfigStep | WorkdirStep;

export interface Plan {
  /** An image reference, or `scratch`. */
  base: string;
  /**
   * Where the base was named (`Dockerfile:1`), for a Dockerfile: docker runs the base's ONBUILD
   * triggers there, which the direct engine does not yet, so such a base is refused.
   */
  baseWhere?: string;
  /** The Env a `scratch` base starts with (BuildKit gives it PATH); no history entry. */
  scratchEnv?: string[];
  steps: PlanStep[];
}

/** The BuildKit history comment for Dockerfile steps. */
export const DOCKERFILE_HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** True when the step's meaning needs nothing from the base image's files. */
export function independentOfBase(step: PlanStep): boolean {
  if (step.kind === 'config') return true;
  if (step.kind === 'workdir' || step.fromImage !== undefined) return false;
  return step.destinations === 'as-written' && (step.chown === undefined || 'uid' in step.chown);
}
