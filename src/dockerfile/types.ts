/**
 * The data the Dockerfile frontend hands to the plan builder. Everything here is plain data:
 * no functions, no I/O, JSON-serialisable, so tests compare it with deepEqual.
 *
 * Two stages of output:
 *  1. `parseDockerfile(text, { file })` (parser.ts) -> `ParsedDockerfile`: the instructions as
 *     written (keyword, flags, JSON or shell form, heredocs, position), nothing expanded.
 *  2. `resolveDockerfile(parsed, options)` (resolve.ts) -> `ResolvedBuild`: the stages the
 *     target needs, in build order, each instruction typed and every word that BuildKit expands
 *     expanded with the ARG/ENV values visible at that line.
 *
 * Errors from both are `DockerfileError` (errors.ts): message `file:line:column: what is wrong`
 * plus a hint saying how to fix it.
 */

/** A place in a Dockerfile; line and column are 1-based, column counts characters. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** Where an instruction sits: its first and last physical lines (continuations, heredoc bodies). */
export interface SourceLocation extends SourcePosition {
  endLine: number;
}

// ---------------------------------------------------------------------------------------------
// Parse result (unexpanded)

/** Parser directives: `# syntax=...`, `# escape=...`, `# check=...` at the very top. */
export interface ParserDirectives {
  /** The frontend image asked for, if any (recorded; imgbuild always uses its own parser). */
  syntax?: string;
  /** The line-continuation and escape character: `\` (default) or `` ` ``. */
  escape: '\\' | '`';
  /** BuildKit's `# check=` directive, recorded verbatim. */
  check?: string;
}

/** `--name=value` or bare `--name` before an instruction's arguments. */
export interface InstructionFlag {
  /** Without the dashes, as written (BuildKit flag names are case-sensitive): `from`, `mount`. */
  name: string;
  /** `null` for a bare flag (`--link`); `''` for `--name=`. Unexpanded. */
  value: string | null;
  position: SourcePosition;
}

/** A here-document attached to RUN or COPY/ADD. */
export interface Heredoc {
  /** The delimiter word without quotes or `-` (`EOF`). */
  name: string;
  /** The body, after `<<-` tab stripping; ends with a newline unless empty. Unexpanded. */
  content: string;
  /** False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no variable expansion. */
  expand: boolean;
  /** True for `<<-EOF`: leading tabs were stripped from each body line. */
  stripTabs: boolean;
  /** Position of the first body line. */
  position: SourcePosition;
  /** `3<<EOF`: the file descriptor the shell should read it from; absent means stdin (0). */
  fileDescriptor?: number;
}

/** Instructions whose arguments may be written as a JSON array. */
export type ArgumentForm = 'json' | 'shell';

export interface ParsedInstruction {
  /** Upper-case keyword: `FROM`, `RUN`, `COPY`, ... (unknown keywords are a parse error). */
  keyword: string;
  /** Position of the keyword. */
  location: SourceLocation;
  /**
   * The instruction text as one line: keyword, flags and arguments with continuations joined
   * (as BuildKit's `Original`), heredoc bodies excluded. Used for history and error messages.
   */
  original: string;
  flags: InstructionFlag[];
  /**
   * `json` when the arguments were a valid JSON array of strings (`["a", "b"]`); anything else,
   * including invalid JSON, is `shell`, as in BuildKit.
   */
  form: ArgumentForm;
  /** Text after the keyword and the flags, continuations joined, untrimmed of inner spaces. */
  rest: string;
  /**
   * The arguments split as BuildKit splits them for this keyword: JSON array elements; or
   * whitespace-separated words (quotes kept, for the lexer to strip later); or for ENV/LABEL/ARG
   * `key=value` words; for RUN/CMD/ENTRYPOINT/SHELL in shell form, a single element: `rest`.
   */
  args: string[];
  /**
   * ENV and LABEL: the `key=value` pairs (legacy `ENV key value` gives one pair); ARG: each
   * declared name with its default when given. Keys and values unexpanded, quotes kept.
   */
  pairs?: { key: string; value?: string }[];
  /** Heredocs opened on this instruction's line, in order (RUN, COPY, ADD only). */
  heredocs: Heredoc[];
  /** For `ONBUILD X`: the wrapped instruction (never itself ONBUILD, FROM or MAINTAINER). */
  onbuild?: ParsedInstruction;
}

