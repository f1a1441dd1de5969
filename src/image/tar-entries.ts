// Plans the entries of a layer tar from `--add SRC:DEST` specs: walks the local
// sources, maps them to paths in the image, and orders them deterministically.
// Nothing here writes a tar; layer.ts turns the plan into bytes.
import { stat } from 'node:fs/promises';
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import path from 'node:path';
import { InputError, UsageError } from '../errors.js';

/** One `--add SRC:DEST`, parsed. */
export interface AddSpec {
  /** The local path as given (relative paths are resolved against the working directory). */
  source: string;
  /** Absolute, normalised path in the image; ends with `/` when it names a directory to copy into. */
  destination: string;
  /** The spec exactly as the user wrote it, for the image history. */
  text: string;
}

interface EntryBase {
  /** Path inside the tar: relative to the image root, no leading `/`, no trailing `/`. */
  path: string;
  /** Where the entry came from on the local disk, for error messages. */
  sourcePath: string;
  /** Permission bits (0o7777) as found on disk. */
  mode: number;
  /** Whole seconds since the epoch, from the source's mtime. */
  mtimeSeconds: number;
  /** An owner of its own (an entry unpacked from an archive): neither the layer's chown nor chmod applies. */
  owner?: { uid: number; gid: number };
}

export type PlannedEntry =
  | (EntryBase & { kind: 'file'; size: number })
  | (EntryBase & { kind: 'directory' })
  | (EntryBase & { kind: 'symlink'; target: string });

const WHITEOUT_PREFIX = '.wh.';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits `SRC:DEST`. The separator is the last `:` followed by `/`, because DEST must be
 * absolute while SRC may itself contain `:` (`build:1/app.conf:/etc/app.conf`).
 */
export function parseAddSpec(text: string): AddSpec {
  const usage = 'write --add SRC:DEST with DEST an absolute path in the image, e.g. --add ./hello.txt:/opt/app/hello.txt';
  let separator = text.lastIndexOf(':/');
  if (separator === -1) separator = text.lastIndexOf(':');
  if (separator === -1) {
    throw new UsageError(`--add '${text}' has no destination`, usage);
  }
  const source = text.slice(0, separator);
  const rawDestination = text.slice(separator + 1);
  if (source === '') {
    throw new UsageError(`--add '${text}' has no source path before the ':'`, usage);
  }
  if (!rawDestination.startsWith('/')) {
    throw new UsageError(
      `--add '${text}': destination '${rawDestination}' is not an absolute path`,
      `start DEST with '/', e.g. --add ${source}:/${rawDestination.replace(/^\.?\/*/, '')}`,
    );
  }
  const normalised = normaliseImagePath(rawDestination, text);
  // A trailing `/` (or `/.`, `/..`) means "into this directory".
  const namesDirectory = /(\/|\/\.|\/\.\.)$/.test(rawDestination);
  const destination = namesDirectory && normalised !== '/' ? `${normalised}/` : normalised;
  return { source, destination, text };
}

/** Resolves `.` and `..` in an absolute image path; refuses any path that climbs above `/`. */
function normaliseImagePath(rawDestination: string, specText: string): string {
  const parts: string[] = [];
  for (const segment of rawDestination.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (parts.length === 0) {
        throw new UsageError(
          `--add '${specText}': destination '${rawDestination}' climbs above the image root`,
          'remove the leading ".." segments; DEST is a path inside the image, e.g. /etc/app.conf',
        );
      }
      parts.pop();
      continue;
    }
    parts.push(segment);
  }
  for (const segment of parts) refuseWhiteoutName(segment, `--add '${specText}'`);
  return `/${parts.join('/')}`;
}

function refuseWhiteoutName(segment: string, where: string): void {
  if (segment.startsWith(WHITEOUT_PREFIX)) {
    throw new UsageError(
      `${where}: the name '${segment}' starts with '${WHITEOUT_PREFIX}', which image layers reserve for deletions`,
      `rename it; every runtime would read it as "delete ${segment.slice(WHITEOUT_PREFIX.length)}" instead of adding a file`,
    );
  }
}

function toMtimeSeconds(stats: Stats): number {
  return Math.max(0, Math.floor(stats.mtimeMs / 1000));
}

function describeFsError(error: unknown, sourcePath: string, spec: AddSpec): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new InputError(`--add '${spec.text}': ${sourcePath} does not exist`, {
      hint: 'check the path (relative paths start from the current directory) and that the file is there',
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new InputError(`--add '${spec.text}': ${sourcePath} is not readable`, {
      hint: 'give the user running imgbuild read permission on it, or leave it out',
      cause: error,
    });
  }
  return new InputError(`--add '${spec.text}': cannot read ${sourcePath}: ${(error as Error).message}`, { cause: error });
}

