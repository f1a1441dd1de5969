import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { InputError } from '../errors.js';

/** Users and bcrypt hashes from an Apache htpasswd file (`htpasswd -B`), as distribution reads it. */
export interface Htpasswd {
  /** True when the user exists and the password matches its bcrypt hash. */
  verify(user: string, password: string): Promise<boolean>;
}

/** Parses htpasswd text; refuses lines that are not bcrypt, naming the line and the fix. */
export function parseHtpasswd(text: string, file = 'htpasswd'): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    if (colon <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new InputError(`${file} line ${index + 1} is not "user:bcrypt-hash"`, {
        hint: `only bcrypt hashes are accepted; make entries with: htpasswd -B ${file} USER`,
      });
    }
    users.set(user, hash);
  });
  return users;
}

export async function loadHtpasswd(file: string): Promise<Htpasswd> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read the htpasswd file ${file}: ${(error as Error).message}`, { hint: 'create it with: htpasswd -cB FILE USER' });
  }
  const users = parseHtpasswd(text, file);
  // bcrypt is slow on purpose; a client sends the same credentials on every request, so a
  // password once verified is remembered (as a hash of it) for the life of the server.
  const verified = new Map<string, Buffer>();
  const fingerprint = (user: string, password: string) => createHash('sha256').update(`${user}\0${password}`).digest();
  return {
    async verify(user, password) {
      const hash = users.get(user);
      if (hash === undefined) return false;
      const known = verified.get(user);
      const print = fingerprint(user, password);
      if (known && timingSafeEqual(known, print)) return true;
      if (!(await bcrypt.compare(password, hash))) return false;
      verified.set(user, print);
      return true;
    },
  };
}

/** The user and password of a `Basic` Authorization header, or undefined. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
