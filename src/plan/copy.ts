import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdtemp, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import posixPath from 'node:path/posix';
import { applyChmod } from '../dockerfile/chmod.js';
import { resolveChown } from '../dockerfile/chown.js';
import { createCopyExcludeMatcher, createIgnoreMatcher } from '../dockerfile/dockerignore.js';
import { BadPatternError, filepathMatch, hasWildcards } from '../dockerfile/filepath-match.js';
import { ImgbuildError, InputError, UsageError } from '../errors.js';
import { type BuiltLayer, type LayerOptions, type PlannedEntry, writeLayer } from '../image/layer.js';
import { type AddSpec, collectEntries, mergeEntries } from '../image/tar-entries.js';
import type { BaseFiles, FileKind } from './base-files.js';
import type { CopyStep, OwnerSpec, Plan } from './steps.js';
import { archiveKind, unpackArchive, type UnpackedArchive } from './unpack-archive.js';
import { Transport, type TransportResponse } from '../registry/transport.js';
import { baseCertificates } from '../registry/trust.js';
import { extractTree, type ExtractedTree, type SourceImage } from './image-files.js';
import { DockerfileError } from '../dockerfile/errors.js';
import type { ArchiveKind } from '../dockerfile/types.js';

/**
 * COPY/ADD with the image's meaning, as BuildKit does them: sources clamped to the context,
 * wildcards, `.dockerignore`, DEST relative to WORKDIR, a DEST the image has as a directory
 * meaning "into it", `--chown` names from the image's /etc/passwd and /etc/group.
 */

/** A source of a step: a local path to walk, or an archive already unpacked into entries. */
export type CopySource = AddSpec & {
  unpacked?: PlannedEntry[];
  /** The unpacked entries keep their modes (an archive); false lets --chmod apply (a --from image). */
  keepMode?: boolean;
  /** The local directory (or file) --exclude patterns are relative to: the source itself, or the --parents pivot. */
  excludeRoot?: string;
};

export interface ResolvedCopyStep {
  specs: CopySource[];
  /** Destination directories the image lacks: created 0755 with the step's owner, as BuildKit does. */
  directories: string[];
  owner: { uid: number; gid: number } | undefined;
  /** What the step puts where, so later steps see it. */
  writes: Array<{ path: string; kind: FileKind }>;
  /** Identifies the layer's content: the same key, the same layer. */
  key: string;
}

interface ImageState {
  workdir: string;
  files: BaseFiles | undefined;
  /** Where ADD puts what it downloads (the build's temporary directory). */
  downloadDir?: string;
  /** Told what a download could not use (an unreadable NODE_EXTRA_CA_CERTS). */
  warn?: (message: string) => void;
  /** Downloads by URL, so each is fetched once for every platform; the caller removes them. */
  downloads?: Map<string, Promise<string>>;
  /** Local archives ADD unpacked, by archive and destination; the caller removes their directories. */
  unpacked?: Map<string, Promise<UnpackedArchive>>;
  /** The image a `--from` names, for this image's platform. */
  sourceImage?: (reference: string, stage?: Plan) => Promise<SourceImage>;
  /** Subtrees read from `--from` images, by image and path; the caller removes their directories. */
  trees?: Map<string, Promise<ExtractedTree>>;
}

/** Makes a local file once for every platform (a download, a here-document), by key. */
function once(state: ImageState, key: string, make: () => Promise<string>): Promise<string> {
  let made = state.downloads?.get(key);
  if (!made) {
    made = make();
    state.downloads?.set(key, made);
  }
  return made;
}