/** `dest/child` in tar form (relative, no leading slash). */
function joinTarPath(parent: string, child: string): string {
  return parent === '' ? child : `${parent}/${child}`;
}

/**
 * Walks one spec's source and returns its entries (unsorted). The top-level SRC is followed
 * if it is a symlink (as Dockerfile COPY does); inside a directory, symlinks are kept as
 * symlinks. Sockets, FIFOs and devices are refused: they cannot be meaningfully copied.
 */
/**
 * The entries one source adds. An empty directory is an error for `add` (nothing would be
 * added); COPY passes `allowEmpty`, as BuildKit copies nothing then and only makes DEST.
 */
export async function collectEntries(spec: AddSpec, options: { allowEmpty?: boolean } = {}): Promise<PlannedEntry[]> {
  const sourcePath = path.resolve(spec.source);
  let top: Stats;
  try {
    top = await stat(sourcePath);
  } catch (error) {
    throw describeFsError(error, spec.source, spec);
  }
  const destinationTar = spec.destination.replace(/^\/+|\/+$/g, '');

  if (top.isDirectory()) {
    const entries: PlannedEntry[] = [];
    await walkDirectory(sourcePath, destinationTar, spec, entries);
    if (entries.length === 0 && !options.allowEmpty) {
      throw new InputError(`--add '${spec.text}': directory ${spec.source} is empty, so there is nothing to add`, {
        hint: 'imgbuild copies the contents of a directory, not the directory itself; put a file in it (e.g. .keep) to create the directory in the image',
      });
    }
    return entries;
  }
  if (!top.isFile()) {
    throw unsupportedType(spec.source, top, spec);
  }
  const baseName = path.basename(sourcePath);
  refuseWhiteoutName(baseName, `--add '${spec.text}'`);
  const tarPath = spec.destination.endsWith('/') ? joinTarPath(destinationTar, baseName) : destinationTar;
  if (tarPath === '') {
    throw new UsageError(`--add '${spec.text}': a file cannot replace the image root`, 'give DEST a file name, or end it with / to copy into a directory');
  }
  return [fileEntry(tarPath, spec.source, top)];
}

function fileEntry(tarPath: string, sourcePath: string, stats: Stats): PlannedEntry {
  return {
    kind: 'file',
    path: tarPath,
    sourcePath,
    mode: stats.mode & 0o7777,
    mtimeSeconds: toMtimeSeconds(stats),
    size: stats.size,
  };
}

function unsupportedType(sourcePath: string, stats: Stats, spec: AddSpec): InputError {
  const what = stats.isSocket()
    ? 'a socket'
    : stats.isFIFO()
      ? 'a named pipe (FIFO)'
      : stats.isCharacterDevice() || stats.isBlockDevice()
        ? 'a device file'
        : 'not a regular file, directory or symlink';
  return new InputError(`--add '${spec.text}': ${sourcePath} is ${what}, which cannot be added to an image`, {
    hint: 'remove it from the source directory, or add the files next to it with separate --add flags',
  });
}

/**
 * The names in a directory. Node decodes them as UTF-8 and turns invalid bytes into U+FFFD;
 * only a directory where that character shows up is read again as bytes, to refuse names that
 * are not UTF-8 (image layers store names as UTF-8) and keep a real U+FFFD.
 */
function readNames(directory: string, spec: AddSpec): string[] {
  let names: string[];
  try {
    // Synchronous like the lstat calls of the walk: on a busy machine a thread-pool round
    // trip per directory costs more wall time than the call.
    names = readdirSync(directory);
  } catch (error) {
    throw describeFsError(error, directory, spec);
  }
  if (!names.some((name) => name.includes('\ufffd'))) return names;
  return readdirSync(directory, { encoding: 'buffer' }).map((rawName) => {
    try {
      return strictUtf8.decode(rawName);
    } catch {
      throw new InputError(`--add '${spec.text}': a file name in ${directory} is not valid UTF-8 (${JSON.stringify(rawName.toString('latin1'))})`, {
        hint: 'rename it to UTF-8 (e.g. with convmv); image layers store names as UTF-8',
      });
    }
  });
}

