// The embedded registry under load and a crash: 50 concurrent pushes of different images that
// share layers (imgbuild's registry client in chunks, and skopeo), the server SIGKILLed while
// they run and restarted on the same directory. Afterwards every push that returned a digest is
// served whole, every stored blob hashes to its name, and nothing half-written is visible.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { isDigest, sha256Digest, type Digest } from '../../src/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { run, skopeoRegistryFlags } from '../helpers/tools.js';

const KiB = 1024;
const PUSHES = 50;
const KILL_AFTER_ACKNOWLEDGED = 8;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

interface Blob {
  mediaType: string;
  bytes: Buffer;
  digest: Digest;
}
interface TestImage {
  repository: string;
  tag: string;
  blobs: Blob[];
  manifest: Buffer;
  viaSkopeo: boolean;
}

const blob = (mediaType: string, bytes: Buffer): Blob => ({ mediaType, bytes, digest: sha256Digest(bytes) });
const descriptor = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.length });

// Layers shared by every image, and a layer and config of each image's own.
const shared = [blob(OCI_LAYER, randomBytes(384 * KiB)), blob(OCI_LAYER, randomBytes(256 * KiB))];
function makeImage(index: number): TestImage {
  const own = blob(OCI_LAYER, randomBytes(96 * KiB + index));
  const layers = [...shared, own];
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: { Env: [`IMAGE=${index}`] } })),
  );
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(config), layers: layers.map(descriptor) }));
  return { repository: `durable/app-${index % 7}`, tag: `push-${index}`, blobs: [config, ...layers], manifest, viaSkopeo: index % 5 === 0 };
}

let registry: RunningRegistry;
let workDir: string;

before(async () => {
  registry = await startRegistry({ server: 'imgbuild' });
  workDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-durability-'));
});

after(async () => {
  await registry?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function pushWithClient(image: TestImage): Promise<Digest> {
  // Small chunks, so most uploads are several PATCHes and the kill lands inside one.
  const client = new RegistryClient(registry.host, { monolithicUploadLimit: 32 * KiB, chunkSize: 32 * KiB, retry: { attempts: 8, baseDelayMs: 200, maxDelayMs: 2_000 } });
  try {
    for (const b of image.blobs) {
      if ((await client.headBlob(image.repository, b.digest)) !== undefined) continue;
      await client.uploadBlob(image.repository, b.digest, b.bytes.length, (start, end) => Readable.from([b.bytes.subarray(start, end)]));
    }
    return await client.putManifest(image.repository, image.tag, image.manifest, OCI_MANIFEST);
  } finally {
    await client.close();
  }
}

async function pushWithSkopeo(image: TestImage): Promise<Digest> {
  const layout = path.join(workDir, image.tag);
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const manifest = blob(OCI_MANIFEST, image.manifest);
  for (const b of [...image.blobs, manifest]) await writeFile(path.join(layout, 'blobs', 'sha256', b.digest.slice(7)), b.bytes);
  await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...descriptor(manifest), annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }));
  const digestFile = path.join(layout, 'pushed-digest');
  const result = await run('skopeo', ['--insecure-policy', 'copy', '--retry-times', '3', ...skopeoRegistryFlags(registry, 'dest'), '--digestfile', digestFile, `oci:${layout}:latest`, `docker://${registry.host}/${image.repository}:${image.tag}`], { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`skopeo copy failed: ${result.stderr}`);
  const digest = (await readFile(digestFile, 'utf8')).trim();
  assert.ok(isDigest(digest));
  return digest;
}

/**
 * What is wrong with the store in `root`: a blob that does not hash to its name, a link
 * without its blob, a torn manifest record or tag, a tag pointing at a manifest that is not
 * there. (Temporary files under tmp/ are not content; the store discards them on start.)
 */
