/**
 * From parsed instructions to typed, expanded stages, with BuildKit's scoping rules (checked
 * against frontend/dockerfile/dockerfile2llb):
 *  - ARGs before the first FROM (and the predefined platform args) are the global scope, seen
 *    by FROM lines only; a stage sees a global value after `ARG NAME` without a default;
 *  - a stage's variables are one list, as BuildKit's build state: the base's Env, then ENV and
 *    ARG lines in order, so an ARG is visible from its line on and ENV beats an earlier ARG
 *    (an ARG *after* an ENV of the same name with a value overrides it, as in BuildKit);
 *    stages built FROM a stage inherit its variables, ARGs included;
 *  - ENV/LABEL words are expanded with the values from before the instruction (`ENV a=1 b=$a`
 *    uses the old a); ARG defaults are expanded one by one (`ARG a=1 b=$a` sees a=1);
 *  - `--build-arg` overrides ARG defaults;
 *  - `--target` picks a stage and with it the stages it needs (FROM <stage>, COPY --from,
 *    RUN --mount from=), built in file order; only those are expanded.
 */
import { DockerfileError } from './errors.js';
import { isBuiltinArg, predefinedArgs } from './platform-args.js';
import { lexWord, ShellWordError, type VariableLookup } from './shell-lexer.js';
import type {
  CommandLine,
  CopySource,
  Heredoc,
  InstructionFlag,
  ParsedDockerfile,
  ParsedInstruction,
  ResolveOptions,
  ResolvedBuild,
  ResolvedCopy,
  ResolvedFlag,
  ResolvedHealthcheck,
  ResolvedInstruction,
  ResolvedStage,
  ParseWarning,
} from './types.js';
import { exposedPorts } from './expose.js';
import { healthcheckOptions } from './healthcheck.js';
import { parseHeredocWord } from './parser.js';

/** What `FROM scratch` starts with in BuildKit: no layers, and PATH set for RUN. */
export const SCRATCH_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const DEFAULT_PLATFORM = 'linux/amd64';

interface StageHead {
  index: number;
  from: ParsedInstruction;
  body: ParsedInstruction[];
  name?: string;
  base: string;
  baseStage?: number;
  platform?: string;
  /** Stages this one needs, with the instruction that needs each (for cycle messages). */
  needs: Map<number, ParsedInstruction>;
  /** COPY --from stage per instruction. */
  copyFrom: Map<ParsedInstruction, number>;
}

function lastStageName(instructions: readonly ParsedInstruction[]): string | undefined {
  const from = instructions.filter((instruction) => instruction.keyword === 'FROM').at(-1);
  return from?.args[2]?.toLowerCase();
}

/** Environment in docker's `KEY=VALUE` list form, edited in place so order is kept. */
class EnvList {
  private readonly entries: [string, string][];

  constructor(list: readonly string[]) {
    this.entries = list.map((entry) => {
      const equals = entry.indexOf('=');
      return equals === -1 ? [entry, ''] : [entry.slice(0, equals), entry.slice(equals + 1)];
    });
  }

  get(key: string): string | undefined {
    return this.entries.find(([name]) => name === key)?.[1];
  }

  set(key: string, value: string): void {
    const existing = this.entries.find(([name]) => name === key);
    if (existing) existing[1] = value;
    else this.entries.push([key, value]);
  }

  toList(): string[] {
    return this.entries.map(([key, value]) => `${key}=${value}`);
  }
}

export function resolveDockerfile(parsed: ParsedDockerfile, options: ResolveOptions = {}): ResolvedBuild {
  return new Resolver(parsed, options).resolve();
}

/**
 * The external images the selected stages start from (expanded FROM names, not `scratch`, not
 * stages), so the caller can fetch their configs and pass their Env as `baseImageEnv`. Computed
 * as if those images had no Env, which only matters if a `--from` value uses a base image's ENV.
 */
export function listBaseImages(parsed: ParsedDockerfile, options: ResolveOptions = {}): { stage: number; name: string; platform?: string }[] {
  const build = resolveDockerfile(parsed, { ...options, baseImageEnv: {} });
  return build.stages
    .filter((stage) => stage.baseStage === undefined && stage.base.toLowerCase() !== 'scratch')
    .map((stage) => (stage.platform === undefined ? { stage: stage.index, name: stage.base } : { stage: stage.index, name: stage.base, platform: stage.platform }));
}

