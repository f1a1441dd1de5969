/**
 * Dockerfile parser following BuildKit's grammar (frontend/dockerfile/parser and the checks of
 * frontend/dockerfile/instructions): parser directives, comments, line continuations, flags,
 * JSON and shell forms, heredocs and ONBUILD. Nothing is expanded here; resolve.ts does that.
 */
import { DockerfileError } from './errors.js';
import { healthcheckOptions } from './healthcheck.js';
import { lexWord } from './shell-lexer.js';
import type {
  Heredoc,
  InstructionFlag,
  ParsedDockerfile,
  ParsedInstruction,
  ParserDirectives,
  ParseWarning,
  SourcePosition,
} from './types.js';

export interface ParseOptions {
  /** Name used in positions and messages; default `Dockerfile`. */
  file?: string;
}

type FlagKind = 'string' | 'strings' | 'bool';

/** The flags BuildKit's Dockerfile frontend accepts per instruction. */
const INSTRUCTION_FLAGS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    'keep-git-dir': 'bool',
    checksum: 'string',
    exclude: 'strings',
    unpack: 'bool',
  },
  RUN: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const KEYWORDS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;

const HEREDOC_KEYWORDS = new Set(['ADD', 'COPY', 'RUN']);
const RUN_FLAG_VALUES: Record<string, string[]> = { network: ['default', 'none', 'host'], security: ['insecure', 'sandbox'] };
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const DIRECTIVE_LINE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;
/** BuildKit splits arguments on these (not on newlines, which cannot occur in a logical line). */
const ARG_WHITESPACE = /[\t\v\f\r ]+/;

/** A physical line: its text without the line ending, and the ending kept for heredoc bodies. */
interface PhysicalLine {
  text: string;
  raw: string;
  number: number;
}

/** A logical line (continuations joined) that remembers where each piece came from. */
class LogicalLine {
  text = '';
  private readonly pieces: { offset: number; line: number; column: number }[] = [];

  constructor(private readonly file: string) {}

  append(text: string, line: number, column: number): void {
    this.pieces.push({ offset: this.text.length, line, column });
    this.text += text;
  }

  /** Source position of a UTF-16 offset into `text`. */
  positionAt(offset: number): SourcePosition {
    let piece = this.pieces[0] ?? { offset: 0, line: 1, column: 1 };
    for (const candidate of this.pieces) {
      if (candidate.offset <= offset) piece = candidate;
      else break;
    }
    const before = this.text.slice(piece.offset, offset);
    return { file: this.file, line: piece.line, column: piece.column + Array.from(before).length };
  }
}

function splitPhysicalLines(text: string): PhysicalLine[] {
  const lines: PhysicalLine[] = [];
  let start = 0;
  let number = 1;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline + 1;
    const raw = text.slice(start, end);
    lines.push({ raw, text: raw.replace(/[\r\n]+$/, ''), number });
    start = end;
    number++;
  }
  return lines;
}

const leadingWhitespace = (text: string): number => text.length - text.replace(/^\s+/u, '').length;
const isCommentLine = (text: string): boolean => text.replace(/^\s+/u, '').startsWith('#');

export function parseDockerfile(text: string, options: ParseOptions = {}): ParsedDockerfile {
  return new Parser(text, options.file ?? 'Dockerfile').parse();
}

class Parser {
  private readonly lines: PhysicalLine[];
  private readonly directives: ParserDirectives = { escape: '\\' };
  private readonly warnings: ParseWarning[] = [];
  private continuation = /(?:^|([^\\]))\\[ \t]*$/;
  private directivesDone = false;
  private readonly seenDirectives = new Set<string>();

  constructor(source: string, private readonly file: string) {
    this.lines = splitPhysicalLines(source.replace(/^\uFEFF/, ''));
  }

  private at(line: number, column = 1): SourcePosition {
    return { file: this.file, line, column };
  }

  private error(message: string, position: SourcePosition, hint?: string): DockerfileError {
    return new DockerfileError(message, { position, hint });
  }

