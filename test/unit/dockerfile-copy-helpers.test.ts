import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { detectArchive, isTarHeader } from '../../src/dockerfile/archive.js';
import { applyChmod, parseChmod } from '../../src/dockerfile/chmod.js';
import { resolveChown } from '../../src/dockerfile/chown.js';
import { createCopyExcludeMatcher, createIgnoreMatcher, dockerignoreCandidates, parseDockerignore } from '../../src/dockerfile/dockerignore.js';
import { DockerfileError } from '../../src/dockerfile/errors.js';
import { BadPatternError, filepathMatch, hasWildcards } from '../../src/dockerfile/filepath-match.js';

describe('filepathMatch (Go filepath.Match on Unix)', () => {
  // pattern, name, expected match; the cases of Go's own match test table.
  const table: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*', 'abc', true],
    ['a*', 'ab/c', false],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['a[^a][^a][^a]b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'x', true],
    ['[x\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['[\\-x]', 'x', true],
    ['*x', 'xxx', true],
    ['a[/]b', 'a/b', true],
    ['[z-a]', 'b', false],
    ['[^z-a]', 'b', true],
  ];
  for (const [pattern, name, expected] of table) {
    test(`${pattern} ~ ${name} = ${expected}`, () => assert.equal(filepathMatch(pattern, name), expected));
  }

  const bad = ['[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[', 'a/b\\'];
  for (const pattern of bad) {
    test(`${pattern} is a bad pattern`, () => assert.throws(() => filepathMatch(pattern, 'a'), BadPatternError));
  }

  test('as in Go, a bad part the match never reaches is no error', () => {
    assert.equal(filepathMatch('a*\\', '.'), false);
    assert.throws(() => filepathMatch('x\\', '.'), BadPatternError);
  });

  test('hasWildcards tells literal paths from patterns', () => {
    assert.deepEqual(['a/b.txt', 'a/*.txt', 'a?', 'arr[0]', 'a\\b'].map(hasWildcards), [false, true, true, true, true]);
  });
});

describe('.dockerignore', () => {
  test('parsing: comments only at line start, patterns trimmed and cleaned, ! kept', () => {
    assert.deepEqual(parseDockerignore('\uFEFF# comment\n  # not a comment\n\n./a/\n/b\n!  c/../d/\n**/x\r\n/\n'), [
      '# not a comment',
      'a',
      'b',
      '!d',
      '**/x',
      '/',
    ]);
  });

  // patterns, path, excluded?
  const table: [string, string, boolean][] = [
    ['*.md', 'README.md', true],
    ['*.md', 'docs/a.md', false],
    ['**/*.md', 'docs/a.md', true],
    ['**/*.md', 'a.md', true],
    ['docs', 'docs/deep/file', true],
    ['docs/**', 'docs/deep/file', true],
    ['docs/**', 'docs', false],
    ['**', 'anything/at/all', true],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['secret?.txt', 'secret1.txt', true],
    ['secret?.txt', 'secret12.txt', false],
    ['file[0-9].log', 'file7.log', true],
    ['*.md\n!README.md', 'README.md', false],
    ['*.md\n!README.md', 'CHANGES.md', true],
    ['!README.md\n*.md', 'README.md', true],
    ['node_modules\n!node_modules/keep', 'node_modules/keep/index.js', false],
    ['node_modules\n!node_modules/keep', 'node_modules/other.js', true],
    ['*\n!src\nsrc/*.test.ts', 'src/a.test.ts', true],
    ['*\n!src\nsrc/*.test.ts', 'src/a.ts', false],
    ['/build', 'build/out', true],
    ['./tmp/', 'tmp/x', true],
    ['a.b', 'axb', false],
    ['a+b(c)', 'a+b(c)', true],
    ['\\*star', '*star', true],
    ['\\*star', 'xstar', false],
    ['**b', 'a.b', true],
    ['**/b', 'b', true],
    ['**/b', 'a.b', false],
    ['x\\x41', 'xA', true],
  ];
  for (const [patterns, path, expected] of table) {
    test(`${patterns.replace(/\n/g, ' ; ')} :: ${path} -> ${expected ? 'excluded' : 'kept'}`, () => {
      assert.equal(createIgnoreMatcher(parseDockerignore(patterns))(path), expected);
    });
  }

  test('paths are cleaned before matching, and the context root is never excluded', () => {
    const excluded = createIgnoreMatcher(['build', '**']);
    assert.equal(createIgnoreMatcher(['build'])('./build/x'), true);
    assert.equal(createIgnoreMatcher(['build'])('/build'), true);
    assert.equal(excluded('.'), false);
  });

  test('a Dockerfile-specific ignore file comes first, then the context root one', () => {
    assert.deepEqual(dockerignoreCandidates('ctx/app/Dockerfile.prod', 'ctx'), ['ctx/app/Dockerfile.prod.dockerignore', 'ctx/.dockerignore']);
    assert.deepEqual(dockerignoreCandidates('Dockerfile'), ['Dockerfile.dockerignore', '.dockerignore']);
    assert.deepEqual(dockerignoreCandidates('-', '/src'), ['/src/.dockerignore']);
  });
});

describe('--chmod', () => {
  // spec, source mode, is a directory, expected mode
  const table: [string, number, boolean, number][] = [
    ['755', 0o600, false, 0o755],
    ['0644', 0o777, true, 0o644],
    ['4755', 0o644, false, 0o4755],
    ['u+x', 0o644, false, 0o744],
    ['g-w', 0o664, false, 0o644],
    ['o=r', 0o640, false, 0o644],
    ['+x', 0o644, false, 0o755],
    ['a-w', 0o666, false, 0o444],
    ['u=rwX,go=rX', 0o600, false, 0o644],
    ['u=rwX,go=rX', 0o700, false, 0o755],
    ['u=rwX,go=rX', 0o600, true, 0o755],
    ['a+X', 0o644, false, 0o644],
    ['go=u-w', 0o750, false, 0o755],
    ['g=u', 0o640, false, 0o660],
    ['u+r-w', 0o200, false, 0o400],
    ['u+s,g+s', 0o755, false, 0o6755],
    ['o+s', 0o755, false, 0o755],
    ['+t', 0o777, true, 0o1777],
    ['o+t', 0o777, true, 0o777],
    ['u=', 0o777, false, 0o077],
    ['go=', 0o755, true, 0o700],
  ];
  for (const [spec, mode, directory, expected] of table) {
    test(`${spec} on ${directory ? 'dir' : 'file'} ${mode.toString(8)} -> ${expected.toString(8)}`, () => {
      assert.equal(applyChmod(parseChmod(spec), mode, directory).toString(8), expected.toString(8));
    });
  }

  test('the parsed form is data', () => {
    assert.deepEqual(parseChmod('0755'), { kind: 'octal', mode: 0o755 });
    assert.deepEqual(parseChmod('u+x,go=u-w'), {
      kind: 'symbolic',
      text: 'u+x,go=u-w',
      clauses: [
        { who: ['u'], actions: [{ op: '+', perms: 'x' }] },
        { who: ['g', 'o'], actions: [{ op: '=', perms: 'u' }, { op: '-', perms: 'w' }] },
      ],
    });
  });

  for (const bad of ['', '8', '10000', '0x1', 'z+x', 'u', 'u+q', 'u+ug', 'u+x,', 'u+x;']) {
    test(`"${bad}" is rejected with a hint`, () => {
      assert.throws(() => parseChmod(bad), (error: unknown) => error instanceof DockerfileError && /invalid --chmod value/.test(error.message) && Boolean(error.hint));
    });
  }
});

describe('--chown', () => {
  const passwd = '# users\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nweb:x:33:33::/var/www:/usr/sbin/nologin\napp:x:2000:2000:dup:/:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:app\nwww-data:x:33:\n';
  const table: [string, { uid: number; gid: number }][] = [
    ['0', { uid: 0, gid: 0 }],
    ['1000', { uid: 1000, gid: 1000 }],
    ['1000:50', { uid: 1000, gid: 50 }],
    ['app', { uid: 1000, gid: 1000 }],
    ['app:staff', { uid: 1000, gid: 50 }],
    ['web:www-data', { uid: 33, gid: 33 }],
    ['123:staff', { uid: 123, gid: 50 }],
    ['web:7', { uid: 33, gid: 7 }],
  ];
  for (const [spec, expected] of table) {
    test(`${spec} -> ${expected.uid}:${expected.gid}`, () => assert.deepEqual(resolveChown(spec, { passwd, group }), expected));
  }

  test('numbers need no account files', () => assert.deepEqual(resolveChown('5:6', {}), { uid: 5, gid: 6 }));

  const errors: [string, { passwd?: string; group?: string }, RegExp][] = [
    ['nobody', { passwd, group }, /no user "nobody" in the image's \/etc\/passwd/],
    ['app:wheel', { passwd, group }, /no group "wheel" in the image's \/etc\/group/],
    ['app', {}, /cannot look up user "app": the image has no \/etc\/passwd/],
    ['1:staff', { passwd }, /cannot look up group "staff": the image has no \/etc\/group/],
    [':50', { passwd, group }, /the user is empty/],
    ['app:', { passwd, group }, /the group is empty/],
    ['4294967296', {}, /out of range/],
  ];
  for (const [spec, files, message] of errors) {
    test(`${spec} is an error naming it, never 0`, () => {
      assert.throws(() => resolveChown(spec, files), (error: unknown) => error instanceof DockerfileError && message.test(error.message) && Boolean(error.hint));
    });
  }
});

describe('archive detection by content', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-archive-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  const run = (command: string, args: string[]): void => {
    const result = spawnSync(command, args, { cwd: dir });
    assert.equal(result.status, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
  };

  // Archives written by GNU tar and the real compressors, not by us.
  const cases: [file: string, make: () => void, expected: string][] = [
    ['plain.tar', () => run('tar', ['-cf', 'plain.tar', 'hello.txt']), 'tar'],
    ['v7.tar', () => run('tar', ['--format=v7', '-cf', 'v7.tar', 'hello.txt']), 'tar'],
    ['a.tar.gz', () => run('tar', ['-czf', 'a.tar.gz', 'hello.txt']), 'gzip'],
    ['a.tar.bz2', () => run('tar', ['-cjf', 'a.tar.bz2', 'hello.txt']), 'bzip2'],
    ['a.tar.xz', () => run('tar', ['-cJf', 'a.tar.xz', 'hello.txt']), 'xz'],
    ['a.tar.zst', () => run('tar', ['--zstd', '-cf', 'a.tar.zst', 'hello.txt']), 'zstd'],
  ];
  for (const [file, make, expected] of cases) {
    test(`${file} is ${expected}`, () => {
      make();
      assert.equal(detectArchive(readFileSync(join(dir, file)).subarray(0, 512)), expected);
    });
  }

  test('a text file, a short file, zeros and a named-like-tar text file are not archives', () => {
    assert.equal(detectArchive(Buffer.from('hello\n')), undefined);
    assert.equal(detectArchive(Buffer.alloc(512)), undefined);
    assert.equal(detectArchive(Buffer.from('ustar'.padStart(300, 'x').padEnd(512, ' '))), undefined);
    assert.equal(isTarHeader(Buffer.alloc(100)), false);
  });

  test('a tar header with a broken checksum is not a tar', () => {
    run('tar', ['-cf', 'broken.tar', 'hello.txt']);
    const block = Buffer.from(readFileSync(join(dir, 'broken.tar')).subarray(0, 512));
    block[0] = block[0]! ^ 0xff;
    assert.equal(isTarHeader(block), false);
  });
});

describe('COPY --exclude matcher (fsutil copy with patternmatcher.MatchesUsingParentResults)', () => {
  test('paths are relative to the copied source, and * stops at / (copier.copy matches srcComponents)', () => {
    const excluded = createCopyExcludeMatcher(['*.txt']);
    assert.equal(excluded('a.txt'), true);
    assert.equal(excluded('sub/c.txt'), false);
    assert.equal(createCopyExcludeMatcher(['**/*.txt'])('sub/c.txt'), true);
  });

  test('the source itself is never excluded (copier.copy skips matching for srcComponents "")', () => {
    assert.equal(createCopyExcludeMatcher(['*', '**'])(''), false);
    assert.equal(createCopyExcludeMatcher(['*'])('.'), false);
  });

  test('an excluded directory excludes what it holds; a later ! pattern re-includes', () => {
    const excluded = createCopyExcludeMatcher(['sub', '!sub/keep']);
    assert.deepEqual(['sub', 'sub/x', 'sub/keep', 'sub/keep/k'].map(excluded), [true, true, false, false]);
  });

  test("a pattern skipped at a directory does not cover its entries, unlike .dockerignore's MatchesOrParentMatches", () => {
    // At `sub` the `!sub` pattern is not evaluated (nothing is excluded yet), so it records no match for sub/c.txt.
    assert.equal(createCopyExcludeMatcher(['sub/c.txt', '!sub'])('sub/c.txt'), true);
    assert.equal(createIgnoreMatcher(['sub/c.txt', '!sub'])('sub/c.txt'), false);
    // At `sub` the second `sub` is skipped (already excluded), so after `!sub/keep` nothing excludes sub/keep/k again.
    assert.equal(createCopyExcludeMatcher(['sub', '!sub/keep', 'sub'])('sub/keep/k'), false);
    assert.equal(createIgnoreMatcher(['sub', '!sub/keep', 'sub'])('sub/keep/k'), true);
  });

  test('patterns are trimmed and cleaned, not stripped of a leading / (patternmatcher.New)', () => {
    assert.equal(createCopyExcludeMatcher(['  ./sub/  '])('sub/x'), true);
    assert.equal(createCopyExcludeMatcher(['/a.txt'])('a.txt'), false);
    assert.throws(() => createCopyExcludeMatcher(['!']), /illegal exclusion pattern/);
  });
});