class Resolver {
  private readonly buildArgs: Record<string, string>;
  private readonly global = new Map<string, string>();
  private readonly declared = new Set<string>();
  private readonly heads: StageHead[] = [];
  private readonly resolved = new Map<number, ResolvedStage>();
  private readonly stageVariables = new Map<number, string[]>();
  private readonly warnings: ParseWarning[] = [];
  private readonly escape: '\\' | '`';

  constructor(
    private readonly parsed: ParsedDockerfile,
    private readonly options: ResolveOptions,
  ) {
    this.buildArgs = options.buildArgs ?? {};
    this.escape = parsed.directives.escape;
  }

  resolve(): ResolvedBuild {
    const buildPlatform = this.options.buildPlatform ?? DEFAULT_PLATFORM;
    const instructions = this.parsed.instructions;
    const predefined: Record<string, string> = {
      ...predefinedArgs(this.options.targetPlatform ?? buildPlatform, buildPlatform),
      BUILDOSVERSION: '',
      TARGETOSVERSION: '',
      TARGETSTAGE: this.options.target || lastStageName(instructions) || 'default',
    };
    for (const [key, value] of Object.entries(predefined)) this.global.set(key, this.buildArgs[key] ?? value);

    const globalArgs: { name: string; value?: string }[] = [];
    let cursor = 0;
    for (; cursor < instructions.length && instructions[cursor]!.keyword === 'ARG'; cursor++) {
      const instruction = instructions[cursor] as ParsedInstruction;
      // Names are taken as written; each default sees the global args before it.
      for (const pair of instruction.pairs ?? []) {
        const name = pair.key;
        this.declared.add(name);
        const value =
          this.buildArgs[name] ?? (pair.value === undefined ? this.global.get(name) : this.expand(pair.value, this.lookupIn(this.global), instruction));
        if (value !== undefined) this.global.set(name, value);
        globalArgs.push(value === undefined ? { name } : { name, value });
      }
    }
    this.splitStages(instructions.slice(cursor));
    this.linkStages();

    const target = this.selectTarget();
    const stages = this.dependencyOrder(target).map((index) => this.resolveStage(index));
    const unusedBuildArgs = Object.keys(this.buildArgs).filter((name) => !this.declared.has(name) && !isBuiltinArg(name));
    return {
      directives: this.parsed.directives,
      globalArgs,
      stages,
      target,
      unusedBuildArgs,
      warnings: [...this.parsed.warnings, ...this.warnings],
    };
  }

  private lookupIn(scope: ReadonlyMap<string, string>): VariableLookup {
    return (name) => scope.get(name);
  }

  private expand(word: string, lookup: VariableLookup, instruction: ParsedInstruction, what?: string): string {
    try {
      return lexWord(word, lookup, { escape: this.escape }).text;
    } catch (error) {
      if (error instanceof ShellWordError) throw this.wordError(error, instruction, what);
      throw error;
    }
  }

  private expandToWords(text: string, lookup: VariableLookup, instruction: ParsedInstruction): string[] {
    try {
      return lexWord(text, lookup, { escape: this.escape }).words;
    } catch (error) {
      if (error instanceof ShellWordError) throw this.wordError(error, instruction);
      throw error;
    }
  }

  private wordError(error: ShellWordError, instruction: ParsedInstruction, what?: string): DockerfileError {
    const required = /: (is not allowed to be (unset|empty)|.*)$/.test(error.message) && /\$\{[^}]*\?/.test(error.word);
    return new DockerfileError(`${instruction.keyword}${what ? ` ${what}` : ''}: ${error.message}`, {
      position: instruction.location,
      hint: required
        ? 'pass the variable with --build-arg NAME=VALUE or give it a default (ARG NAME=default)'
        : 'check the quotes and ${...} syntax; supported forms are $V ${V} ${V:-d} ${V-d} ${V:+a} ${V+a} ${V:?m} ${V?m} ${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}',
    });
  }

