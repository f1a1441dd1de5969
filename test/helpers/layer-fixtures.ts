// Source trees for layer tests and measurements whose bytes are the same on every run and
// every machine: contents from a seeded stream cipher, modes and mtimes set explicitly (so
// neither the umask nor the clock leaks in).
import { createCipheriv } from 'node:crypto';
import { chmod, lutimes, mkdir, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A deterministic pseudo-random byte stream: AES-128-CTR of zeros under a key made from `seed`. */
export function seededBytes(seed: string, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.write(seed.padEnd(16, '.').slice(0, 16), 'latin1');
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Base64 text of seeded bytes, 76 characters a line: compressible about as much as source text. */
export function seededBase64(seed: string, length: number): Buffer {
  const text = seededBytes(seed, Math.ceil((length * 3) / 4) + 3).toString('base64');
  const lines = text.match(/.{1,76}/g) ?? [];
  return Buffer.from(lines.join('\n')).subarray(0, length);
}

/**
 * `count` small text files spread over `directories` directories (`d000/f00000.txt`, ...),
 * 0 to 150 bytes each, about 75 on average (20,000 files give ~1.5 MB). Written in batches
 * so a 200,000-file tree does not hold every write in flight.
 */
export async function writeManySmallFiles(root: string, count: number, directories: number): Promise<void> {
  const digits = String(directories - 1).length;
  for (let d = 0; d < directories; d++) {
    const directory = path.join(root, `d${String(d).padStart(digits, '0')}`);
    await mkdir(directory, { recursive: true });
    await chmod(directory, 0o755);
  }
  const lengths = seededBytes(`many-${count}`, count);
  const text = seededBase64(`text-${count}`, 151 * 64);
  const batch = 256;
  for (let start = 0; start < count; start += batch) {
    const writes: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const directory = `d${String(i % directories).padStart(digits, '0')}`;
      const length = lengths[i]! % 151;
      const offset = (i * 151) % (text.length - 151);
      const filePath = path.join(root, directory, `f${String(i).padStart(6, '0')}.txt`);
      writes.push(writeFile(filePath, text.subarray(offset, offset + length)).then(() => chmod(filePath, 0o644)));
    }
    await Promise.all(writes);
  }
}

/** Gives every entry under `root` (root included) a fixed mode-independent mtime, deepest first. */
export async function pinMtimes(root: string, firstSeconds: number): Promise<void> {
  let next = firstSeconds;
  const visit = async (directory: string): Promise<void> => {
    const children = (await readdir(directory, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const child of children) {
      const childPath = path.join(directory, child.name);
      if (child.isDirectory()) await visit(childPath);
      const when = next++;
      if (child.isSymbolicLink()) await lutimes(childPath, when, when);
      else await utimes(childPath, when, when);
    }
  };
  await visit(root);
  await utimes(root, next, next);
}

/**
 * A tree with every kind of entry a layer holds: nested directories with unusual modes,
 * setuid and sticky bits, an empty file, sizes around the 512-byte tar block, symlinks (one
 * with a non-ASCII target), a path longer than 100 bytes, a single name longer than 100
 * bytes, non-ASCII names, a few MiB of compressible text and some incompressible bytes.
 */
export async function writeMixedTree(root: string): Promise<void> {
  const file = async (relative: string, content: Buffer | string, mode: number): Promise<void> => {
    const full = path.join(root, relative);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, content);
    await chmod(full, mode);
  };
  await file('a.txt', 'hello\n', 0o644);
  await file('bin/run.sh', '#!/bin/sh\necho run\n', 0o755);
  await file('bin/setuid-tool', seededBytes('setuid', 300), 0o4755);
  await file('empty', '', 0o600);
  await file('blocks/exactly-512', seededBase64('512', 512), 0o644);
  await file('blocks/one-over-512', seededBase64('513', 513), 0o640);
  await file('nested/deeper/deepest/file.conf', 'key=value\n', 0o444);
  await file(`long/${'segment-of-a-path/'.repeat(7)}file.txt`, 'long path\n', 0o644);
  await file(`long/${'n'.repeat(120)}.txt`, 'long name\n', 0o644);
  await file('données/été.txt', 'non-ASCII\n', 0o644);
  await file('data/text.b64', seededBase64('text', 3 * 1024 * 1024 + 1000), 0o644);
  await file('data/random.bin', seededBytes('random', 2 * 1024 * 1024 + 7), 0o644);
  await symlink('bin/run.sh', path.join(root, 'link'));
  await symlink('ünïcode-target', path.join(root, 'link-nonascii'));
  await symlink(`../${'t'.repeat(110)}`, path.join(root, 'nested/link-long-target'));
  // Directories made on the way get 0755 whatever the umask; then the unusual ones.
  await chmodDirectories(root, 0o755);
  await chmod(path.join(root, 'nested/deeper'), 0o750);
  await chmod(path.join(root, 'nested/deeper/deepest'), 0o700);
  await mkdir(path.join(root, 'tmp'));
  await file('tmp/.keep', '', 0o644);
  await chmod(path.join(root, 'tmp'), 0o1777);
  await chmod(path.join(root, 'long'), 0o2755);
}

async function chmodDirectories(root: string, mode: number): Promise<void> {
  for (const child of await readdir(root, { withFileTypes: true })) {
    if (!child.isDirectory()) continue;
    await chmod(path.join(root, child.name), mode);
    await chmodDirectories(path.join(root, child.name), mode);
  }
}

/** `mebibytes` MiB of base64 text: one seeded MiB repeated, cheap to write at any size. */
export async function writeRepeatedText(filePath: string, mebibytes: number): Promise<void> {
  await mkdir(path.dirname(filePath), { recursive: true });
  const block = seededBase64(`repeated-${mebibytes}`, 1024 * 1024);
  await writeFile(filePath, Buffer.concat(Array.from({ length: mebibytes }, () => block)));
  await chmod(filePath, 0o644);
  await utimes(filePath, 1_600_000_000, 1_600_000_000);
}
