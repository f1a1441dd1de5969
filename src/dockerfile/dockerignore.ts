/**
 * `.dockerignore` with docker's rules (moby/patternmatcher): one pattern a line, `#` at the
 * start of a line is a comment, patterns are cleaned (`./a/` -> `a`, `/a` -> `a`), `*` and `?`
 * stop at `/`, `**` crosses directories, `!` re-includes, the last matching pattern wins, and a
 * pattern that matches a parent directory matches everything below it.
 */
import { posix } from 'node:path';
import { filepathMatch } from './filepath-match.js';

export interface IgnorePattern {
  /** Cleaned pattern without the `!`. */
  pattern: string;
  /** A `!` line: matching paths are included again. */
  exception: boolean;
  /** Built on first use; a bad escape throws then, as patternmatcher fails on first match. */
  readonly regex: RegExp;
}

/** The patterns of a `.dockerignore` file, cleaned as docker cleans them (`!` kept). */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = (index === 0 ? rawLine.replace(/^\uFEFF/, '') : rawLine).replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(exception ? `!${pattern}` : pattern);
  }
  return patterns;
}

/** Characters patternmatcher escapes; everything else goes into its (Go) regular expression as is. */
const REGEX_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);
/** `\x` escapes with the same meaning in Go's and JavaScript's regular expressions. */
const SHARED_ESCAPES = new Set(['d', 'D', 's', 'S', 'w', 'W', 'b', 'B', 'f', 't', 'n', 'r', 'v']);

export function compileIgnorePattern(line: string): IgnorePattern {
  const exception = line.startsWith('!');
  const pattern = exception ? line.slice(1) : line;
  if (exception && pattern === '') throw new Error('illegal exclusion pattern: "!" (a "!" line needs a pattern after it)');
  // patternmatcher checks every pattern with filepath.Match(pattern, ".") first.
  filepathMatch(pattern, '.');
  let regex: RegExp | undefined;
  // Like patternmatcher, the regular expression is built when a path first needs it.
  return {
    pattern,
    exception,
    get regex(): RegExp {
      regex ??= patternRegex(pattern, line);
      return regex;
    },
  };
}

function patternRegex(pattern: string, line: string): RegExp {
  const chars = Array.from(pattern);
  let out = '^';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        // `**` at the end matches everything below; elsewhere any number of directories.
        out += i + 1 >= chars.length ? '[^\\n]*' : '(?:[^\\n]*/)?';
      } else out += '[^/]*';
    } else if (ch === '?') out += '[^/]';
    else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) out += '\\\\';
      else {
        out += escapedInRegex(next, line);
        i++;
      }
    } else if (ch === '[' || ch === ']') out += ch;
    else out += escapeRegex(ch);
  }
  try {
    return new RegExp(`${out}$`);
  } catch {
    throw new Error(`invalid .dockerignore pattern ${JSON.stringify(line)}: check its [ ] brackets`);
  }
}

/** What `\x` means in patternmatcher's Go regular expression, as JavaScript source. */
function escapedInRegex(ch: string, line: string): string {
  if (ch === 'a') return '\\x07';
  if (SHARED_ESCAPES.has(ch)) return `\\${ch}`;
  if (/[A-Za-z0-9]/.test(ch)) throw new Error(`invalid .dockerignore pattern ${JSON.stringify(line)}: invalid escape sequence \\${ch}`);
  return escapeRegex(ch);
}

function escapeRegex(ch: string): string {
  return REGEX_SPECIAL.has(ch) || /[\\*?[\]/]/.test(ch) ? `\\${ch}` : ch;
}

/** Clean a context-relative path the way docker does before matching. */
/** Go's filepath.Clean on Unix: no `.`/`..`/double slashes, no trailing slash, `.` for empty. */
function goClean(path: string): string {
  return posix.normalize(path).replace(/(.)\/+$/, '$1');
}

function cleanPath(path: string): string {
  const normalized = posix.normalize(path.replace(/\\/g, '/'));
  return normalized.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
}

/**
 * A matcher over context-relative `/`-separated paths: true means the path is excluded from
 * the context. Patterns in file order; the last one that matches the path or one of its parent
 * directories decides.
 */
export function createIgnoreMatcher(patterns: readonly string[]): (path: string) => boolean {
  // patternmatcher trims and cleans each pattern once more before reading its `!`.
  const compiledPatterns = patterns.filter((line) => line.trim() !== '').map((line) => compileIgnorePattern(goClean(line.trim())));
  return (path: string): boolean => {
    const file = cleanPath(path);
    if (file === '.' || file === '') return false;
    const parts = file.split('/');
    const parents = parts.slice(0, -1).map((_, index) => parts.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const pattern of compiledPatterns) {
      // An exception only matters once excluded, a plain pattern only while included.
      if (pattern.exception !== excluded) continue;
      const matches = pattern.regex.test(file) || parents.some((parent) => pattern.regex.test(parent));
      if (matches) excluded = !pattern.exception;
    }
    return excluded;
  };
}

/** True when some `!` pattern could re-include a path below an excluded directory. */
export function hasExceptions(patterns: readonly string[]): boolean {
  return patterns.some((line) => line.startsWith('!'));
}

/**
 * Ignore files to try, in order, as BuildKit looks for them: `<Dockerfile name>.dockerignore`
 * beside the Dockerfile, then `.dockerignore` at the context root. The first that exists is
 * used alone. Paths are joined with `/`; pass them as the caller's own paths.
 */
export function dockerignoreCandidates(dockerfilePath: string, contextDir = '.'): string[] {
  const dockerfile = dockerfilePath.replace(/\\/g, '/');
  const candidates = [`${dockerfile}.dockerignore`, posix.join(contextDir.replace(/\\/g, '/'), '.dockerignore')];
  return dockerfile === '-' ? candidates.slice(1) : candidates;
}