async function walkDirectory(directory: string, tarDirectory: string, spec: AddSpec, out: PlannedEntry[]): Promise<void> {
  const names = readNames(directory, spec);
  // The event loop gets a turn after each directory.
  await nextTurn();
  for (const name of names) {
    // `directory` is absolute and normalised, and a name holds no '/': no path.join needed.
    const childPath = directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
    if (name.startsWith(WHITEOUT_PREFIX)) refuseWhiteoutName(name, `--add '${spec.text}': ${childPath}`);
    const childTar = joinTarPath(tarDirectory, name);
    let childStats: Stats;
    try {
      // Synchronous: one thread-pool round trip per file would cost more than the call itself.
      childStats = lstatSync(childPath);
    } catch (error) {
      throw describeFsError(error, childPath, spec);
    }
    if (childStats.isDirectory()) {
      out.push({ kind: 'directory', path: childTar, sourcePath: childPath, mode: childStats.mode & 0o7777, mtimeSeconds: toMtimeSeconds(childStats) });
      await walkDirectory(childPath, childTar, spec, out);
    } else if (childStats.isFile()) {
      // Hard links are stored as independent regular files: simpler, and always correct.
      out.push(fileEntry(childTar, childPath, childStats));
    } else if (childStats.isSymbolicLink()) {
      let target: string;
      try {
        target = readlinkSync(childPath);
      } catch (error) {
        throw describeFsError(error, childPath, spec);
      }
      out.push({ kind: 'symlink', path: childTar, sourcePath: childPath, mode: 0o777, mtimeSeconds: toMtimeSeconds(childStats), target });
    } else {
      throw unsupportedType(childPath, childStats, spec);
    }
  }
}

/** Byte order of the UTF-8 names: what `LC_ALL=C sort` gives, independent of locale. */
export function compareTarPaths(a: string, b: string): number {
  // UTF-8 byte order is code point order, and so is UTF-16 code unit order unless both
  // strings have a unit at or above 0xD800 (surrogates, U+E000-U+FFFF) where they differ.
  const length = Math.min(a.length, b.length);
  let i = 0;
  while (i < length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === length) return a.length - b.length;
  const unitA = a.charCodeAt(i);
  const unitB = b.charCodeAt(i);
  if (unitA < 0xd800 || unitB < 0xd800) return unitA - unitB;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Merges the entries of all specs: when two specs produce the same path the later one
 * wins (like consecutive COPY instructions); a path under a file or symlink that another
 * spec also writes is refused, since no extractor could honour both. Sorted by byte order,
 * which puts every directory before its contents.
 */
export function mergeEntries(perSpec: readonly (readonly PlannedEntry[])[]): PlannedEntry[] {
  const nonEmpty = perSpec.filter((entries) => entries.length > 0);
  // One walk gives unique paths under one root, so there is nothing to merge or refuse.
  if (nonEmpty.length <= 1) return sortByTarPath([...(nonEmpty[0] ?? [])]);
  const byPath = new Map<string, PlannedEntry>();
  for (const entries of nonEmpty) {
    for (const entry of entries) {
      byPath.delete(entry.path); // re-insert so the winner's position does not matter; order comes from the sort
      byPath.set(entry.path, entry);
    }
  }
  // Ancestors already found to be directories or absent: siblings share them, so each is looked up once.
  const clearAncestors = new Set<string>();
  for (const entry of byPath.values()) {
    let parent = path.posix.dirname(entry.path);
    while (parent !== '.' && parent !== '/' && !clearAncestors.has(parent)) {
      const ancestor = byPath.get(parent);
      if (ancestor !== undefined && ancestor.kind !== 'directory') {
        throw new UsageError(
          `/${entry.path} (from ${entry.sourcePath}) would be written under /${parent}, which ${ancestor.sourcePath} adds as a ${ancestor.kind}`,
          'change one of the --add destinations so a file and a directory do not share a path',
        );
      }
      clearAncestors.add(parent);
      parent = path.posix.dirname(parent);
    }
  }
  return sortByTarPath([...byPath.values()]);
}

/** Units where UTF-16 order and UTF-8 byte order can disagree (see compareTarPaths). */
const SURROGATE_OR_HIGH_BMP = /[\ud800-\uffff]/;

function sortByTarPath(entries: PlannedEntry[]): PlannedEntry[] {
  // Without such units, JavaScript's own string order is the byte order, and much faster.
  if (!entries.some((entry) => SURROGATE_OR_HIGH_BMP.test(entry.path))) {
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
  return entries.sort((a, b) => compareTarPaths(a.path, b.path));
}
