/**
 * A local build context as the cluster engines send it: a list of entries (parents first),
 * `.dockerignore` honoured with the direct engine's matcher (docker's rules), and a tar writer
 * for streaming it.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import tar from 'tar-stream';
import { createIgnoreMatcher, hasExceptions } from '../dockerfile/dockerignore.js';
import { readDockerignore } from '../dockerfile/read-dockerignore.js';
import { InputError } from '../errors.js';
import type { ContextEntry } from './render/context-delivery.js';

/** An entry and where its bytes come from: a local file, or content made in memory (a generated Dockerfile). */
export interface ContextFile extends ContextEntry {
  source?: string;
  content?: Buffer;
}

/**
 * Walks a context directory (parents before children, sorted) and skips what the ignore file
 * excludes: `<Dockerfile>.dockerignore` beside the Dockerfile when there is one, else the
 * context's `.dockerignore`, as BuildKit chooses. The context's `.dockerignore` always travels
 * (Kaniko applies it too); when the Dockerfile's own file was used, its text travels under that
 * name instead, so Kaniko filters by the same patterns.
 */
export async function collectContextDirectory(root: string, options: { dockerignore?: boolean; dockerfilePath?: string } = {}): Promise<ContextFile[]> {
  const ignoreFile = options.dockerignore === false ? undefined : await readDockerignore(options.dockerfilePath, root);
  const patterns = ignoreFile?.patterns ?? [];
  const dockerfileIgnore = ignoreFile?.besideDockerfile ? ignoreFile.text : undefined;
  const isIgnored = createIgnoreMatcher(patterns);
  const reincludes = hasExceptions(patterns);
  const stat = await lstat(root).catch(() => undefined);
  if (!stat?.isDirectory()) throw new InputError(`the build context ${root} is not a directory`, { hint: 'give the directory that holds the files the Dockerfile copies' });
  const entries: ContextFile[] = [];
  const walk = async (relativeDir: string) => {
    const names = (await readdir(path.join(root, relativeDir))).sort();
    for (const name of names) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name;
      // .dockerignore always travels, as with docker build (Kaniko reads it too).
      if (relative !== '.dockerignore' && isIgnored(relative)) {
        // A `!` pattern may re-include something below an ignored directory: only then look inside.
        const info = await lstat(path.join(root, relative));
        if (!(info.isDirectory() && reincludes)) continue;
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
  if (dockerfileIgnore) {
    const own = entries.findIndex((entry) => entry.path === '.dockerignore');
    const replacement: ContextFile = { path: '.dockerignore', type: 'file', mode: 0o644, size: dockerfileIgnore.length, content: dockerfileIgnore, mtimeSeconds: 0 };
    if (own >= 0) entries[own] = replacement;
    else entries.unshift(replacement);
  }
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
