// In-memory images for tests of code that reads layers (the base file index, COPY --from):
// gzip tar layers made with tar-stream, served by an openLayer that counts what it opened.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { sha256Digest, type Digest } from '../../src/digest.js';

export type LayerEntry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; linkname?: string; content?: string; uid?: number; mode?: number };

export async function gzipLayer(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const entry of entries) {
    const header = { name: entry.name, type: entry.type ?? 'file', linkname: entry.linkname, uid: entry.uid ?? 0, gid: entry.uid ?? 0, mode: entry.mode };
    if (header.type === 'file') pack.entry(header, entry.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

/** An image of these layers (bottom first); `opened` lists the positions of the layers opened, in order. */
export async function inMemoryImage(layers: LayerEntry[][]) {
  const blobs = new Map<Digest, Buffer>();
  const descriptors: Array<{ mediaType: string; digest: Digest; size: number }> = [];
  for (const entries of layers) {
    const bytes = await gzipLayer(entries);
    const digest = sha256Digest(bytes);
    blobs.set(digest, bytes);
    descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length });
  }
  const opened: number[] = [];
  const openLayer = async (digest: Digest) => {
    opened.push(descriptors.findIndex((descriptor) => descriptor.digest === digest));
    return Readable.from([blobs.get(digest)!]);
  };
  return { layers: descriptors, openLayer, opened };
}
