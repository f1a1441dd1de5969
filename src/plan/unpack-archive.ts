/**
 * `ADD` of a local tar archive, as BuildKit unpacks it: recognised by content (plain tar, or
 * gzip, bzip2, xz, zstd holding a tar), its entries land below DEST with the archive's own
 * modes, owners and mtimes (neither --chown nor --chmod touches them), `.` is skipped so DEST
 * keeps what it had or was made with, and the result merges with what DEST already holds.
 * Contents are spooled to files in a temporary directory that the caller removes.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import path from 'node:path';
import posixPath from 'node:path/posix';
import { PassThrough, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import type { Extract } from 'tar-stream';
import { loadTarStream, tarExtract } from '../tar-extract.js';
import { ARCHIVE_SNIFF_BYTES, detectArchive, isTarHeader } from '../dockerfile/archive.js';
import type { ArchiveKind } from '../dockerfile/types.js';
import { InputError } from '../errors.js';
import type { PlannedEntry } from '../image/tar-entries.js';
import { TarSpool } from './tar-spool.js';

/** The program that decompresses a kind Node cannot (Node 20 has no bzip2, xz or zstd). */
const DECOMPRESSORS: Partial<Record<ArchiveKind, { program: string; packageName: string }>> = {
  bzip2: { program: 'bzip2', packageName: 'bzip2' },
  xz: { program: 'xz', packageName: 'xz-utils' },
  zstd: { program: 'zstd', packageName: 'zstd' },
};

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(ARCHIVE_SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The decompressed bytes of `file` (a stream that fails with a clear error when the program is missing). */
function decompressed(file: string, kind: ArchiveKind, where: string): Readable {
  const input = createReadStream(file);
  if (kind === 'tar') return input;
  if (kind === 'gzip') return input.pipe(zlib.createGunzip()).on('error', () => {});
  const zstdDecompress = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress;
  if (kind === 'zstd' && zstdDecompress) return input.pipe(zstdDecompress()) as unknown as Readable;
  const tool = DECOMPRESSORS[kind]!;
  const output = new PassThrough();
  const child = spawn(tool.program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('error', (error: NodeJS.ErrnoException) => {
    output.destroy(
      error.code === 'ENOENT'
        ? new InputError(`${where}: ${path.basename(file)} is ${kind}-compressed, and unpacking it needs the '${tool.program}' program, which is not installed`, {
            hint: `install it (Debian: apt-get install ${tool.packageName}), or unpack the archive into the build context and COPY the directory`,
          })
        : error,
    );
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null && !output.destroyed) output.destroy(new InputError(`${where}: ${tool.program} could not decompress ${path.basename(file)}: ${stderr.trim() || `exit ${code}`}`));
  });
  input.on('error', (error) => output.destroy(error));
  child.stdin.on('error', () => {}); // the reader may stop early (only the first block is wanted)
  input.pipe(child.stdin);
  child.stdout.pipe(output);
  output.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return output;
}

/** The first 512 decompressed bytes, or fewer when the stream is shorter or cannot be decompressed. */
async function firstBlock(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= 512) break;
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    return Buffer.alloc(0); // not really compressed data: a plain file that starts with a magic number
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

/**
 * The kind of tar archive `file` is, or undefined when ADD copies it as a file: a compressed
 * stream counts only when what it holds starts with a tar header, as docker decides.
 */
export async function archiveKind(file: string, where: string): Promise<ArchiveKind | undefined> {
  const kind = detectArchive(await readHead(file));
  if (kind === undefined || kind === 'tar') return kind;
  return isTarHeader(await firstBlock(decompressed(file, kind, where))) ? kind : undefined;
}

/** An entry name inside DEST: `./a/b/` → `a/b`; `.` → ''; one that climbs out of DEST is refused. */
function entryPath(name: string, archive: string, where: string): string {
  const normal = posixPath.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
  if (posixPath.normalize(name.replace(/\/+$/, '')).startsWith('../') || name === '..') {
    throw new InputError(`${where}: ${archive} holds '${name}', which would be written outside the destination`, { hint: 'rebuild the archive with paths relative to its root' });
  }
  return normal;
}

/**
 * Unpacks `file` (an archive of `kind`) into planned entries below `destination` (a tar path:
 * relative to the image root, no leading `/`), spooling contents into `spoolDir`.
 */
export interface UnpackedArchive {
  entries: PlannedEntry[];
  /** Holds the spooled contents; the caller removes it. */
  directory: string;
}

export async function unpackArchive(file: string, kind: ArchiveKind, destination: string, spoolDir: string, where: string): Promise<UnpackedArchive> {
  const archive = path.basename(file);
  await loadTarStream();
  const directory = await mkdtemp(path.join(spoolDir, 'imgbuild-unpack-'));
  const extract = tarExtract();
  const source = decompressed(file, kind, where);
  source.on('error', (error) => extract.destroy(error));
  source.pipe(extract);
  const byPath = new Map<string, PlannedEntry>();
  const spool = new TarSpool(directory, `${archive}:`);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const relative = entryPath(header.name, archive, where);
      if (relative === '') {
        entry.resume(); // `.`: DEST keeps its own metadata, as docker's untar skips it
        continue;
      }
      if (posixPath.basename(relative).startsWith('.wh.')) {
        throw new InputError(`${where}: ${archive} holds '${header.name}', a name image layers reserve for deletions`, { hint: 'rename or remove that entry from the archive' });
      }
      const link = header.type === 'link' ? entryPath(header.linkname ?? '', archive, where) : undefined;
      const planned = await spool.plan(entry, header, relative, destination === '' ? relative : `${destination}/${relative}`, link);
      if (!planned && header.type === 'link') {
        throw new InputError(`${where}: ${archive} holds a hard link '${header.name}' to '${header.linkname}', which comes before it nowhere in the archive`, { hint: 'rebuild the archive' });
      }
      if (!planned) {
        throw new InputError(`${where}: ${archive} holds '${header.name}', a ${header.type}, which an image layer built without a container cannot hold`, {
          hint: 'remove device, FIFO and socket entries from the archive, or build with --engine kaniko',
        });
      }
      byPath.delete(planned.path);
      byPath.set(planned.path, planned);
    }
  } catch (error) {
    source.destroy();
    extract.destroy();
    await rm(directory, { recursive: true, force: true });
    if (error instanceof InputError) throw error;
    throw new InputError(`${where}: cannot unpack ${archive}: ${(error as Error).message}`, { hint: 'check that the archive is complete (tar -t lists it)', cause: error });
  }
  return { entries: [...byPath.values()], directory };
}