  parse(): ParsedDockerfile {
    const instructions: ParsedInstruction[] = [];
    let index = 0;
    while (index < this.lines.length) {
      const first = this.lines[index] as PhysicalLine;
      index++;
      const indent = leadingWhitespace(first.text);
      const trimmed = first.text.slice(indent);
      this.directive(trimmed, first.number);
      if (trimmed.startsWith('#')) continue;

      const logical = new LogicalLine(this.file);
      let [piece, ended] = this.stripContinuation(trimmed);
      if (ended && piece === '') continue;
      logical.append(piece, first.number, indent + 1);
      let emptyContinuation: number | undefined;
      let last = first.number;
      while (!ended && index < this.lines.length) {
        const next = this.lines[index] as PhysicalLine;
        index++;
        last = next.number;
        if (isCommentLine(next.text)) continue;
        if (next.text.trim() === '') {
          emptyContinuation ??= next.number;
          continue;
        }
        [piece, ended] = this.stripContinuation(next.text);
        logical.append(piece, next.number, 1);
      }
      if (emptyContinuation !== undefined) {
        this.warnings.push({
          position: this.at(emptyContinuation),
          message: 'empty continuation line; BuildKit will make these an error: remove the blank line or the trailing escape before it',
        });
      }

      const instruction = this.instruction(logical, 0, last);
      const heredocTarget = instruction.onbuild ?? instruction;
      if (HEREDOC_KEYWORDS.has(heredocTarget.keyword) && heredocTarget.form === 'shell' && logical.text.includes('<<')) {
        for (const heredoc of heredocsInLine(logical.text)) {
          const body = this.readHeredoc(heredoc, index, logical.positionAt(0));
          index = body.nextIndex;
          instruction.location.endLine = body.endLine;
          heredocTarget.location.endLine = body.endLine;
          heredocTarget.heredocs.push(body.heredoc);
        }
      }
      if (instruction.onbuild) instruction.heredocs = instruction.onbuild.heredocs;
      instructions.push(instruction);
    }
    if (instructions.length === 0) {
      throw this.error('the file has no instructions', this.at(Math.max(this.lines.length, 1)), 'a Dockerfile needs at least a FROM line');
    }
    this.checkOrder(instructions);
    return { file: this.file, directives: this.directives, instructions, warnings: this.warnings };
  }

