/**
 * `.dockerignore` with docker's rules (moby/patternmatcher): one pattern a line, `#` at the
 * start of a line is a comment, patterns are cleaned (`./a/` -> `a`, `/a` -> `a`), `*` and `?`
 * stop at `/`, `**` crosses directories, `!` re-includes, the last matching pattern wins, and a
 * pattern that matches a parent directory matches everything below it.
 */
import { posix } from 'node:path';

export interface IgnorePattern {
  /** Cleaned pattern without the `!`. */
  pattern: string;
  /** A `!` line: matching paths are included again. */
  exception: boolean;
  regex: RegExp;
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
      pattern = posix.normalize(pattern).replace(/(.)\/+$/, '$1');
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(exception ? `!${pattern}` : pattern);
  }
  return patterns;
}

/** Characters that are literal in a pattern but special in a regular expression. */
const REGEX_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);

export function compileIgnorePattern(line: string): IgnorePattern {
  const exception = line.startsWith('!');
  const pattern = exception ? line.slice(1) : line;
  const chars = Array.from(pattern);
  let out = '^';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        // `**` at the end matches everything below; elsewhere any number of directories.
        out += i + 1 >= chars.length ? '.*' : '(?:.*/)?';
      } else out += '[^/]*';
    } else if (ch === '?') out += '[^/]';
    else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) out += '\\\\';
      else {
        out += escapeRegex(next);
        i++;
      }
    } else if (ch === '[' || ch === ']') out += ch;
    else out += escapeRegex(ch);
  }
  let regex: RegExp;
  try {
    regex = new RegExp(`${out}$`, 's');
  } catch {
    throw new Error(`invalid .dockerignore pattern ${JSON.stringify(line)}: check its [ ] brackets`);
  }
  return { pattern, exception, regex };
}

function escapeRegex(ch: string): string {
  return REGEX_SPECIAL.has(ch) || /[\\*?[\]/]/.test(ch) ? `\\${ch}` : ch;
}

/** Clean a context-relative path the way docker does before matching. */
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
  const compiledPatterns = patterns.filter((line) => line !== '' && line !== '!').map(compileIgnorePattern);
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
