import { DockerfileError } from '../dockerfile/errors.js';
import { SCRATCH_ENV } from '../dockerfile/resolve.js';
import type { Healthcheck } from '../image/mutate.js';
import { parseChmod } from '../dockerfile/chmod.js';
import { createCopyExcludeMatcher } from '../dockerfile/dockerignore.js';
import { ImgbuildError } from '../errors.js';
import type { ChmodSpec, ResolvedBuild, ResolvedCopy, ResolvedInstruction, ResolvedRun, ResolvedStage, SourceLocation } from '../dockerfile/types.js';
import { type ConfigEdits } from '../image/mutate.js';
import { SCRATCH } from '../image/scratch.js';
import { DOCKERFILE_HISTORY_COMMENT, type OwnerSpec, type Plan, type PlanStep } from './steps.js';

/**
 * A resolved Dockerfile as a plan for the direct engine (pure). The target stage and the
 * stages it is built FROM become one chain of steps on the first stage's base; history
 * entries are the ones BuildKit writes.
 */

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** `Dockerfile:4`: where a step came from, as errors name it. */
export function whereOf(location: SourceLocation): string {
  return `${location.file}:${location.line}`;
}

/** The RUN instructions of the stages the target needs: why a build needs a container. */
export function runInstructions(build: ResolvedBuild): ResolvedRun[] {
  return build.stages.flatMap((stage) => stage.instructions.filter((instruction): instruction is ResolvedRun => instruction.kind === 'RUN'));
}

/** The target and the stages it is built FROM, base first. */
function stageChain(build: ResolvedBuild): ResolvedStage[] {
  const byIndex = new Map(build.stages.map((stage) => [stage.index, stage]));
  const chain: ResolvedStage[] = [];
  for (let stage = byIndex.get(build.target); stage; stage = stage.baseStage === undefined ? undefined : byIndex.get(stage.baseStage)) chain.unshift(stage);
  return chain;
}

/** `--chown` text as numbers when it is numbers (a UID alone means the same GID), else names for the executor to look up. */
export function parseOwner(text: string): OwnerSpec {
  const match = /^(\d+)(?::(\d+))?$/.exec(text);
  return match ? { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) } : { names: text };
}

/** Go's time.Duration text (`1m30s`, `0s`), as BuildKit's history prints durations. */
export function formatGoDuration(nanoseconds: number | undefined): string {
  const ns = nanoseconds ?? 0;
  if (ns === 0) return '0s';
  if (ns < 1e9) return ns % 1e6 === 0 ? `${ns / 1e6}ms` : ns % 1e3 === 0 ? `${ns / 1e3}µs` : `${ns}ns`;
  const hours = Math.floor(ns / 3600e9);
  const minutes = Math.floor((ns % 3600e9) / 60e9);
  const seconds = `${Number(((ns % 60e9) / 1e9).toFixed(9))}s`;
  return hours ? `${hours}h${minutes}m${seconds}` : minutes ? `${minutes}m${seconds}` : seconds;
}

function unsupported(instruction: { location: SourceLocation }, what: string, hint: string): DockerfileError {
  return new DockerfileError(`${what} is not supported on the direct engine yet`, { position: instruction.location, hint });
}

/** The instructions that change a stage's files (so --from cannot read it as its base image). */
const FILE_CHANGING = new Set(['COPY', 'ADD', 'WORKDIR', 'RUN']);

/**
 * What `COPY --from` reads: an image reference; for a stage the image it is built FROM when
 * it changes no files itself (`FROM busybox AS tools`), else the stage's own plan, which the
 * executor runs (without pushing) before reading its files.
 */