/** A here-document as a file named after its delimiter, mode 0644, as BuildKit writes it. */
async function writeHeredoc(name: string, content: string, directory = tmpdir()): Promise<string> {
  const file = path.join(await mkdtemp(path.join(directory, 'imgbuild-heredoc-')), name);
  await writeFile(file, content, { mode: 0o644 });
  await chmod(file, 0o644);
  return file;
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * Downloads an ADD source as docker does: the file is named after the URL's last path segment
 * (`__unnamed__` when there is none), gets mode 0600 and is never unpacked; with --checksum
 * its sha256 must match. Returns the local path (absolute, so it is never read from the context).
 */
async function download(step: CopyStep, url: string, downloadDir = tmpdir(), warn?: (message: string) => void): Promise<string> {
  const name = posixPath.basename(new URL(url).pathname) || '__unnamed__';
  const directory = await mkdtemp(path.join(downloadDir, 'imgbuild-add-'));
  const file = path.join(directory, name === '/' || name === '.' ? '__unnamed__' : name);
  // The registry client's HTTP, trusting what it trusts (NODE_EXTRA_CA_CERTS included).
  const transport = new Transport({ certificates: () => baseCertificates(process.env, warn), insecure: false });
  try {
    let response: TransportResponse;
    try {
      response = await transport.request({ url: new URL(url), method: 'GET', headers: {} });
    } catch (error) {
      throw new InputError(`${step.where}: cannot download ${url}: ${(error as Error).message}`, { hint: 'check the URL and that this machine can reach it', cause: error });
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      await response.body.dump();
      throw new InputError(`${step.where}: downloading ${url} answered HTTP ${response.statusCode}`, { hint: 'check the URL' });
    }
    const hash = createHash('sha256');
    const out = createWriteStream(file, { mode: 0o600 });
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    await chmod(file, 0o600);
    const digest = `sha256:${hash.digest('hex')}`;
    if (step.checksum && step.checksum !== digest) {
      throw new InputError(`${step.where}: ${url} has checksum ${digest}, not the ${step.checksum} --checksum asks for`, { hint: 'the file changed or the checksum is wrong; fix --checksum' });
    }
    const modified = response.headers['last-modified'];
    if (typeof modified === 'string' && !Number.isNaN(Date.parse(modified))) await utimes(file, new Date(modified), new Date(modified));
    return file;
  } finally {
    transport.close();
  }
}

/** A source path inside the context: `..` cannot climb out of it, as BuildKit clamps it. */
export function clampToContext(source: string): string {
  return posixPath.normalize(`/${source}`).replace(/^\/+/, '') || '.';
}

/** Context-relative paths (files and directories) under `directory` that the ignore rules keep. */
async function walkContext(context: string, directory: string, ignored: (relative: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  const names = await readdir(path.join(context, directory), { withFileTypes: true }).catch(() => []);
  for (const entry of names) {
    const relative = directory === '.' ? entry.name : `${directory}/${entry.name}`;
    if (!ignored(relative)) found.push(relative);
    if (entry.isDirectory()) found.push(...(await walkContext(context, relative, ignored)));
  }
  return found;
}

/** The context paths a COPY source names: itself, or every match of a wildcard (none is not an error). */
async function expandSource(step: CopyStep, source: string, ignored: (relative: string) => boolean): Promise<string[]> {
  const relative = clampToContext(source);
  if (!hasWildcards(relative)) {
    const exists = await stat(path.join(step.context!, relative)).then(() => true, () => false);
    if (!exists || (relative !== '.' && ignored(relative))) {
      throw new InputError(`${step.where}: ${source} is not in the build context${exists ? ' (.dockerignore excludes it)' : ''}`, {
        hint: `check the path (relative to the context ${step.context}) and the .dockerignore`,
      });
    }
    return [relative];
  }
  // Walk only below the part of the pattern without wildcards.
  const parts = relative.split('/');
  const fixed = parts.findIndex((part) => hasWildcards(part));
  const start = parts.slice(0, fixed).join('/') || '.';
  try {
    return (await walkContext(step.context!, start, ignored)).filter((candidate) => filepathMatch(relative, candidate));
  } catch (error) {
    if (error instanceof BadPatternError) throw new InputError(`${step.where}: ${error.message}`, { hint: 'fix the wildcard pattern (Go filepath.Match syntax)' });
    throw error;
  }
}

/** Unpacks a local archive once for every platform (its spool directory is removed with the downloads). */
function unpackOnce(state: ImageState, local: string, kind: ArchiveKind, destination: string, where: string): Promise<UnpackedArchive> {
  const key = `unpack ${local} ${destination}`;
  let unpacked = state.unpacked?.get(key);
  if (!unpacked) {
    unpacked = unpackArchive(local, kind, destination.replace(/^\/+/, ''), state.downloadDir ?? tmpdir(), where);
    state.unpacked?.set(key, unpacked);
  }
  return unpacked;
}

export async function resolveCopyStep(step: CopyStep, state: ImageState): Promise<ResolvedCopyStep> {
  const specs: CopySource[] = [];
  const directories: string[] = [];
  const writes: ResolvedCopyStep['writes'] = [];
  const ignored = createIgnoreMatcher(step.ignore ?? []);
  for (const item of step.items) {
    if (step.destinations === 'as-written') {
      for (const source of item.sources) specs.push({ source, destination: item.destination, text: item.text });
      continue;
    }
    const written = posixPath.resolve(state.workdir, item.destination);
    // Entries are written where a container sees DEST: below a symlinked parent, at its target.
    let destination = state.files ? await resolveParents(state.files, written) : written;
    const namesDirectory = /(^|\/)\.?$/.test(item.destination);
    const landingDirectories = new Set<string>();
    if (item.sources.length > 1 && !namesDirectory) {
      throw new UsageError(`${step.where}: with more than one source, the destination must be a directory and end with a /`, `write the destination as ${item.destination}/`);
    }
    if (step.fromImage !== undefined) await resolveFromImage(step, item, state, destination, namesDirectory, specs, writes, landingDirectories);
    const matches: string[] = [];
    /** With --parents: the part of each match kept below DEST (after a `/./` pivot, else all of it). */
    const kept = new Map<string, string>();
    /** With --parents: the pivot each match was found under (BuildKit copies from it, so --exclude patterns are relative to it). */
    const pivots = new Map<string, string>();
    for (const source of step.fromImage === undefined ? item.sources : []) {
      const heredoc = item.heredocs?.[source];
      if (heredoc !== undefined) {
        matches.push(await once(state, `heredoc ${step.where} ${source}`, () => writeHeredoc(source, heredoc, state.downloadDir)));
      } else if (step.unpackArchives && isUrl(source)) {
        matches.push(await once(state, `${source} ${step.checksum ?? ''}`, () => download(step, source, state.downloadDir, state.warn)));
      } else {
        const found = await expandSource(step, source, ignored);
        matches.push(...found);
        if (step.parents) {
          const pivot = source.indexOf('/./');
          const base = pivot === -1 ? '.' : clampToContext(source.slice(0, pivot));
          for (const match of found) {
            kept.set(match, base === '.' ? match : posixPath.relative(base, match));
            pivots.set(match, base);
          }
        }
      }
    }
    const existing = state.files && (await state.files.lookup(destination));
    const intoDirectory = step.parents || namesDirectory || matches.length > 1 || (existing?.found === true && existing.kind === 'directory');
    if (existing?.found && existing.kind === 'directory') destination = existing.path;
    for (const match of matches) {
      let relative = match;
      const keep = kept.get(match);
      if (keep !== undefined) {
        // --parents: the match's own directories are recreated below DEST.
        const local = path.join(step.context!, match);
        const isDirectory = (await stat(local)).isDirectory();
        const target = posixPath.join(destination, keep);
        const excludeRoot = path.join(step.context!, pivots.get(match) ?? '.');
        specs.push({ source: local, destination: isDirectory ? `${target}/` : target, text: `${step.where} ${match}`, excludeRoot });
        writes.push({ path: target, kind: isDirectory ? 'directory' : 'file' });
        landingDirectories.add(isDirectory ? target : posixPath.dirname(target));
        continue;
      }
      const downloaded = path.isAbsolute(relative);
      const local = downloaded ? relative : path.join(step.context!, relative);
      const isDirectory = (await stat(local)).isDirectory();
      const kind = !isDirectory && !downloaded && step.unpackArchives ? await archiveKind(local, step.where) : undefined;
      if (kind) {
        // A local archive: its entries go below DEST, which is a directory whatever it ends with.
        const unpacked = await unpackOnce(state, local, kind, destination, step.where);
        specs.push({ source: local, destination: destination === '/' ? '/' : `${destination}/`, text: `${step.where} ${relative}`, unpacked: unpacked.entries, keepMode: true });
        landingDirectories.add(destination);
        writes.push({ path: destination, kind: 'directory' }, ...unpacked.entries.map((entry) => ({ path: `/${entry.path}`, kind: entry.kind === 'symlink' ? ('other' as const) : entry.kind })));
        continue;
      }
      const landing = isDirectory ? destination : intoDirectory ? posixPath.join(destination, path.basename(local)) : destination;
      landingDirectories.add(isDirectory || intoDirectory ? destination : posixPath.dirname(destination));
      specs.push({ source: local, destination: isDirectory || intoDirectory ? (destination === '/' ? '/' : `${destination}/`) : destination, text: `${step.where} ${relative}`, excludeRoot: local });
      writes.push({ path: landing, kind: isDirectory ? 'directory' : 'file' });
    }
    for (const landing of state.files ? landingDirectories : []) {
      for (const directory of await missingDirectories(state.files!, landing)) {
        if (!directories.includes(directory)) directories.push(directory);
      }
    }
  }
  const owner = step.chown && (await resolveOwner(step.chown, state.files, step.where));
  const exclude = step.exclude ?? [];
  return { specs, directories, owner, writes, key: JSON.stringify({ specs: specs.map(({ source, destination }) => [source, destination]), directories, owner, exclude }) };
}

/**
 * COPY --from=<image>: each source is a path in that image (symlinks on the way followed, as a
 * container sees it); a directory copies its contents, a file lands in or at DEST. Entries keep
 * the image's owners unless --chown is given; --chmod applies as for the context.
 */
async function resolveFromImage(
  step: CopyStep,
  item: CopyStep['items'][number],
  state: ImageState,
  written: string,
  namesDirectory: boolean,
  specs: CopySource[],
  writes: ResolvedCopyStep['writes'],
  landingDirectories: Set<string>,
): Promise<void> {
  const image = await state.sourceImage!(step.fromImage!, step.fromStage);
  const excluded = step.exclude?.length ? createCopyExcludeMatcher(step.exclude) : undefined;
  let destination = written;
  const existing = state.files && (await state.files.lookup(destination));
  if (existing?.found && existing.kind === 'directory') destination = existing.path;
  const intoDirectory = namesDirectory || item.sources.length > 1 || (existing?.found === true && existing.kind === 'directory');
  for (const source of item.sources) {
    if (hasWildcards(source)) {
      throw new DockerfileError(`${step.where}: wildcards in COPY --from sources (${source}) are not supported on the direct engine yet`, { hint: 'name the files or their directory, or build with --engine kaniko' });
    }
    const found = await image.files.lookup(posixPath.resolve('/', source));
    if (!found.found) {
      throw new InputError(`${step.where}: ${source} is not in ${image.name}`, { hint: `check the path (absolute in ${image.name}) and the --from ${step.fromStage ? 'stage' : 'image'}` });
    }
    const key = `${image.key} ${found.path}`;
    let tree = state.trees?.get(key);
    if (!tree) {
      tree = extractTree(image, found.path, state.downloadDir ?? tmpdir(), step.where);
      state.trees?.set(key, tree);
    }
    const { entries } = await tree;
    const copied = excluded ? dropExcluded([...entries], ([relative]) => relative, excluded) : [...entries];
    const isDirectory = found.kind === 'directory';
    const landing = isDirectory ? destination : intoDirectory ? posixPath.join(destination, posixPath.basename(source)) : destination;
    const landingTar = landing.replace(/^\/+/, '');
    const placed: PlannedEntry[] = [];
    for (const [relative, entry] of copied) {
      if (isDirectory && relative === '') continue; // a directory copies its contents
      const at = relative === '' ? landingTar : landingTar === '' ? relative : `${landingTar}/${relative}`;
      // --chown gives every entry the step's owner; without it they keep the image's.
      const { owner, ...rest } = entry;
      placed.push({ ...rest, path: at, ...(step.chown ? {} : { owner }) } as PlannedEntry);
      writes.push({ path: `/${at}`, kind: entry.kind === 'symlink' ? 'other' : entry.kind });
    }
    specs.push({ source: `${image.key}:${found.path}`, destination: landing, text: `${step.where} ${source}`, unpacked: placed, keepMode: false });
    landingDirectories.add(isDirectory ? destination : posixPath.dirname(landing));
    if (!isDirectory) writes.push({ path: landing, kind: 'file' });
  }
}

/**
 * --exclude on one source's entries, by their path relative to the source: excluded ones are
 * dropped, except a directory that still holds a kept entry (which fsutil's copy creates as its
 * parent; only a `!` pattern can keep such an entry).
 */
function dropExcluded<T>(entries: readonly T[], relativeOf: (entry: T) => string, excluded: (relative: string) => boolean): T[] {
  const kept = entries.filter((entry) => !excluded(relativeOf(entry)));
  const holding = new Set<string>();
  for (const entry of kept) {
    for (let directory = posixPath.dirname(relativeOf(entry)); directory !== '.' && !holding.has(directory); directory = posixPath.dirname(directory)) holding.add(directory);
  }
  return entries.filter((entry) => !excluded(relativeOf(entry)) || holding.has(relativeOf(entry)));
}

/** Builds the step's layer: every source walked, ignored files left out, written with the step's owner and mode. */
export async function buildCopyLayer(step: CopyStep, resolved: ResolvedCopyStep, options: LayerOptions): Promise<BuiltLayer> {
  return writeLayer(await copyLayerEntries(step, resolved, options), { ...options, chown: resolved.owner }, step.history.createdBy);
}

/** The entries of the step's layer, in layer order: what each source copies (ignored and excluded ones left out), with the step's mode. */
export async function copyLayerEntries(step: CopyStep, resolved: ResolvedCopyStep, options: Pick<LayerOptions, 'sourceDateEpoch'>): Promise<PlannedEntry[]> {
  const ignored = step.context && step.ignore?.length ? createIgnoreMatcher(step.ignore) : undefined;
  const excluded = step.exclude?.length ? createCopyExcludeMatcher(step.exclude) : undefined;
  const perSpec: PlannedEntry[][] = [];
  const keptModes = new Set<PlannedEntry[]>();
  for (const spec of resolved.specs) {
    if (spec.unpacked) {
      perSpec.push(spec.unpacked);
      if (spec.keepMode) keptModes.add(spec.unpacked);
      continue;
    }
    let entries = await collectEntries(spec, { allowEmpty: true });
    if (ignored) entries = entries.filter((entry) => !ignored(path.relative(step.context!, entry.sourcePath).split(path.sep).join('/')));
    const root = spec.excludeRoot;
    if (excluded && root !== undefined) entries = dropExcluded(entries, (entry) => path.relative(root, entry.sourcePath).split(path.sep).join('/'), excluded);
    perSpec.push(entries);
  }
  const chmod = step.chmod;
  const withChmod = (entries: PlannedEntry[]): PlannedEntry[] => {
    if (chmod === undefined || keptModes.has(entries)) return entries;
    const modeOf = (entry: PlannedEntry) => (typeof chmod === 'number' ? chmod : applyChmod(chmod, entry.mode, entry.kind === 'directory'));
    return entries.map((entry) => (entry.kind === 'symlink' ? entry : { ...entry, mode: modeOf(entry) }));
  };
  const copied = perSpec.map(withChmod);
  return mergeEntries([directoryEntries(resolved.directories, step.where, options), ...copied]);
}

/** Entries for directories a step creates: 0755, stamped now (or SOURCE_DATE_EPOCH). */
function directoryEntries(directories: readonly string[], where: string, options: Pick<LayerOptions, 'sourceDateEpoch'>): PlannedEntry[] {
  const mtimeSeconds = options.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  return directories.map((directory) => ({ kind: 'directory', path: directory.replace(/^\/+/, ''), sourcePath: where, mode: 0o755, mtimeSeconds }));
}

/** The layer a WORKDIR writes when the image lacks the directory: it and its missing parents. */
export function workdirLayer(missing: string[], owner: { uid: number; gid: number }, where: string, createdBy: string, options: LayerOptions): Promise<BuiltLayer> {
  return writeLayer(mergeEntries([directoryEntries(missing, where, options)]), { ...options, chown: owner }, createdBy);
}

/** `target` with its parent directories' symlinks resolved as a container would (the last name kept). */
async function resolveParents(files: BaseFiles, target: string): Promise<string> {
  if (target === '/') return target;
  const parent = posixPath.dirname(target);
  const found = await files.lookup(parent);
  if (found.found) return found.kind === 'directory' ? posixPath.join(found.path, posixPath.basename(target)) : target;
  const missing = await missingDirectories(files, parent);
  return missing.length ? posixPath.join(missing.at(-1)!, posixPath.basename(target)) : target;
}

/**
 * `directory` and those of its parents the image lacks, outermost first, at the paths a
 * container sees (below a symlinked parent, at the link's target).
 */
export async function missingDirectories(files: BaseFiles, directory: string): Promise<string[]> {
  const missing: string[] = [];
  for (let current = directory; current !== '/'; current = posixPath.dirname(current)) {
    const found = await files.lookup(current);
    if (found.found) return found.kind === 'directory' ? missing.map((name) => posixPath.join(found.path, posixPath.relative(current, name))) : missing;
    missing.unshift(current);
  }
  return missing;
}

/** `user[:group]` as numbers; names looked up in the image's /etc/passwd and /etc/group. */
export async function resolveOwner(spec: OwnerSpec, files: BaseFiles | undefined, where: string): Promise<{ uid: number; gid: number }> {
  if ('uid' in spec) return spec;
  const numeric = /^\d+(:\d+)?$/.test(spec.names);
  const accounts = numeric || !files ? {} : { passwd: await files.accountFile('passwd'), group: await files.accountFile('group') };
  try {
    return resolveChown(spec.names, accounts);
  } catch (error) {
    // root is uid and gid 0 even in an image without account files (scratch, static binaries).
    if (/^root(:root)?$/.test(spec.names) && !/^root:/m.test(`${accounts.passwd ?? ''}`)) return { uid: 0, gid: 0 };
    if (error instanceof ImgbuildError) throw new InputError(`${where}: ${error.message}`, { hint: error.hint });
    throw error;
  }
}
