/**
 * Tar entries (of an ADD archive or of another image's layer) as planned layer entries that
 * keep their own modes, owners and mtimes; file contents spooled to numbered files in a
 * directory the caller owns, hard links turned into copies of the file they name.
 */
import { createWriteStream } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { PlannedEntry } from '../image/tar-entries.js';

/** The fields of a tar header this reads (as tar-stream gives them). */
export interface TarHeader {
  type?: string | null;
  mode?: number | null;
  mtime?: Date | null;
  uid?: number | null;
  gid?: number | null;
  size?: number | null;
  linkname?: string | null;
}

/** A tar entry's content as tar-stream gives it. */
type TarContent = AsyncIterable<unknown> & { resume(): unknown };

export class TarSpool {
  private count = 0;
  /** Regular files spooled so far, by their name in the tar (normalised), for hard links. */
  private readonly spooled = new Map<string, { spool: string; size: number }>();

  /** `directory`: where contents go; `origin`: how sourcePath names an entry (`archive.tar:` or `image:/`). */
  constructor(
    private readonly directory: string,
    private readonly origin: string,
  ) {}

  /** Forgets the files spooled so far as hard link targets (a new layer begins). */
  nextLayer(): void {
    this.spooled.clear();
  }

  /**
   * The entry `name` (normalised) of the tar, placed at `at`; consumes its content. `link` is
   * the normalised target of a hard link. Undefined for a type no layer built here can hold
   * (devices, FIFOs) and for a hard link whose target was not spooled.
   */
  async plan(entry: TarContent, header: TarHeader, name: string, at: string, link?: string): Promise<PlannedEntry | undefined> {
    const common = {
      path: at,
      sourcePath: `${this.origin}${name}`,
      mode: (header.mode ?? 0o644) & 0o7777,
      mtimeSeconds: Math.max(0, Math.floor((header.mtime?.getTime() ?? 0) / 1000)),
      owner: { uid: header.uid ?? 0, gid: header.gid ?? 0 },
    };
    if (header.type === 'file' || header.type === 'contiguous-file') {
      const spool = path.join(this.directory, String(this.count++));
      await pipeline(entry, createWriteStream(spool, { mode: 0o600 }));
      this.spooled.set(name, { spool, size: header.size ?? 0 });
      return { ...common, kind: 'file', size: header.size ?? 0, sourcePath: spool };
    }
    entry.resume();
    if (header.type === 'directory') return { ...common, kind: 'directory' };
    if (header.type === 'symlink') return { ...common, kind: 'symlink', target: header.linkname ?? '' };
    const target = header.type === 'link' && link !== undefined ? this.spooled.get(link) : undefined;
    if (!target) return undefined;
    const spool = path.join(this.directory, String(this.count++));
    await copyFile(target.spool, spool);
    return { ...common, kind: 'file', size: target.size, sourcePath: spool };
  }
}
