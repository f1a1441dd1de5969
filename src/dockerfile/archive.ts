/**
 * What `ADD` of a local file would unpack: archives are recognised by content, never by name,
 * as docker does. A compressed stream is only unpacked if what it holds is a tar, so callers
 * check `isTarHeader` on the first 512 decompressed bytes too.
 */
import type { ArchiveKind } from './types.js';

const MAGIC: [ArchiveKind, number[]][] = [
  ['gzip', [0x1f, 0x8b, 0x08]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

/** How many leading bytes `detectArchive` needs to decide (a tar header block). */
export const ARCHIVE_SNIFF_BYTES = 512;

export function detectArchive(head: Uint8Array): ArchiveKind | undefined {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((byte, index) => head[index] === byte)) return kind;
  }
  // A zstd skippable frame (magic 0x184D2A50..5F, little-endian) may precede the data.
  if (head.length >= 4 && ((head[0] as number) & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  return isTarHeader(head) ? 'tar' : undefined;
}

/**
 * A 512-byte tar header: the checksum field must match (signed or unsigned sum, as Go's
 * archive/tar accepts); ustar, GNU and old v7 headers all qualify. An all-zero block does not.
 */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (!/^[0-7]+$/.test(field)) return false;
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let index = 0; index < 512; index++) {
    const byte = index >= 148 && index < 156 ? 0x20 : (block[index] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return unsigned !== 8 * 0x20 && (expected === unsigned || expected === signed);
}
