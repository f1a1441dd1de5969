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
  /** Whether a cleaned path matches; built on first use (a bad escape throws then, as in patternmatcher). */
  matches(path: string): boolean;
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
  let matcher: ((path: string) => boolean) | undefined;
  // Like patternmatcher, the matcher is built when a path first needs it.
  return {
    pattern,
    exception,
    matches(path: string): boolean {
      matcher ??= patternMatcher(pattern, line);
      return matcher(path);
    },
  };
}

/**
 * patternmatcher's matcher: a pattern without wildcards is compared as text, `foo/**` as a
 * prefix, `**` followed by plain text as a suffix (so `**b` matches `a.b`), anything else
 * as a regular expression.
 */
function patternMatcher(pattern: string, line: string): (path: string) => boolean {
  const chars = Array.from(pattern);
  let kind: 'exact' | 'prefix' | 'suffix' | 'regex' = 'exact';
  let out = '^';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    const start = i;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        // `**` at the end matches everything below; elsewhere any number of directories.
        if (i + 1 >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            out += '[^\\n]*';
            kind = 'regex';
          }
        } else {
          out += '(?:[^\\n]*/)?';
          kind = 'regex';
        }
        if (start === 0) kind = 'suffix';
      } else {
        out += '[^/]*';
        kind = 'regex';
      }
    } else if (ch === '?') {
      out += '[^/]';
      kind = 'regex';
    } else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) out += '\\\\';
      else {
        const escape = escapedInRegex(chars, i + 1, line);
        out += escape.source;
        i = escape.end;
        kind = 'regex';
      }
    } else if (ch === '[' || ch === ']') {
      out += ch;
      kind = 'regex';
    } else out += escapeRegex(ch);
  }
  if (kind === 'exact') return (path) => path === pattern;
  if (kind === 'prefix') return (path) => path.startsWith(pattern.slice(0, -2));
  if (kind === 'suffix') {
    const suffix = pattern.slice(2);
    return (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
  }
  let regex: RegExp;
  try {
    regex = new RegExp(`${out}$`);
  } catch {
    throw new Error(`invalid .dockerignore pattern ${JSON.stringify(line)}: check its [ ] brackets`);
  }
  return (path) => regex.test(path);
}

/** What `\x` at `at` means in patternmatcher's Go regular expression, as JavaScript source. */
function escapedInRegex(chars: readonly string[], at: number, line: string): { source: string; end: number } {
  const ch = chars[at] as string;
  if (ch === 'a') return { source: '\\x07', end: at };
  if (SHARED_ESCAPES.has(ch)) return { source: `\\${ch}`, end: at };
  const hex = chars.slice(at + 1, at + 3).join('');
  if (ch === 'x' && /^[0-9a-fA-F]{2}$/.test(hex)) return { source: `\\x${hex}`, end: at + 2 };
  if (/[A-Za-z0-9]/.test(ch)) throw new Error(`invalid .dockerignore pattern ${JSON.stringify(line)}: invalid escape sequence \\${ch}`);
  return { source: escapeRegex(ch), end: at };
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
  const compiledPatterns = compilePatterns(patterns);
  return (path: string): boolean => {
    const file = cleanPath(path);
    if (file === '.' || file === '') return false;
    const parts = file.split('/');
    const parents = parts.slice(0, -1).map((_, index) => parts.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const pattern of compiledPatterns) {
      // An exception only matters once excluded, a plain pattern only while included.
      if (pattern.exception !== excluded) continue;
      const matches = pattern.matches(file) || parents.some((parent) => pattern.matches(parent));
      if (matches) excluded = !pattern.exception;
    }
    return excluded;
  };
}

/** patternmatcher.New: each pattern trimmed and cleaned once more before its `!` is read; blank ones dropped. */
function compilePatterns(patterns: readonly string[]): IgnorePattern[] {
  return patterns.filter((line) => line.trim() !== '').map((line) => compileIgnorePattern(goClean(line.trim())));
}

/**
 * The matcher COPY/ADD --exclude use (fsutil copy's walk with patternmatcher's
 * MatchesUsingParentResults): paths are relative to the copied source, and each pattern's
 * result at a directory is carried down to its entries, so an excluded directory excludes what
 * it holds unless a later `!` pattern matches an entry again. The source itself ('') is never
 * matched. Throws on a bad pattern, as patternmatcher.New does.
 */
export function createCopyExcludeMatcher(patterns: readonly string[]): (relative: string) => boolean {
  const compiledPatterns = compilePatterns(patterns);
  const results = new Map<string, { excluded: boolean; matchedByPattern: boolean[] }>();
  const evaluate = (file: string): { excluded: boolean; matchedByPattern: boolean[] } => {
    const known = results.get(file);
    if (known) return known;
    const parent = posix.dirname(file);
    // The source's direct entries start without parent results (fsutil passes a zero MatchInfo).
    const parentMatched = parent === '.' ? undefined : evaluate(parent).matchedByPattern;
    let excluded = false;
    const matchedByPattern = compiledPatterns.map((pattern, index) => {
      let match = parentMatched?.[index] ?? false;
      if (!match) {
        // Skipped patterns record no match for the entries below.
        if (pattern.exception !== excluded) return false;
        match = pattern.matches(file);
      }
      if (match) excluded = !pattern.exception;
      return match;
    });
    const result = { excluded, matchedByPattern };
    results.set(file, result);
    return result;
  };
  return (relative: string): boolean => {
    const file = cleanPath(relative);
    return file !== '.' && file !== '' && evaluate(file).excluded;
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
