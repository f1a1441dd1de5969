// The tar writer against tar-stream 3, the writer it replaced: the same header bytes for
// every kind of header a layer holds, edge cases included (names around the ustar limits,
// non-ASCII names and link targets, ids beyond ustar, sizes that need base-256). Golden
// digests (layer-golden.test.ts) pin whole layers; this pins the corners they miss.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { fileURLToPath } from 'node:url';
import { encodeTarHeader, type TarHeaderFields } from '../../src/image/tar-writer.js';
import { run, runChecked } from '../helpers/tools.js';

const TYPE_BITS = { file: 0o100000, directory: 0o040000, symlink: 0o120000 } as const;

/** The first `length` bytes tar-stream writes for the same entry (its content never sent). */
async function tarStreamHeader(fields: TarHeaderFields, length: number): Promise<Buffer> {
  const pack = tarStream.pack();
  const header: Partial<tarStream.Header> & { name: string; pax?: Record<string, string> } = {
    name: fields.name,
    type: fields.type,
    mode: TYPE_BITS[fields.type] | fields.permissions,
    uid: fields.uid,
    gid: fields.gid,
    uname: '',
    gname: '',
    mtime: new Date(fields.mtimeSeconds * 1000),
    size: fields.size,
  };
  if (fields.linkname) header.linkname = fields.linkname;
  if (fields.pax) header.pax = fields.pax;
  const sink = pack.entry(header);
  sink.on('error', () => {}); // destroyed below before any content
  const pieces: Buffer[] = [];
  let total = 0;
  for await (const piece of pack) {
    pieces.push(piece as Buffer);
    total += (piece as Buffer).length;
    if (total >= length) break;
  }
  pack.destroy();
  return Buffer.concat(pieces).subarray(0, length);
}

const base: TarHeaderFields = { name: 'opt/app/file.txt', type: 'file', permissions: 0o644, uid: 0, gid: 0, size: 12, mtimeSeconds: 1_700_000_000 };

const cases: Array<[string, Partial<TarHeaderFields>]> = [
  ['a plain file', {}],
  ['an empty file with mode 0000 at the epoch', { size: 0, permissions: 0, mtimeSeconds: 0 }],
  ['setuid, setgid and sticky bits, the last 32-bit mtime', { permissions: 0o7777, mtimeSeconds: 2 ** 31 - 1 }],
  ['a directory', { name: 'opt/app/', type: 'directory', size: 0, permissions: 0o755 }],
  ['a symlink', { name: 'opt/app/link', type: 'symlink', size: 0, permissions: 0o777, linkname: '../bin/run.sh' }],
  ['a name of exactly 100 bytes', { name: 'n'.repeat(100) }],
  ['a 101-byte name that splits into prefix and name', { name: `${'p'.repeat(50)}/${'n'.repeat(50)}` }],
  ['a 250-byte path with many segments', { name: `${'segment-of-a-path/'.repeat(13)}file.txt` }],
  ['a path whose prefix would pass 155 bytes', { name: `${'p'.repeat(160)}/file.txt` }],
  ['a single name longer than 100 bytes', { name: `dir/${'n'.repeat(120)}` }],
  ['a non-ASCII name', { name: 'données/été.txt' }],
  ['a link target of exactly 100 bytes', { name: 'l', type: 'symlink', size: 0, permissions: 0o777, linkname: 't'.repeat(100) }],
  ['a link target longer than 100 bytes', { name: 'l', type: 'symlink', size: 0, permissions: 0o777, linkname: 't'.repeat(101) }],
  ['a non-ASCII link target (PAX linkpath)', { name: 'l', type: 'symlink', size: 0, permissions: 0o777, linkname: 'ünïcode', pax: { linkpath: 'ünïcode' } }],
  ['ids beyond ustar (PAX uid and gid)', { uid: 0o777777, gid: 0o777777, pax: { uid: '3000000', gid: '4000000' } }],
  ['the largest ids ustar holds', { uid: 0o777777, gid: 0o777776 }],
  ['a size of 8 GiB - 1 (11 octal digits)', { size: 8 * 1024 ** 3 - 1 }],
  ['a size of 8 GiB (base-256)', { size: 8 * 1024 ** 3 }],
  ['a size of 100 GiB (base-256)', { size: 100 * 1024 ** 3 + 7 }],
];

describe('encodeTarHeader', () => {
  for (const [what, change] of cases) {
    test(`${what}: the bytes tar-stream 3 writes`, async () => {
      const fields = { ...base, ...change };
      const ours = encodeTarHeader(fields);
      assert.equal(ours.length % 512, 0);
      assert.ok((await tarStreamHeader(fields, ours.length)).equals(ours), `${what}: header bytes differ`);
    });
  }
});

describe('TarChunkWriter.fileContent', () => {
  test('a file that became a FIFO after the walk fails as a short read instead of blocking the process', { timeout: 60_000 }, async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'imgbuild-tar-writer-'));
    try {
      const fifo = path.join(directory, 'was-a-file');
      await runChecked('mkfifo', [fifo]);
      // In a child process: a blocked open() would freeze this test runner's own event loop.
      const writerModule = fileURLToPath(new URL('../../src/image/tar-writer.ts', import.meta.url));
      const script = `
        import { ShortReadError, TarChunkWriter } from ${JSON.stringify(writerModule)};
        try {
          new TarChunkWriter(1024 * 1024).fileContent(process.argv[1], 10);
          console.log('read');
        } catch (error) {
          console.log(error instanceof ShortReadError ? 'short read' : String(error));
        }
      `;
      const result = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, fifo], { timeoutMs: 30_000 });
      assert.equal(result.timedOut, false, 'opening the FIFO blocked');
      assert.equal(result.stdout.trim(), 'short read', result.stderr);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
