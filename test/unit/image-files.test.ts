// COPY --from reads a subtree of another image from its layers: whiteouts and opaque
// directories of upper layers apply, hard links become copies, owners and modes are kept,
// and only the layers that touch the subtree are opened.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BaseFiles } from '../../src/plan/base-files.js';
import { extractTree, type SourceImage } from '../../src/plan/image-files.js';
import { inMemoryImage, type LayerEntry } from '../helpers/image-layers.js';

type Entry = LayerEntry;

async function image(layers: Entry[][]): Promise<SourceImage & { opened: number[] }> {
  const { layers: descriptors, openLayer, opened } = await inMemoryImage(layers);
  return { name: 'src:1', key: 'src:1 linux/amd64', files: new BaseFiles({ layers: descriptors, openLayer }), layers: descriptors, openLayer, opened };
}

describe('extractTree (COPY --from)', () => {
  const spools: string[] = [];
  after(async () => {
    for (const spool of spools) await rm(spool, { recursive: true, force: true });
  });

  test('upper layers win, whiteouts and opaque directories hide lower entries, hard links are copies', async () => {
    const source = await image([
      [
        { name: 'app/', type: 'directory', uid: 7, mode: 0o750 },
        { name: 'app/a', content: 'old a' },
        { name: 'app/b', content: 'b', uid: 1234, mode: 0o600 },
        { name: 'app/d/', type: 'directory' },
        { name: 'app/d/x', content: 'x' },
        { name: 'app/gone/', type: 'directory' },
        { name: 'app/gone/f', content: 'f' },
        { name: 'other/', type: 'directory' },
        { name: 'other/o', content: 'o' },
      ],
      [{ name: 'other/p', content: 'p' }],
      [
        { name: 'app/.wh.a' },
        { name: 'app/.wh.gone' },
        { name: 'app/d/.wh..wh..opq' },
        { name: 'app/d/y', content: 'y' },
        { name: 'app/c', content: 'cc' },
        { name: 'app/h', type: 'link', linkname: 'app/c' },
        { name: 'app/l', type: 'symlink', linkname: 'c' },
      ],
    ]);
    const spool = await mkdtemp(path.join(tmpdir(), 'imgbuild-tree-test-'));
    spools.push(spool);
    const tree = await extractTree(source, '/app', spool, 'Dockerfile:3');
    spools.push(tree.directory);
    assert.deepEqual([...tree.entries.keys()].sort(), ['', 'b', 'c', 'd', 'd/y', 'h', 'l']);
    assert.deepEqual(source.opened.sort(), [0, 0, 1, 2, 2], 'the index reads every layer once; only layers touching /app (not 1) are read again');
    const b = tree.entries.get('b')!;
    assert.deepEqual([b.owner, b.mode], [{ uid: 1234, gid: 1234 }, 0o600]);
    const root = tree.entries.get('')!;
    assert.deepEqual([root.kind, root.owner?.uid, root.mode], ['directory', 7, 0o750]);
    const hard = tree.entries.get('h')!;
    assert.equal(hard.kind, 'file');
    assert.equal(await readFile(hard.sourcePath, 'utf8'), 'cc');
    assert.equal(hard.kind === 'file' && hard.size, 2);
    const link = tree.entries.get('l')!;
    assert.equal(link.kind === 'symlink' && link.target, 'c');
  });

  test('a file subtree is the file alone', async () => {
    const source = await image([[{ name: 'bin/', type: 'directory' }, { name: 'bin/tool', content: 'tool', mode: 0o755 }, { name: 'bin/toolbox', content: 'no' }]]);
    const spool = await mkdtemp(path.join(tmpdir(), 'imgbuild-tree-test-'));
    spools.push(spool);
    const tree = await extractTree(source, 'bin/tool', spool, 'Dockerfile:3');
    spools.push(tree.directory);
    assert.deepEqual([...tree.entries.keys()], ['']);
    assert.equal(await readFile(tree.entries.get('')!.sourcePath, 'utf8'), 'tool');
  });
});
