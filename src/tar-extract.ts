import type TarStream from 'tar-stream';
import type { Extract } from 'tar-stream';

/**
 * tar-stream, loaded on first use: most commands (`add` among them) never read a tar, and
 * loading it costs every start-up several milliseconds. Load it before opening the stream to
 * parse, so no await falls between opening a stream and handling its errors.
 */
let tarStream: typeof TarStream | undefined;

export async function loadTarStream(): Promise<void> {
  tarStream ??= (await import('tar-stream')).default;
}

/** A new extractor; loadTarStream() must have been awaited. */
export function tarExtract(): Extract {
  if (!tarStream) throw new Error('internal error: tarExtract() before loadTarStream()');
  return tarStream.extract();
}
