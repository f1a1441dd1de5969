import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandWord, expandWords, lexWord, ShellWordError } from '../../src/dockerfile/shell-lexer.js';

// Expected values follow BuildKit's shell lexer (frontend/dockerfile/shell) and its test table.
const env = {
  A: 'hello world',
  EMPTY: '',
  PKG: 'foo.tar.gz',
  PATHS: 'a/b/c/a/b',
  STARS: 'xx**',
  ESC: 'with\\slash',
};

const expansions: [word: string, expected: string][] = [
  ['plain', 'plain'],
  ['$A', 'hello world'],
  ['${A}', 'hello world'],
  ['${A}x', 'hello worldx'],
  ['$A.x', 'hello world.x'],
  ['"$A"', 'hello world'],
  ["'$A'", '$A'],
  ['"it\'s"', "it's"],
  ["'a\"b'", 'a"b'],
  ['\\$A', '$A'],
  ['"\\$A"', '$A'],
  ['"\\"q\\""', '"q"'],
  ['"a\\b"', 'a\\b'],
  ['a\\ b', 'a b'],
  ['a\\', 'a'],
  ['$', '$'],
  ['a$', 'a$'],
  ['$/x', '$/x'],
  ['$1x', 'x'],
  ['$UNSET', ''],
  ['${UNSET}z', 'z'],
  // defaults and alternatives: ":" also treats empty as unset
  ['${A:-d}', 'hello world'],
  ['${EMPTY:-d}', 'd'],
  ['${EMPTY-d}', ''],
  ['${UNSET-d}', 'd'],
  ['${UNSET:-$A}', 'hello world'],
  ['${UNSET:-"quoted word"}', 'quoted word'],
  ['${A:+alt}', 'alt'],
  ['${EMPTY:+alt}', ''],
  ['${EMPTY+alt}', 'alt'],
  ['${UNSET+alt}', ''],
  ['${A:?must be set}', 'hello world'],
  ['${EMPTY?x}', ''],
  // patterns: # ## prefix, % %% suffix, shortest vs longest
  ['${PKG%.*}', 'foo.tar'],
  ['${PKG%%.*}', 'foo'],
  ['${PKG#*.}', 'tar.gz'],
  ['${PKG##*.}', 'gz'],
  ['${PKG#nomatch}', 'foo.tar.gz'],
  ['${PKG%?z}', 'foo.tar.'],
  ['${STARS%%\\**}', 'xx'],
  ['${STARS%\\*}', 'xx*'],
  ['${UNSET#x}', ''],
  // substitution: first or all, greedy patterns
  ['${PATHS/a/z}', 'z/b/c/a/b'],
  ['${PATHS//a/z}', 'z/b/c/z/b'],
  ['${PATHS//b/}', 'a//c/a/'],
  ['${PATHS/\\//:}', 'a:b/c/a/b'],
  ['${PATHS/a*a/X}', 'X/b'],
  ['${PATHS//*/-}', '-'],
  ['${PKG/./$A}', 'foohello worldtar.gz'],
];

describe('expandWord', () => {
  for (const [word, expected] of expansions) {
    test(`${word} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(expandWord(word, env), expected);
    });
  }

  test('the backtick escape character replaces the backslash', () => {
    assert.equal(expandWord('a`$b', { b: 'x' }, '`'), 'a$b');
    assert.equal(expandWord('C:\\dir\\$b', { b: 'x' }, '`'), 'C:\\dir\\x');
    assert.equal(expandWord('"`"q`""', {}, '`'), '"q"');
  });

  test('a Map and a lookup function work as variables', () => {
    assert.equal(expandWord('$X', new Map([['X', '1']])), '1');
    assert.equal(expandWord('${X:-no}', (name) => (name === 'X' ? 'fn' : undefined)), 'fn');
  });

  test('names are case-sensitive and may hold unicode letters', () => {
    assert.equal(expandWord('$a$A', { a: '1', A: '2' }), '12');
    assert.equal(expandWord('$día', { día: 'hoy' }), 'hoy');
  });

  const errors: [word: string, message: RegExp][] = [
    ['"open', /matching double-quote/],
    ["'open", /matching single-quote/],
    ['${A', /missing '}'/],
    ['${A:-x', /missing '}'/],
    ['${}', /bad substitution/],
    ['${:x}', /bad substitution/],
    ['${A:=x}', /unsupported modifier \(:=\)/],
    ['${A=x}', /unsupported modifier \(=\)/],
    ['${#A}', /unsupported modifier/],
    ['${A:#x}', /unsupported modifier \(:#\)/],
    ['${A:%x}', /unsupported modifier \(:%\)/],
    ['${UNSET:?}', /UNSET: is not allowed to be unset/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
    ['${UNSET?custom text}', /UNSET: custom text/],
    ['${A/x}', /missing '\/'/],
    ['${A#\\a}', /invalid escape/],
  ];
  for (const [word, message] of errors) {
    test(`${word} is an error`, () => {
      assert.throws(() => expandWord(word, env), (error: unknown) => error instanceof ShellWordError && message.test(error.message));
    });
  }
});

describe('expandWords', () => {
  const splits: [text: string, expected: string[]][] = [
    ['80 443/tcp', ['80', '443/tcp']],
    ['$A', ['hello', 'world']],
    ['"$A"', ['hello world']],
    ['a"b c"d', ['ab cd']],
    ['  lead  trail  ', ['lead', 'trail']],
    ['x\\ y z', ['x y', 'z']],
    ['${UNSET:-1 2}', ['1', '2']],
  ];
  for (const [text, expected] of splits) {
    test(`${text} -> ${JSON.stringify(expected)}`, () => assert.deepEqual(expandWords(text, env), expected));
  }
});

describe('lexWord options', () => {
  test('raw quotes and escapes keep the characters; skipUnset keeps unknown references', () => {
    assert.equal(lexWord('"a" \\b', {}, { rawQuotes: true, rawEscapes: true }).text, '"a" \\b');
    assert.equal(lexWord('$X ${Y:-d} ${Z}', {}, { skipUnset: true }).text, '$X ${Y:-d} ${Z}');
  });

  test('reports the names that were unset', () => {
    assert.deepEqual(lexWord('$A $B ${C:-x}', env).unset, ['B', 'C']);
  });
});
