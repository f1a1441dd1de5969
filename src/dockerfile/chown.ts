/**
 * `--chown=user[:group]` to numbers, looked up in the image's /etc/passwd and /etc/group the
 * way BuildKit does: numbers pass through; names must exist (an unknown name is an error,
 * never a silent 0); without a group the GID is the UID's number, as the Dockerfile reference
 * documents ("a UID without GID will use the same numeric UID as the GID").
 */
import { DockerfileError } from './errors.js';
import type { Ownership } from './types.js';

export interface AccountFiles {
  /** Text of the image's /etc/passwd, if it has one. */
  passwd?: string;
  /** Text of the image's /etc/group, if it has one. */
  group?: string;
}

const MAX_ID = 0xffffffff;

/** `name:password:id...` lines; the first entry of a name wins, as getpwnam does. */
function findId(text: string | undefined, name: string, idField: number): number | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(':');
    if (fields[0] !== name) continue;
    const id = fields[idField];
    if (id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  return undefined;
}

function numeric(text: string, what: string, spec: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const id = Number(text);
  if (id > MAX_ID) throw new DockerfileError(`--chown=${spec}: ${what} ${text} is out of range`, { hint: 'IDs go up to 4294967295' });
  return id;
}

export function resolveChown(spec: string, files: AccountFiles): Ownership {
  const colon = spec.indexOf(':');
  const user = colon === -1 ? spec : spec.slice(0, colon);
  const group = colon === -1 ? undefined : spec.slice(colon + 1);
  if (user === '' || group === '') {
    throw new DockerfileError(`--chown=${spec}: the ${user === '' ? 'user' : 'group'} is empty`, {
      hint: 'write --chown=USER, --chown=USER:GROUP, --chown=UID or --chown=UID:GID',
    });
  }
  const uid = lookupId(spec, user, ACCOUNT_KINDS.user, files.passwd);
  if (group === undefined) return { uid, gid: uid };
  return { uid, gid: lookupId(spec, group, ACCOUNT_KINDS.group, files.group) };
}

const ACCOUNT_KINDS = {
  user: { noun: 'user', id: 'UID', file: '/etc/passwd', create: 'useradd' },
  group: { noun: 'group', id: 'GID', file: '/etc/group', create: 'groupadd' },
} as const;

/** A number as given, or the name's id from the account file; an unknown name is an error. */
function lookupId(spec: string, name: string, kind: (typeof ACCOUNT_KINDS)[keyof typeof ACCOUNT_KINDS], text: string | undefined): number {
  const id = numeric(name, kind.id, spec) ?? findId(text, name, 2);
  if (id !== undefined) return id;
  throw new DockerfileError(
    text === undefined
      ? `--chown=${spec}: cannot look up ${kind.noun} "${name}": the image has no ${kind.file}`
      : `--chown=${spec}: no ${kind.noun} "${name}" in the image's ${kind.file}`,
    { hint: `use a numeric ${kind.id}, or create the ${kind.noun} in the base image first (for example RUN ${kind.create} ${name})` },
  );
}
