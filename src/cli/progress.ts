import type { BlobOutcome, BlobToPush, PushEvents } from '../image/push.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

const OUTCOME_TEXT: Record<BlobOutcome, string> = {
  existed: 'already there',
  mounted: 'mounted',
  uploaded: 'uploaded',
  copied: 'copied',
};

/**
 * Progress for a terminal: one line per finished blob and a live byte count for uploads.
 * Only used when stderr is a TTY; otherwise nothing is drawn.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): PushEvents {
  const uploaded = new Map<string, number>();
  let lastDraw = 0;
  const clearLine = () => stream.write('\r\x1b[K');
  return {
    earlyLayerProgress(bytes: number) {
      clearLine();
      stream.write(`uploading new layer while building it: ${formatBytes(bytes)}`);
    },
    blobProgress(blob: BlobToPush, bytes: number) {
      uploaded.set(blob.digest, bytes);
      const now = Date.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      clearLine();
      stream.write(`uploading ${blob.label ?? 'blob'} ${shortDigest(blob.digest)} ${formatBytes(bytes)} / ${formatBytes(blob.size)}`);
    },
    blobDone(blob: BlobToPush, outcome: BlobOutcome) {
      clearLine();
      stream.write(`${(blob.label ?? 'blob').padEnd(10)} ${shortDigest(blob.digest)} ${formatBytes(blob.size).padStart(8)}  ${OUTCOME_TEXT[outcome]}\n`);
    },
  };
}
