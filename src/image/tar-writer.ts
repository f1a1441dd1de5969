// Writes a layer's tar: for each entry a ustar header (preceded by a PAX extension header
// when ustar cannot hold a value), the contents padded to 512-byte blocks, and two zero
// blocks at the end. The bytes are exactly what tar-stream 3 writes for the same headers
// (test/unit/layer-golden.test.ts pins them), so rebuilding from the same files gives the
// same digest as earlier versions of imgbuild.
//
// Files are read with synchronous calls straight into the output chunk: for many small
// files, one thread-pool round trip per open, read and close costs far more than the reads
// themselves. The caller hands out chunks as they fill, so the event loop runs between them.
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';

const BLOCK = 512;
const ZERO_OFFSET = 0x30; // '0'
const ASCII = /^[\x00-\x7f]*$/;
const TYPEFLAG = { file: 0, symlink: 2, directory: 5, 'pax-header': 72 } as const;

/** What goes into one header; `permissions` are the low 12 mode bits. */
export interface TarHeaderFields {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  permissions: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSeconds: number;
  linkname?: string;
  /** Extra PAX records, written in this order after `path` (and `linkpath` for a symlink). */
  pax?: Record<string, string>;
}

/**
 * A numeric field: `digits` octal digits and a space, or all sevens when the value does not
 * fit (tar-stream's convention; ids and mtimes are clamped before they get here). Written
 * byte by byte: a string per field made a visible share of the work for many small files.
 * Returns the sum of the bytes written, for the header checksum.
 */
function writeOctal(target: Buffer, at: number, value: number, digits: number): number {
  let sum = 0x20;
  if (value >= 8 ** digits) {
    target.fill(0x37, at, at + digits); // '7'
    sum += 0x37 * digits;
  } else {
    let rest = value;
    for (let i = digits - 1; i >= 0; i--) {
      const digit = ZERO_OFFSET + (rest % 8);
      target[at + i] = digit;
      sum += digit;
      rest = Math.floor(rest / 8);
    }
  }
  target[at + digits] = 0x20;
  return sum;
}

/** The size field; returns the sum of its bytes. */
function writeSize(target: Buffer, at: number, size: number): number {
  if (size < 8 ** 11) return writeOctal(target, at + 124, size, 11);
  // GNU base-256 for sizes of 8 GiB and more.
  target[at + 124] = 0x80;
  let sum = 0x80;
  let rest = size;
  for (let i = 11; i > 0; i--) {
    target[at + 124 + i] = rest & 0xff;
    sum += rest & 0xff;
    rest = Math.floor(rest / 0x100);
  }
  return sum;
}

/** The name split into ustar's name and prefix fields, or undefined when the entry needs PAX. */
function ustarName(fullName: string, linkname: string | undefined): { name: string; prefix: string } | undefined {
  if (!ASCII.test(fullName)) return undefined; // non-ASCII goes in PAX
  let name = fullName;
  let prefix = '';
  // Move leading segments into the 155-byte prefix field until the rest fits in 100 bytes.
  while (name.length > 100) {
    const slash = name.indexOf('/');
    if (slash === -1) return undefined;
    prefix += prefix ? `/${name.slice(0, slash)}` : name.slice(0, slash);
    name = name.slice(slash + 1);
  }
  if (prefix.length > 155) return undefined;
  if (linkname && Buffer.byteLength(linkname) > 100) return undefined;
  return { name, prefix };
}

/** ASCII text (ustarName checked it) byte by byte: Buffer#write's encoding dispatch cost more for short names. Returns the byte sum. */
function writeAscii(target: Buffer, at: number, text: string): number {
  let sum = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    target[at + i] = code;
    sum += code;
  }
  return sum;
}

/**
 * Writes one 512-byte ustar header at `at` (the caller's bytes there must be zero). The
 * checksum adds up the bytes as they are written instead of reading the 512 back.
 */
