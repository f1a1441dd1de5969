import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { InputError, UsageError } from '../../src/errors.js';
import { buildLayer, parseAddSpec, parseChmod, parseChown, type BuiltLayer, type LayerOptions } from '../../src/image/layer.js';
import { compareTarPaths, mergeEntries, type PlannedEntry } from '../../src/image/tar-entries.js';
import { runChecked } from '../helpers/tools.js';

interface ReadEntry {
  header: tarStream.Header;
  content: Buffer;
}

/** Reads a built layer back with tar-stream (an independent reader of the same format). */
async function readLayer(blobPath: string): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  const extract = tarStream.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, content: Buffer.concat(chunks) });
    }
  })();
  await pipeline(createReadStream(blobPath), createGunzip(), extract);
  await reading;
  return entries;
}

function names(entries: ReadEntry[]): string[] {
  return entries.map((entry) => entry.header.name);
}

let workDir: string;
/** Layers built by a test; removed in `after` so a failing assert leaves no temp files. */
const built: BuiltLayer[] = [];

async function build(specs: string[], options: LayerOptions = {}): Promise<BuiltLayer> {
  const layer = await buildLayer(specs.map(parseAddSpec), { tmpDir: path.join(workDir, 'blobs'), ...options });
  built.push(layer);
  return layer;
}

function inWork(...parts: string[]): string {
  return path.join(workDir, ...parts);
}

before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-layer-test-'));
  await mkdir(inWork('blobs'));
  await writeFile(inWork('hello.txt'), 'hello\nworld\n');
  await mkdir(inWork('app', 'conf.d'), { recursive: true });
  await writeFile(inWork('app', 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  await chmod(inWork('app', 'run.sh'), 0o755);
  await writeFile(inWork('app', 'conf.d', 'a.conf'), 'a=1\n');
  await symlink('../run.sh', inWork('app', 'conf.d', 'run-link'));
  // Owned by someone other than us: the layer must still say 0:0.
  await chown(inWork('hello.txt'), 1234, 5678);
});

after(async () => {
  for (const layer of built) await layer.dispose();
  await rm(workDir, { recursive: true, force: true });
});

describe('parseAddSpec', () => {
  test('splits SRC:DEST and keeps the text for history', () => {
    assert.deepEqual(parseAddSpec('hello.txt:/opt/app/hello.txt'), {
      source: 'hello.txt',
      destination: '/opt/app/hello.txt',
      text: 'hello.txt:/opt/app/hello.txt',
    });
  });

  test('a trailing slash means "into this directory" and is kept', () => {
    assert.equal(parseAddSpec('a.txt:/opt/app/').destination, '/opt/app/');
    assert.equal(parseAddSpec('a.txt:/opt/app/.').destination, '/opt/app/');
    assert.equal(parseAddSpec('a.txt:/').destination, '/');
    assert.equal(parseAddSpec('a.txt://opt//app').destination, '/opt/app');
  });

  test('a colon in SRC is part of SRC; a colon in DEST not followed by / stays in DEST', () => {
    assert.deepEqual(
      [parseAddSpec('build:1/app.conf:/etc/app.conf').source, parseAddSpec('build:1/app.conf:/etc/app.conf').destination],
      ['build:1/app.conf', '/etc/app.conf'],
    );
    assert.deepEqual([parseAddSpec('x:/etc/a:b').source, parseAddSpec('x:/etc/a:b').destination], ['x', '/etc/a:b']);
  });

  test('.. inside DEST is resolved when it stays below /', () => {
    assert.equal(parseAddSpec('f:/a/../b').destination, '/b');
    assert.equal(parseAddSpec('f:/a/b/../../c/').destination, '/c/');
  });

  test('refuses a DEST that climbs above /', () => {
    for (const text of ['f:/../etc', 'f:/a/../../etc/passwd', 'f:/..']) {
      assert.throws(() => parseAddSpec(text), (error: unknown) => {
        assert.ok(error instanceof UsageError, `${text}: ${String(error)}`);
        assert.match(error.message, /--add .* climbs above the image root/);
        return true;
      });
    }
  });

  test('refuses a relative DEST, naming the flag and the fix', () => {
    assert.throws(() => parseAddSpec('hello.txt:opt/app/hello.txt'), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /--add 'hello.txt:opt\/app\/hello.txt'.*not an absolute path/);
      assert.match(error.hint ?? '', /--add hello.txt:\/opt\/app\/hello.txt/);
      assert.equal(error.exitCode, 2);
      return true;
    });
    assert.throws(() => parseAddSpec('hello.txt:./etc'), UsageError);
  });

  test('refuses a spec without DEST or without SRC', () => {
    assert.throws(() => parseAddSpec('hello.txt'), /has no destination/);
    assert.throws(() => parseAddSpec(':/etc/x'), /no source path/);
  });

  test('refuses whiteout names in DEST', () => {
    assert.throws(() => parseAddSpec('f:/etc/.wh.passwd'), /reserve for deletions/);
  });
});

