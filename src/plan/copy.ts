import { stat } from 'node:fs/promises';
import path from 'node:path';
import posixPath from 'node:path/posix';
import { InputError, UsageError } from '../errors.js';
import { type BuiltLayer, type LayerOptions, type PlannedEntry, writeLayer } from '../image/layer.js';
import { type AddSpec, collectEntries, mergeEntries } from '../image/tar-entries.js';
import type { BaseFiles, FileKind } from './base-files.js';
import type { CopyStep, OwnerSpec } from './steps.js';

/**
 * COPY/ADD with the image's meaning: where each source lands depends on WORKDIR and on what
 * the image already has at DEST, and `--chown` names on the image's /etc/passwd and /etc/group.
 */

export interface ResolvedCopyStep {
  specs: AddSpec[];
  owner: { uid: number; gid: number } | undefined;
  /** What the step puts where, so later steps see it. */
  writes: Array<{ path: string; kind: FileKind }>;
  /** Identifies the layer's content: the same key, the same layer. */
  key: string;
}

interface ImageState {
  workdir: string;
  files: BaseFiles | undefined;
}

/** A source path inside the context: `..` cannot climb out of it, as BuildKit clamps it. */
export function clampToContext(source: string): string {
  return posixPath.normalize(`/${source}`).replace(/^\/+/, '') || '.';
}

async function sourceExists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

export async function resolveCopyStep(step: CopyStep, state: ImageState): Promise<ResolvedCopyStep> {
  const specs: AddSpec[] = [];
  const writes: ResolvedCopyStep['writes'] = [];
  for (const item of step.items) {
    if (step.destinations === 'as-written') {
      for (const source of item.sources) specs.push({ source, destination: item.destination, text: item.text });
      continue;
    }
    const destination = posixPath.resolve(state.workdir, item.destination);
    const namesDirectory = item.destination.endsWith('/') || item.destination.endsWith('/.') || item.destination === '.';
    if (item.sources.length > 1 && !namesDirectory) {
      throw new UsageError(`${step.where}: with more than one source, the destination must be a directory and end with a /`, `write the destination as ${item.destination}/`);
    }
    const intoDirectory = namesDirectory || (state.files !== undefined && (await state.files.isDirectory(destination)));
    for (const source of item.sources) {
      const local = step.context ? path.join(step.context, clampToContext(source)) : source;
      if (!(await sourceExists(local))) {
        throw new InputError(`${step.where}: ${source} is not in the build context`, { hint: `check the path (it is relative to the context ${step.context ?? '.'}) and the .dockerignore` });
      }
      const isDirectory = (await stat(local)).isDirectory();
      const landing = isDirectory ? destination : intoDirectory ? posixPath.join(destination, path.basename(local)) : destination;
      specs.push({ source: local, destination: isDirectory || intoDirectory ? (destination === '/' ? '/' : `${destination}/`) : destination, text: `${step.where} ${source}` });
      writes.push({ path: landing, kind: isDirectory ? 'directory' : 'file' });
    }
  }
  const owner = step.chown && (await resolveOwnerSpec(step.chown, state.files, step.where));
  return { specs, owner, writes, key: JSON.stringify({ specs: specs.map(({ source, destination }) => [source, destination]), owner }) };
}

/** Builds the step's layer: every source walked, merged, and written with the step's owner and mode. */
export async function buildCopyLayer(step: CopyStep, resolved: ResolvedCopyStep, options: LayerOptions): Promise<BuiltLayer> {
  if (resolved.specs.length === 0) throw new UsageError(`${step.where}: nothing to copy`, 'name at least one source');
  const perSpec: PlannedEntry[][] = [];
  for (const spec of resolved.specs) perSpec.push(await collectEntries(spec));
  return writeLayer(mergeEntries(perSpec), { ...options, chmod: step.chmod, chown: resolved.owner }, step.history.createdBy);
}

/** The layer a WORKDIR writes when the image lacks the directory: it and its missing parents, 0755. */
export function workdirLayer(missing: string[], owner: { uid: number; gid: number }, where: string, createdBy: string, options: LayerOptions): Promise<BuiltLayer> {
  const mtimeSeconds = options.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  const entries: PlannedEntry[] = missing.map((directory) => ({ kind: 'directory', path: directory.replace(/^\/+/, ''), sourcePath: where, mode: 0o755, mtimeSeconds }));
  return writeLayer(mergeEntries([entries]), { ...options, chown: owner }, createdBy);
}

function parseAccounts(text: string): Array<string[]> {
  return text.split('\n').filter((line) => line && !line.startsWith('#')).map((line) => line.split(':'));
}

/** `user[:group]` as numbers: names looked up in the image's /etc/passwd and /etc/group. */
export async function resolveOwnerSpec(spec: OwnerSpec, files: BaseFiles | undefined, where: string): Promise<{ uid: number; gid: number }> {
  if ('uid' in spec) return spec;
  const numeric = (text: string) => (/^\d+$/.test(text) ? Number(text) : undefined);
  let uid = numeric(spec.user);
  // A number alone means the same gid; a name alone its primary group, as BuildKit reads them.
  let primaryGroup = uid;
  if (uid === undefined) {
    const entry = parseAccounts(files ? await files.accountFile('passwd') : '').find((fields) => fields[0] === spec.user);
    if (!entry) throw new InputError(`${where}: user ${spec.user} is not in the image's /etc/passwd`, { hint: 'use a numeric id, or a user the base image defines' });
    uid = Number(entry[2]);
    primaryGroup = Number(entry[3]);
  }
  if (spec.group === undefined) return { uid, gid: primaryGroup! };
  let gid = numeric(spec.group);
  if (gid === undefined) {
    const entry = parseAccounts(files ? await files.accountFile('group') : '').find((fields) => fields[0] === spec.group);
    if (!entry) throw new InputError(`${where}: group ${spec.group} is not in the image's /etc/group`, { hint: 'use a numeric id, or a group the base image defines' });
    gid = Number(entry[2]);
  }
  return { uid, gid };
}

/** The owner of what a step creates for the image's current USER (root when unset). */
export function resolveOwner(user: string | undefined, files: BaseFiles, where: string): Promise<{ uid: number; gid: number }> {
  if (!user) return Promise.resolve({ uid: 0, gid: 0 });
  const [name, group] = user.split(':', 2) as [string, string?];
  return resolveOwnerSpec({ user: name, group }, files, where);
}
