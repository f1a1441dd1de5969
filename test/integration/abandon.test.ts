// When the push fails while a large layer is being uploaded as it is built, the upload is
// abandoned and its session closed: nothing is left in the registry's upload area.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addToImage } from '../../src/add.js';
import { NotFoundError } from '../../src/errors.js';
import { parseAddSpec } from '../../src/image/layer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

async function randomFile(file: string, megabytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < megabytes; i++) if (!out.write(randomBytes(1024 * 1024))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

async function uploadSessions(registry: RunningRegistry, repository: string): Promise<string[]> {
  return readdir(path.join(registry.dataDir, 'docker/registry/v2/repositories', repository, '_uploads')).catch(() => []);
}

describe('a failed push abandons an upload started while the layer was built', () => {
  let registry: RunningRegistry;
  let workDir: string;

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry(), mkdtemp(path.join(tmpdir(), 'imgbuild-abandon-test-'))]);
    await randomFile(path.join(workDir, 'big.bin'), 96);
  });
  after(async () => {
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('a missing base fails the add and leaves no upload session behind', async () => {
    const client = new RegistryClient(registry.host, { monolithicUploadLimit: 1024 * 1024, chunkSize: 4 * 1024 * 1024 });
    try {
      await assert.rejects(
        addToImage({
          from: `${registry.host}/no/such-base:1`,
          to: `${registry.host}/abandoned/app:1`,
          adds: [parseAddSpec(`${path.join(workDir, 'big.bin')}:/big.bin`)],
          clientFor: () => client,
        }),
        NotFoundError,
      );
      // The upload loop notices between chunks; give it a moment, then look.
      let sessions: string[] = [];
      for (let i = 0; i < 50; i++) {
        await sleep(100);
        sessions = await uploadSessions(registry, 'abandoned/app');
        if (sessions.length === 0) break;
      }
      assert.deepEqual(sessions, []);
    } finally {
      await client.close();
    }
  });
});
