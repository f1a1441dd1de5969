import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { algorithmOf, DigestingStream, digestOf, isStoredDigest, type Digest } from '../digest.js';
import { InputError, NotFoundError, RegistryError } from '../errors.js';
import { isRepositoryPath, isTagName } from '../reference.js';
import { manifestLinks } from './manifest-links.js';
import type { BlobRange, ManagedStorage, ReferrerDescriptor, StoredManifest, UploadSession } from './storage.js';

/*
 * Layout under the root (one process per root):
 *   blobs/<algorithm>/<hex>                   content (sha256 or sha512), shared by all repositories (as an OCI layout)
 *   repositories/<name>/_blobs/<hex>          the blob is in this repository (empty file)
 *   repositories/<name>/_manifests/<hex>      the manifest is in this repository: {"mediaType"}
 *   repositories/<name>/_tags/<tag>           the digest the tag points at
 *   repositories/<name>/_referrers/<subject hex>/<hex>   a descriptor of a manifest naming that subject
 *   uploads/<id>/{data,repository}            resumable uploads
 *   tmp/                                      files being written; emptied when the store opens
 * <hex> alone names a digest in a repository: sha256's 64 digits and sha512's 128 cannot collide.
 * Names start with `_` where a repository path component cannot, so no repository collides with them.
 * Every file appears by rename(2) of a complete, fsynced temporary file in the same filesystem,
 * and the directory is fsynced before the call returns: a crash leaves each file whole or absent.
 */

interface ManifestRecord {
  mediaType: string;
}

interface UploadHash {
  hash: Hash;
  size: number;
}