describe('parseChmod and parseChown', () => {
  test('octal modes with 3 or 4 digits', () => {
    assert.equal(parseChmod('0644'), 0o644);
    assert.equal(parseChmod('755'), 0o755);
    assert.equal(parseChmod('4755'), 0o4755);
    assert.equal(parseChmod('0000'), 0);
  });

  test('anything else is a usage error with an example', () => {
    for (const text of ['', '64', '12345', '0o644', '0x1ff', '648', 'u+x', ' 644']) {
      assert.throws(() => parseChmod(text), (error: unknown) => {
        assert.ok(error instanceof UsageError, text);
        assert.match(error.message, /--chmod/);
        assert.match(error.hint ?? '', /--chmod 0644/);
        return true;
      });
    }
  });

  test('numeric UID:GID', () => {
    assert.deepEqual(parseChown('1000:1000'), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseChown('0:0'), { uid: 0, gid: 0 });
    assert.deepEqual(parseChown('1000680000:0'), { uid: 1000680000, gid: 0 });
  });

  test('names, missing parts, negatives and out-of-range ids are refused', () => {
    for (const text of ['root:root', '1000', '1000:', ':1000', '-1:0', '1:2:3', '4294967295:0', '1.5:2']) {
      assert.throws(() => parseChown(text), (error: unknown) => {
        assert.ok(error instanceof UsageError, text);
        assert.match(error.message, /--chown/);
        return true;
      });
    }
  });
});