async function storeProblems(root: string): Promise<string[]> {
  const problems: string[] = [];
  const exists = (file: string) => stat(file).then(() => true, () => false);
  for (const file of await filesUnder(path.join(root, 'blobs'))) {
    const hex = createHash('sha256').update(await readFile(path.join(root, 'blobs', file))).digest('hex');
    if (`sha256/${hex}` !== file) problems.push(`blob ${file} does not match its digest`);
  }
  for (const file of await filesUnder(path.join(root, 'repositories'))) {
    const full = path.join(root, 'repositories', file);
    const [kind, name] = file.split(path.sep).slice(-2) as [string, string];
    const content = await readFile(full, 'utf8');
    if (kind === '_blobs') {
      if (!(await exists(path.join(root, 'blobs/sha256', name)))) problems.push(`link ${file} without its blob`);
    } else if (kind === '_manifests') {
      let record: { mediaType?: unknown } = {};
      try {
        record = JSON.parse(content) as typeof record;
      } catch {
        // reported below
      }
      if (typeof record.mediaType !== 'string') problems.push(`torn manifest record ${file}: ${JSON.stringify(content)}`);
      if (!(await exists(path.join(root, 'blobs/sha256', name)))) problems.push(`manifest record ${file} without its bytes`);
    } else if (kind === '_tags') {
      if (!isDigest(content)) problems.push(`torn tag ${file}: ${JSON.stringify(content)}`);
      else if (!(await exists(path.join(path.dirname(path.dirname(full)), '_manifests', content.slice(7))))) problems.push(`tag ${file} points at a manifest the repository lacks`);
    } else if (!file.split(path.sep).includes('_referrers')) problems.push(`unexpected file ${file}`);
  }
  return problems;
}

/** Every file under `dir`, relative. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

test('50 concurrent pushes survive a SIGKILL of the registry: acknowledged images are served, blobs match, no torn files', { timeout: 10 * 60_000 }, async (t) => {
  const images = Array.from({ length: PUSHES }, (_, index) => makeImage(index));
  const acknowledged: Array<{ image: TestImage; digest: Digest }> = [];
  const failures: string[] = [];
  let settled = 0;
  let inFlightAtKill = -1;
  let atKill: string[] = [];
  let killed!: () => void;
  const killedNow = new Promise<void>((resolve) => (killed = resolve));

  const pushes = images.map(async (image) => {
    try {
      const digest = await (image.viaSkopeo ? pushWithSkopeo(image) : pushWithClient(image));
      acknowledged.push({ image, digest });
      if (acknowledged.length === KILL_AFTER_ACKNOWLEDGED) killed();
    } catch (error) {
      failures.push(`${image.repository}:${image.tag}: ${(error as Error).message.split('\n')[0]}`);
    } finally {
      settled++;
    }
  });
  const crash = (async () => {
    await Promise.race([killedNow, Promise.all(pushes)]);
    inFlightAtKill = PUSHES - settled;
    registry.kill();
    await sleep(300);
    // The store as the kill left it, before retries could mend anything.
    atKill = await storeProblems(registry.dataDir);
    await registry.restart();
  })();
  await Promise.all([...pushes, crash]);

  t.diagnostic(`${acknowledged.length} of ${PUSHES} pushes acknowledged, ${inFlightAtKill} in flight at the kill, ${failures.length} failed`);
  for (const failure of failures) t.diagnostic(`not acknowledged: ${failure}`);
  assert.ok(inFlightAtKill > 0, `the kill must land while pushes are in flight (${inFlightAtKill} were)`);
  assert.ok(registry.logs().includes('signal SIGKILL'), 'the registry process was killed');
  assert.deepEqual(atKill, [], 'what the kill left on disk');
  assert.ok(acknowledged.length >= KILL_AFTER_ACKNOWLEDGED, `${acknowledged.length} pushes acknowledged; failures:\n${failures.join('\n')}`);

  // What was acknowledged is served, by tag, and whole (the client checks every digest).
  const reader = new RegistryClient(registry.host);
  try {
    for (const { image, digest } of acknowledged) {
      const served = await reader.getManifest(image.repository, image.tag);
      assert.equal(served.digest, digest, `${image.repository}:${image.tag}`);
      // skopeo compresses the layers it pushes, so its manifest is its own; the client's is ours.
      if (!image.viaSkopeo) assert.ok(served.bytes.equals(image.manifest));
      const { config, layers } = JSON.parse(served.bytes.toString('utf8')) as { config: { digest: Digest }; layers: Array<{ digest: Digest }> };
      for (const { digest: blobDigest } of [config, ...layers]) await reader.getBlob(image.repository, blobDigest);
    }
  } finally {
    await reader.close();
  }

  // ... and the store as it stands now is as whole as it was at the kill.
  assert.deepEqual(await storeProblems(registry.dataDir), []);
  assert.deepEqual(await readdir(path.join(registry.dataDir, 'tmp')), [], 'temporary files left behind');
});
