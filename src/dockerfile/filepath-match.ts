/**
 * Go's `path/filepath.Match` on a Unix system, which BuildKit uses for COPY/ADD source
 * wildcards: `*` any run of characters except `/`, `?` one character except `/`,
 * `[abc]` `[a-z]` `[^a-z]` classes (which may match `/`), `\x` the literal x. The whole name
 * must match. Like Go, a malformed pattern is reported only when matching reaches the bad part
 * (so `a*\` against `.` is simply false); then it is a BadPatternError.
 */

export class BadPatternError extends Error {
  constructor(readonly pattern: string, detail: string) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}: ${detail}`);
    this.name = 'BadPatternError';
  }
}

/** True when the pattern has wildcard syntax, i.e. is not a literal path. */
export function hasWildcards(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

type Chars = readonly string[];

export function filepathMatch(pattern: string, name: string): boolean {
  let rest: Chars = Array.from(pattern);
  let subject: Chars = Array.from(name);
  const bad = (detail: string): BadPatternError => new BadPatternError(pattern, detail);
  nextChunk: while (rest.length > 0) {
    const { star, chunk, remainder } = scanChunk(rest);
    rest = remainder;
    // A trailing * matches the rest unless it holds a separator.
    if (star && chunk.length === 0) return !subject.includes('/');
    const here = matchChunk(chunk, subject, bad);
    // The last chunk must use up the name; otherwise a star may still find a later match.
    if (here !== undefined && (here.length === 0 || rest.length > 0)) {
      subject = here;
      continue;
    }
    if (star) {
      for (let skip = 0; skip < subject.length && subject[skip] !== '/'; skip++) {
        const later = matchChunk(chunk, subject.slice(skip + 1), bad);
        if (later === undefined || (rest.length === 0 && later.length > 0)) continue;
        subject = later;
        continue nextChunk;
      }
    }
    return false;
  }
  return subject.length === 0;
}

/** Leading stars, then the text up to the next star outside a class. */
function scanChunk(pattern: Chars): { star: boolean; chunk: Chars; remainder: Chars } {
  let start = 0;
  while (pattern[start] === '*') start++;
  let inClass = false;
  for (let i = start; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      if (i + 1 < pattern.length) i++;
    } else if (ch === '[') inClass = true;
    else if (ch === ']') inClass = false;
    else if (ch === '*' && !inClass) return { star: start > 0, chunk: pattern.slice(start, i), remainder: pattern.slice(i) };
  }
  return { star: start > 0, chunk: pattern.slice(start), remainder: [] };
}

/**
 * Match one chunk at the start of `subject`: the rest of the subject, or undefined. After a
 * mismatch the chunk is still read to the end, so its syntax errors surface as in Go.
 */
function matchChunk(chunk: Chars, subject: Chars, bad: (detail: string) => BadPatternError): Chars | undefined {
  let failed = false;
  let s = 0;
  let c = 0;
  while (c < chunk.length) {
    failed ||= s >= subject.length;
    const ch = chunk[c] as string;
    if (ch === '[') {
      const candidate = failed ? undefined : subject[s++];
      c++;
      const negated = chunk[c] === '^';
      if (negated) c++;
      let matched = false;
      for (let ranges = 0; ; ranges++) {
        if (chunk[c] === ']' && ranges > 0) {
          c++;
          break;
        }
        const low = classChar(chunk, c, bad);
        let high = low;
        c = low.next;
        if (chunk[c] === '-') {
          high = classChar(chunk, c + 1, bad);
          c = high.next;
        }
        if (candidate !== undefined && low.char <= candidate && candidate <= high.char) matched = true;
      }
      failed ||= matched === negated;
    } else if (ch === '?') {
      if (!failed) failed = subject[s++] === '/';
      c++;
    } else {
      if (ch === '\\') {
        c++;
        if (c >= chunk.length) throw bad('trailing backslash');
      }
      if (!failed) failed = chunk[c] !== subject[s++];
      c++;
    }
  }
  return failed ? undefined : subject.slice(s);
}

/** One character of a class (escapes allowed); a class must not end right after it. */
function classChar(chunk: Chars, at: number, bad: (detail: string) => BadPatternError): { char: string; next: number } {
  let i = at;
  const ch = chunk[i];
  if (ch === undefined) throw bad('unterminated [');
  if (ch === '-' || ch === ']') throw bad(`unexpected ${ch} in a class`);
  if (ch === '\\') {
    i++;
    if (i >= chunk.length) throw bad('trailing backslash in a class');
  }
  if (i + 1 >= chunk.length) throw bad('unterminated [');
  return { char: chunk[i] as string, next: i + 1 };
}