  private splitStages(rest: ParsedInstruction[]): void {
    const globalLookup = this.lookupIn(this.global);
    for (const instruction of rest) {
      if (instruction.keyword !== 'FROM') {
        (this.heads.at(-1) as StageHead).body.push(instruction);
        continue;
      }
      const index = this.heads.length;
      const [baseWord, , nameWord] = instruction.args as [string, string?, string?];
      const base = this.expand(baseWord, globalLookup, instruction, 'base image');
      if (base.trim() === '') {
        throw new DockerfileError(`base name (${baseWord}) should not be blank`, {
          position: instruction.location,
          hint: 'give the ARG used in FROM a default or pass it with --build-arg',
        });
      }
      const name = nameWord?.toLowerCase();
      if (name !== undefined && this.heads.some((head) => head.name === name)) {
        // BuildKit only lints this; the later stage wins every lookup by name.
        this.warnings.push({ position: instruction.location, message: `duplicate stage name "${name}": references now mean this stage; rename one of them` });
      }
      const platformFlag = instruction.flags.find((flag) => flag.name === 'platform');
      const platform = platformFlag ? this.expand(platformFlag.value ?? '', globalLookup, instruction, '--platform') : undefined;
      if (platform === '') {
        throw new DockerfileError(`empty platform value from expression ${platformFlag?.value}`, {
          position: instruction.location,
          hint: 'give the ARG used in --platform a value, or drop the flag',
        });
      }
      // BuildKit matches the expanded name exactly against earlier (lower-cased) stage names.
      const baseStage = this.heads.findLast((head) => head.name !== undefined && head.name === base)?.index;
      const head: StageHead = { index, from: instruction, body: [], base, needs: new Map(), copyFrom: new Map() };
      if (name !== undefined) head.name = name;
      if (baseStage !== undefined) head.baseStage = baseStage;
      if (platform !== undefined) head.platform = platform;
      this.heads.push(head);
    }
  }

  private selectTarget(): number {
    const wanted = this.options.target;
    if (wanted === undefined || wanted === '') return this.heads.length - 1;
    const found = this.heads.findLast((head) => head.name === wanted.toLowerCase());
    if (!found) {
      const names = this.heads.flatMap((head) => (head.name ? [head.name] : []));
      throw new DockerfileError(`target stage "${wanted}" could not be found`, {
        hint: names.length ? `stages in this Dockerfile: ${names.join(', ')}` : 'no stage has a name; add "AS <name>" to a FROM line',
      });
    }
    return found.index;
  }

  /**
   * Every stage's dependencies, from the words as written (BuildKit does not expand --from):
   * its base stage, COPY --from=<name|index>, RUN --mount from=<name>. A cycle is an error
   * even in stages the target does not need, as in BuildKit.
   */
  private linkStages(): void {
    for (const head of this.heads) {
      if (head.baseStage !== undefined) head.needs.set(head.baseStage, head.from);
      for (const instruction of head.body) {
        if (instruction.keyword === 'COPY') {
          const from = instruction.flags.find((flag) => flag.name === 'from')?.value;
          if (from === undefined || from === null || from === '') continue;
          const stage = this.copySource(from, instruction);
          if (stage !== undefined) {
            head.needs.set(stage, instruction);
            head.copyFrom.set(instruction, stage);
          }
        } else if (instruction.keyword === 'RUN') {
          for (const flag of instruction.flags) {
            if (flag.name !== 'mount' || flag.value === null) continue;
            const from = mountSource(flag.value);
            const stage = from === undefined ? undefined : this.heads.findLast((candidate) => candidate.name === from.toLowerCase());
            if (stage) head.needs.set(stage.index, instruction);
          }
        }
      }
    }
    this.checkCycles();
  }

  /** A `COPY --from` value: a stage name (any stage), a stage index, or else an image. */
  private copySource(from: string, instruction: ParsedInstruction): number | undefined {
    if (lexWordSafely(from, this.escape) !== from) {
      throw new DockerfileError(`variable expansion is not supported for --from (${from})`, {
        position: instruction.location,
        hint: 'define a stage with FROM using a global ARG (ARG IMG=...; FROM $IMG AS src) and copy --from=src',
      });
    }
    const byName = this.heads.findLast((head) => head.name !== undefined && head.name === from.toLowerCase());
    if (byName) return byName.index;
    if (/^-?\d+$/.test(from)) {
      const index = Number(from);
      if (index < 0 || index >= this.heads.length) {
        throw new DockerfileError(`invalid stage index ${index}`, {
          position: instruction.location,
          hint: `stage indexes count FROM lines from 0; this Dockerfile has ${this.heads.length} stage(s)`,
        });
      }
      return index;
    }
    return undefined;
  }

