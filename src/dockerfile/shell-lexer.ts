/**
 * The shell-word lexer BuildKit applies to Dockerfile words: quotes, escapes and variable
 * expansion (`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
 * `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
 * `${VAR/pat/rep}`, `${VAR//pat/rep}`). Nothing else of the shell exists here: no command
 * substitution, no arithmetic, no `${#VAR}`, no `${VAR:=word}`; those are errors, as in BuildKit.
 *
 * Semantics follow BuildKit's frontend/dockerfile/shell package:
 *  - single quotes keep everything literally; double quotes expand `$` and let the escape
 *    character escape only `"`, `$` and itself (otherwise the escape character stays);
 *  - outside quotes the escape character makes the next character literal and disappears;
 *  - `$` not followed by a name is a literal `$`; `$1`, `$@`, `$#`... are looked up like names
 *    (and are normally unset, hence empty);
 *  - in `#`/`%` patterns and in `/` pattern and replacement, escapes are kept raw so `\*` means a
 *    literal star; patterns know `*` and `?` only (no bracket expressions).
 */

/** Variables visible to expansion; `undefined` means unset (which differs from empty). */
export type VariableLookup = (name: string) => string | undefined;
export type Variables = ReadonlyMap<string, string> | Readonly<Record<string, string>> | VariableLookup;

export type EscapeCharacter = '\\' | '`';

/** A word that does not lex: unbalanced quotes, `${` without `}`, a bad modifier, `${X:?msg}`. */
export class ShellWordError extends Error {
  constructor(message: string, readonly word: string) {
    super(`${message} (in ${JSON.stringify(word)})`);
    this.name = 'ShellWordError';
  }
}

export interface LexOptions {
  escape?: EscapeCharacter;
  /** Keep quote characters in the output (the heredoc detector needs them). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X:-y}`) instead of expanding. */
  skipUnset?: boolean;
  /** Treat quotes as ordinary characters (BuildKit expands heredoc bodies this way). */
  ignoreQuotes?: boolean;
}

export interface LexResult {
  /** The word with quotes removed and variables replaced; spaces kept. */
  text: string;
  /** The same, split on unquoted whitespace (including whitespace produced by expansion). */
  words: string[];
  /** Names that were looked up and unset (for "unused"/"undefined" diagnostics). */
  unset: string[];
}

/** Expand one word: `expandWord('"$HOME"/x', { HOME: '/root' })` is `/root/x`. */
export function expandWord(word: string, variables: Variables, escape: EscapeCharacter = '\\'): string {
  return lexWord(word, variables, { escape }).text;
}

/** Expand then split into words on unquoted whitespace, as BuildKit does for EXPOSE. */
export function expandWords(text: string, variables: Variables, escape: EscapeCharacter = '\\'): string[] {
  return lexWord(text, variables, { escape }).words;
}

export function lexWord(word: string, variables: Variables, options: LexOptions = {}): LexResult {
  const lexer = new WordLexer(word, toLookup(variables), options);
  const { text, words } = lexer.run(undefined, options.rawEscapes ?? false);
  return { text, words, unset: [...lexer.unset] };
}

function toLookup(variables: Variables): VariableLookup {
  if (typeof variables === 'function') return variables;
  if (variables instanceof Map) return (name) => variables.get(name);
  const record = variables as Readonly<Record<string, string>>;
  return (name) => (Object.prototype.hasOwnProperty.call(record, name) ? record[name] : undefined);
}

const SPECIAL_PARAMETERS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isNameChar = (ch: string): boolean => /^[\p{L}\p{Nd}_]$/u.test(ch);

/** Collects the split-into-words view alongside the plain text. */
class WordCollector {
  private current = '';
  private inWord = false;
  readonly words: string[] = [];