export interface ParseWarning {
  position: SourcePosition;
  message: string;
}

export interface ParsedDockerfile {
  file: string;
  directives: ParserDirectives;
  instructions: ParsedInstruction[];
  /** Things BuildKit accepts but warns about (empty continuation lines, `MAINTAINER`, ...). */
  warnings: ParseWarning[];
}

// ---------------------------------------------------------------------------------------------
// Resolution input

export interface ResolveOptions {
  /** `--build-arg K=V` values (the CLI resolves a bare `--build-arg K` from its environment). */
  buildArgs?: Record<string, string>;
  /** `--target`: a stage name (case-insensitive), as docker accepts it; default the last stage. */
  target?: string;
  /** Platform being built, `os/arch[/variant]` (TARGETPLATFORM); default the build platform. */
  targetPlatform?: string;
  /** Platform imgbuild runs on (BUILDPLATFORM); default `linux/amd64`. */
  buildPlatform?: string;
  /**
   * `Env` of each external base image (`KEY=VALUE` strings), keyed by the expanded FROM name as
   * returned by `listBaseImages`. Base-image ENV is visible to expansion in that stage, as in
   * docker (`FROM golang` then `WORKDIR $GOPATH`). Missing entries mean an empty env.
   */
  baseImageEnv?: Record<string, string[]>;
}

// ---------------------------------------------------------------------------------------------
// Resolution output (expanded, typed)

interface ResolvedBase {
  keyword: string;
  location: SourceLocation;
  /** As in `ParsedInstruction.original` (unexpanded), for history's `created_by`. */
  original: string;
}

/** `ARG a b=1`: the declared names with their resulting values (build arg or default). */
export interface ResolvedArg extends ResolvedBase {
  kind: 'ARG';
  args: {
    name: string;
    /** The expanded default, when one is written and no build arg replaces it. */
    defaultValue?: string;
    /** Value in effect after this line (build arg, default, or the global value); undefined if unset. */
    value?: string;
  }[];
}

export interface ResolvedEnv extends ResolvedBase {
  kind: 'ENV';
  /** Expanded, in order; every pair sees the values from before the instruction. */
  pairs: { key: string; value: string }[];
}

export interface ResolvedLabel extends ResolvedBase {
  kind: 'LABEL';
  pairs: { key: string; value: string }[];
}

export interface ResolvedMaintainer extends ResolvedBase {
  kind: 'MAINTAINER';
  /** Not expanded (BuildKit does not); docker writes it to `Author`. */
  name: string;
}

export interface ResolvedWorkdir extends ResolvedBase {
  kind: 'WORKDIR';
  /** Expanded path as written (may be relative: relative to the previous WORKDIR). */
  path: string;
}

export interface ResolvedUser extends ResolvedBase {
  kind: 'USER';
  /** Expanded `user[:group]` as written. */
  user: string;
}

export interface CopySource {
  /** Expanded source path or wildcard pattern, or a URL (ADD). */
  path: string;
  /** Set when the source is a heredoc (`COPY <<EOF /dest`): the file content (expanded unless quoted). */
  heredoc?: Heredoc;
}