  private checkCycles(): void {
    const done = new Set<number>();
    const onPath: number[] = [];
    const visit = (index: number): void => {
      if (done.has(index)) return;
      onPath.push(index);
      for (const [dependency, instruction] of this.heads[index]!.needs) {
        if (onPath.includes(dependency)) {
          const cycle = [...onPath.slice(onPath.indexOf(dependency)), dependency].map((i) => this.stageLabel(i)).join(' -> ');
          throw new DockerfileError(`circular dependency between stages: ${cycle}`, {
            position: instruction.location,
            hint: 'a stage cannot copy from itself or from a stage that copies from it',
          });
        }
        visit(dependency);
      }
      onPath.pop();
      done.add(index);
    };
    for (const head of this.heads) visit(head.index);
  }

  /** Stages the target needs, ascending. */
  private dependencyOrder(target: number): number[] {
    const needed = new Set<number>();
    const visit = (index: number): void => {
      if (needed.has(index)) return;
      needed.add(index);
      for (const dependency of this.heads[index]!.needs.keys()) visit(dependency);
    };
    visit(target);
    return [...needed].sort((a, b) => a - b);
  }

  private stageLabel(index: number): string {
    return this.heads[index]?.name ?? `stage-${index}`;
  }

  private resolveStage(index: number): ResolvedStage {
    const cached = this.resolved.get(index);
    if (cached) return cached;
    const head = this.heads[index] as StageHead;
    const baseEnv =
      head.baseStage !== undefined
        ? this.resolveStage(head.baseStage).finalEnv
        : head.base.toLowerCase() === 'scratch'
          ? SCRATCH_ENV
          : (this.options.baseImageEnv?.[head.base] ?? []);
    // The image config's Env (ENV only) and the build state's variables (ENV and ARG), which a
    // stage built FROM this one inherits, as BuildKit's llb state carries them.
    const configEnv = new EnvList(baseEnv);
    const variables = new EnvList(head.baseStage !== undefined ? (this.stageVariables.get(head.baseStage) ?? baseEnv) : baseEnv);
    const lookup: VariableLookup = (name) => variables.get(name);

    const instructions: ResolvedInstruction[] = [];
    for (const instruction of head.body) {
      const resolved = this.resolveInstruction(instruction, lookup, head, variables);
      if (resolved.kind === 'ENV') {
        // Applied after expanding, so every word saw the values from before the instruction.
        for (const { key, value } of resolved.pairs) {
          variables.set(key, value);
          configEnv.set(key, value);
        }
      }
      instructions.push(resolved);
    }
    const stage: ResolvedStage = {
      index,
      location: head.from.location,
      original: head.from.original,
      base: head.base,
      instructions,
      dependsOn: [...head.needs.keys()].sort((a, b) => a - b),
      finalEnv: configEnv.toList(),
    };
    if (head.name !== undefined) stage.name = head.name;
    if (head.baseStage !== undefined) stage.baseStage = head.baseStage;
    if (head.platform !== undefined) stage.platform = head.platform;
    this.resolved.set(index, stage);
    this.stageVariables.set(index, variables.toList());
    return stage;
  }

