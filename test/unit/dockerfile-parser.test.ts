import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DockerfileError } from '../../src/dockerfile/errors.js';
import { parseDockerfile, quotedWords } from '../../src/dockerfile/parser.js';
import type { ParsedInstruction } from '../../src/dockerfile/types.js';

/** The parts of an instruction the cases compare; positions are checked separately. */
function shape(instruction: ParsedInstruction): Record<string, unknown> {
  const out: Record<string, unknown> = { keyword: instruction.keyword, form: instruction.form, args: instruction.args };
  if (instruction.flags.length) out.flags = instruction.flags.map((flag) => (flag.value === null ? `--${flag.name}` : `--${flag.name}=${flag.value}`));
  if (instruction.heredocs.length) out.heredocs = instruction.heredocs.map(({ name, content, expand, stripTabs }) => ({ name, content, expand, stripTabs }));
  if (instruction.onbuild) out.onbuild = shape(instruction.onbuild);
  return out;
}

function parseBody(body: string): Record<string, unknown>[] {
  return parseDockerfile(`FROM scratch\n${body}`).instructions.slice(1).map(shape);
}

// Input text -> instructions, as BuildKit's parser reads them.
const cases: [name: string, body: string, expected: Record<string, unknown>[]][] = [
  ['keywords are case-insensitive', 'copy a b\n', [{ keyword: 'COPY', form: 'shell', args: ['a', 'b'] }]],
  ['comments and blank lines are skipped, also indented ones', '\n  # note\n\nUSER app\n', [{ keyword: 'USER', form: 'shell', args: ['app'] }]],
  [
    'a continuation joins lines keeping the spaces before the escape and the indentation after it',
    'RUN apt-get update && \\\n    apt-get install -y curl\n',
    [{ keyword: 'RUN', form: 'shell', args: ['apt-get update &&     apt-get install -y curl'] }],
  ],
  [
    'comment lines and empty lines inside a continuation are dropped',
    'RUN a \\\n# comment\n\n  b\n',
    [{ keyword: 'RUN', form: 'shell', args: ['a   b'] }],
  ],
  ['an escaped escape at the end does not continue the line', 'RUN echo a\\\\\nUSER x\n', [
    { keyword: 'RUN', form: 'shell', args: ['echo a\\\\'] },
    { keyword: 'USER', form: 'shell', args: ['x'] },
  ]],
  ['a trailing escape followed by spaces still continues', 'RUN a \\  \nb\n', [{ keyword: 'RUN', form: 'shell', args: ['a b'] }]],
  ['JSON form keeps spaces inside strings', 'CMD ["sh", "-c", "echo  two  spaces"]\n', [{ keyword: 'CMD', form: 'json', args: ['sh', '-c', 'echo  two  spaces'] }]],
  ['JSON escapes are decoded', 'ENTRYPOINT ["a\\"b", "\\u00e9", "c\\\\d"]\n', [{ keyword: 'ENTRYPOINT', form: 'json', args: ['a"b', 'é', 'c\\d'] }]],
  ['invalid JSON falls back to shell form', "CMD ['single', 'quotes']\n", [{ keyword: 'CMD', form: 'shell', args: ["['single', 'quotes']"] }]],
  ['text after a JSON array makes it shell form', 'CMD ["a"] b\n', [{ keyword: 'CMD', form: 'shell', args: ['["a"] b'] }]],
  ['an unclosed array is shell form', 'RUN [ "a"\n', [{ keyword: 'RUN', form: 'shell', args: ['[ "a"'] }]],
  ['an empty JSON array is the JSON form with no arguments', 'CMD []\n', [{ keyword: 'CMD', form: 'json', args: [] }]],
  ['COPY in JSON form allows spaces in paths', 'COPY ["my file", "/dest dir/"]\n', [{ keyword: 'COPY', form: 'json', args: ['my file', '/dest dir/'] }]],
  ['COPY in shell form splits on whitespace only', 'COPY  a   b\t/c/\n', [{ keyword: 'COPY', form: 'shell', args: ['a', 'b', '/c/'] }]],
  [
    'flags: values with =, repeated --exclude, bare booleans, quotes removed',
    'COPY --from=build --chown="app:app" --chmod=0755 --link --parents --exclude=*.md --exclude=tmp/ src/ /app/\n',
    [{
      keyword: 'COPY',
      form: 'shell',
      args: ['src/', '/app/'],
      flags: ['--from=build', '--chown=app:app', '--chmod=0755', '--link', '--parents', '--exclude=*.md', '--exclude=tmp/'],
    }],
  ],
  ['-- ends the flags', 'COPY --link -- --weird /x\n', [{ keyword: 'COPY', form: 'shell', args: ['--weird', '/x'], flags: ['--link'] }]],
  ['ADD flags', 'ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false https://example.invalid/a.tgz /x/\n', [{
    keyword: 'ADD', form: 'shell', args: ['https://example.invalid/a.tgz', '/x/'], flags: ['--checksum=sha256:abc', '--keep-git-dir=true', '--unpack=false'],
  }]],
  ['RUN --mount is kept whole', 'RUN --mount=type=cache,target=/root/.cache --network=none make\n', [{
    keyword: 'RUN', form: 'shell', args: ['make'], flags: ['--mount=type=cache,target=/root/.cache', '--network=none'],
  }]],
  ['ENV key=value pairs keep quotes for the lexer', 'ENV A=1 B="two words" C=\'x y\' D=a\\ b\n', [{
    keyword: 'ENV', form: 'shell', args: ['A=1', 'B="two words"', "C='x y'", 'D=a\\ b'],
  }]],
  ['legacy ENV takes the rest of the line as the value', 'ENV NAME  a value  with spaces\n', [{ keyword: 'ENV', form: 'shell', args: ['NAME=a value  with spaces'] }]],
  ['LABEL pairs', 'LABEL "com.example.vendor"="ACME Inc" version=1.0\n', [{ keyword: 'LABEL', form: 'shell', args: ['"com.example.vendor"="ACME Inc"', 'version=1.0'] }]],
  ['ARG names with and without defaults', 'ARG A B=2 C=\n', [{ keyword: 'ARG', form: 'shell', args: ['A', 'B=2', 'C='] }]],
  ['WORKDIR, USER, STOPSIGNAL take the whole rest', 'WORKDIR /a b\nSTOPSIGNAL SIGTERM\n', [
    { keyword: 'WORKDIR', form: 'shell', args: ['/a b'] },
    { keyword: 'STOPSIGNAL', form: 'shell', args: ['SIGTERM'] },
  ]],
  ['EXPOSE and VOLUME', 'EXPOSE 80 443/tcp\nVOLUME ["/data", "/logs"]\nVOLUME /a /b\n', [
    { keyword: 'EXPOSE', form: 'shell', args: ['80', '443/tcp'] },
    { keyword: 'VOLUME', form: 'json', args: ['/data', '/logs'] },
    { keyword: 'VOLUME', form: 'shell', args: ['/a', '/b'] },
  ]],
  ['HEALTHCHECK shell and JSON forms and NONE', 'HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://x/\nHEALTHCHECK CMD ["true"]\nHEALTHCHECK NONE\n', [
    { keyword: 'HEALTHCHECK', form: 'shell', args: ['CMD', 'curl -f http://x/'], flags: ['--interval=5s', '--retries=2'] },
    { keyword: 'HEALTHCHECK', form: 'json', args: ['CMD', 'true'] },
    { keyword: 'HEALTHCHECK', form: 'shell', args: ['NONE'] },
  ]],
  ['SHELL', 'SHELL ["powershell", "-command"]\n', [{ keyword: 'SHELL', form: 'json', args: ['powershell', '-command'] }]],
  ['ONBUILD wraps an instruction with its own flags', 'ONBUILD COPY --chown=1:1 . /app\n', [{
    keyword: 'ONBUILD', form: 'shell', args: ['COPY --chown=1:1 . /app'],
    onbuild: { keyword: 'COPY', form: 'shell', args: ['.', '/app'], flags: ['--chown=1:1'] },
  }]],
  [
    'heredoc for RUN; the body is not parsed as instructions',
    'RUN <<EOF\napt-get update\nFROM not-an-instruction\nEOF\nUSER x\n',
    [
      { keyword: 'RUN', form: 'shell', args: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'apt-get update\nFROM not-an-instruction\n', expand: true, stripTabs: false }] },
      { keyword: 'USER', form: 'shell', args: ['x'] },
    ],
  ],
  [
    'quoted delimiters turn expansion off; <<- strips leading tabs from body and terminator',
    "COPY <<'A' <<-\"B\" /dest/\n$X\nA\n\t\tindented\n\tB\n",
    [{
      keyword: 'COPY', form: 'shell', args: ["<<'A'", '<<-"B"', '/dest/'],
      heredocs: [
        { name: 'A', content: '$X\n', expand: false, stripTabs: false },
        { name: 'B', content: 'indented\n', expand: false, stripTabs: true },
      ],
    }],
  ],
  ['several heredocs on one RUN line are read in order', 'RUN cat <<A > /a && cat <<B > /b\n1\nA\n2\nB\n', [{
    keyword: 'RUN', form: 'shell', args: ['cat <<A > /a && cat <<B > /b'],
    heredocs: [{ name: 'A', content: '1\n', expand: true, stripTabs: false }, { name: 'B', content: '2\n', expand: true, stripTabs: false }],
  }]],
  [
    'heredoc bodies may hold comments and look like other heredocs\' terminators',
    'COPY <<X <<Y /dest\nY\n# not a comment\nX\nX\nY\n',
    [{
      keyword: 'COPY', form: 'shell', args: ['<<X', '<<Y', '/dest'],
      heredocs: [{ name: 'X', content: 'Y\n# not a comment\n', expand: true, stripTabs: false }, { name: 'Y', content: 'X\n', expand: true, stripTabs: false }],
    }],
  ],
  ['<< without <<- keeps tabs; flags before a heredoc', 'RUN --mount=type=cache,target=/c <<IN\n\tfoo\nIN\n', [{
    keyword: 'RUN', form: 'shell', args: ['<<IN'], flags: ['--mount=type=cache,target=/c'],
    heredocs: [{ name: 'IN', content: '\tfoo\n', expand: true, stripTabs: false }],
  }]],
  ['an unbalanced quote in a delimiter is not a heredoc', "RUN cat <<'EOF\n", [{ keyword: 'RUN', form: 'shell', args: ["cat <<'EOF"] }]],
  ['an empty heredoc', 'RUN <<EOF\nEOF\n', [{ keyword: 'RUN', form: 'shell', args: ['<<EOF'], heredocs: [{ name: 'EOF', content: '', expand: true, stripTabs: false }] }]],
  ['no heredocs in JSON form or in other instructions', 'RUN ["cat", "<<EOF"]\nENV X=<<EOF\n', [
    { keyword: 'RUN', form: 'json', args: ['cat', '<<EOF'] },
    { keyword: 'ENV', form: 'shell', args: ['X=<<EOF'] },
  ]],
  ['a quoted << is not a heredoc', "RUN echo '<<EOF'\n", [{ keyword: 'RUN', form: 'shell', args: ["echo '<<EOF'"] }]],
  ['ONBUILD RUN with a heredoc', 'ONBUILD RUN <<EOF\necho hi\nEOF\n', [{
    keyword: 'ONBUILD', form: 'shell', args: ['RUN <<EOF'],
    heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, stripTabs: false }],
    onbuild: { keyword: 'RUN', form: 'shell', args: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, stripTabs: false }] },
  }]],
  ['CRLF line endings', 'USER a\r\nRUN x \\\r\n y\r\n', [
    { keyword: 'USER', form: 'shell', args: ['a'] },
    { keyword: 'RUN', form: 'shell', args: ['x  y'] },
  ]],
];