function writeUstarHeader(
  target: Buffer,
  at: number,
  { name, prefix }: { name: string; prefix: string },
  type: keyof typeof TYPEFLAG,
  fields: Omit<TarHeaderFields, 'name' | 'type'>,
): void {
  let checksum = 8 * 0x20 + USTAR_CONSTANT_SUM; // the checksum field counts as spaces
  checksum += writeAscii(target, at, name);
  checksum += writeOctal(target, at + 100, fields.permissions, 6);
  checksum += writeOctal(target, at + 108, fields.uid, 6);
  checksum += writeOctal(target, at + 116, fields.gid, 6);
  checksum += writeSize(target, at, fields.size);
  checksum += writeOctal(target, at + 136, fields.mtimeSeconds | 0, 11);
  target[at + 156] = ZERO_OFFSET + TYPEFLAG[type];
  checksum += ZERO_OFFSET + TYPEFLAG[type];
  if (fields.linkname) {
    const length = target.write(fields.linkname, at + 157, 'utf8');
    for (let i = at + 157; i < at + 157 + length; i++) checksum += target[i]!;
  }
  USTAR_CONSTANT_FIELDS.copy(target, at + 257);
  if (prefix) checksum += writeAscii(target, at + 345, prefix);
  writeOctal(target, at + 148, checksum, 6);
}

/** Bytes 257-344 of every header: magic "ustar\0", version "00", empty owner names, devmajor and devminor 0. */
const USTAR_CONSTANT_FIELDS = (() => {
  const fields = Buffer.alloc(345 - 257);
  fields.write('ustar\u000000', 0, 'latin1');
  writeOctal(fields, 329 - 257, 0, 6);
  writeOctal(fields, 337 - 257, 0, 6);
  return fields;
})();
const USTAR_CONSTANT_SUM = USTAR_CONSTANT_FIELDS.reduce((sum, byte) => sum + byte, 0);

function ustarHeader(fullName: string, type: keyof typeof TYPEFLAG, fields: Omit<TarHeaderFields, 'name' | 'type'>): Buffer | undefined {
  const split = ustarName(fullName, fields.linkname);
  if (!split) return undefined;
  const header = Buffer.alloc(BLOCK);
  writeUstarHeader(header, 0, split, type, fields);
  return header;
}

/** A PAX record: "<length> key=value\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const length = Buffer.byteLength(body);
  let digits = Math.floor(Math.log(length) / Math.log(10)) + 1;
  if (length + digits >= 10 ** digits) digits++;
  return `${length + digits}${body}`;
}

function paddingAfter(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function hasPaxRecords(fields: TarHeaderFields): boolean {
  return fields.pax !== undefined && Object.keys(fields.pax).length > 0;
}

/**
 * The header bytes of one entry: a ustar header, or a PAX header, its records and padding,
 * then a ustar header named `PaxHeader` (readers take the name from the records).
 */
export function encodeTarHeader(fields: TarHeaderFields): Buffer {
  if (!hasPaxRecords(fields)) {
    const plain = ustarHeader(fields.name, fields.type, fields);
    if (plain) return plain;
  }
  let records = paxRecord('path', fields.name);
  if (fields.linkname) records += paxRecord('linkpath', fields.linkname);
  for (const [key, value] of Object.entries(fields.pax ?? {})) records += paxRecord(key, value);
  const recordBytes = Buffer.from(records);
  const placeholder = { ...fields, linkname: fields.linkname ? 'PaxHeader' : undefined };
  const paxHeader = ustarHeader('PaxHeader', 'pax-header', { ...placeholder, size: recordBytes.length })!;
  const entryHeader = ustarHeader('PaxHeader', fields.type, placeholder)!;
  return Buffer.concat([paxHeader, recordBytes, Buffer.alloc(paddingAfter(recordBytes.length)), entryHeader]);
}

/**
 * O_NONBLOCK: a file swapped for a FIFO since the walk must not block the event loop in
 * open(); it then reads as empty, which fails as a short read.
 */
