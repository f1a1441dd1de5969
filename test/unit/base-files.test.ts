import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { BaseFiles } from '../../src/plan/base-files.js';
import { inMemoryImage, type LayerEntry } from '../helpers/image-layers.js';

type Entry = LayerEntry;

/** An image of these layers (bottom first), counting which layers were opened. */
async function image(layers: Entry[][], cacheDir?: string) {
  const { layers: descriptors, openLayer, opened } = await inMemoryImage(layers);
  return { files: new BaseFiles({ layers: descriptors, cacheDir, openLayer }), opened };
}

const BOTTOM: Entry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
  { name: 'opt/', type: 'directory' },
  { name: 'opt/old/', type: 'directory' },
  { name: 'opt/old/file', content: 'x' },
  { name: 'run/', type: 'directory' },
  { name: 'var/', type: 'directory' },
  { name: 'var/run', type: 'symlink', linkname: '/run' },
  { name: 'srv/', type: 'directory' },
  { name: 'srv/keep', content: 'k' },
];

describe('BaseFiles', () => {
  test('kinds, symlinked parents, whiteouts and opaque directories', async () => {
    const { files } = await image([BOTTOM, [{ name: 'opt/.wh.old', content: '' }, { name: 'srv/.wh..wh..opq', content: '' }, { name: 'srv/new', content: 'n' }]]);
    assert.deepEqual(await files.lookup('/etc'), { found: true, kind: 'directory', path: '/etc' });
    assert.deepEqual(await files.lookup('/var/run'), { found: true, kind: 'directory', path: '/run' }, 'a symlink is followed');
    assert.deepEqual(await files.lookup('/var/run', { noFollow: true }), { found: true, kind: 'symlink', path: '/var/run' });
    assert.equal((await files.lookup('/opt/old')).found, false, 'a whiteout deletes a directory');
    assert.equal((await files.lookup('/opt/old/file')).found, false, 'and what was under it');
    assert.equal((await files.lookup('/srv/keep')).found, false, 'an opaque directory hides lower contents');
    assert.equal((await files.lookup('/srv/new')).found, true, 'but not its own');
    assert.equal((await files.lookup('/etc/passwd/x')).found, false, 'nothing is under a file');
    assert.equal(await files.isDirectory('/'), true);
  });

  test('steps of the plan are seen before the base', async () => {
    const { files } = await image([BOTTOM]);
    assert.equal(await files.isDirectory('/opt/app'), false);
    files.record('/opt/app', 'directory');
    assert.equal(await files.isDirectory('/opt/app'), true);
  });

  test('layers are read top down, only until the answer is known', async () => {
    const { files, opened } = await image([BOTTOM, [{ name: 'app/', type: 'directory' }]]);
    assert.equal(await files.isDirectory('/app'), true);
    assert.deepEqual(opened, [1], 'the bottom layer was read although the top one decided');
  });

  test('account files come from the top layer that has them', async () => {
    const { files } = await image([BOTTOM, [{ name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }]]);
    assert.equal(await files.accountFile('passwd'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await files.accountFile('group'), '');
  });

  test('indexes are cached on disk per layer digest: the next build opens no layer', async () => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-index-'));
    try {
      const first = await image([BOTTOM], cacheDir);
      assert.equal(await first.files.isDirectory('/var/run'), true);
      assert.deepEqual(first.opened, [0]);
      const second = await image([BOTTOM], cacheDir);
      assert.equal(await second.files.isDirectory('/var/run'), true);
      assert.equal((await second.files.accountFile('passwd')).includes('app:x:1000'), true);
      assert.deepEqual(second.opened, []);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