  /** Parser directives: only in the leading run of `# key=value` lines, each at most once. */
  private directive(trimmed: string, lineNumber: number): void {
    if (this.directivesDone) return;
    const match = DIRECTIVE_LINE.exec(trimmed);
    const name = match?.[1]?.toLowerCase();
    if (!match || name === undefined || !KNOWN_DIRECTIVES.has(name)) {
      this.directivesDone = true;
      return;
    }
    const value = match[2] as string;
    if (this.seenDirectives.has(name)) {
      throw this.error(`only one ${name} parser directive can be used`, this.at(lineNumber), `remove the second "# ${name}=" line`);
    }
    this.seenDirectives.add(name);
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw this.error(`invalid escape character '${value}'`, this.at(lineNumber), 'use "# escape=\\" (the default) or "# escape=`"');
      }
      this.directives.escape = value;
      const e = value === '\\' ? '\\\\' : '`';
      this.continuation = new RegExp(`(?:^|([^${e}]))${e}[ \\t]*$`);
    } else if (name === 'syntax') this.directives.syntax = value;
    else this.directives.check = value;
  }

  /** Remove a trailing escape character (not itself escaped); report whether the line ended. */
  private stripContinuation(text: string): [string, boolean] {
    const match = this.continuation.exec(text);
    if (!match) return [text, true];
    return [text.slice(0, match.index) + (match[1] ?? ''), false];
  }

  private readHeredoc(
    found: FoundHeredoc,
    startIndex: number,
    position: SourcePosition,
  ): { heredoc: Heredoc; nextIndex: number; endLine: number } {
    let content = '';
    let index = startIndex;
    const firstBodyLine = this.lines[startIndex]?.number ?? (this.lines.at(-1)?.number ?? 0) + 1;
    while (index < this.lines.length) {
      const line = this.lines[index] as PhysicalLine;
      index++;
      const candidate = found.stripTabs ? line.text.replace(/^\t+/, '') : line.text;
      if (candidate === found.name) {
        const body = found.stripTabs ? content.replace(/^\t+/gm, '') : content;
        const heredoc: Heredoc = { name: found.name, content: body, expand: found.expand, stripTabs: found.stripTabs, position: this.at(firstBodyLine) };
        if (found.fileDescriptor !== undefined) heredoc.fileDescriptor = found.fileDescriptor;
        return {
          heredoc,
          nextIndex: index,
          endLine: line.number,
        };
      }
      content += line.raw;
    }
    throw this.error(`unterminated heredoc <<${found.stripTabs ? '-' : ''}${found.name}`, position, `end the here-document with a line containing only ${found.name}`);
  }

  /** Parse one logical line (or the part after ONBUILD) into an instruction. */
  private instruction(line: LogicalLine, start: number, lastLine: number): ParsedInstruction {
    const text = line.text;
    let offset = start;
    while (offset < text.length && /\s/u.test(text[offset] as string)) offset++;
    const keywordStart = offset;
    while (offset < text.length && !ARG_WHITESPACE.test(text[offset] as string)) offset++;
    const written = text.slice(keywordStart, offset);
    const keyword = written.toUpperCase();
    const position = line.positionAt(keywordStart);
    if (!(KEYWORDS as readonly string[]).includes(keyword)) {
      const suggestion = suggestKeyword(keyword);
      throw this.error(
        `unknown instruction: ${written}`,
        position,
        suggestion ? `did you mean ${suggestion}?` : `instructions are ${KEYWORDS.join(', ')}`,
      );
    }

    const { flags, restStart } = this.flags(line, offset);
    const rest = text.slice(restStart).trim();
    const restPosition = line.positionAt(restStart);
    const instruction: ParsedInstruction = {
      keyword,
      location: { ...position, endLine: lastLine },
      original: text.slice(keywordStart).trim(),
      flags,
      form: 'shell',
      rest,
      args: [],
      heredocs: [],
    };
    this.arguments(instruction, rest, restPosition, line, restStart);
    this.validate(instruction, restPosition);
    return instruction;
  }

  /**
   * Flags are the leading words that start with `--`; quotes in them are removed and `\`
   * escapes the next character; a bare `--` ends them. Validated against INSTRUCTION_FLAGS.
   */
  private flags(line: LogicalLine, from: number): { flags: InstructionFlag[]; restStart: number } {
    const text = line.text;
    const flags: InstructionFlag[] = [];
    let offset = from;
    for (;;) {
      while (offset < text.length && /\s/u.test(text[offset] as string)) offset++;
      if (!text.startsWith('--', offset)) return { flags, restStart: offset };
      const wordStart = offset;
      let word = '';
      let quote: string | undefined;
      for (; offset < text.length; offset++) {
        const ch = text[offset] as string;
        if (quote) {
          if (ch === quote) quote = undefined;
          else if (ch === '\\' && offset + 1 < text.length) word += text[++offset];
          else if (ch !== '\\') word += ch;
          continue;
        }
        if (/\s/u.test(ch)) break;
        if (ch === '"' || ch === "'") quote = ch;
        else if (ch === '\\') {
          if (offset + 1 < text.length) word += text[++offset];
        } else word += ch;
      }
      if (word === '--') {
        while (offset < text.length && /\s/u.test(text[offset] as string)) offset++;
        return { flags, restStart: offset };
      }
      const equals = word.indexOf('=');
      const name = equals === -1 ? word.slice(2) : word.slice(2, equals);
      const value = equals === -1 ? null : word.slice(equals + 1);
      flags.push({ name, value, position: line.positionAt(wordStart) });
    }
  }

  private checkFlags(instruction: ParsedInstruction): void {
    const allowed = INSTRUCTION_FLAGS[instruction.keyword] ?? {};
    const seen = new Set<string>();
    for (const flag of instruction.flags) {
      const kind = allowed[flag.name];
      if (kind === undefined) {
        const names = Object.keys(allowed).map((name) => `--${name}`);
        throw this.error(
          `unknown flag --${flag.name} for ${instruction.keyword}`,
          flag.position,
          names.length ? `${instruction.keyword} accepts ${names.join(', ')}` : `${instruction.keyword} takes no flags`,
        );
      }
      if (kind !== 'strings' && seen.has(flag.name)) {
        throw this.error(`duplicate flag --${flag.name}`, flag.position, `give --${flag.name} once`);
      }
      seen.add(flag.name);
      if (kind === 'bool' && flag.value !== null && !/^(true|false)$/i.test(flag.value)) {
        throw this.error(`--${flag.name} expects true or false, not "${flag.value}"`, flag.position, `write --${flag.name} or --${flag.name}=false`);
      }
      if (kind !== 'bool' && flag.value === null) {
        throw this.error(`missing a value on flag --${flag.name}`, flag.position, `write --${flag.name}=<value>`);
      }
    }
  }

  /** Split the arguments the way BuildKit's line parser does for this keyword. */
  private arguments(instruction: ParsedInstruction, rest: string, restPosition: SourcePosition, line: LogicalLine, restStart: number): void {
    switch (instruction.keyword) {
      case 'ADD':
      case 'COPY':
      case 'VOLUME': {
        const json = this.json(rest, restPosition);
        if (json) {
          instruction.form = 'json';
          instruction.args = json;
        } else instruction.args = rest === '' ? [] : rest.split(ARG_WHITESPACE);
        return;
      }
      case 'CMD':
      case 'ENTRYPOINT':
      case 'RUN':
      case 'SHELL': {
        if (rest === '') return;
        const json = this.json(rest, restPosition);
        if (json) {
          instruction.form = 'json';
          instruction.args = json;
        } else instruction.args = [rest];
        return;
      }
      case 'HEALTHCHECK': {
        const match = /^(\S+)\s*([\s\S]*)$/.exec(rest);
        if (!match) return;
        const type = match[1] as string;
        const command = match[2] as string;
        instruction.args = [type];
        if (command === '') return;
        const json = this.json(command, restPosition);
        if (json) {
          instruction.form = 'json';
          instruction.args.push(...json);
        } else instruction.args.push(command);
        return;
      }
      case 'EXPOSE':
      case 'FROM':
        instruction.args = rest === '' ? [] : rest.split(ARG_WHITESPACE);
        return;
      case 'ENV':
      case 'LABEL':
        instruction.pairs = this.nameValuePairs(instruction.keyword, rest, restPosition);
        instruction.args = instruction.pairs.map(({ key, value }) => `${key}=${value}`);
        return;
      case 'ARG': {
        const words = quotedWords(rest, this.directives.escape);
        instruction.args = words;
        instruction.pairs = words.map((word) => {
          const equals = word.indexOf('=');
          if (equals === 0) throw this.error('ARG names can not be blank', restPosition, 'write ARG NAME or ARG NAME=default');
          return equals === -1 ? { key: word } : { key: word.slice(0, equals), value: word.slice(equals + 1) };
        });
        return;
      }
      case 'ONBUILD': {
        if (rest === '') return;
        const inner = this.instruction(line, restStart, instruction.location.endLine);
        const trigger = inner.keyword;
        if (trigger === 'ONBUILD') throw this.error('chaining ONBUILD via `ONBUILD ONBUILD` is not allowed', inner.location, 'write one ONBUILD per trigger');
        if (trigger === 'FROM' || trigger === 'MAINTAINER') {
          throw this.error(`${trigger} is not allowed as an ONBUILD trigger`, inner.location, 'ONBUILD triggers run in a child image\'s stage; use another instruction');
        }
        instruction.onbuild = inner;
        instruction.args = [inner.original];
        return;
      }
      default:
        // MAINTAINER, STOPSIGNAL, USER, WORKDIR: the rest is one argument.
        instruction.args = rest === '' ? [] : [rest];
    }
  }

  /** A JSON array of strings, or undefined for shell form (invalid JSON falls back, as in BuildKit). */
  private json(rest: string, position: SourcePosition): string[] | undefined {
    const text = rest.replace(/^\s+/u, '');
    if (!text.startsWith('[')) return undefined;
    const end = endOfJsonArray(text);
    // Anything after the array makes it shell form, as in current BuildKit.
    if (end === undefined || text.slice(end).trim() !== '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text.slice(0, end));
    } catch {
      return undefined;
    }
    if (!Array.isArray(value)) return undefined;
    if (!value.every((item) => typeof item === 'string')) {
      throw this.error(
        'when using JSON array syntax, arrays must be comprised of strings only',
        position,
        'quote every element, e.g. ["sleep", "10"]',
      );
    }
    return value as string[];
  }

  /** ENV/LABEL: `key=value ...` or the legacy `key value with spaces`. */
  private nameValuePairs(keyword: string, rest: string, position: SourcePosition): { key: string; value: string }[] {
    const words = quotedWords(rest, this.directives.escape);
    if (words.length === 0) return [];
    if (!(words[0] as string).includes('=')) {
      const parts = rest.split(ARG_WHITESPACE);
      const key = parts[0] as string;
      const valueStart = rest.slice(key.length).search(/[^\t\v\f\r ]/);
      if (parts.length < 2 || valueStart === -1) {
        throw this.error(`${keyword} must have two arguments`, position, `write ${keyword} ${key}=<value>`);
      }
      return [{ key, value: rest.slice(key.length + valueStart) }];
    }
    return words.map((word) => {
      const equals = word.indexOf('=');
      if (equals === -1) {
        throw this.error(`can't find = in "${word}"`, position, `${keyword} takes name=value pairs; quote values that contain spaces: ${keyword} ${word}="..."`);
      }
      return { key: word.slice(0, equals), value: word.slice(equals + 1) };
    });
  }

  /** The per-instruction checks BuildKit makes when it types the instructions. */
  private validate(instruction: ParsedInstruction, position: SourcePosition): void {
    this.checkFlags(instruction);
    const { keyword, args } = instruction;
    const at = position;
    switch (keyword) {
      case 'FROM': {
        const validShape = args.length === 1 || (args.length === 3 && (args[1] as string).toLowerCase() === 'as');
        if (!validShape) {
          throw this.error('FROM requires either one or three arguments', at, 'write FROM <image> or FROM <image> AS <name>');
        }
        if (args.length === 3 && !/^[a-z][a-z0-9-_.]*$/.test((args[2] as string).toLowerCase())) {
          throw this.error(
            `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`,
            at,
            'stage names start with a letter and contain letters, digits, "-", "_" or "."',
          );
        }
        return;
      }
      case 'COPY':
      case 'ADD': {
        if (args.length < 2) {
          throw this.error(`${keyword} requires at least two arguments, but only ${args.length} provided`, at, `write ${keyword} <source>... <destination>`);
        }
        if (parseHeredocWord(args.at(-1) as string)) {
          throw this.error(`${keyword} cannot accept a heredoc as a destination`, at, 'the last argument must be a path');
        }
        return;
      }
      case 'ENV':
      case 'LABEL':
        if (!instruction.pairs?.length) throw this.error(`${keyword} requires at least one argument`, at, `write ${keyword} name=value`);
        if (instruction.pairs.some((pair) => pair.key === '')) throw this.error(`${keyword} names can not be blank`, at, `write ${keyword} name=value`);
        return;
      case 'ARG':
        if (args.length === 0) throw this.error('ARG requires at least one argument', at, 'write ARG NAME or ARG NAME=default');
        return;
      case 'EXPOSE':
      case 'VOLUME':
      case 'ONBUILD':
        if (args.length === 0) throw this.error(`${keyword} requires at least one argument`, at, `see the Dockerfile reference for ${keyword}`);
        if (keyword === 'VOLUME' && args.some((arg) => arg.trim() === '')) {
          throw this.error('VOLUME specified can not be an empty string', at, 'remove the empty path');
        }
        return;
      case 'MAINTAINER':
      case 'USER':
      case 'WORKDIR':
      case 'STOPSIGNAL':
        if (args.length !== 1) throw this.error(`${keyword} requires exactly one argument`, at, `write ${keyword} <value>`);
        return;
      case 'RUN':
        for (const flag of instruction.flags) {
          const allowed = RUN_FLAG_VALUES[flag.name];
          if (allowed && !allowed.includes(flag.value ?? '')) {
            throw this.error(`--${flag.name}=${flag.value} is not supported`, flag.position, `use --${flag.name}=${allowed.join(' or ')}`);
          }
        }
        return;
      case 'SHELL':
        if (instruction.form !== 'json') {
          throw this.error('SHELL requires the arguments to be in JSON form', at, 'write SHELL ["/bin/sh", "-c"]');
        }
        if (args.length === 0) throw this.error('SHELL requires at least one argument', at, 'write SHELL ["/bin/sh", "-c"]');
        return;
      case 'HEALTHCHECK': {
        if (args.length === 0) throw this.error('HEALTHCHECK requires at least one argument', at, 'write HEALTHCHECK CMD <command> or HEALTHCHECK NONE');
        const type = (args[0] as string).toUpperCase();
        if (type === 'NONE') {
          if (args.length > 1) throw this.error('HEALTHCHECK NONE takes no arguments', at, 'remove what follows NONE');
          if (instruction.flags.length > 0) throw this.error('HEALTHCHECK NONE takes no flags', instruction.flags[0]!.position, 'remove the flags');
        } else if (type === 'CMD') {
          if (args.length < 2) throw this.error('missing command after HEALTHCHECK CMD', at, 'write HEALTHCHECK CMD <command>');
          healthcheckOptions(instruction.flags);
        } else {
          throw this.error(`unknown type "${args[0]}" in HEALTHCHECK`, at, 'try HEALTHCHECK CMD <command>');
        }
        return;
      }
      default:
        return;
    }
  }

  /** Only ARG may precede the first FROM. */
  private checkOrder(instructions: ParsedInstruction[]): void {
    for (const instruction of instructions) {
      if (instruction.keyword === 'FROM') return;
      if (instruction.keyword !== 'ARG') {
        throw this.error(
          `${instruction.keyword} before the first FROM`,
          instruction.location,
          'start the stage with FROM <image>; only ARG may come before the first FROM',
        );
      }
    }
    const last = instructions.at(-1) as ParsedInstruction;
    throw this.error('no FROM instruction', last.location, 'add FROM <image> (or FROM scratch) after the ARG lines');
  }
}

