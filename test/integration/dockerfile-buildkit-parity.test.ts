// Our Dockerfile parser, resolver and shell lexer against BuildKit's own (built from source
// by test/tools/build-buildkit-dockerfile.sh): the same files must give the same parse trees,
// the same errors, the same expanded image config, and the same words.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parseDockerfile } from '../../src/dockerfile/parser.js';
import { resolveDockerfile } from '../../src/dockerfile/resolve.js';
import { lexWord } from '../../src/dockerfile/shell-lexer.js';
import { applyChmod, parseChmod } from '../../src/dockerfile/chmod.js';
import { createIgnoreMatcher, parseDockerignore } from '../../src/dockerfile/dockerignore.js';
import { filepathMatch } from '../../src/dockerfile/filepath-match.js';
import type { ParsedInstruction, ResolvedBuild, ResolvedInstruction } from '../../src/dockerfile/types.js';
import { copyLayerEntries, resolveCopyStep } from '../../src/plan/copy.js';
import type { CopyStep } from '../../src/plan/steps.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/dockerfiles');

interface WitnessNode {
  keyword: string;
  flags: string[];
  args: string[];
  child?: WitnessNode;
  json: boolean;
  heredocs: { name: string; content: string; expand: boolean; chomp: boolean; fileDescriptor: number }[];
  startLine: number;
  endLine: number;
}
interface WitnessCase {
  nodes: WitnessNode[];
  escape: string;
  parseError?: string;
  convertError?: string;
  config?: Record<string, unknown>;
}
interface WitnessWord {
  result: string;
  words: string[];
  error?: string;
}
interface CaseInput {
  dockerfile: string;
  buildArgs?: Record<string, string>;
  target?: string;
  convert?: boolean;
}

let witness: string;

function askBuildKit(cases: CaseInput[], words: { word: string; env: string[]; escape?: string }[] = []): { cases: WitnessCase[]; words: WitnessWord[] } {
  return askWitness({ cases, words }) as { cases: WitnessCase[]; words: WitnessWord[] };
}