  private resolveInstruction(instruction: ParsedInstruction, lookup: VariableLookup, head: StageHead, variables: EnvList): ResolvedInstruction {
    const base = { keyword: instruction.keyword, location: instruction.location, original: instruction.original };
    const word = (text: string, what?: string): string => this.expand(text, lookup, instruction, what);
    const args = instruction.args;
    switch (instruction.keyword) {
      case 'ARG':
        // One name at a time, each seeing the ones before it; the name is not expanded.
        return {
          ...base,
          kind: 'ARG',
          args: (instruction.pairs ?? []).map((pair) => {
            const name = pair.key;
            this.declared.add(name);
            const defaultValue = pair.value === undefined || name in this.buildArgs ? undefined : word(pair.value);
            const value = this.buildArgs[name] ?? (pair.value === undefined ? this.global.get(name) : defaultValue);
            const arg: { name: string; defaultValue?: string; value?: string } = { name };
            if (defaultValue !== undefined) arg.defaultValue = defaultValue;
            if (value !== undefined) {
              arg.value = value;
              variables.set(name, value);
            }
            return arg;
          }),
        };
      case 'ENV':
      case 'LABEL': {
        const pairs = (instruction.pairs ?? []).map((pair) => ({ key: word(pair.key), value: word(pair.value ?? '') }));
        return instruction.keyword === 'ENV' ? { ...base, kind: 'ENV', pairs } : { ...base, kind: 'LABEL', pairs };
      }
      case 'MAINTAINER':
        return { ...base, kind: 'MAINTAINER', name: args[0] as string };
      case 'WORKDIR':
        return { ...base, kind: 'WORKDIR', path: word(args[0] as string) };
      case 'USER':
        return { ...base, kind: 'USER', user: word(args[0] as string) };
      case 'STOPSIGNAL':
        return { ...base, kind: 'STOPSIGNAL', signal: word(args[0] as string) };
      case 'VOLUME': {
        const paths = args.map((path) => word(path));
        if (paths.some((path) => path.trim() === '')) {
          throw new DockerfileError('VOLUME specified can not be an empty string', { position: instruction.location, hint: 'check the variables used in VOLUME' });
        }
        return { ...base, kind: 'VOLUME', paths };
      }
      case 'EXPOSE': {
        const ports = args.flatMap((port) => this.expandToWords(port, lookup, instruction));
        try {
          return { ...base, kind: 'EXPOSE', ports, exposedPorts: exposedPorts(ports) };
        } catch (error) {
          throw new DockerfileError(`EXPOSE: ${(error as Error).message}`, {
            position: instruction.location,
            hint: 'write ports as PORT, PORT/PROTOCOL or START-END/PROTOCOL with tcp, udp or sctp, e.g. EXPOSE 80 53/udp 8000-8010',
          });
        }
      }
      case 'COPY':
      case 'ADD':
        return this.resolveCopy(instruction, lookup, head);
      case 'RUN': {
        const flags = instruction.flags.map((flag): ResolvedFlag =>
          flag.name === 'mount' && flag.value !== null ? { name: flag.name, value: word(flag.value, '--mount') } : { name: flag.name, value: flag.value },
        );
        return { ...base, kind: 'RUN', command: commandLine(instruction), heredocs: instruction.heredocs, flags };
      }
      case 'CMD':
      case 'ENTRYPOINT':
        return { ...base, kind: instruction.keyword, command: commandLine(instruction) };
      case 'SHELL':
        return { ...base, kind: 'SHELL', shell: [...args] };
      case 'HEALTHCHECK':
        return this.resolveHealthcheck(instruction, base);
      case 'ONBUILD': {
        let trigger = instruction.original.replace(/^\s*ONBUILD\s*/i, '');
        for (const heredoc of instruction.heredocs) trigger += `\n${heredoc.content}${heredoc.name}`;
        return { ...base, kind: 'ONBUILD', trigger };
      }
      default:
        throw new DockerfileError(`unexpected ${instruction.keyword} inside a stage`, { position: instruction.location });
    }
  }