/**
 * Words as BuildKit's parseWords splits them: on unquoted whitespace, with quotes and escapes
 * kept in the word (the lexer removes them when it expands the word).
 */
export function quotedWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let blankOk = false;
  let quote: string | undefined;
  const chars = Array.from(rest);
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i] as string;
    if (quote === undefined) {
      if (/\s/u.test(ch)) {
        if (inWord && (blankOk || word.length > 0)) words.push(word);
        word = '';
        inWord = false;
        blankOk = false;
        continue;
      }
      inWord = true;
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === chars.length) continue;
        word += ch;
        ch = chars[++i] as string;
      }
      word += ch;
      continue;
    }
    if (ch === quote) quote = undefined;
    else if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = undefined;
        continue;
      }
      word += ch;
      ch = chars[++i] as string;
    }
    word += ch;
  }
  if (inWord && (blankOk || word.length > 0)) words.push(word);
  return words;
}

/** Index just past the JSON array that starts `text`, or undefined if it never closes. */
function endOfJsonArray(text: string): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return undefined;
}

interface FoundHeredoc {
  name: string;
  expand: boolean;
  stripTabs: boolean;
  fileDescriptor?: number;
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` as one word; undefined when the word is not a heredoc. */
export function parseHeredocWord(word: string): FoundHeredoc | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (!match || match[3] === '') return undefined;
  const rest = match[3] as string;
  let plain: string[];
  let raw: string[];
  try {
    plain = lexWord(rest, {}, { skipUnset: true }).words;
    raw = lexWord(rest, {}, { skipUnset: true, rawQuotes: true }).words;
  } catch {
    return undefined;
  }
  if (plain.length !== 1 || raw.length !== 1) return undefined;
  const quotes = (text: string): number => (text.match(/["']/g) ?? []).length;
  const found: FoundHeredoc = { name: plain[0] as string, expand: quotes(plain[0] as string) === quotes(raw[0] as string), stripTabs: match[2] === '-' };
  if (match[1]) found.fileDescriptor = Number(match[1]);
  return found;
}

/** Every heredoc opened on a logical line, in order. */
function heredocsInLine(line: string): FoundHeredoc[] {
  let words: string[];
  try {
    words = lexWord(line, {}, { rawQuotes: true, rawEscapes: true, skipUnset: true }).words;
  } catch {
    return [];
  }
  return words.map(parseHeredocWord).filter((found): found is FoundHeredoc => found !== undefined);
}

function suggestKeyword(written: string): string | undefined {
  let best: { keyword: string; distance: number } | undefined;
  for (const keyword of KEYWORDS) {
    const distance = editDistance(written, keyword);
    if (distance <= 2 && (!best || distance < best.distance)) best = { keyword, distance };
  }
  return best?.keyword;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}
