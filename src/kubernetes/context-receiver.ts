/**
 * The pod side of context delivery when the pod's image has nothing but Node: imgbuild itself
 * (`imgbuild __context ...`, hidden) lays the context out in the workspace, from the ConfigMap
 * (`unpack`) or from a tar streamed over exec (`wait`, `receive`, `ready`), the same protocol as
 * the shell receiver of kubernetes/render/context-delivery.ts.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, createReadStream } from 'node:fs';
import { chmod, copyFile, lutimes, mkdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { InputError } from '../errors.js';
import { CONTEXT_MANIFEST_KEY, type ManifestEntry } from './render/context-delivery.js';

/** A context path as a path under `root`, refusing anything that would leave it. */
function inside(root: string, entryPath: string): string {
  const target = path.resolve(root, entryPath);
  if (target !== root && !target.startsWith(`${root}${path.sep}`)) throw new InputError(`context entry ${entryPath} points outside the workspace`, { hint: 'the context was not made by imgbuild' });
  return target;
}

/** Lays out the entries listed in the ConfigMap's manifest (parents first) under `to`. */
export async function unpackFromConfigMap(from: string, to: string): Promise<number> {
  const entries = JSON.parse(await readFile(path.join(from, CONTEXT_MANIFEST_KEY), 'utf8')) as ManifestEntry[];
  let files = 0;
  for (const entry of entries) {
    const target = inside(to, entry.path);
    if (entry.type === 'directory') {
      await mkdir(target, { recursive: true });
      await chmod(target, entry.mode);
    } else if (entry.type === 'symlink') {
      await mkdir(path.dirname(target), { recursive: true });
      await symlink(entry.linkTarget ?? '', target);
    } else {
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(path.join(from, entry.key!), target);
      await chmod(target, entry.mode);
      files += 1;
    }
  }
  // Children first, so writing a file does not change its directory's time afterwards.
  for (const entry of [...entries].reverse()) {
    if (entry.mtimeSeconds === undefined) continue;
    const target = inside(to, entry.path);
    if (entry.type === 'symlink') await lutimes(target, entry.mtimeSeconds, entry.mtimeSeconds);
    else await utimes(target, entry.mtimeSeconds, entry.mtimeSeconds);
  }
  return files;
}

/** Waits for the client's "context complete" marker, then removes it. */
export async function waitForMarker(marker: string, seconds: number, poll = 200): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await stat(marker).then(() => true, () => false)) {
      await rm(marker, { force: true });
      return;
    }
    if (Date.now() > deadline) throw new InputError(`no build context arrived within ${seconds}s`, { hint: 'the client that started the build went away; run it again' });
    await new Promise((resolve) => setTimeout(resolve, poll));
  }
}

export async function writeMarker(marker: string): Promise<void> {
  await writeFile(marker, '');
}

/** Reads exactly `size` bytes from `input` into `file` (the sender keeps its end open), returning their sha256. */
async function readExactly(input: Readable, size: number, file: string): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let received = 0;
  for await (const chunk of input) {
    const buffer = (chunk as Buffer).subarray(0, size - received);
    received += buffer.length;
    hash.update(buffer);
    if (!out.write(buffer)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    if (received >= size) break;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  if (received < size) throw new InputError(`the context stream ended after ${received} of ${size} bytes`, { hint: 'the connection was cut; run the build again' });
  return hash.digest('hex');
}

/** Extracts a tar (files, directories, symlinks, with their modes) under `to`. */
export async function extractTar(file: string, to: string): Promise<number> {
  const extract = tar.extract();
  let files = 0;
  const times: { target: string; mtime: Date; symlink: boolean }[] = [];
  const done = pipeline(createReadStream(file), extract);
  for await (const entry of extract) {
    const header = entry.header;
    const target = inside(to, header.name);
    if (header.type === 'directory') {
      await mkdir(target, { recursive: true });
      await chmod(target, header.mode ?? 0o755);
      entry.resume();
    } else if (header.type === 'symlink') {
      await symlink(header.linkname ?? '', target);
      entry.resume();
    } else if (header.type === 'file') {
      await pipeline(entry, createWriteStream(target, { mode: header.mode ?? 0o644 }));
      await chmod(target, header.mode ?? 0o644);
      files += 1;
    } else {
      entry.resume();
      continue;
    }
    if (header.mtime) times.push({ target, mtime: header.mtime, symlink: header.type === 'symlink' });
  }
  await done;
  for (const { target, mtime, symlink: isLink } of times.reverse()) await (isLink ? lutimes : utimes)(target, mtime, mtime);
  return files;
}

/**
 * `receive`: `size` bytes of tar from stdin; prints their sha256 (the client compares it with
 * what it sent), then unpacks them.
 */
export async function receiveTar(input: Readable, size: number, to: string, print: (line: string) => void): Promise<number> {
  const file = path.join(to, '.imgbuild-context.tar');
  try {
    const sha256 = await readExactly(input, size, file);
    print(`${sha256}  ${file}`);
    return await extractTar(file, to);
  } finally {
    await rm(file, { force: true });
  }
}