function fromSourceOf(instruction: ResolvedCopy, build: ResolvedBuild, options: DockerfilePlanOptions): { fromImage: string; fromStage?: Plan } {
  if (instruction.fromStage === undefined) return { fromImage: instruction.from! };
  for (let stage = build.stages.find((candidate) => candidate.index === instruction.fromStage); stage; ) {
    if (stage.instructions.some((step) => FILE_CHANGING.has(step.kind))) {
      return { fromImage: `stage ${instruction.from}`, fromStage: planFromDockerfile({ ...build, target: instruction.fromStage }, options) };
    }
    if (stage.baseStage === undefined) return { fromImage: stage.base };
    const next = stage.baseStage;
    stage = build.stages.find((candidate) => candidate.index === next);
  }
  throw unsupported(instruction, `${instruction.kind} --from=${instruction.from}`, 'build with --engine kaniko');
}

function copyStep(instruction: ResolvedCopy, options: DockerfilePlanOptions, build: ResolvedBuild): PlanStep {
  const context = options.context;
  const ignore = options.ignore ?? [];
  const kept = instruction.kind === 'ADD' ? ['chown', 'chmod', 'link', 'checksum', 'exclude'] : ['chown', 'chmod', 'link', 'parents', 'from', 'exclude'];
  const other = instruction.flags.find((flag) => !kept.includes(flag.name));
  const from = instruction.from === undefined ? undefined : fromSourceOf(instruction, build, options);
  if (other) throw unsupported(instruction, `${instruction.kind} --${other.name}`, `remove --${other.name}, or build with --engine kaniko`);
  for (const source of instruction.sources) {
    if (instruction.kind === 'COPY' && /^https?:\/\//i.test(source.path)) {
      throw new DockerfileError(`COPY cannot fetch a URL (${source.path})`, { position: instruction.location, hint: 'use ADD for a URL, or download the file into the build context' });
    }
    const download = instruction.kind === 'ADD' && /^https?:\/\//i.test(source.path);
    if (!download && (/^[a-z][a-z0-9+.-]*:\/\//i.test(source.path) || source.path.startsWith('git@'))) {
      throw unsupported(instruction, `${instruction.kind} of a URL`, 'download the file into the build context and copy it from there, or build with --engine kaniko');
    }
  }
  let chmod: ChmodSpec | undefined;
  if (instruction.chmod !== undefined) {
    try {
      chmod = parseChmod(instruction.chmod);
    } catch (error) {
      if (error instanceof ImgbuildError) throw new DockerfileError(error.message, { position: instruction.location, hint: error.hint });
      throw error;
    }
  }
  if (instruction.exclude.length) {
    try {
      createCopyExcludeMatcher(instruction.exclude);
    } catch (error) {
      throw new DockerfileError(`${instruction.kind} --exclude: ${(error as Error).message}`, { position: instruction.location, hint: 'fix the pattern (.dockerignore syntax: *, ?, [...], **, a leading ! to re-include)' });
    }
  }
  // BuildKit leaves --exclude out of the history text.
  const words: string[] = [instruction.kind];
  if (instruction.parents) words.push('--parents');
  if (instruction.chown !== undefined) words.push(`--chown=${instruction.chown}`);
  if (instruction.chmod !== undefined) words.push(`--chmod=${instruction.chmod}`);
  words.push(...instruction.sources.map((source) => source.path), instruction.dest);
  return {
    kind: 'copy',
    items: [{ sources: instruction.sources.map((source) => source.path), destination: instruction.dest, text: instruction.original, ...heredocsOf(instruction) }],
    context,
    chown: instruction.chown === undefined ? undefined : parseOwner(instruction.chown),
    chmod: chmod?.kind === 'octal' ? chmod.mode : chmod,
    ...(ignore.length ? { ignore } : {}),
    ...(instruction.exclude.length ? { exclude: instruction.exclude } : {}),
    ...(instruction.kind === 'ADD' ? { unpackArchives: true } : {}),
    ...(instruction.checksum ? { checksum: instruction.checksum } : {}),
    ...(instruction.parents ? { parents: true } : {}),
    ...from,
    destinations: 'docker',
    history: { createdBy: `${words.join(' ')} # buildkit`, comment: DOCKERFILE_HISTORY_COMMENT },
    where: whereOf(instruction.location),
  };
}

function heredocsOf(instruction: ResolvedCopy): { heredocs?: Record<string, string> } {
  const heredocs = Object.fromEntries(instruction.sources.flatMap((source) => (source.heredoc ? [[source.path, source.heredoc.content]] : [])));
  return Object.keys(heredocs).length ? { heredocs } : {};
}

/** A command's config value: exec form as written, shell form run by the current SHELL. */
function commandArgs(command: { form: 'json' | 'shell'; args: string[] }, shell: string[]): string[] {
  return command.form === 'json' ? command.args : [...shell, command.args.join(' ')];
}

/** `80`, `53/udp`, `8000-8002/tcp` as `PORT/PROTO` entries, ranges expanded as BuildKit does. */
function exposedPorts(text: string, location: SourceLocation): string[] {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(text);
  const first = Number(match?.[1]);
  const last = match?.[2] === undefined ? first : Number(match[2]);
  if (!match || last > 65535 || last < first) {
    throw new DockerfileError(`EXPOSE ${text} is not PORT[-PORT][/tcp|udp|sctp]`, { position: location, hint: 'e.g. EXPOSE 8080, EXPOSE 53/udp or EXPOSE 8000-8010/tcp' });
  }
  const protocol = (match[3] ?? 'tcp').toLowerCase();
  return Array.from({ length: last - first + 1 }, (_, index) => `${first + index}/${protocol}`);
}

/** Go's `%q` of a []string: `["a" "b"]`. */
function goQuotedList(values: string[]): string {
  return `[${values.map((value) => JSON.stringify(value)).join(' ')}]`;
}

function configStep(instruction: ResolvedInstruction, edits: ConfigEdits, createdBy: string): PlanStep {
  return { kind: 'config', edits, history: { createdBy, comment: DOCKERFILE_HISTORY_COMMENT }, where: whereOf(instruction.location) };
}

export interface DockerfilePlanOptions {
  /** The build context directory COPY/ADD read from. */
  context: string;
  /** `.dockerignore` patterns (parsed). */
  ignore?: string[];
}

/**
 * The plan for the target stage. RUN and the COPY/ADD forms the direct engine cannot do yet
 * are errors naming their line; the caller decides about RUN before (see runInstructions).
 */
export function planFromDockerfile(build: ResolvedBuild, options: DockerfilePlanOptions): Plan {
  const chain = stageChain(build);
  const first = chain[0]!;
  const steps: PlanStep[] = [];
  // SHELL as the Dockerfile sets it; a base image's own Shell is not known here (they rarely have one).
  let shell = DEFAULT_SHELL;
  for (const stage of chain) {
    for (const instruction of stage.instructions) {
      switch (instruction.kind) {
        case 'RUN':
          throw new DockerfileError('RUN needs a container, which the direct engine does not have', {
            position: instruction.location,
            hint: 'build with --engine kaniko (or --engine auto), or remove the RUN',
          });
        case 'COPY':
        case 'ADD':
          steps.push(copyStep(instruction, options, build));
          break;
        case 'WORKDIR':
          steps.push({ kind: 'workdir', path: instruction.path, history: { comment: DOCKERFILE_HISTORY_COMMENT }, where: whereOf(instruction.location) });
          break;
        case 'ARG':
          steps.push(configStep(instruction, {}, `ARG ${instruction.args.map((arg) => (arg.value === undefined ? arg.name : `${arg.name}=${arg.value}`)).join(' ')}`));
          break;
        case 'ENV':
          steps.push(configStep(instruction, { env: instruction.pairs.map(({ key, value }) => `${key}=${value}`) }, `ENV ${instruction.pairs.map(({ key, value }) => `${key}=${value}`).join(' ')}`));
          break;
        case 'LABEL':
          steps.push(configStep(instruction, { labels: instruction.pairs.map(({ key, value }) => `${key}=${value}`) }, `LABEL ${instruction.pairs.map(({ key, value }) => `${key}=${value}`).join(' ')}`));
          break;
        case 'MAINTAINER':
          steps.push(configStep(instruction, { author: instruction.name }, `MAINTAINER ${instruction.name}`));
          break;
        case 'USER':
          steps.push(configStep(instruction, { user: instruction.user }, `USER ${instruction.user}`));
          break;
        case 'CMD': {
          const cmd = commandArgs(instruction.command, shell);
          steps.push(configStep(instruction, { cmd }, `CMD ${goQuotedList(cmd)}`));
          break;
        }
        case 'ENTRYPOINT': {
          const entrypoint = commandArgs(instruction.command, shell);
          steps.push(configStep(instruction, { entrypoint, keepCmd: hasCmdBefore(stage, instruction) }, `ENTRYPOINT ${goQuotedList(entrypoint)}`));
          break;
        }
        case 'SHELL':
          shell = instruction.shell;
          steps.push(configStep(instruction, { shell: instruction.shell }, `SHELL [${instruction.shell.join(' ')}]`));
          break;
        case 'EXPOSE': {
          const ports = [...new Set(instruction.ports.flatMap((port) => exposedPorts(port, instruction.location)))].sort();
          steps.push(configStep(instruction, { expose: ports }, `EXPOSE map[${ports.map((port) => `${port}:{}`).join(' ')}]`));
          break;
        }
        case 'VOLUME':
          for (const volume of instruction.paths) {
            if (!volume.startsWith('/')) throw new DockerfileError(`VOLUME ${volume} is not an absolute path`, { position: instruction.location, hint: `write VOLUME /${volume.replace(/^\.?\/*/, '')}` });
          }
          steps.push(configStep(instruction, { volumes: instruction.paths }, `VOLUME [${instruction.paths.join(' ')}]`));
          break;
        case 'STOPSIGNAL':
          steps.push(configStep(instruction, { stopSignal: instruction.signal }, `STOPSIGNAL ${instruction.signal}`));
          break;
        case 'HEALTHCHECK': {
          const healthcheck: Healthcheck = { Test: [...instruction.test] };
          if (instruction.interval) healthcheck.Interval = instruction.interval;
          if (instruction.timeout) healthcheck.Timeout = instruction.timeout;
          if (instruction.startPeriod) healthcheck.StartPeriod = instruction.startPeriod;
          if (instruction.startInterval) healthcheck.StartInterval = instruction.startInterval;
          if (instruction.retries) healthcheck.Retries = instruction.retries;
          const text =
            `{Test:[${instruction.test.join(' ')}] Interval:${formatGoDuration(instruction.interval)} Timeout:${formatGoDuration(instruction.timeout)} ` +
            `StartPeriod:${formatGoDuration(instruction.startPeriod)} StartInterval:${formatGoDuration(instruction.startInterval)} Retries:${instruction.retries ?? 0}}`;
          steps.push(configStep(instruction, { healthcheck }, `HEALTHCHECK ${text}`));
          break;
        }
        case 'ONBUILD':
          // Recorded for images built FROM this one; BuildKit writes no history entry for it.
          steps.push({ kind: 'config', edits: { onBuild: [instruction.trigger] }, where: whereOf(instruction.location) });
          break;
      }
    }
  }
  const fromScratch = first.base.toLowerCase() === SCRATCH;
  return fromScratch ? { base: SCRATCH, scratchEnv: SCRATCH_ENV, steps } : { base: first.base, baseWhere: whereOf(first.location), steps };
}

/** True when the stage set CMD before this ENTRYPOINT (then ENTRYPOINT keeps it, as BuildKit does). */
function hasCmdBefore(stage: ResolvedStage, entrypoint: ResolvedInstruction): boolean {
  const position = stage.instructions.indexOf(entrypoint);
  return stage.instructions.slice(0, position).some((instruction) => instruction.kind === 'CMD');
}
