/**
 * When imgbuild runs as a build pod (`--in-cluster`), the client reads its result from the
 * container's termination message: IMGBUILD_RESULT_FILE names the file (/dev/termination-log),
 * and each command writes `{"result": ...}` on success or `{"error": ...}` on failure there.
 * Kubernetes keeps at most 4096 bytes, so per-layer details are left out.
 */
import { writeFileSync } from 'node:fs';

const LIMIT = 4096;

function write(document: unknown): void {
  const file = process.env.IMGBUILD_RESULT_FILE;
  if (!file) return;
  writeFileSync(file, JSON.stringify(document).slice(0, LIMIT));
}

export function writeResult(result: { reference: string; digest: string } & Record<string, unknown>): void {
  const { layers: _layers, layer: _layer, ...kept } = result;
  write({ result: kept });
}

export function writeError(error: { message: string; hint?: string; exitCode?: number }): void {
  try {
    write({ error: { message: error.message.slice(0, 3000), ...(error.hint ? { hint: error.hint.slice(0, 800) } : {}) } });
  } catch {
    // The error itself is what matters; it is on stderr either way.
  }
}