  /** A character that splits words when it is whitespace. */
  addSplitting(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.current.length > 0) {
        this.words.push(this.current);
        this.current = '';
        this.inWord = false;
      }
      return;
    }
    this.addLiteral(ch);
  }

  addLiteral(text: string): void {
    this.current += text;
    this.inWord = true;
  }

  addSplittingText(text: string): void {
    for (const ch of text) this.addSplitting(ch);
  }

  finish(): string[] {
    if (this.current.length > 0) {
      this.words.push(this.current);
      this.current = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class WordLexer {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly unset = new Set<string>();
  private readonly escape: EscapeCharacter;

  constructor(
    private readonly source: string,
    private readonly lookup: VariableLookup,
    private readonly options: LexOptions,
  ) {
    this.chars = Array.from(source);
    this.escape = options.escape ?? '\\';
    this.rawEscapes = options.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private fail(message: string): never {
    throw new ShellWordError(message, this.source);
  }

  /** Read up to `stop` (consumed) or the end; returns text and split words. */
  run(stop: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = '';
      const words = new WordCollector();
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { text, words: words.finish() };
        }
        if (ch === '$') {
          const value = this.dollar();
          text += value;
          words.addSplittingText(value);
        } else if (ch === "'" && !this.options.ignoreQuotes) {
          const value = this.singleQuoted();
          text += value;
          words.addLiteral(value);
        } else if (ch === '"' && !this.options.ignoreQuotes) {
          const value = this.doubleQuoted();
          text += value;
          words.addLiteral(value);
        } else {
          this.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              text += ch;
              words.addLiteral(ch);
            }
            const escaped = this.next();
            if (escaped === undefined) break;
            text += escaped;
            words.addLiteral(escaped);
          } else {
            text += ch;
            words.addSplitting(ch);
          }
        }
      }
      if (stop !== undefined) this.fail(`unexpected end of statement while looking for matching ${stop}`);
      return { text, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private singleQuoted(): string {
    const open = this.next() as string;
    let out = this.options.rawQuotes ? open : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) this.fail('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.options.rawQuotes ? out + ch : out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    const open = this.next() as string;
    let out = this.options.rawQuotes ? open : '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) this.fail('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return this.options.rawQuotes ? out + ch : out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) out += ch;
        const following = this.peek();
        if (following === undefined) continue;
        if (following === '"' || following === '$' || following === this.escape) {
          out += this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private get(name: string): string | undefined {
    const value = this.lookup(name);
    if (value === undefined) this.unset.add(name);
    return value;
  }

  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMETERS.has(ch)) return this.next() as string;
      if (!isNameChar(ch)) break;
      name += this.next();
    }
    return name;
  }

  private dollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const value = this.get(name);
      if (value === undefined && this.options.skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.next(); // '{'
    const first = this.peek();
    if (first === undefined) this.fail("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') this.fail('syntax error: bad substitution');
    const name = this.name();
    let operator = this.next();
    if (operator === undefined) this.fail("syntax error: missing '}'");
    if (operator === '}') {
      const value = this.get(name);
      if (value === undefined && this.options.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (operator === '/') return this.substitute(name);

    let nullIsUnset = false;
    let written = operator;
    if (operator === ':') {
      nullIsUnset = true;
      const after = this.next();
      if (after === undefined) this.fail("syntax error: missing '}'");
      operator = after;
      written += after;
    }
    if (!['+', '-', '?', '#', '%'].includes(operator)) {
      this.fail(`unsupported modifier (${written}) in substitution; supported: :- - :+ + :? ? # ## % %% / //`);
    }
    const patternForm = operator === '#' || operator === '%';
    if (nullIsUnset && patternForm) this.fail(`unsupported modifier (${written}) in substitution`);
    const word = this.runTo('}', patternForm, "syntax error: missing '}'");
    const value = this.get(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}${written}${word}}`;
    const absent = value === undefined || (nullIsUnset && value === '');
    switch (operator) {
      case '-':
        return absent ? word : (value as string);
      case '+':
        return absent ? '' : word;
      case '?':
        if (value === undefined) this.fail(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') this.fail(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        const greedy = word.startsWith(operator);
        const pattern = greedy ? word.slice(1) : word;
        return operator === '#' ? this.trimPrefix(pattern, value ?? '', greedy) : this.trimSuffix(pattern, value ?? '', greedy);
      }
    }
  }

  /** The text up to `stop`; running out of input is reported as `missing`. */
  private runTo(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.run(stop, rawEscapes).text;
    } catch (error) {
      if (this.peek() === undefined) this.fail(missing);
      throw error;
    }
  }

  private substitute(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.runTo('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.runTo('}', true, "syntax error: missing '}'");
    const value = this.get(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}/${pattern}/${replacement}}`;
    const regex = this.patternRegex(pattern, true, false);
    return all ? replaceAllGoStyle(value ?? '', regex, replacement) : replaceFirst(value ?? '', regex, replacement);
  }

  private trimPrefix(pattern: string, value: string, greedy: boolean): string {
    const match = this.patternRegex(pattern, greedy, true).exec(value);
    return match ? value.slice(match[0].length) : value;
  }

  private trimSuffix(pattern: string, value: string, greedy: boolean): string {
    // Shortest/longest match at the end == same at the start of the reversed strings.
    const reversed = reverse(value);
    const match = this.patternRegex(reversePattern(pattern), greedy, true).exec(reversed);
    return match ? reverse(reversed.slice(match[0].length)) : value;
  }

  private patternRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
    try {
      return shellPatternToRegex(pattern, greedy, anchored);
    } catch (error) {
      this.fail(`invalid pattern (${pattern}) in substitution: ${(error as Error).message}`);
    }
  }
}