function askWitness(input: Record<string, unknown>): Record<string, unknown[]> {
  const output = execFileSync(witness, { input: JSON.stringify(input), maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(output.toString('utf8'));
}

before(() => {
  witness = execFileSync('bash', [path.join(ROOT, 'test/tools/build-buildkit-dockerfile.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  })
    .toString()
    .trim();
}, { timeout: 20 * 60_000 });

/** Our instruction in the witness's terms. */
function ours(instruction: ParsedInstruction): WitnessNode {
  const keyword = instruction.keyword.toLowerCase();
  let args: string[];
  if (keyword === 'env' || keyword === 'label') args = (instruction.pairs ?? []).flatMap((pair) => [pair.key, pair.value ?? '']);
  else if (keyword === 'onbuild') args = [];
  else args = instruction.args;
  const node: WitnessNode = {
    keyword,
    flags: instruction.flags.map((flag) => (flag.value === null ? `--${flag.name}` : `--${flag.name}=${flag.value}`)),
    args,
    json: instruction.form === 'json',
    heredocs: instruction.heredocs.map((heredoc) => ({
      name: heredoc.name,
      content: heredoc.content,
      expand: heredoc.expand,
      chomp: heredoc.stripTabs,
      fileDescriptor: heredoc.fileDescriptor ?? 0,
    })),
    startLine: instruction.location.line,
    endLine: instruction.location.endLine,
  };
  if (instruction.onbuild) node.child = { ...ours(instruction.onbuild), startLine: 0, endLine: 0 };
  return node;
}

/** BuildKit's node normalised: ENV/LABEL lose their delimiter entries, <<- bodies are chomped. */
function theirs(node: WitnessNode, nested = false): WitnessNode {
  const args = node.keyword === 'env' || node.keyword === 'label' ? node.args.filter((_, index) => index % 3 !== 2) : node.args;
  const out: WitnessNode = {
    ...node,
    args,
    heredocs: node.heredocs.map((heredoc) => ({ ...heredoc, content: heredoc.chomp ? heredoc.content.replace(/^\t+/gm, '') : heredoc.content })),
  };
  if (nested) {
    out.startLine = 0;
    out.endLine = 0;
  }
  if (node.child) out.child = theirs({ ...node.child, heredocs: [] }, true);
  else delete out.child;
  return out;
}

function compareParse(name: string, text: string, result: WitnessCase): void {
  let parsed;
  try {
    parsed = parseDockerfile(text);
  } catch (error) {
    // BuildKit's parser takes a file without FROM and its converter then rejects it; we say so at once.
    const noStages = !result.parseError && !result.nodes.some((node) => node.keyword === 'from') && /no FROM|no instructions/.test((error as Error).message);
    assert.ok(result.parseError || noStages, `${name}: we reject what BuildKit accepts: ${(error as Error).message}`);
    return;
  }
  assert.equal(result.parseError, undefined, `${name}: BuildKit rejects what we accept`);
  assert.equal(parsed.directives.escape, result.escape, `${name}: escape`);
  const mine = parsed.instructions.map((instruction) => {
    const node = ours(instruction);
    if (node.child) node.child.heredocs = [];
    return node;
  });
  assert.deepEqual(mine, result.nodes.map((node) => theirs(node)), name);
}

const fixtureFiles = readdirSync(FIXTURES).filter((file) => file.endsWith('.Dockerfile')).sort();

// Snippets aimed at the corners of the grammar; each is parsed by both.
const snippets: string[] = [
  'FROM a\nRUN a \\\n\n  b\n',
  'FROM a\nRUN a \\\n# c\n  b\n',
  'FROM a\nRUN echo a\\\\\nRUN b\n',
  'FROM a\nRUN a \\  \nb\n',
  'FROM a\nCMD ["a", "b  c"]\nCMD [\'a\']\nCMD ["a"\nCMD []\n',
  'FROM a\nCMD ["a"] trailing\n',
  'FROM a\nCMD ["a", 1]\n',
  'FROM a\nENV A B C\nENV A=1 B="2 3" C=\'4\' D=5\\ 6\n',
  'FROM a\nENV A\n',
  'FROM a\nENV A=1 B\n',
  'FROM a\nLABEL a.b.c="x" "d e"=f\n',
  'FROM a\nARG A B=1 C= "D=e f"\n',
  'FROM a\nCOPY --from=b --chown="1:2" --link --exclude=a --exclude=b x y\n',
  'FROM a\nCOPY --link -- --x y\n',
  'FROM a\nCOPY --link=maybe x y\n',
  'FROM a\nCOPY --from x y\n',
  'FROM a\nCOPY --nope=1 x y\n',
  'FROM a\nCOPY x\n',
  'FROM a\nUSER --x=1 u\n',
  'FROM a\nHEALTHCHECK --interval=5s --start-interval=1s CMD true\nHEALTHCHECK CMD ["a"]\nHEALTHCHECK NONE\n',
  'FROM a\nHEALTHCHECK NONE x\n',
  'FROM a\nHEALTHCHECK FOO x\n',
  'FROM a\nHEALTHCHECK --retries=-1 CMD x\n',
  'FROM a\nHEALTHCHECK --interval=5 CMD x\n',
  'FROM a\nSHELL /bin/sh\n',
  'FROM a\nONBUILD ONBUILD RUN x\n',
  'FROM a\nONBUILD FROM x\n',
  'FROM a\nONBUILD COPY --chown=1 a b\n',
  'FROM a\nONBUILD RUN <<EOF\nx\nEOF\n',
  'FROM a\nRUN <<EOF\nFROM b\nEOF\n',
  'FROM a\nRUN <<-EOF\n\tx\n\tEOF\n',
  "FROM a\nRUN <<'EOF' <<\"F2\"\n$x\nEOF\n$y\nF2\n",
  'FROM a\nRUN ["cat", "<<EOF"]\n',
  "FROM a\nRUN echo '<<EOF'\n",
  "FROM a\nRUN cat <<'EOF\n",
  'FROM a\nCOPY <<EOF /x\nhi\nEOF\n',
  'FROM a\nCOPY x <<EOF\nhi\nEOF\n',
  'FROM a\nRUN <<EOF\nnever closed\n',
  'FROM a\nRUN x <<EOF>/out\ny\nEOF>/out\n',
  '# escape=`\nFROM a\nRUN a `\n  b\nCOPY C:\\x C:\\y\n',
  '# ESCAPE = `\n# syntax=x\nFROM a\n',
  '# syntax=x\n# syntax=y\nFROM a\n',
  '# escape=x\nFROM a\n',
  '\n# escape=`\nFROM a\nRUN a`\n',
  '# foo=bar\n# escape=`\nFROM a\n',
  '\uFEFFFROM a\n',
  'FROM a\r\nRUN a \\\r\n b\r\n',
  'FROM a AS 1x\n',
  'FROM a b\n',
  'ENV A=1\nFROM a\n',
  '# only a comment\n',
  'FROM a\nFOO bar\n',
  'from a\ncopy x y\nRuN z\n',
  'FROM a\nWORKDIR\n',
  'FROM a\nMAINTAINER\n',
  'FROM a\nEXPOSE\n',
  'FROM a\nVOLUME ["", "/x"]\n',
  'FROM a\nADD --unpack=true --keep-git-dir x y\n',
  'FROM a\nRUN --mount=type=secret,id=x --network=none --security=insane true\n',
  'FROM a\nRUN --mount=type=cache,target=/c --network=host --security=sandbox true\n',
  'FROM a\nRUN --mount=type=volume,target=/c true\n',
  'FROM a\nRUN --network=bridge true\n',
];

/** A deterministic generator, so a failure can be reproduced from its seed. */
function generator(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
}

// Lines to assemble random Dockerfiles from: valid and broken pieces, heredoc openers and
// terminators, continuations, directives, CRLF.
const LINES = [
  'FROM a', 'FROM a AS b', 'RUN x', 'RUN <<EOF', 'RUN <<-EOF cat', 'EOF', '\tEOF', 'COPY a b', 'COPY <<X /d', 'X', 'ENV A=1', 'ENV A 1',
  'ENV "A"=\'x y\'', 'LABEL a=b c', 'ARG A', '# c', '# escape=`', '# syntax=x', '', '  ', 'RUN a \\', 'RUN a `', 'CMD ["a"]',
  'CMD [', 'ONBUILD RUN x', 'HEALTHCHECK CMD x', 'HEALTHCHECK NONE', 'COPY --from=a x y', 'COPY --link=false x y', 'WORKDIR /a b',
  'EXPOSE 80', 'VOLUME []', 'SHELL ["a"]', 'RUN ["<<EOF"]', "RUN '<<EOF'", 'RUN a <<A <<B', 'A', 'B', 'STOPSIGNAL 9',
  'RUN --mount=type=cache,target=/x y', '\tRUN indented', 'RUN a\\\\', 'ENV a=\\', 'RUN "open', "RUN <<'EOF", 'FROM --platform=x a',
];

describe('parser parity with BuildKit', () => {
  test('2000 generated Dockerfiles: same trees, same accept/reject', () => {
    const next = generator(20261130);
    const texts = Array.from({ length: 2000 }, () => {
      const lines = Array.from({ length: 1 + next(10) }, () => (LINES[next(LINES.length)] as string).replace(/\\t/g, '\t'));
      if (next(3) !== 0) lines.unshift('FROM a');
      return lines.join(next(8) === 0 ? '\r\n' : '\n') + (next(5) === 0 ? '' : '\n');
    });
    const results = askBuildKit(texts.map((dockerfile) => ({ dockerfile })));
    texts.forEach((text, index) => compareParse(JSON.stringify(text), text, results.cases[index] as WitnessCase));
    assert.ok(results.cases.filter((result) => !result.parseError).length > 300, 'enough of them are valid');
  });

  test('fixture Dockerfiles parse to the same trees', () => {
    const texts = fixtureFiles.map((file) => readFileSync(path.join(FIXTURES, file), 'utf8'));
    const results = askBuildKit(texts.map((dockerfile) => ({ dockerfile })));
    assert.ok(fixtureFiles.length >= 8);
    texts.forEach((text, index) => compareParse(fixtureFiles[index] as string, text, results.cases[index] as WitnessCase));
  });

  test('corner-case snippets: same trees, same accept/reject', () => {
    const results = askBuildKit(snippets.map((dockerfile) => ({ dockerfile })));
    snippets.forEach((text, index) => compareParse(JSON.stringify(text), text, results.cases[index] as WitnessCase));
  });
});

/** The image config fields our resolved stage decides, computed as docker does. */
function configOf(build: ResolvedBuild): Record<string, unknown> {
  const stages = new Map(build.stages.map((stage) => [stage.index, stage]));
  const config: Record<string, unknown> = {};
  const apply = (instructions: ResolvedInstruction[]): void => {
    for (const instruction of instructions) {
      switch (instruction.kind) {
        case 'LABEL':
          config.Labels = { ...(config.Labels as object), ...Object.fromEntries(instruction.pairs.map((pair) => [pair.key, pair.value])) };
          break;
        case 'USER':
          config.User = instruction.user;
          break;
        case 'WORKDIR':
          config.WorkingDir = path.posix.resolve((config.WorkingDir as string | undefined) ?? '/', instruction.path);
          break;
        case 'EXPOSE':
          config.ExposedPorts = {
            ...(config.ExposedPorts as object),
            ...Object.fromEntries(instruction.exposedPorts.map((port) => [port, {}])),
          };
          break;
        case 'VOLUME':
          config.Volumes = { ...(config.Volumes as object), ...Object.fromEntries(instruction.paths.map((volume) => [volume, {}])) };
          break;
        case 'STOPSIGNAL':
          config.StopSignal = instruction.signal;
          break;
        case 'ONBUILD':
          config.OnBuild = [...((config.OnBuild as string[] | undefined) ?? []), instruction.trigger];
          break;
        case 'SHELL':
          config.Shell = instruction.shell;
          break;
        case 'CMD':
        case 'ENTRYPOINT':
          if (instruction.command.form === 'json') config[instruction.kind === 'CMD' ? 'Cmd' : 'Entrypoint'] = instruction.command.args;
          break;
        default:
          break;
      }
    }
  };
  const chain = (index: number): void => {
    const stage = stages.get(index)!;
    if (stage.baseStage !== undefined) chain(stage.baseStage);
    else if (stage.base === 'scratch') config.WorkingDir = '/'; // BuildKit's empty image
    apply(stage.instructions);
  };
  chain(build.target);
  config.Env = stages.get(build.target)!.finalEnv;
  return config;
}

function pick(config: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => config[key] !== undefined && config[key] !== null).map((key) => [key, config[key]]));
}

// FROM scratch (and stages) only, so BuildKit needs no registry: expansion, scoping, targets.
const resolveCases: CaseInput[] = [
  { dockerfile: readFileSync(path.join(FIXTURES, 'scratch-config.Dockerfile'), 'utf8') },
  { dockerfile: readFileSync(path.join(FIXTURES, 'scratch-config.Dockerfile'), 'utf8'), buildArgs: { VERSION: '2.0', GID: '50', EXTRA: 'x' } },
  { dockerfile: readFileSync(path.join(FIXTURES, 'scratch-config.Dockerfile'), 'utf8'), target: 'base' },
  { dockerfile: 'ARG V=1\nFROM scratch\nLABEL before=$V\nARG V\nLABEL after=$V\n' },
  { dockerfile: 'ARG V=1\nFROM scratch\nARG V=2\nLABEL v=$V\n', buildArgs: { V: '3' } },
  { dockerfile: 'FROM scratch\nARG A=arg\nENV A=env\nLABEL a=$A\nARG A\nLABEL b=$A\n', buildArgs: { A: 'cli' } },
  { dockerfile: 'FROM scratch\nENV A=env\nARG A=arg\nLABEL a=$A\n' },
  { dockerfile: 'FROM scratch\nENV a=0\nENV a=1 b=$a\nLABEL a=$a b=$b\n' },
  { dockerfile: 'FROM scratch\nARG a=0\nARG a=1 b=$a\nLABEL b=$b\n' },
  { dockerfile: 'FROM scratch AS base\nARG NAME=joe\nENV GREETING=hi\nFROM base\nLABEL who="$GREETING $NAME"\n' },
  { dockerfile: 'FROM scratch AS one\nARG X=1\nFROM scratch\nLABEL x=${X:-unset}\n' },
  { dockerfile: 'ARG A=x\nARG B=$A-$TARGETARCH-$TARGETSTAGE\nFROM scratch AS s\nARG B\nLABEL b=$B p=$TARGETPLATFORM\nARG TARGETPLATFORM\nLABEL q=$TARGETPLATFORM\n' },
  { dockerfile: 'FROM scratch\nENV P=$PATH\nLABEL p=$PATH\n' },
  { dockerfile: 'FROM scratch\nARG F=foo.tar.gz S=a/b/a\nLABEL a=${F%.*} b=${F%%.*} c=${F#*.} d=${F##*.} e=${S/a/x} f=${S//a/x} g=${U:-d} h=${F:+set} i=${U+set}\n' },
  { dockerfile: 'FROM scratch\nARG P="80 443"\nEXPOSE $P 53/udp\nVOLUME ["/$P"]\nSTOPSIGNAL ${SIG:-SIGTERM}\nUSER ${U:-nobody}\nWORKDIR /a\nWORKDIR b/$U\n' },
  { dockerfile: 'FROM scratch\nLABEL "a b"="c d" e=f\\ g h=\'$i\' j="$HOME"\n' },
  { dockerfile: '# escape=`\nFROM scratch\nENV P=C:\\dir\\`$x\nLABEL p=$P\n' },
  { dockerfile: 'FROM scratch\nONBUILD COPY $A /x\nONBUILD RUN echo hi\n' },
  { dockerfile: 'FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\nFROM scratch\n' },
  { dockerfile: 'FROM scratch AS a\nCOPY --from=a /x /x\n' },
  { dockerfile: 'FROM scratch\nCOPY --from=3 /x /x\n' },
  { dockerfile: 'ARG S=a\nFROM scratch AS a\nFROM scratch\nCOPY --from=$S /x /x\n' },
  { dockerfile: 'FROM scratch AS a\nFROM scratch AS A\n' },
  { dockerfile: 'FROM scratch AS a\n', target: 'nope' },
  { dockerfile: 'ARG IMG\nFROM $IMG\n' },
  { dockerfile: 'FROM scratch AS broken\nUSER ${NEEDED:?}\nFROM scratch\nLABEL ok=1\n' },
  { dockerfile: 'FROM scratch\nUSER ${NEEDED:?please set NEEDED}\n' },
  { dockerfile: 'FROM scratch\nWORKDIR ${A\n' },
  { dockerfile: 'FROM scratch\nLABEL a=${A:=x}\n' },
  { dockerfile: 'FROM scratch AS base\nFROM base AS mid\nLABEL m=1\nFROM mid\nLABEL f=1\n' },
  { dockerfile: 'ARG A\n' },
  { dockerfile: 'FROM scratch\nEXPOSE 8000-8002/UDP 0.0.0.0:8080:80 9000:90/sctp 7-7 [::1]:5:5\n' },
  { dockerfile: 'FROM scratch\nARG P=http\nEXPOSE $P\n' },
  { dockerfile: 'FROM scratch\nEXPOSE 80/icmp\n' },
  { dockerfile: 'FROM scratch\nEXPOSE 90-80\n' },
  { dockerfile: 'FROM scratch\nEXPOSE 70000\n' },
  { dockerfile: 'FROM scratch\nEXPOSE 1-3:80-81\n' },
  { dockerfile: 'FROM scratch\nEXPOSE host:5:5\n' },
];

describe('resolver parity with BuildKit (image config of the target)', () => {
  test('the same config, or an error on both sides', () => {
    const results = askBuildKit(resolveCases.map((input) => ({ ...input, convert: true })));
    const keys = ['Env', 'Labels', 'User', 'WorkingDir', 'ExposedPorts', 'Volumes', 'StopSignal', 'OnBuild', 'Shell', 'Cmd', 'Entrypoint'];
    resolveCases.forEach((input, index) => {
      const result = results.cases[index] as WitnessCase;
      const name = `${JSON.stringify(input.dockerfile)} ${JSON.stringify({ buildArgs: input.buildArgs, target: input.target })}`;
      let build: ResolvedBuild | undefined;
      let failure: unknown;
      try {
        const options: Parameters<typeof resolveDockerfile>[1] = {};
        if (input.buildArgs) options.buildArgs = input.buildArgs;
        if (input.target) options.target = input.target;
        build = resolveDockerfile(parseDockerfile(input.dockerfile), options);
      } catch (error) {
        failure = error;
      }
      const theirError = result.parseError ?? result.convertError;
      if (theirError) {
        assert.ok(failure, `${name}: BuildKit fails (${theirError}) but we do not`);
        return;
      }
      assert.equal(failure, undefined, `${name}: we fail (${(failure as Error | undefined)?.message}) but BuildKit does not`);
      const expected = pick(result.config ?? {}, keys);
      assert.deepEqual(pick(configOf(build!), keys), expected, name);
    });
  });
});

function compareWords(cases: { word: string; env: string[]; escape?: string }[], results: WitnessWord[]): void {
  cases.forEach((input, index) => {
    const result = results[index] as WitnessWord;
    const variables = Object.fromEntries(input.env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
    let mine: { text: string; words: string[] } | undefined;
    let failure: Error | undefined;
    try {
      mine = lexWord(input.word, variables, { escape: input.escape === '`' ? '`' : '\\' });
    } catch (error) {
      failure = error as Error;
    }
    if (result.error) {
      assert.ok(failure, `${JSON.stringify(input.word)}: BuildKit errs (${result.error}), we give ${JSON.stringify(mine?.text)}`);
      return;
    }
    assert.equal(failure, undefined, `${JSON.stringify(input.word)}: we err (${failure?.message}), BuildKit gives ${JSON.stringify(result.result)}`);
    assert.deepEqual({ text: mine!.text, words: mine!.words }, { text: result.result, words: result.words }, JSON.stringify(input.word));
  });
}

const wordEnv = ['A=hello world', 'EMPTY=', 'PKG=foo.tar.gz', 'PATHS=a/b/c/a/b', 'STARS=xx**', 'NL=a\nb'];
const words: string[] = [
  'plain', '$A', '${A}', '"$A"', "'$A'", '\\$A', '"\\$A"', '"\\"q\\""', '"a\\b"', 'a\\ b', 'a\\', '$', 'a$', '$/x', '$1x', '$@', '${UNSET}z',
  '${A:-d}', '${EMPTY:-d}', '${EMPTY-d}', '${UNSET-d}', '${UNSET:-"quoted word"}', '${A:+alt}', '${EMPTY:+alt}', '${EMPTY+alt}', '${UNSET+alt}',
  '${A:?x}', '${UNSET:?}', '${EMPTY:?}', '${UNSET?custom}', '${EMPTY?x}',
  '${PKG%.*}', '${PKG%%.*}', '${PKG#*.}', '${PKG##*.}', '${PKG#nomatch}', '${PKG%?z}', '${STARS%%\\**}', '${STARS%\\*}', '${UNSET#x}',
  '${PATHS/a/z}', '${PATHS//a/z}', '${PATHS//b/}', '${PATHS/\\//:}', '${PATHS/a*a/X}', '${PATHS//*/-}', '${PATHS//?/.}', '${PKG/./$A}', '${NL//?/-}',
  '"open', "'open", '${A', '${A:-x', '${}', '${:x}', '${A:=x}', '${A=x}', '${#A}', '${A:#x}', '${A/x}', '${A#\\a}', '${A b}',
  '80 $A "x y" a"b c"d', '  lead  trail  ', '${UNSET:-1 2}', '"${A}"\'${A}\'$A', 'x\\ y z',
];

describe('lexer parity with BuildKit', () => {
  test('5000 generated words: same expansion, split and errors', () => {
    const next = generator(7);
    const atoms = ['$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '*', '\\', '"', "'", ' ', 'A', 'B', 'x', '.', '`', '\t', '1', '@', '[', 'é'];
    const starts = ['${A', '${B:-', '${E//', '$A', '${x#'];
    const env = ['A=a.b.c/a', 'B=', 'E=x y', 'x=*?'];
    const cases = Array.from({ length: 5000 }, () => {
      let word = '';
      for (let i = 1 + next(12); i > 0; i--) word += next(4) === 0 ? starts[next(starts.length)] : atoms[next(atoms.length)];
      return { word, env, escape: next(10) === 0 ? '`' : '\\' };
    });
    compareWords(cases, askBuildKit([], cases).words);
  });

  test('the same expansion, split and errors for every listed word', () => {
    const cases = [...words.map((word) => ({ word, env: wordEnv })), { word: 'a`$b C:\\x "`"q`""', env: ['b=B'], escape: '`' }];
    compareWords(cases, askBuildKit([], cases).words);
  });

});

describe('COPY helpers against the libraries BuildKit uses', () => {
  test('filepath.Match (Go): listed and 4000 generated pattern/name pairs', () => {
    const listed: [string, string][] = [
      ['abc', 'abc'], ['*', 'abc'], ['a*/b', 'a/c/b'], ['a?b', 'a/b'], ['a[/]b', 'a/b'], ['[\\]a]', ']'], ['[^', 'a'], ['a[', 'x'],
      ['[a-ζ]*', 'α'], ['[x-]', 'x'], ['[]a]', ']'], ['a\\', 'a'], ['[z-a]', 'b'], ['*.txt', 'a.txt'], ['arr[[]0].txt', 'arr[0].txt'],
    ];
    const next = generator(42);
    const patternAtoms = ['*', '?', '[', ']', '^', '-', '\\', 'a', 'b', '/', '.', 'c'];
    const nameAtoms = ['a', 'b', 'c', '/', '.', '-', ']', '*'];
    const generated = Array.from({ length: 4000 }, (): [string, string] => {
      let pattern = '';
      for (let i = 1 + next(7); i > 0; i--) pattern += patternAtoms[next(patternAtoms.length)];
      let name = '';
      for (let i = next(6); i > 0; i--) name += nameAtoms[next(nameAtoms.length)];
      return [pattern, name];
    });
    const pairs = [...listed, ...generated];
    const results = askWitness({ matches: pairs.map(([pattern, name]) => ({ pattern, name })) }).matches as { match: boolean; error?: string }[];
    pairs.forEach(([pattern, name], index) => {
      const result = results[index]!;
      let mine: boolean | Error;
      try {
        mine = filepathMatch(pattern, name);
      } catch (error) {
        mine = error as Error;
      }
      const label = `${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}`;
      if (result.error) assert.ok(mine instanceof Error, `${label}: Go says ${result.error}, we say ${String(mine)}`);
      else assert.equal(mine, result.match, label);
    });
  });

  test('.dockerignore (moby/patternmatcher): listed and 600 generated files, 10 paths each', () => {
    const listed = [
      '*.md\n!README.md', 'docs/**', '**/*.log', 'a/**/b', 'node_modules\n!node_modules/keep', '/build\n./tmp/', '# c\n  x  \n!  y/../z/',
      '*\n!src\nsrc/*.test.ts', 'a.b', 'a+b(c)', '\\*star', 'file[0-9].log', '**', '!x', 'a/b/', '[',
    ];
    const next = generator(99);
    const lineAtoms = ['*', '**', '?', 'a', 'b', '/', '.', '!', 'x', '[ab]', '\\', 'c.md', ' '];
    const pathAtoms = ['a', 'b', 'x', 'c.md', 'a.b', 'sub', '.hidden'];
    const texts = [
      ...listed,
      ...Array.from({ length: 600 }, () =>
        Array.from({ length: 1 + next(4) }, () => {
          let line = '';
          for (let i = 1 + next(5); i > 0; i--) line += lineAtoms[next(lineAtoms.length)];
          return line;
        }).join('\n'),
      ),
    ];
    const paths = Array.from({ length: 10 }, () => Array.from({ length: 1 + next(3) }, () => pathAtoms[next(pathAtoms.length)]).join('/'));
    paths.push('README.md', 'docs/a/b', 'src/a.test.ts', 'src/a.ts', 'node_modules/keep/i.js', 'build/out', 'a/x/y/b', 'file7.log', '*star', 'z.log');
    const results = askWitness({ ignores: texts.map((text) => ({ text, paths })) }).ignores as { patterns: string[]; excluded: boolean[]; error?: string }[];
    texts.forEach((text, index) => {
      const result = results[index]!;
      const patterns = parseDockerignore(text);
      let excluded: boolean[] | Error;
      try {
        const matcher = createIgnoreMatcher(patterns);
        excluded = paths.map((file) => matcher(file));
      } catch (error) {
        excluded = error as Error;
      }
      const label = JSON.stringify(text);
      if (result.error) {
        assert.ok(excluded instanceof Error, `${label}: patternmatcher says ${result.error}`);
        return;
      }
      assert.deepEqual(patterns, result.patterns, `${label}: patterns`);
      assert.deepEqual(excluded, result.excluded, `${label}: excluded ${JSON.stringify(paths)}`);
    });
  });

  test('symbolic --chmod (dchapes-mode with umask 0, as fsutil copies): listed and 1500 generated', () => {
    const listed = ['u+x', 'g-w', 'o=r', '+x', 'a-w', 'u=rwX,go=rX', 'a+X', 'a-X', 'a=X', 'go=u-w', 'g=u', 'u+r-w', 'u+s,g+s', 'o+s', '+t', 'o+t', 'u=', 'go=', '=r', 'ug=o', 'u-g', 'a+rwxst'];
    const next = generator(5);
    const whoAtoms = ['', 'u', 'g', 'o', 'a', 'ug', 'go'];
    const permAtoms = ['r', 'w', 'x', 'X', 's', 't', 'u', 'g', 'o', 'rw', 'rX', ''];
    const ops = ['+', '-', '='];
    const generated = Array.from({ length: 1500 }, () =>
      Array.from({ length: 1 + next(2) }, () => {
        let clause = whoAtoms[next(whoAtoms.length)] as string;
        for (let i = 1 + next(2); i > 0; i--) clause += (ops[next(3)] as string) + permAtoms[next(permAtoms.length)];
        return clause;
      }).join(','),
    );
    const inputs = [...listed, ...generated].flatMap((modeText) =>
      [0o644, 0o755, 0o600, 0o4711, 0o1777, 0o000].flatMap((perm) => [false, true].map((isDir) => ({ mode: modeText, perm, isDir }))),
    );
    const results = askWitness({ chmods: inputs }).chmods as { perm: number; error?: string }[];
    inputs.forEach((input, index) => {
      const result = results[index]!;
      const label = `${input.mode} on ${input.isDir ? 'dir' : 'file'} ${input.perm.toString(8)}`;
      let mine: number | Error;
      try {
        mine = applyChmod(parseChmod(input.mode), input.perm, input.isDir);
      } catch (error) {
        mine = error as Error;
      }
      if (result.error) assert.ok(mine instanceof Error, `${label}: dchapes-mode says ${result.error}, we give ${String(mine)}`);
      else assert.equal(typeof mine === 'number' ? mine.toString(8) : String(mine), result.perm.toString(8), label);
    });
  });

  test('COPY --exclude (fsutil copy after wildcard expansion): listed and 400 generated pattern sets on one context', async () => {
    const context = mkdtempSync(path.join(tmpdir(), 'imgbuild-exclude-parity-'));
    try {
      for (const directory of ['dir/sub/skip', 'dir/sub/keep', 'dir/d2/deep', 'dir/d2/empty', 'other']) mkdirSync(path.join(context, directory), { recursive: true });
      for (const file of ['top.txt', 'dir/a.txt', 'dir/b.bin', 'dir/sub/c.txt', 'dir/sub/skip/s.bin', 'dir/sub/keep/k.bin', 'dir/sub/keep/k.txt', 'dir/d2/x.txt', 'dir/d2/deep/y.md', 'other/o.txt']) {
        writeFileSync(path.join(context, file), file);
      }
      symlinkSync('a.txt', path.join(context, 'dir/link.txt'));
      const listed: [string, string[]][] = [
        ['dir/', ['*.txt', 'sub/skip']],
        ['*.txt', ['*.txt']],
        ['di*', ['sub', '!sub/keep']],
        ['dir', ['sub/c.txt', '!sub']],
        ['dir', ['sub', '!sub/keep', 'sub']],
        ['dir', ['**/*.txt', '!d2/**']],
        ['dir', ['*']],
        ['dir', ['/a.txt', './b.bin', 'sub/']],
        ['dir/sub', ['keep/*', '!keep/k.txt']],
        ['*', ['*.txt', 'sub']],
        ['dir', ['!']],
        ['dir', ['[']],
      ];
      const next = generator(2026);
      const atoms = ['*', '**', '?', '/', 'sub', 'keep', 'skip', 'd2', '*.txt', '.bin', 'a', 'k', '!'];
      const sources = ['dir', 'dir/', 'di*', '*', 'dir/sub', 'dir/*', '*.txt'];
      const generated: [string, string[]][] = Array.from({ length: 400 }, () => [
        sources[next(sources.length)]!,
        Array.from({ length: 1 + next(3) }, () => {
          let pattern = '';
          for (let i = 1 + next(4); i > 0; i--) pattern += atoms[next(atoms.length)];
          return pattern;
        }),
      ]);
      const cases = [...listed, ...generated];
      const results = askWitness({ copies: cases.map(([src, exclude]) => ({ root: context, src, exclude })) }).copies as { paths: string[] | null; error?: string }[];
      for (const [index, [src, exclude]] of cases.entries()) {
        const step: CopyStep = {
          kind: 'copy',
          items: [{ sources: [src], destination: '/out/', text: src }],
          context,
          exclude,
          destinations: 'docker',
          history: { createdBy: 'COPY' },
          where: 'Dockerfile:1',
        };
        let mine: string[] | Error;
        try {
          const entries = await copyLayerEntries(step, await resolveCopyStep(step, { workdir: '/', files: undefined }), {});
          mine = entries.map((entry) => `${entry.path.replace(/^out\//, '')}${entry.kind === 'directory' ? '/' : ''}`).sort();
        } catch (error) {
          mine = error as Error;
        }
        const result = results[index]!;
        const label = `COPY --exclude=${JSON.stringify(exclude)} ${src} /out/`;
        if (result.error) assert.ok(mine instanceof Error, `${label}: BuildKit says ${result.error}, we copy ${String(mine)}`);
        else assert.deepEqual(mine, result.paths, label);
      }
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  });
});