function hexOf(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const blobUnknown = (digest: string, repository: string) => new NotFoundError(`blob ${digest} is not in repository ${repository}`, { status: 404, code: 'BLOB_UNKNOWN' });
const manifestUnknown = (reference: string, repository: string) => new NotFoundError(`manifest ${reference} is not in repository ${repository}`, { status: 404, code: 'MANIFEST_UNKNOWN' });
const uploadUnknown = (id: string) => new NotFoundError(`upload ${id} is not in progress (finished, cancelled or never started)`, { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' });
const digestInvalid = (actual: string, expected: string) =>
  new RegistryError(`content has digest ${actual}, not the ${expected} it was sent as`, { status: 400, code: 'DIGEST_INVALID' });

/** Blobs, manifests, tags and uploads in a directory: the embedded registry's store. */
export class FilesystemStorage implements ManagedStorage {
  readonly registry: string;
  private readonly uploadHashes = new Map<string, UploadHash>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly knownDirectories = new Set<string>();

  private constructor(readonly root: string) {
    this.registry = `dir:${root}`;
  }

  /** Opens (creating) a store in `root`, removing what an interrupted process left half-written. */
  static async open(root: string): Promise<FilesystemStorage> {
    const store = new FilesystemStorage(path.resolve(root));
    try {
      await mkdir(store.root, { recursive: true });
      await claimDirectory(store.root);
      await rm(store.tmpDir, { recursive: true, force: true });
      for (const dir of [store.tmpDir, path.join(store.root, 'blobs', 'sha256'), path.join(store.root, 'repositories'), path.join(store.root, 'uploads')]) {
        await store.ensureDirectory(dir);
      }
    } catch (error) {
      throw new InputError(`cannot keep images in ${store.root}: ${(error as Error).message}`, { hint: 'choose a directory this user can create and write' });
    }
    return store;
  }

  /** Gives the directory up for another process to serve. */
  async close(): Promise<void> {
    await rm(path.join(this.root, LOCK_FILE), { force: true });
  }

  private get tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  private blobPath(digest: Digest): string {
    return path.join(this.root, 'blobs', algorithmOf(digest), hexOf(digest));
  }

  private repositoryPath(repository: string, ...parts: string[]): string {
    // Names are checked where they enter; this guards the filesystem against anything else.
    if (!isRepositoryPath(repository)) throw new RegistryError(`invalid repository name ${JSON.stringify(repository)}`, { status: 400, code: 'NAME_INVALID' });
    return path.join(this.root, 'repositories', ...repository.split('/'), ...parts);
  }

  private uploadPath(id: string, part: 'data' | 'repository' | '' = ''): string {
    if (!/^[a-f0-9-]{36}$/.test(id)) throw uploadUnknown(id);
    return path.join(this.root, 'uploads', id, part);
  }

  // ---- durable writes ---------------------------------------------------------------------

  /** mkdir -p, fsyncing each new directory's parent so the directory survives a crash. */
  private async ensureDirectory(dir: string): Promise<void> {
    if (this.knownDirectories.has(dir)) return;
    const firstCreated = await mkdir(dir, { recursive: true });
    if (firstCreated !== undefined) {
      for (let current = dir; ; current = path.dirname(current)) {
        await fsyncDirectory(path.dirname(current));
        if (current === firstCreated || current === this.root) break;
      }
    }
    this.knownDirectories.add(dir);
  }

  /** Moves a complete, fsynced file into place and makes the rename durable. */
  private async publish(temporary: string, target: string): Promise<void> {
    try {
      await this.ensureDirectory(path.dirname(target));
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    await fsyncDirectory(path.dirname(target));
  }

  private async writeAtomically(target: string, data: string | Buffer): Promise<void> {
    const temporary = path.join(this.tmpDir, randomUUID());
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.publish(temporary, target);
  }

  private async removeDurably(file: string): Promise<boolean> {
    try {
      await rm(file);
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    await fsyncDirectory(path.dirname(file));
    return true;
  }

  /** Runs `work` after any earlier work on the same key (an upload session) has settled. */
  private async serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(work);
    const settled = result.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return result;
  }

  // ---- blobs ----------------------------------------------------------------------------

  private async linkIntoRepository(repository: string, digest: Digest): Promise<void> {
    const link = this.repositoryPath(repository, '_blobs', hexOf(digest));
    if (!(await exists(link))) await this.writeAtomically(link, '');
  }

  private async hasLink(repository: string, digest: Digest): Promise<boolean> {
    return exists(this.repositoryPath(repository, '_blobs', hexOf(digest)));
  }

  async headBlob(repository: string, digest: Digest): Promise<number | undefined> {
    if (!(await this.hasLink(repository, digest))) return undefined;
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async openBlob(repository: string, digest: Digest): Promise<Readable> {
    const size = await this.headBlob(repository, digest);
    if (size === undefined) throw blobUnknown(digest, repository);
    return createReadStream(this.blobPath(digest)).pipe(new DigestingStream(digest, `blob ${digest}`));
  }

  async openBlobRange(repository: string, digest: Digest, start: number, end: number): Promise<Readable> {
    if (!(await this.hasLink(repository, digest))) throw blobUnknown(digest, repository);
    return createReadStream(this.blobPath(digest), { start, end });
  }

  async getBlob(repository: string, digest: Digest): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.openBlob(repository, digest)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async mountBlob(repository: string, digest: Digest, fromRepository: string): Promise<boolean> {
    if (!(await this.hasLink(fromRepository, digest)) || !(await exists(this.blobPath(digest)))) return false;
    await this.linkIntoRepository(repository, digest);
    return true;
  }

  async linkBlob(repository: string, digest: Digest): Promise<boolean> {
    if (!(await exists(this.blobPath(digest)))) return false;
    await this.linkIntoRepository(repository, digest);
    return true;
  }

  /** Moves a verified, fsynced file in as the blob `digest` and links it into the repository. */
  private async storeBlobFile(repository: string, digest: Digest, file: string): Promise<void> {
    await this.publish(file, this.blobPath(digest));
    await this.linkIntoRepository(repository, digest);
  }

  async putBlob(repository: string, digest: Digest, data: Readable): Promise<number> {
    this.repositoryPath(repository);
    const temporary = path.join(this.tmpDir, randomUUID());
    const digesting = new DigestingStream(undefined, 'blob', algorithmOf(digest));
    try {
      const output = createWriteStream(temporary, { flags: 'wx' });
      await pipeline(data, digesting, output);
      const actual = digesting.digest();
      if (actual !== digest) throw digestInvalid(actual, digest);
      await syncFile(temporary);
      await this.storeBlobFile(repository, digest, temporary);
      return digesting.size;
    } finally {
      await rm(temporary, { force: true });
    }
  }

  async uploadBlob(repository: string, digest: Digest, size: number, openRange: BlobRange, onProgress?: (bytes: number) => void): Promise<void> {
    const stored = await this.putBlob(repository, digest, openRange(0, size));
    if (stored !== size) throw new RegistryError(`blob ${digest} has ${stored} bytes, not the ${size} it was sent as`, { status: 400, code: 'SIZE_INVALID' });
    onProgress?.(size);
  }

  async deleteBlob(repository: string, digest: Digest): Promise<void> {
    if (!(await this.removeDurably(this.repositoryPath(repository, '_blobs', hexOf(digest))))) throw blobUnknown(digest, repository);
  }

  // ---- uploads --------------------------------------------------------------------------

  /**
   * Removes uploads nothing has written to for `idleMs`: sessions of clients that went away and
   * would otherwise hold their bytes on disk for ever. Returns how many were removed.
   */
  async purgeIdleUploads(idleMs: number, now = Date.now()): Promise<number> {
    let purged = 0;
    for (const id of await readdir(path.join(this.root, 'uploads')).catch((): string[] => [])) {
      if (!/^[a-f0-9-]{36}$/.test(id)) continue;
      const written = await stat(this.uploadPath(id, 'data')).catch(() => stat(this.uploadPath(id))).catch(() => undefined);
      if (!written || now - written.mtimeMs < idleMs) continue;
      await this.serialized(id, async () => {
        this.uploadHashes.delete(id);
        await rm(this.uploadPath(id), { recursive: true, force: true });
      });
      purged++;
    }
    return purged;
  }

  async startUpload(repository: string): Promise<UploadSession> {
    this.repositoryPath(repository);
    const id = randomUUID();
    await this.ensureDirectory(this.uploadPath(id));
    await this.writeAtomically(this.uploadPath(id, 'repository'), repository);
    await this.writeAtomically(this.uploadPath(id, 'data'), '');
    this.uploadHashes.set(id, { hash: createHash('sha256'), size: 0 });
    return { id, repository, size: 0 };
  }

  async getUpload(repository: string, id: string): Promise<UploadSession> {
    let owner: string;
    let size: number;
    try {
      owner = await readFile(this.uploadPath(id, 'repository'), 'utf8');
      size = (await stat(this.uploadPath(id, 'data'))).size;
    } catch (error) {
      if (isMissing(error)) throw uploadUnknown(id);
      throw error;
    }
    if (owner !== repository) throw uploadUnknown(id);
    return { id, repository, size };
  }

  async appendUpload(repository: string, id: string, offset: number | undefined, data: Readable, length?: number): Promise<UploadSession> {
    return this.serialized(id, async () => {
      const session = await this.getUpload(repository, id);
      if (offset !== undefined && offset !== session.size) {
        data.resume();
        throw new RegistryError(`chunk starts at byte ${offset} but the upload holds ${session.size} bytes; send the chunk that starts at ${session.size}`, {
          status: 416,
          code: 'BLOB_UPLOAD_INVALID',
        });
      }
      const state = this.uploadHashes.get(id);
      const hashing = state?.size === session.size ? state : undefined;
      let written = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hashing?.hash.update(chunk);
          written += chunk.length;
          callback(null, chunk);
        },
      });
      try {
        await pipeline(data, tap, createWriteStream(this.uploadPath(id, 'data'), { flags: 'r+', start: session.size }));
        if (length !== undefined && written !== length) {
          throw new RegistryError(`the chunk holds ${written} bytes but its Content-Range names ${length}; send the chunk that starts at ${session.size} again`, {
            status: 416,
            code: 'BLOB_UPLOAD_INVALID',
          });
        }
      } catch (error) {
        // A cut chunk leaves the session as it was acknowledged: the client resends from there.
        this.uploadHashes.delete(id);
        await truncate(this.uploadPath(id, 'data'), session.size).catch(() => undefined);
        throw error;
      }
      if (hashing) hashing.size += written;
      else this.uploadHashes.delete(id);
      return { ...session, size: session.size + written };
    });
  }

  /** The upload's digest with `algorithm`: the running sha256, or a hash of what was kept. */
  private async uploadDigest(id: string, size: number, algorithm: 'sha256' | 'sha512'): Promise<Digest> {
    const state = this.uploadHashes.get(id);
    if (algorithm === 'sha256' && state?.size === size) return `sha256:${state.hash.copy().digest('hex')}`;
    // After a restart or a cut chunk the running hash is gone, and a sha512 upload was never
    // hashed as it came: hash what was kept.
    const hash = createHash(algorithm);
    for await (const chunk of createReadStream(this.uploadPath(id, 'data'))) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  async completeUpload(repository: string, id: string, digest: Digest): Promise<number> {
    return this.serialized(id, async () => {
      const session = await this.getUpload(repository, id);
      const actual = await this.uploadDigest(id, session.size, algorithmOf(digest));
      if (actual !== digest) throw digestInvalid(actual, digest);
      const data = this.uploadPath(id, 'data');
      await syncFile(data);
      // A hard link, not a rename: until the repository's link is written the upload stays whole,
      // so a crash in between leaves an upload the client can complete again, not a lost one.
      const target = this.blobPath(digest);
      await this.ensureDirectory(path.dirname(target));
      await link(data, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      await fsyncDirectory(path.dirname(target));
      await this.linkIntoRepository(repository, digest);
      await this.discardUpload(id);
      return session.size;
    });
  }

  private async discardUpload(id: string): Promise<void> {
    this.uploadHashes.delete(id);
    await rm(this.uploadPath(id), { recursive: true, force: true });
  }

  async cancelUpload(repository: string, id: string): Promise<void> {
    await this.serialized(id, async () => {
      await this.getUpload(repository, id);
      await this.discardUpload(id);
    });
  }

  // ---- manifests and tags ---------------------------------------------------------------

  private async readRecord(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.repositoryPath(repository, '_manifests', hexOf(digest)), 'utf8')) as ManifestRecord;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    if (!isTagName(tag)) return undefined;
    try {
      const digest = (await readFile(this.repositoryPath(repository, '_tags', tag), 'utf8')).trim();
      return isStoredDigest(digest) ? digest : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async getManifest(repository: string, reference: string): Promise<StoredManifest> {
    const digest = isStoredDigest(reference) ? reference : await this.resolveTag(repository, reference);
    const record = digest && (await this.readRecord(repository, digest));
    if (!digest || !record) {
      if (!(await this.repositoryExists(repository))) throw new NotFoundError(`repository ${repository} is not known`, { status: 404, code: 'NAME_UNKNOWN' });
      throw manifestUnknown(reference, repository);
    }
    const bytes = await readFile(this.blobPath(digest));
    return { bytes, digest, mediaType: record.mediaType };
  }

  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const tag = isStoredDigest(reference) ? undefined : reference;
    if (tag !== undefined && !isTagName(tag)) throw new RegistryError(`invalid tag ${JSON.stringify(tag)}`, { status: 400, code: 'TAG_INVALID' });
    const links = manifestLinks(bytes, mediaType);
    // Pushed by digest: stored under that digest's algorithm; pushed by tag: under sha256, the canonical one.
    const digest = digestOf(tag === undefined ? algorithmOf(reference as Digest) : 'sha256', bytes);
    if (tag === undefined && digest !== reference) throw digestInvalid(digest, reference);
    for (const blob of links.blobs) {
      if ((await this.headBlob(repository, blob)) === undefined) {
        throw new RegistryError(`manifest names blob ${blob}, which is not in repository ${repository}; push the blob first`, { status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
      }
    }
    for (const child of links.manifests) {
      if (!(await this.readRecord(repository, child))) {
        throw new RegistryError(`index names manifest ${child}, which is not in repository ${repository}; push it first`, { status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
      }
    }
    // Content first, then the record that makes it visible, then what points at it.
    if (!(await exists(this.blobPath(digest)))) await this.writeAtomically(this.blobPath(digest), bytes);
    await this.writeAtomically(this.repositoryPath(repository, '_manifests', hexOf(digest)), JSON.stringify({ mediaType: links.mediaType } satisfies ManifestRecord));
    if (links.subject) {
      const descriptor: ReferrerDescriptor = { mediaType: links.mediaType, digest, size: bytes.length };
      if (links.artifactType !== undefined) descriptor.artifactType = links.artifactType;
      if (links.annotations !== undefined) descriptor.annotations = links.annotations;
      await this.writeAtomically(this.repositoryPath(repository, '_referrers', hexOf(links.subject), hexOf(digest)), JSON.stringify(descriptor));
    }
    if (tag !== undefined) await this.writeAtomically(this.repositoryPath(repository, '_tags', tag), digest);
    return digest;
  }

  async deleteManifest(repository: string, digest: Digest): Promise<void> {
    const record = await this.readRecord(repository, digest);
    if (!record) throw manifestUnknown(digest, repository);
    for (const tag of await this.listTagsIfAny(repository)) {
      if ((await this.resolveTag(repository, tag)) === digest) await this.removeDurably(this.repositoryPath(repository, '_tags', tag));
    }
    const bytes = await readFile(this.blobPath(digest)).catch(() => undefined);
    const subject = bytes && safeSubject(bytes, record.mediaType);
    if (subject) await this.removeDurably(this.repositoryPath(repository, '_referrers', hexOf(subject), hexOf(digest)));
    await this.removeDurably(this.repositoryPath(repository, '_manifests', hexOf(digest)));
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    if (!isTagName(tag) || !(await this.removeDurably(this.repositoryPath(repository, '_tags', tag)))) throw manifestUnknown(tag, repository);
  }

  private async listTagsIfAny(repository: string): Promise<string[]> {
    try {
      return (await readdir(this.repositoryPath(repository, '_tags'))).filter(isTagName);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
  }

  private async repositoryExists(repository: string): Promise<boolean> {
    return exists(this.repositoryPath(repository));
  }

  async listTags(repository: string): Promise<string[]> {
    if (!(await this.repositoryExists(repository))) throw new NotFoundError(`repository ${repository} is not known`, { status: 404, code: 'NAME_UNKNOWN' });
    return sortLexically(await this.listTagsIfAny(repository));
  }

  async listRepositories(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string, name: string[]): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true });
      if (name.length > 0 && entries.some((entry) => entry.name.startsWith('_'))) found.push(name.join('/'));
      for (const entry of entries) {
        if (entry.isDirectory() && !entry.name.startsWith('_')) await walk(path.join(dir, entry.name), [...name, entry.name]);
      }
    };
    await walk(path.join(this.root, 'repositories'), []);
    return sortLexically(found);
  }

  async referrers(repository: string, digest: Digest): Promise<ReferrerDescriptor[]> {
    const dir = this.repositoryPath(repository, '_referrers', hexOf(digest));
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    const descriptors: ReferrerDescriptor[] = [];
    for (const name of sortLexically(names)) {
      const text = await readFile(path.join(dir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) descriptors.push(JSON.parse(text) as ReferrerDescriptor);
    }
    return descriptors;
  }
}

const LOCK_FILE = 'serving.pid';

/**
 * Refuses a directory another live process serves: it would discard that process's files in
 * progress. A lock left by a killed process (its pid gone) is taken over.
 */
async function claimDirectory(root: string): Promise<void> {
  const lock = path.join(root, LOCK_FILE);
  const holder = Number(await readFile(lock, 'utf8').catch(() => ''));
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processIsAlive(holder)) {
    throw new InputError(`${root} is already served by another process (pid ${holder})`, {
      hint: `stop that one first, or pass another --dir; if pid ${holder} is not a registry, remove ${lock}`,
    });
  }
  const temporary = `${lock}.${process.pid}`;
  await writeFile(temporary, String(process.pid));
  await rename(temporary, lock);
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeSubject(bytes: Buffer, mediaType: string): Digest | undefined {
  try {
    return manifestLinks(bytes, mediaType).subject;
  } catch {
    return undefined;
  }
}

async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Lexical order by code unit, as the distribution spec lists tags and repositories. */
export function sortLexically(items: Iterable<string>): string[] {
  return [...items].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
