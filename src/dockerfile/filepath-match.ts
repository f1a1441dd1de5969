/**
 * Go's `path/filepath.Match` on a Unix system, which BuildKit uses for COPY/ADD source
 * wildcards: `*` any run of characters except `/`, `?` one character except `/`,
 * `[abc]` `[a-z]` `[^a-z]` classes (which may match `/`), `\x` the literal x. The whole name
 * must match. A malformed pattern is a BadPatternError even when the name would not match.
 */

export class BadPatternError extends Error {
  constructor(readonly pattern: string, detail: string) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}: ${detail}`);
    this.name = 'BadPatternError';
  }
}

const compiled = new Map<string, RegExp>();

export function filepathMatch(pattern: string, name: string): boolean {
  let regex = compiled.get(pattern);
  if (!regex) {
    regex = compileFilepathPattern(pattern);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex.test(name);
}

/** True when the pattern has wildcard syntax, i.e. is not a literal path. */
export function hasWildcards(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

const literal = (codePoint: number): string => `\\u{${codePoint.toString(16)}}`;

export function compileFilepathPattern(pattern: string): RegExp {
  const chars = Array.from(pattern);
  let out = '^';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else if (ch === '\\') {
      const next = chars[++i];
      if (next === undefined) throw new BadPatternError(pattern, 'trailing backslash');
      out += literal(next.codePointAt(0) as number);
    } else if (ch === '[') {
      const { source, end } = compileClass(chars, i + 1, pattern);
      out += source;
      i = end;
    } else out += literal(ch.codePointAt(0) as number);
  }
  return new RegExp(`${out}$`, 'su');
}

/** A `[...]` class starting after `[`; returns the regex source and the index of the closing `]`. */
function compileClass(chars: string[], start: number, pattern: string): { source: string; end: number } {
  let i = start;
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: string[] = [];
  const escaped = (): number => {
    let ch = chars[i];
    if (ch === undefined) throw new BadPatternError(pattern, 'unterminated [');
    if (ch === '-' || ch === ']') throw new BadPatternError(pattern, `unexpected ${ch} in class`);
    if (ch === '\\') {
      i++;
      ch = chars[i];
      if (ch === undefined) throw new BadPatternError(pattern, 'trailing backslash in class');
    }
    i++;
    return ch.codePointAt(0) as number;
  };
  for (;;) {
    if (chars[i] === ']' && ranges.length > 0) break;
    const low = escaped();
    let high = low;
    if (chars[i] === '-') {
      i++;
      high = escaped();
      if (high < low) throw new BadPatternError(pattern, 'range out of order');
    }
    ranges.push(low === high ? literal(low) : `${literal(low)}-${literal(high)}`);
  }
  return { source: `[${negated ? '^' : ''}${ranges.join('')}]`, end: i };
}