export interface ResolvedCopy extends ResolvedBase {
  kind: 'COPY' | 'ADD';
  sources: CopySource[];
  /** Expanded destination as written (trailing `/` kept; relative means relative to WORKDIR). */
  dest: string;
  /** `--from=`: a stage name/index or an image reference, as written (BuildKit does not expand it). */
  from?: string;
  /** When `from` names a stage (by name or index): that stage's `index`. */
  fromStage?: number;
  /** Expanded `--chown` (resolve names with `resolveChown`). */
  chown?: string;
  /** Expanded `--chmod` (read it with `parseChmod`). */
  chmod?: string;
  link: boolean;
  parents: boolean;
  /** `--exclude` patterns, as written (BuildKit does not expand them). */
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  /** ADD only: `--keep-git-dir`. */
  keepGitDir: boolean;
  /** ADD only: `--unpack=true|false` when given. */
  unpack?: boolean;
  /** Every flag in order, values expanded where BuildKit expands them (--chown, --chmod, --checksum). */
  flags: ResolvedFlag[];
}

export interface ResolvedFlag {
  name: string;
  value: string | null;
}

/** A command in exec (JSON) or shell form. Never expanded: the shell (or nothing) does that. */
export interface CommandLine {
  form: ArgumentForm;
  /** `json`: the array; `shell`: one element with the command text. */
  args: string[];
}

export interface ResolvedRun extends ResolvedBase {
  kind: 'RUN';
  command: CommandLine;
  heredocs: Heredoc[];
  /** `--mount=...` values (expanded), `--network`, `--security`, and any other flags. */
  flags: ResolvedFlag[];
}

export interface ResolvedCmd extends ResolvedBase {
  kind: 'CMD' | 'ENTRYPOINT';
  command: CommandLine;
}

export interface ResolvedShell extends ResolvedBase {
  kind: 'SHELL';
  /** Always a JSON array in the Dockerfile. */
  shell: string[];
}

export interface ResolvedExpose extends ResolvedBase {
  kind: 'EXPOSE';
  /** Expanded words as written: `80`, `53/udp`, `8000-8010/tcp`. */
  ports: string[];
  /** The `ExposedPorts` keys BuildKit writes for them: `80/tcp`, `53/udp`, `8000/tcp` ... `8010/tcp`. */
  exposedPorts: string[];
}

export interface ResolvedVolume extends ResolvedBase {
  kind: 'VOLUME';
  paths: string[];
}