describe('buildLayer', () => {
  test('digest and diff_id are the sha256 of the blob and of the uncompressed tar', async () => {
    const layer = await build([`${inWork('hello.txt')}:/opt/app/hello.txt`], { sourceDateEpoch: 1_700_000_000 });
    const blob = await readFile(layer.blobPath);
    assert.equal(layer.size, blob.length);
    assert.equal(layer.digest, `sha256:${createHash('sha256').update(blob).digest('hex')}`);
    assert.equal(layer.diffId, `sha256:${createHash('sha256').update(gunzipSync(blob)).digest('hex')}`);
    assert.notEqual(layer.digest, layer.diffId);
    assert.equal(layer.entries, 1);
    assert.equal(layer.createdBy, 'imgbuild add /opt/app/hello.txt');
  });

  test('entries: content, owner 0:0 with empty names, fixed mtime, source modes, no parent directories', async () => {
    const epoch = 1_600_000_000;
    const layer = await build([`${inWork('hello.txt')}:/opt/app/`, `${inWork('app')}:/srv/app`], { sourceDateEpoch: epoch });
    const entries = await readLayer(layer.blobPath);
    assert.deepEqual(names(entries), ['opt/app/hello.txt', 'srv/app/conf.d/', 'srv/app/conf.d/a.conf', 'srv/app/conf.d/run-link', 'srv/app/run.sh']);
    assert.equal(layer.entries, entries.length);
    for (const { header } of entries) {
      assert.equal(header.uid, 0, header.name);
      assert.equal(header.gid, 0, header.name);
      assert.equal(header.uname, '', header.name);
      assert.equal(header.gname, '', header.name);
      assert.equal(header.mtime?.getTime(), epoch * 1000, header.name);
      assert.equal(header.pax ?? null, null, `${header.name}: short ASCII names need no PAX header`);
    }
    const byName = new Map(entries.map((entry) => [entry.header.name, entry]));
    assert.equal(byName.get('opt/app/hello.txt')?.content.toString(), 'hello\nworld\n');
    assert.equal(byName.get('opt/app/hello.txt')?.header.mode, 0o644);
    assert.equal(byName.get('srv/app/run.sh')?.header.mode, 0o755);
    assert.equal(byName.get('srv/app/conf.d/')?.header.type, 'directory');
    const link = byName.get('srv/app/conf.d/run-link')?.header;
    assert.equal(link?.type, 'symlink');
    assert.equal(link?.linkname, '../run.sh');
  });

  test('GNU tar lists the same entries, owners and link target', async () => {
    const layer = await build([`${inWork('app')}:/srv/app/`], { sourceDateEpoch: 0 });
    const { stdout } = await runChecked('tar', ['-tvzf', layer.blobPath, '--numeric-owner', '--full-time']);
    const lines = stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((line) => line.replace(/\s+/g, ' ')),
      [
        'drwxr-xr-x 0/0 0 1970-01-01 00:00:00 srv/app/conf.d/',
        '-rw-r--r-- 0/0 4 1970-01-01 00:00:00 srv/app/conf.d/a.conf',
        'lrwxrwxrwx 0/0 0 1970-01-01 00:00:00 srv/app/conf.d/run-link -> ../run.sh',
        '-rwxr-xr-x 0/0 19 1970-01-01 00:00:00 srv/app/run.sh',
      ],
    );
  });

  test('same inputs and SOURCE_DATE_EPOCH give the same digest, whatever the mtimes', async () => {
    const specs = [`${inWork('app')}:/srv/app`, `${inWork('hello.txt')}:/etc/hello`];
    const first = await build(specs, { sourceDateEpoch: 1 });
    await utimes(inWork('app', 'conf.d', 'a.conf'), new Date('2001-01-01'), new Date('2001-01-01'));
    const second = await build(specs, { sourceDateEpoch: 1 });
    assert.equal(second.digest, first.digest);
    assert.equal(second.diffId, first.diffId);
    assert.notEqual(second.blobPath, first.blobPath);
  });

  test('without SOURCE_DATE_EPOCH the source mtimes are kept, so touching a file changes the digest', async () => {
    const file = inWork('touched.txt');
    await writeFile(file, 'same content');
    await utimes(file, new Date('2010-01-01T00:00:00Z'), new Date('2010-01-01T00:00:00Z'));
    const before = await build([`${file}:/x`]);
    const [entry] = await readLayer(before.blobPath);
    assert.equal(entry?.header.mtime?.toISOString(), '2010-01-01T00:00:00.000Z');
    await utimes(file, new Date('2011-01-01T00:00:00Z'), new Date('2011-01-01T00:00:00Z'));
    const after = await build([`${file}:/x`]);
    assert.notEqual(after.digest, before.digest);
  });

  test('an mtime past 2038 is clamped instead of wrapping around', async () => {
    const file = inWork('future.txt');
    await writeFile(file, 'future');
    await utimes(file, new Date('2100-01-01T00:00:00Z'), new Date('2100-01-01T00:00:00Z'));
    const layer = await build([`${file}:/x`]);
    const { stdout } = await runChecked('tar', ['-tvzf', layer.blobPath, '--full-time', '--utc']);
    assert.match(stdout, / 2038-01-19 03:14:07 x\n$/);
  });

  test('--chmod applies to files and directories (not symlinks) and changes the digest', async () => {
    const plain = await build([`${inWork('app')}:/srv/app`], { sourceDateEpoch: 0 });
    const chmodded = await build([`${inWork('app')}:/srv/app`], { sourceDateEpoch: 0, chmod: 0o640 });
    assert.notEqual(chmodded.digest, plain.digest);
    assert.notEqual(chmodded.diffId, plain.diffId);
    const modes = Object.fromEntries((await readLayer(chmodded.blobPath)).map((entry) => [entry.header.name, entry.header.mode]));
    assert.deepEqual(modes, {
      'srv/app/conf.d/': 0o640,
      'srv/app/conf.d/a.conf': 0o640,
      'srv/app/conf.d/run-link': 0o777,
      'srv/app/run.sh': 0o640,
    });
    assert.match(chmodded.createdBy, / --chmod 0640$/);
  });

  test('--chmod 0000 is written as 0000, not replaced by a default', async () => {
    const layer = await build([`${inWork('hello.txt')}:/secret`], { chmod: 0 });
    const [entry] = await readLayer(layer.blobPath);
    assert.equal(entry?.header.mode, 0);
  });

  test('--chown sets owners, ids beyond the ustar limit go through PAX', async () => {
    const layer = await build([`${inWork('hello.txt')}:/a`], { chown: { uid: 1000680000, gid: 1001 }, sourceDateEpoch: 0 });
    const { stdout } = await runChecked('tar', ['-tvzf', layer.blobPath, '--numeric-owner']);
    assert.match(stdout, /^-rw-r--r-- 1000680000\/1001 /);
    assert.match(layer.createdBy, / --chown 1000680000:1001$/);
    const small = await build([`${inWork('hello.txt')}:/a`], { chown: { uid: 7, gid: 8 } });
    const [entry] = await readLayer(small.blobPath);
    assert.deepEqual([entry?.header.uid, entry?.header.gid, entry?.header.pax ?? null], [7, 8, null]);
  });

  test('DEST semantics: into a directory, renamed, and a directory copies its contents', async () => {
    const into = await build([`${inWork('hello.txt')}:/opt/app/`]);
    assert.deepEqual(names(await readLayer(into.blobPath)), ['opt/app/hello.txt']);
    const renamed = await build([`${inWork('hello.txt')}:/opt/app/greeting`]);
    assert.deepEqual(names(await readLayer(renamed.blobPath)), ['opt/app/greeting']);
    const root = await build([`${inWork('hello.txt')}:/`]);
    assert.deepEqual(names(await readLayer(root.blobPath)), ['hello.txt']);
    const contents = await build([`${inWork('app', 'conf.d')}:/etc/app`]);
    assert.deepEqual(names(await readLayer(contents.blobPath)), ['etc/app/a.conf', 'etc/app/run-link']);
  });

  test('long (>100 bytes) and non-ASCII names survive GNU tar, in listing and extraction', async () => {
    const deep = inWork('long', 'a'.repeat(60), 'b'.repeat(60));
    await mkdir(deep, { recursive: true });
    const longName = `${'c'.repeat(120)}.txt`;
    await writeFile(path.join(deep, longName), 'long\n');
    await writeFile(inWork('long', 'Grüße-日本語.txt'), 'utf8\n');
    await symlink(`../${'d'.repeat(150)}/ziel-ü`, inWork('long', 'long-link'));
    const layer = await build([`${inWork('long')}:/data/`], { sourceDateEpoch: 0 });

    const expected = [
      'data/Grüße-日本語.txt',
      `data/${'a'.repeat(60)}/`,
      `data/${'a'.repeat(60)}/${'b'.repeat(60)}/`,
      `data/${'a'.repeat(60)}/${'b'.repeat(60)}/${longName}`,
      'data/long-link',
    ];
    const { stdout } = await runChecked('tar', ['-tzf', layer.blobPath], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    assert.deepEqual(stdout.trim().split('\n'), expected);

    const extractDir = inWork('extracted-long');
    await mkdir(extractDir);
    await runChecked('tar', ['-xzf', layer.blobPath, '-C', extractDir], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    assert.equal(await readFile(path.join(extractDir, 'data', 'a'.repeat(60), 'b'.repeat(60), longName), 'utf8'), 'long\n');
    assert.equal(await readFile(path.join(extractDir, 'data', 'Grüße-日本語.txt'), 'utf8'), 'utf8\n');
    const { stdout: target } = await runChecked('readlink', [path.join(extractDir, 'data', 'long-link')]);
    assert.equal(target.trim(), `../${'d'.repeat(150)}/ziel-ü`);
  });

  test('a layer planned small whose PAX headers make its tar larger than a gzip block (1 MiB)', async () => {
    // 480 empty files under a 1,800-byte non-ASCII path: ~250 KiB planned (headers and
    // contents), but each entry needs a PAX header and record too, ~1.5 MiB of tar in all.
    const deep = inWork('pax-heavy', ...Array.from({ length: 10 }, () => '\u00fc'.repeat(90)));
    await mkdir(deep, { recursive: true });
    await Promise.all(Array.from({ length: 480 }, (_, i) => writeFile(path.join(deep, `f${String(i).padStart(4, '0')}`), '')));
    const layer = await build([`${inWork('pax-heavy')}:/data/`], { sourceDateEpoch: 0 });
    const tar = gunzipSync(await readFile(layer.blobPath));
    assert.ok(tar.length > 1024 * 1024, `tar of ${tar.length} bytes`);
    assert.equal(layer.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    const { stdout } = await runChecked('tar', ['-tzf', layer.blobPath], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    const listed = stdout.trim().split('\n');
    assert.equal(listed.filter((name) => !name.endsWith('/')).length, 480);
    assert.ok(listed.at(-1)!.endsWith('/f0479'), listed.at(-1));
  });

  test('a name that is not UTF-8 is refused; a real U+FFFD in a name is kept', async () => {
    const latin1 = inWork('latin1-names');
    await mkdir(latin1);
    await writeFile(Buffer.concat([Buffer.from(`${latin1}/caf`), Buffer.from([0xe9])]), 'x');
    await assert.rejects(build([`${latin1}:/x/`]), (error: unknown) => {
      assert.ok(error instanceof InputError, String(error));
      assert.match(error.message, /is not valid UTF-8 \("caf\u00e9"\)/);
      return true;
    });
    const replacement = inWork('replacement-char');
    await mkdir(replacement);
    await writeFile(path.join(replacement, 'a\ufffdb'), 'x');
    const layer = await build([`${replacement}:/x/`]);
    assert.deepEqual(names(await readLayer(layer.blobPath)), ['x/a\ufffdb']);
  });

  test('entries are in byte order of their UTF-8 names, directories before their contents', async () => {
    const dir = inWork('order');
    await mkdir(path.join(dir, 'a'), { recursive: true });
    for (const name of ['a-b', 'a b', 'B', 'é', 'z', 'a/x']) await writeFile(path.join(dir, name), name);
    const layer = await build([`${dir}:/o`], { sourceDateEpoch: 0 });
    assert.deepEqual(names(await readLayer(layer.blobPath)), ['o/B', 'o/a/', 'o/a b', 'o/a-b', 'o/a/x', 'o/z', 'o/é']);
  });

  test('two specs writing the same path: the later one wins', async () => {
    const other = inWork('other.txt');
    await writeFile(other, 'other\n');
    const layer = await build([`${inWork('hello.txt')}:/etc/x`, `${other}:/etc/x`]);
    const entries = await readLayer(layer.blobPath);
    assert.deepEqual(names(entries), ['etc/x']);
    assert.equal(entries[0]?.content.toString(), 'other\n');
  });

  test('a file under a path another spec adds as a file is refused', async () => {
    await assert.rejects(build([`${inWork('hello.txt')}:/etc/x`, `${inWork('hello.txt')}:/etc/x/`]), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /\/etc\/x\/hello.txt .* under \/etc\/x, which .* adds as a file/);
      return true;
    });
  });

  test('a missing SRC is an InputError naming it, and leaves no file behind', async () => {
    const blobs = inWork('blobs-missing');
    await mkdir(blobs);
    await assert.rejects(
      buildLayer([parseAddSpec(`${inWork('hello.txt')}:/ok`), parseAddSpec('no/such/file.txt:/etc/x')], { tmpDir: blobs }),
      (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, /no\/such\/file.txt does not exist/);
        assert.match(error.hint ?? '', /check the path/);
        return true;
      },
    );
    assert.deepEqual(await readdir(blobs), []);
  });

  test('a socket inside SRC is refused with the path', async () => {
    const dir = inWork('with-socket');
    await mkdir(dir);
    await writeFile(path.join(dir, 'fine.txt'), 'x');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'control.sock'), resolve));
    try {
      await assert.rejects(build([`${dir}:/x/`]), (error: unknown) => {
        assert.ok(error instanceof InputError);
        assert.match(error.message, /control\.sock is a socket/);
        return true;
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('an empty directory SRC is refused rather than silently adding nothing', async () => {
    await mkdir(inWork('empty'));
    await assert.rejects(build([`${inWork('empty')}:/data`]), /is empty, so there is nothing to add/);
  });

  test('a file named like a whiteout inside SRC is refused', async () => {
    const dir = inWork('with-whiteout');
    await mkdir(dir);
    await writeFile(path.join(dir, '.wh.passwd'), '');
    await assert.rejects(build([`${dir}:/etc/`]), /'.wh.passwd' starts with '.wh.'/);
  });

  test('a top-level symlink SRC is followed, as COPY does', async () => {
    await symlink(inWork('hello.txt'), inWork('hello-link'));
    const layer = await build([`${inWork('hello-link')}:/etc/hello`]);
    const [entry] = await readLayer(layer.blobPath);
    assert.equal(entry?.header.type, 'file');
    assert.equal(entry?.content.toString(), 'hello\nworld\n');
  });

  test('an empty file is an entry of size 0', async () => {
    await writeFile(inWork('empty.txt'), '');
    const layer = await build([`${inWork('empty.txt')}:/etc/empty`]);
    const entries = await readLayer(layer.blobPath);
    assert.deepEqual(entries.map((entry) => [entry.header.name, entry.header.type, entry.header.size]), [['etc/empty', 'file', 0]]);
  });

  test('a file that delivers fewer bytes than its size fails cleanly and leaves no file behind', async (t) => {
    // sysfs files report 4096 bytes and deliver a few: the same as a file truncated mid-read.
    const shrinking = '/sys/kernel/uevent_seqnum';
    try {
      await readFile(shrinking);
    } catch {
      t.skip(`${shrinking} is not readable here`);
      return;
    }
    const blobs = inWork('blobs-shrink');
    await mkdir(blobs);
    await assert.rejects(
      buildLayer([parseAddSpec(`${inWork('hello.txt')}:/a`), parseAddSpec(`${shrinking}:/b`)], { tmpDir: blobs }),
      (error: unknown) => {
        assert.ok(error instanceof InputError, String(error));
        assert.match(error.message, /uevent_seqnum changed size while it was being added/);
        return true;
      },
    );
    assert.deepEqual(await readdir(blobs), []);
  });

  test('an unwritable tmpDir is an InputError', async () => {
    await assert.rejects(
      buildLayer([parseAddSpec(`${inWork('hello.txt')}:/x`)], { tmpDir: inWork('no-such-dir') }),
      (error: unknown) => error instanceof InputError && /cannot create the layer file/.test(error.message),
    );
  });

  test('bad options are refused before any work', async () => {
    const spec = [parseAddSpec(`${inWork('hello.txt')}:/x`)];
    await assert.rejects(buildLayer(spec, { compressionLevel: 10 }), UsageError);
    await assert.rejects(buildLayer(spec, { sourceDateEpoch: -5 }), UsageError);
    await assert.rejects(buildLayer(spec, { sourceDateEpoch: 2 ** 31 }), /between 1970 and 2038/);
    await assert.rejects(buildLayer(spec, { chmod: 0o10000 }), UsageError);
    await assert.rejects(buildLayer([]), /nothing to add/);
  });

  test('dispose removes the blob', async () => {
    const layer = await buildLayer([parseAddSpec(`${inWork('hello.txt')}:/x`)], { tmpDir: inWork('blobs') });
    assert.ok((await readdir(inWork('blobs'))).includes(path.basename(layer.blobPath)));
    await layer.dispose();
    assert.ok(!(await readdir(inWork('blobs'))).includes(path.basename(layer.blobPath)));
  });
});

describe('mergeEntries', () => {
  const file = (entryPath: string, sourcePath = `src/${entryPath}`): PlannedEntry => ({
    kind: 'file',
    path: entryPath,
    sourcePath,
    mode: 0o644,
    mtimeSeconds: 0,
    size: 1,
  });
  const directory = (entryPath: string): PlannedEntry => ({ kind: 'directory', path: entryPath, sourcePath: entryPath, mode: 0o755, mtimeSeconds: 0 });

  test('later specs win and the result is sorted', () => {
    const merged = mergeEntries([[file('b'), file('a', 'first')], [file('a', 'second')]]);
    assert.deepEqual(
      merged.map((entry) => [entry.path, entry.sourcePath]),
      [
        ['a', 'second'],
        ['b', 'src/b'],
      ],
    );
  });

  test('sorts by UTF-8 bytes with one spec or several, with and without surrogate pairs', () => {
    const byBytes = (paths: string[]): string[] => [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const entry = (entryPath: string): PlannedEntry => (entryPath === 'a' ? directory('a') : file(entryPath));
    for (const paths of [
      ['b', 'a/b', 'a-c', 'a', 'é', 'z', '中', 'a.txt'],
      ['b', 'a/b', 'a-c', '\u{FFFD}', '\u{1F600}', 'z', '\u{E000}'],
    ]) {
      const expected = byBytes(paths);
      assert.deepEqual(mergeEntries([paths.map(entry)]).map((merged) => merged.path), expected);
      assert.deepEqual(mergeEntries([paths.slice(0, 3).map(entry), paths.slice(3).map(entry)]).map((merged) => merged.path), expected);
    }
  });

  test('a directory replaced by a file while its children remain is refused', () => {
    assert.throws(() => mergeEntries([[directory('d'), file('d/x')], [file('d')]]), UsageError);
    assert.doesNotThrow(() => mergeEntries([[directory('d'), file('d/x')], [directory('d')]]));
  });

  test('a file two levels up is refused after siblings have cleared the nearer directory', () => {
    const deep = [directory('d'), directory('d/e'), file('d/e/x'), file('d/e/y'), directory('d/e/f'), file('d/e/f/z')];
    assert.throws(() => mergeEntries([deep, [], [file('d')]]), /would be written under \/d,/);
    assert.deepEqual(mergeEntries([[], deep, []]).map((entry) => entry.path), ['d', 'd/e', 'd/e/f', 'd/e/f/z', 'd/e/x', 'd/e/y']);
  });
});

describe('compareTarPaths', () => {
  test('orders as the UTF-8 bytes do, surrogate pairs and U+E000-U+FFFF included', () => {
    // UTF-16 code unit order puts U+FFFD (0xFFFD) after U+1F600 (0xD83D 0xDE00); UTF-8 does not.
    const alphabet = ['a', 'b', '/', '.', '-', 'é', 'ü', '\u{E000}', '\u{FFFD}', '\u{1F600}', '\u{1F601}', '\u{10000}', '中'];
    const names: string[] = [];
    let state = 12345;
    for (let n = 0; n < 400; n++) {
      let name = '';
      const length = 1 + (n % 5);
      for (let i = 0; i < length; i++) {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        name += alphabet[state % alphabet.length];
      }
      names.push(name);
    }
    const byBytes = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual([...names].sort(compareTarPaths), byBytes);
    assert.ok(compareTarPaths('\u{FFFD}', '\u{1F600}') < 0);
    assert.ok(compareTarPaths('a\u{1F600}', 'a\u{1F601}') < 0);
  });
});