describe('parseDockerfile: instructions', () => {
  for (const [name, body, expected] of cases) {
    test(name, () => assert.deepEqual(parseBody(body), expected));
  }

  test('ARG before FROM, and FROM with platform and stage name', () => {
    const parsed = parseDockerfile('ARG BASE=alpine\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\n');
    assert.deepEqual(parsed.instructions.map(shape), [
      { keyword: 'ARG', form: 'shell', args: ['BASE=alpine'] },
      { keyword: 'FROM', form: 'shell', args: ['${BASE}', 'AS', 'Build'], flags: ['--platform=$BUILDPLATFORM'] },
    ]);
  });

  test('a file descriptor before << is recorded', () => {
    const [, run] = parseDockerfile('FROM scratch\nRUN 3<<EOF cat /dev/fd/3\nx\nEOF\n').instructions;
    assert.equal(run?.heredocs[0]?.fileDescriptor, 3);
    assert.equal(run?.heredocs[0]?.content, 'x\n');
  });

  test('a byte-order mark is ignored', () => {
    assert.equal(parseDockerfile('\uFEFFFROM scratch\n').instructions[0]?.keyword, 'FROM');
  });
});

describe('parseDockerfile: directives', () => {
  test('syntax, escape and check at the top, any case, with spaces', () => {
    const parsed = parseDockerfile('# Syntax = docker/dockerfile:1.7\n#ESCAPE=`\n# check=skip=all\nFROM scratch\n');
    assert.deepEqual(parsed.directives, { syntax: 'docker/dockerfile:1.7', escape: '`', check: 'skip=all' });
  });

  test('a directive after a comment, a blank line or an instruction is just a comment', () => {
    for (const text of ['# hello\n# escape=`\nFROM scratch\n', '\n# escape=`\nFROM scratch\n', 'FROM scratch\n# escape=`\n']) {
      assert.equal(parseDockerfile(text).directives.escape, '\\', JSON.stringify(text));
    }
  });

  test('an unknown directive ends the directives', () => {
    assert.equal(parseDockerfile('# foo=bar\n# escape=`\nFROM scratch\n').directives.escape, '\\');
  });

  test('the backtick escape continues lines and leaves backslashes alone', () => {
    const parsed = parseDockerfile('# escape=`\nFROM scratch\nCOPY C:\\src\\ `\n  C:\\dest\\\nRUN a\\\n');
    assert.deepEqual(parsed.instructions.slice(1).map(shape), [
      { keyword: 'COPY', form: 'shell', args: ['C:\\src\\', 'C:\\dest\\'] },
      { keyword: 'RUN', form: 'shell', args: ['a\\'] },
    ]);
  });

  test('an empty continuation line is a warning with its line', () => {
    const parsed = parseDockerfile('FROM scratch\nRUN a \\\n\n b\n');
    assert.equal(parsed.warnings.length, 1);
    assert.equal(parsed.warnings[0]?.position.line, 3);
  });
});