/** `*` any run (shortest unless greedy), `?` one character, `\*` `\?` `\\` literal. */
export function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  // Go's `.` does not match a newline; JavaScript's also skips \r and U+2028/9, so spell it out.
  const any = '[^\\n]';
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') out += greedy ? `${any}*` : `${any}*?`;
    else if (ch === '?') out += any;
    else if (ch === '\\') {
      const following = chars[i + 1];
      // `\}` and `\/` escape the ${} syntax, not the pattern.
      if (following === '}' || following === '/') continue;
      if (following !== '*' && following !== '?' && following !== '\\') {
        throw new Error(`invalid escape '\\${following ?? ''}'`);
      }
      out += `\\${following}`;
      i++;
    } else out += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  return new RegExp(out, 'u');
}

function reverse(text: string): string {
  return Array.from(text).reverse().join('');
}

/** Reverse a pattern keeping each `\x` escape pair in order: `a\*c` -> `c\*a`. */
function reversePattern(pattern: string): string {
  const tokens: string[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '\\' && i + 1 < chars.length) {
      tokens.push(`\\${chars[i + 1]}`);
      i++;
    } else tokens.push(chars[i] as string);
  }
  return tokens.reverse().join('');
}

function replaceFirst(value: string, regex: RegExp, replacement: string): string {
  const match = regex.exec(value);
  if (!match) return value;
  return value.slice(0, match.index) + replacement + value.slice(match.index + match[0].length);
}

/** Go's ReplaceAll: an empty match right after the previous match is skipped. */
function replaceAllGoStyle(value: string, regex: RegExp, replacement: string): string {
  const global = new RegExp(regex.source, 'gu');
  let out = '';
  let last = 0;
  let previousEnd = -1;
  for (let match = global.exec(value); match; match = global.exec(value)) {
    const start = match.index;
    const end = start + match[0].length;
    if (match[0].length === 0) {
      // Advance past one code point so the loop ends.
      global.lastIndex = end + (value.codePointAt(end) !== undefined && value.codePointAt(end)! > 0xffff ? 2 : 1);
      if (start === previousEnd) continue;
    }
    out += value.slice(last, start) + replacement;
    last = end;
    previousEnd = end;
    if (end > value.length) break;
  }
  return out + value.slice(last);
}