  private resolveCopy(instruction: ParsedInstruction, lookup: VariableLookup, head: StageHead): ResolvedCopy {
    const word = (text: string, what?: string): string => this.expand(text, lookup, instruction, what);
    const keyword = instruction.keyword as 'COPY' | 'ADD';
    const flagValue = (name: string): string | undefined => {
      const flag = instruction.flags.find((candidate) => candidate.name === name);
      return flag?.value === null || flag === undefined ? undefined : word(flag.value, `--${name}`);
    };
    const flagOn = (name: string): boolean => isTrue(instruction.flags.find((candidate) => candidate.name === name));
    const heredocs = new Map(instruction.heredocs.map((heredoc) => [heredoc.name, heredoc]));
    const written = instruction.args;
    const sources: CopySource[] = written.slice(0, -1).map((source) => {
      const found = instruction.form === 'shell' ? parseHeredocWord(source) : undefined;
      if (!found) return { path: word(source, 'source') };
      const heredoc = heredocs.get(found.name) as Heredoc;
      const content = heredoc.expand ? this.expandHeredoc(heredoc, instruction, lookup) : heredoc.content;
      return { path: found.name, heredoc: { ...heredoc, content } };
    });
    const copy: ResolvedCopy = {
      keyword,
      location: instruction.location,
      original: instruction.original,
      kind: keyword,
      sources,
      dest: word(written.at(-1) as string, 'destination'),
      link: flagOn('link'),
      parents: flagOn('parents'),
      // BuildKit expands --chown, --chmod and (ADD) --checksum; --from and --exclude stay as written.
      exclude: instruction.flags.filter((flag) => flag.name === 'exclude').map((flag) => flag.value ?? ''),
      keepGitDir: flagOn('keep-git-dir'),
      flags: instruction.flags.map((flag) => ({
        name: flag.name,
        value: flag.value !== null && EXPANDED_COPY_FLAGS.has(flag.name) ? word(flag.value, `--${flag.name}`) : flag.value,
      })),
    };
    const from = instruction.flags.find((flag) => flag.name === 'from')?.value;
    if (from !== undefined && from !== null && from !== '') {
      copy.from = from;
      const stage = head.copyFrom.get(instruction);
      if (stage !== undefined) copy.fromStage = stage;
    }
    const chown = flagValue('chown');
    if (chown) copy.chown = chown;
    const chmod = flagValue('chmod');
    if (chmod) copy.chmod = chmod;
    const checksum = flagValue('checksum');
    if (checksum) copy.checksum = checksum;
    const unpack = instruction.flags.find((flag) => flag.name === 'unpack');
    if (unpack) copy.unpack = isTrue(unpack);
    return copy;
  }

  /** Heredoc bodies expand variables and escapes but keep quotes, as BuildKit does. */
  private expandHeredoc(heredoc: Heredoc, instruction: ParsedInstruction, lookup: VariableLookup): string {
    try {
      return lexWord(heredoc.content, lookup, { escape: '\\', ignoreQuotes: true }).text;
    } catch (error) {
      if (error instanceof ShellWordError) throw this.wordError(error, instruction, `heredoc ${heredoc.name}`);
      throw error;
    }
  }

  private resolveHealthcheck(instruction: ParsedInstruction, base: { keyword: string; location: ParsedInstruction['location']; original: string }): ResolvedHealthcheck {
    const type = (instruction.args[0] as string).toUpperCase();
    if (type === 'NONE') return { ...base, kind: 'HEALTHCHECK', test: ['NONE'] };
    const command = instruction.args.slice(1);
    const test: ResolvedHealthcheck['test'] = instruction.form === 'json' ? ['CMD', ...command] : ['CMD-SHELL', command[0] as string];
    return { ...base, kind: 'HEALTHCHECK', test, ...healthcheckOptions(instruction.flags) };
  }

}

const EXPANDED_COPY_FLAGS = new Set(['chown', 'chmod', 'checksum']);

/** The word with quotes and escapes processed and no variables, for spotting `$` in --from. */
function lexWordSafely(word: string, escape: '\\' | '`'): string | undefined {
  try {
    return lexWord(word, () => undefined, { escape }).text;
  } catch {
    return undefined;
  }
}

function isTrue(flag: InstructionFlag | undefined): boolean {
  if (!flag) return false;
  return flag.value === null || flag.value.toLowerCase() === 'true';
}

function commandLine(instruction: ParsedInstruction): CommandLine {
  return { form: instruction.form, args: [...instruction.args] };
}

/** The `from=` of a `--mount` value (`type=cache,from=builder,target=/x`), if any. */
function mountSource(value: string): string | undefined {
  for (const field of value.split(',')) {
    const equals = field.indexOf('=');
    const key = (equals === -1 ? field : field.slice(0, equals)).trim().toLowerCase();
    if (key === 'from') return field.slice(equals + 1).trim();
  }
  return undefined;
}