function openNonBlocking(sourcePath: string): number {
  return openSync(sourcePath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
}

/** Raised when a file delivers fewer bytes than its header promised. */
export class ShortReadError extends Error {
  constructor(readonly sourcePath: string) {
    super(`${sourcePath} delivered fewer bytes than its size`);
  }
}

/**
 * Fills fixed-size chunks with tar bytes; a chunk goes to `full` when it is full and is never
 * written again. Chunks start zeroed, so padding and a header's unused fields cost nothing.
 * Headers and small files are written synchronously, with no generator or allocation per
 * entry (for 20,000 small files that overhead was a visible share of the layer's time); the
 * caller hands out `full` after each entry. Only a big file's content is a generator, so a
 * gigabyte file never sits in memory.
 */
export class TarChunkWriter {
  private chunk: Buffer;
  private used = 0;
  /** Completed chunks, in order, until the caller takes them. */
  readonly full: Buffer[] = [];

  constructor(private readonly chunkSize: number) {
    this.chunk = Buffer.alloc(chunkSize);
  }

  private completeChunk(): void {
    this.full.push(this.used === this.chunk.length ? this.chunk : this.chunk.subarray(0, this.used));
    this.chunk = Buffer.alloc(this.chunkSize);
    this.used = 0;
  }

  private advance(count: number): void {
    this.used += count;
    if (this.used === this.chunk.length) this.completeChunk();
  }

  bytes(data: Uint8Array): void {
    for (let offset = 0; offset < data.length; ) {
      const copied = Math.min(data.length - offset, this.chunk.length - this.used);
      this.chunk.set(data.subarray(offset, offset + copied), this.used);
      offset += copied;
      this.advance(copied);
    }
  }

  /** An entry's header, written in place when it is a plain ustar header (the usual case). */
  header(fields: TarHeaderFields): void {
    const split = hasPaxRecords(fields) ? undefined : ustarName(fields.name, fields.linkname);
    // Everything written is whole 512-byte blocks, so a chunk has 0 or at least 512 bytes free.
    if (split) {
      writeUstarHeader(this.chunk, this.used, split, fields.type, fields);
      this.advance(BLOCK);
      return;
    }
    this.bytes(encodeTarHeader(fields));
  }

  /** Zero bytes: the chunk is zeroed already, so only the position moves. */
  zeros(count: number): void {
    for (let left = count; left > 0; ) {
      const n = Math.min(left, this.chunk.length - this.used);
      left -= n;
      this.advance(n);
    }
  }

  /** Whether fileContent can run synchronously: the file fits in what is left of this chunk and one more. */
  fitsInMemory(size: number): boolean {
    return size <= this.chunkSize;
  }

  /**
   * The first `size` bytes of the file, then the padding to a whole block. Throws
   * ShortReadError if the file ends sooner; bytes past `size` (a file still growing) are
   * left out, as the header already holds the size. Reads the whole file before returning:
   * for files fitsInMemory() accepts; bigger ones go through fileContentInSteps.
   */
  fileContent(sourcePath: string, size: number): void {
    // A loop of its own rather than draining fileContentInSteps: a generator per small file costs.
    if (size > 0) {
      const fd = openNonBlocking(sourcePath);
      try {
        for (let left = size; left > 0; ) left -= this.readOnce(fd, sourcePath, left);
      } finally {
        closeSync(fd);
      }
    }
    this.zeros(paddingAfter(size));
  }

  /** As fileContent, one step per completed chunk, so the caller can hand each out first. */
  *fileContentInSteps(sourcePath: string, size: number): Generator<void> {
    if (size > 0) {
      const fd = openNonBlocking(sourcePath);
      try {
        for (let left = size; left > 0; ) {
          const chunksBefore = this.full.length;
          left -= this.readOnce(fd, sourcePath, left);
          if (this.full.length > chunksBefore) yield;
        }
      } finally {
        closeSync(fd);
      }
    }
    this.zeros(paddingAfter(size));
  }

  /** One read of up to `left` bytes into the chunk; returns how many came. */
  private readOnce(fd: number, sourcePath: string, left: number): number {
    const read = readSync(fd, this.chunk, this.used, Math.min(left, this.chunk.length - this.used), null);
    if (read === 0) throw new ShortReadError(sourcePath);
    this.advance(read);
    return read;
  }

  /** The end-of-archive marker; the last chunk, however full, joins `full`. */
  finish(): void {
    this.zeros(2 * BLOCK);
    if (this.used > 0) this.completeChunk();
  }
}