describe('parseDockerfile: positions', () => {
  test('instructions carry file, first line, column and last line', () => {
    const parsed = parseDockerfile('FROM scratch\n\n  COPY a \\\n    b\nRUN <<EOF\nx\nEOF\nUSER u\n', { file: 'app/Dockerfile' });
    assert.deepEqual(parsed.instructions.map((instruction) => instruction.location), [
      { file: 'app/Dockerfile', line: 1, column: 1, endLine: 1 },
      { file: 'app/Dockerfile', line: 3, column: 3, endLine: 4 },
      { file: 'app/Dockerfile', line: 5, column: 1, endLine: 7 },
      { file: 'app/Dockerfile', line: 8, column: 1, endLine: 8 },
    ]);
    assert.deepEqual(parsed.instructions[2]?.heredocs[0]?.position, { file: 'app/Dockerfile', line: 6, column: 1 });
  });

  test('flags carry their own column, also on a continuation line', () => {
    const parsed = parseDockerfile('FROM scratch\nCOPY --link \\\n  --chown=1 a b\n');
    assert.deepEqual(parsed.instructions[1]?.flags.map((flag) => [flag.name, flag.position.line, flag.position.column]), [
      ['link', 2, 6],
      ['chown', 3, 3],
    ]);
  });
});

// Input text -> the error: position and a message naming the problem.
const errors: [name: string, text: string, line: number, column: number, message: RegExp][] = [
  ['unknown instruction, with a suggestion', 'FROM scratch\nCOPPY a b\n', 2, 1, /unknown instruction: COPPY/],
  ['unknown flag', 'FROM scratch\nCOPY --form=x a b\n', 2, 6, /unknown flag --form for COPY/],
  ['flag not valid for the instruction', 'FROM scratch\nUSER --chown=1 x\n', 2, 6, /unknown flag --chown for USER/],
  ['missing flag value', 'FROM scratch\nCOPY --from a b\n', 2, 6, /missing a value on flag --from/],
  ['bad boolean', 'FROM scratch\nCOPY --link=yes a b\n', 2, 6, /--link expects true or false/],
  ['duplicate flag', 'FROM scratch\nCOPY --chown=1 --chown=2 a b\n', 2, 16, /duplicate flag --chown/],
  ['COPY with one argument', 'FROM scratch\nCOPY onlyone\n', 2, 6, /COPY requires at least two arguments, but only 1 provided/],
  ['heredoc as destination', 'FROM scratch\nCOPY a <<EOF\nx\nEOF\n', 2, 6, /cannot accept a heredoc as a destination/],
  ['unterminated heredoc', 'FROM scratch\nRUN <<EOF\nno end\n', 2, 1, /unterminated heredoc <<EOF/],
  ['FROM with two arguments', 'FROM a b\n', 1, 6, /FROM requires either one or three arguments/],
  ['bad stage name', 'FROM a AS 1st\n', 1, 6, /invalid name for build stage: "1st"/],
  ['instruction before FROM', 'ENV A=1\nFROM scratch\n', 1, 1, /ENV before the first FROM/],
  ['no FROM at all', 'ARG A\n', 1, 1, /no FROM instruction/],
  ['empty file', '\n# only a comment\n', 2, 1, /no instructions/],
  ['ENV without =', 'FROM scratch\nENV A=1 B\n', 2, 5, /can't find = in "B"/],
  ['legacy ENV without a value', 'FROM scratch\nENV ALONE\n', 2, 5, /ENV must have two arguments/],
  ['blank ENV name', 'FROM scratch\nENV =x\n', 2, 5, /ENV names can not be blank/],
  ['WORKDIR without argument', 'FROM scratch\nWORKDIR\n', 2, 8, /WORKDIR requires exactly one argument/],
  ['JSON with a number', 'FROM scratch\nCMD ["sleep", 10]\n', 2, 5, /arrays must be comprised of strings only/],
  ['SHELL in shell form', 'FROM scratch\nSHELL /bin/bash -c\n', 2, 7, /SHELL requires the arguments to be in JSON form/],
  ['HEALTHCHECK of unknown type', 'FROM scratch\nHEALTHCHECK RUN x\n', 2, 13, /unknown type "RUN" in HEALTHCHECK/],
  ['HEALTHCHECK NONE with arguments', 'FROM scratch\nHEALTHCHECK NONE x\n', 2, 13, /HEALTHCHECK NONE takes no arguments/],
  ['HEALTHCHECK CMD without command', 'FROM scratch\nHEALTHCHECK CMD\n', 2, 13, /missing command after HEALTHCHECK CMD/],
  ['RUN --network with an unknown mode', 'FROM scratch\nRUN --network=bridge true\n', 2, 5, /--network=bridge is not supported/],
  ['HEALTHCHECK with a bad duration is a parse error', 'FROM scratch\nHEALTHCHECK --interval=5 CMD x\n', 2, 13, /invalid duration "5"/],
  ['ONBUILD ONBUILD', 'FROM scratch\nONBUILD ONBUILD RUN x\n', 2, 9, /chaining ONBUILD/],
  ['ONBUILD FROM', 'FROM scratch\nONBUILD FROM x\n', 2, 9, /FROM is not allowed as an ONBUILD trigger/],
  ['duplicate directive', '# escape=`\n# escape=\\\nFROM scratch\n', 2, 1, /only one escape parser directive/],
  ['bad escape directive', '# escape=x\nFROM scratch\n', 1, 1, /invalid escape character 'x'/],
];

describe('parseDockerfile: errors', () => {
  for (const [name, text, line, column, message] of errors) {
    test(name, () => {
      assert.throws(
        () => parseDockerfile(text),
        (error: unknown) => {
          assert.ok(error instanceof DockerfileError, String(error));
          assert.match(error.message, message);
          assert.deepEqual([error.position?.line, error.position?.column], [line, column], error.message);
          assert.ok(error.message.startsWith(`Dockerfile:${line}:${column}: `), error.message);
          assert.ok(error.hint, 'every error says how to fix it');
          return true;
        },
      );
    });
  }

  test('the unknown-instruction hint suggests the nearest keyword', () => {
    assert.throws(() => parseDockerfile('FROM scratch\nWORKDRI /x\n'), (error: DockerfileError) => /did you mean WORKDIR/.test(error.hint ?? ''));
  });
});

describe('quotedWords', () => {
  const table: [string, string[]][] = [
    ['a b', ['a', 'b']],
    ['a="x y" b', ['a="x y"', 'b']],
    ["a='x \"y' b", ["a='x \"y'", 'b']],
    ['a\\ b c', ['a\\ b', 'c']],
    ['""', ['""']],
    ['  ', []],
  ];
  for (const [input, expected] of table) test(input, () => assert.deepEqual(quotedWords(input, '\\'), expected));
});