export interface ResolvedStopSignal extends ResolvedBase {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface ResolvedHealthcheck extends ResolvedBase {
  kind: 'HEALTHCHECK';
  /** `NONE` disables the base's check; otherwise the test as docker stores it. */
  test: ['NONE'] | ['CMD', ...string[]] | ['CMD-SHELL', string];
  /** Durations in nanoseconds as docker stores them; undefined when not given. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface ResolvedOnbuild extends ResolvedBase {
  kind: 'ONBUILD';
  /** The trigger as recorded in the image config (`COPY . /app`), unexpanded. */
  trigger: string;
}

export type ResolvedInstruction =
  | ResolvedArg
  | ResolvedEnv
  | ResolvedLabel
  | ResolvedMaintainer
  | ResolvedWorkdir
  | ResolvedUser
  | ResolvedCopy
  | ResolvedRun
  | ResolvedCmd
  | ResolvedShell
  | ResolvedExpose
  | ResolvedVolume
  | ResolvedStopSignal
  | ResolvedHealthcheck
  | ResolvedOnbuild;

export interface ResolvedStage {
  /** Position among all stages in the Dockerfile (0-based), as `--from=0` counts. */
  index: number;
  /** `AS name`, lower-cased as BuildKit does; undefined when unnamed. */
  name?: string;
  /** The FROM instruction. */
  location: SourceLocation;
  original: string;
  /** Expanded base: an image reference, `scratch`, or a previous stage's name/index. */
  base: string;
  /** When `base` names an earlier stage: that stage's index. */
  baseStage?: number;
  /** `FROM --platform=...`, expanded. */
  platform?: string;
  /** Instructions after FROM up to the next FROM, expanded. */
  instructions: ResolvedInstruction[];
  /** Stage indexes this stage needs (its base stage, COPY --from and RUN --mount from= stages), ascending. */
  dependsOn: number[];
  /**
   * The image config's `Env` after the stage: the base's Env (a base stage's finalEnv, the
   * `baseImageEnv` entry, or PATH for scratch as BuildKit sets it) edited by the ENV lines in
   * docker's order (a redefined key keeps its place). ARG values are not part of it.
   */
  finalEnv: string[];
}

export interface ResolvedBuild {
  directives: ParserDirectives;
  /** ARGs before the first FROM with their values (build arg or default). */
  globalArgs: { name: string; value?: string }[];
  /** The stages the target needs, in build order (ascending index); the target is last. */
  stages: ResolvedStage[];
  /** Index of the target stage (same as `stages[stages.length - 1].index`). */
  target: number;
  /** Build args given but never declared by an ARG in the selected stages (docker warns). */
  unusedBuildArgs: string[];
  warnings: ParseWarning[];
}

// ---------------------------------------------------------------------------------------------
// COPY/ADD helpers (pure; the plan builder calls them with data it read)

/**
 * Mode change from `--chmod`: octal (`0755`, `755`) sets the mode outright; symbolic
 * (`u+x,g-w,o=r`, `a+X`, `+x`) edits the source file's mode, as BuildKit accepts.
 * Apply it with `applyChmod(spec, sourceMode, isDirectory)` (chmod.ts).
 */
export type ChmodSpec =
  | { kind: 'octal'; mode: number }
  | { kind: 'symbolic'; clauses: SymbolicChmodClause[]; text: string };

export interface SymbolicChmodClause {
  /** Who the clause applies to; empty means everyone (BuildKit applies no umask). */
  who: ('u' | 'g' | 'o' | 'a')[];
  /** One or more operations, applied in order (`u+r-w` is two). */
  actions: { op: '+' | '-' | '='; /** letters from r w x X s t, or one of u g o to copy */ perms: string }[];
}

/** Numeric owner for files a COPY/ADD writes. */
export interface Ownership {
  uid: number;
  gid: number;
}

/** Archive kind by magic bytes (ADD extracts local archives). */
export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/*
 * The functions, by module (all pure, all throw DockerfileError / DockerignoreError with a fix):
 *
 *   parser.ts      parseDockerfile(text: string, options?: { file?: string }): ParsedDockerfile
 *   resolve.ts     listBaseImages(parsed: ParsedDockerfile, options?: ResolveOptions):
 *                      { stage: number; name: string; platform?: string }[]
 *                    (the external images the selected stages start from, expanded, so the
 *                     caller can fetch their configs and pass `baseImageEnv`)
 *                  resolveDockerfile(parsed: ParsedDockerfile, options?: ResolveOptions): ResolvedBuild
 *                  predefinedArgs(targetPlatform: string, buildPlatform: string): Record<string, string>
 *   shell-lexer.ts expandWord(word: string, env: Record<string, string>, escape?: '\\' | '`'): string
 *                  expandWords(text: string, env: Record<string, string>, escape?): string[]
 *                    (quotes removed, escapes applied, `$VAR`/`${VAR...}` replaced)
 *   dockerignore.ts parseDockerignore(text: string): string[]       (cleaned patterns)
 *                  createIgnoreMatcher(patterns: string[]): (path: string) => boolean
 *                    (path relative to the context, `/`-separated; true = excluded;
 *                     last match wins, `!` re-includes)
 *                  dockerignoreCandidates(dockerfilePath: string): string[]
 *                    (files to try in order: `<dockerfile>.dockerignore` beside the Dockerfile,
 *                     then `.dockerignore` at the context root)
 *   filepath-match.ts filepathMatch(pattern: string, name: string): boolean  (Go filepath.Match;
 *                    throws BadPatternError for a malformed pattern)
 *   chmod.ts       parseChmod(text: string): ChmodSpec
 *                  applyChmod(spec: ChmodSpec, sourceMode: number, isDirectory: boolean): number
 *   chown.ts       resolveChown(spec: string, files: { passwd?: string; group?: string }): Ownership
 *   archive.ts     detectArchive(head: Uint8Array): ArchiveKind | undefined
 */
