/**
 * A local build context as the cluster engines send it: a list of entries (parents first),
 * `.dockerignore` honoured as docker does, and a tar writer for streaming it.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import tar from 'tar-stream';
import { InputError } from '../errors.js';
import type { ContextEntry } from './render/context-delivery.js';

/** An entry and where its bytes come from: a local file, or content made in memory (a generated Dockerfile). */
export interface ContextFile extends ContextEntry {
  source?: string;
  content?: Buffer;
}

/** One `.dockerignore` rule: a path pattern, negated by a leading `!`. */
interface IgnoreRule {
  pattern: RegExp;
  negated: boolean;
}

function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let index = 0; index < glob.length; index += 1) {
    const char = glob[index]!;
    if (char === '*') {
      if (glob[index + 1] === '*') {
        // `**` spans directories; `**/` also matches nothing.
        index += 1;
        if (glob[index + 1] === '/') {
          index += 1;
          out += '(?:.*/)?';
        } else out += '.*';
      } else out += '[^/]*';
    } else if (char === '?') out += '[^/]';
    else if (char === '[') {
      const end = glob.indexOf(']', index + 1);
      if (end === -1) out += '\\[';
      else {
        out += `[${glob.slice(index + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        index = end;
      }
    } else if (char === '\\' && index + 1 < glob.length) {
      index += 1;
      out += glob[index]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else out += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Parses `.dockerignore` text: comments and blank lines skipped, patterns cleaned as docker does. */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (negated) line = line.slice(1).trim();
    line = path.posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (!line || line === '.') continue;
    rules.push({ pattern: globToRegExp(line), negated });
  }
  return rules;
}

/** Docker's rule: the last pattern that matches the path, or one of its parents, decides. */
export function isIgnored(relativePath: string, rules: IgnoreRule[]): boolean {
  const parts = relativePath.split('/');
  const prefixes = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (prefixes.some((prefix) => rule.pattern.test(prefix))) ignored = !rule.negated;
  }
  return ignored;
}

/** Walks a context directory (parents before children, sorted) and skips what `.dockerignore` excludes. */
export async function collectContextDirectory(root: string, options: { dockerignore?: boolean } = {}): Promise<ContextFile[]> {
  let rules: IgnoreRule[] = [];
  try {
    if (options.dockerignore !== false) rules = parseDockerignore(await readFile(path.join(root, '.dockerignore'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const stat = await lstat(root).catch(() => undefined);
  if (!stat?.isDirectory()) throw new InputError(`the build context ${root} is not a directory`, { hint: 'give the directory that holds the files the Dockerfile copies' });
  const entries: ContextFile[] = [];
  const walk = async (relativeDir: string) => {
    const names = (await readdir(path.join(root, relativeDir))).sort();
    for (const name of names) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name;
      // .dockerignore always travels, as with docker build (Kaniko reads it too).
      if (relative !== '.dockerignore' && isIgnored(relative, rules)) {
        // A negation may re-include something below an ignored directory: only then look inside.
        const info = await lstat(path.join(root, relative));
        if (!(info.isDirectory() && rules.some((rule) => rule.negated))) continue;
        await walk(relative);
        continue;
      }
      const absolute = path.join(root, relative);
      const info = await lstat(absolute);
      const mode = info.mode & 0o7777;
      const mtimeSeconds = Math.floor(info.mtimeMs / 1000);
      if (info.isDirectory()) {
        entries.push({ path: relative, type: 'directory', mode, size: 0, mtimeSeconds });
        await walk(relative);
      } else if (info.isSymbolicLink()) entries.push({ path: relative, type: 'symlink', mode, size: 0, linkTarget: await readlink(absolute), mtimeSeconds });
      else if (info.isFile()) entries.push({ path: relative, type: 'file', mode, size: info.size, source: absolute, mtimeSeconds });
    }
  };
  await walk('');
  // Directories kept only to reach a re-included file must exist before it.
  return withParents(entries);
}

/** Adds the parent directories a list lacks (mode 0755), keeping parents before children. */
export function withParents(entries: ContextFile[]): ContextFile[] {
  const present = new Set(entries.map((entry) => entry.path));
  const out: ContextFile[] = [];
  for (const entry of entries) {
    const parts = entry.path.split('/');
    for (let index = 1; index < parts.length; index += 1) {
      const parent = parts.slice(0, index).join('/');
      if (!present.has(parent)) {
        present.add(parent);
        out.push({ path: parent, type: 'directory', mode: 0o755, size: 0 });
      }
    }
    out.push(entry);
  }
  return out;
}

export async function readContextContents(entries: ContextFile[]): Promise<Map<string, Buffer>> {
  const contents = new Map<string, Buffer>();
  for (const entry of entries) {
    if (entry.type !== 'file') continue;
    contents.set(entry.path, entry.content ?? (await readFile(entry.source!)));
  }
  return contents;
}

/** The context as a tar stream (numeric owner 0; mtimes 0, or the entries' own with `keepMtimes`), for the exec delivery. */
export function contextTar(entries: ContextFile[], options: { keepMtimes?: boolean } = {}): Readable {
  const pack = tar.pack();
  (async () => {
    for (const entry of entries) {
      const mtime = new Date(options.keepMtimes ? (entry.mtimeSeconds ?? 0) * 1000 : 0);
      const header = { name: entry.path, mode: entry.mode, uid: 0, gid: 0, mtime };
      if (entry.type === 'directory') pack.entry({ ...header, type: 'directory' });
      else if (entry.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: entry.linkTarget });
      else if (entry.content) pack.entry({ ...header, size: entry.content.length }, entry.content);
      else {
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...header, size: entry.size }, (error) => (error ? reject(error) : resolve()));
          createReadStream(entry.source!).on('error', reject).pipe(sink);
        });
      }
    }
    pack.finalize();
  })().catch((error) => pack.destroy(error));
  return pack as unknown as Readable;
}
