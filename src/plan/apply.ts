import type { Digest } from '../digest.js';
import type { Descriptor, HistoryEntry, ImageConfig } from '../image/manifest.js';
import { type ConfigEdits, editRunConfig, type ImageDocument } from '../image/mutate.js';
import { familyOf, gzipLayerMediaType } from '../image/mediatypes.js';
import type { StepHistory } from './steps.js';

/** A layer a step made, as the manifest and config name it. */
export interface StepLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
}

/**
 * Applies one executed step to an image (pure): config edits, the step's layer if it made
 * one, and its history entry (`empty_layer` when it made none), as docker records them.
 */
export function applyStep(image: ImageDocument, change: { edits?: ConfigEdits; layer?: StepLayer; history?: StepHistory }, created: string): ImageDocument {
  const { layer, history } = change;
  const entries: HistoryEntry[] = [];
  if (history) {
    const entry: HistoryEntry = { created, created_by: history.createdBy, ...(history.comment ? { comment: history.comment } : {}) };
    if (!layer) entry.empty_layer = true;
    entries.push(entry);
  }
  const author = change.edits?.author;
  const config: ImageConfig = {
    ...image.config,
    ...(author === undefined ? {} : { author }),
    created,
    config: editRunConfig(image.config.config, change.edits ?? {}),
    rootfs: {
      ...image.config.rootfs,
      diff_ids: layer ? [...image.config.rootfs.diff_ids, layer.diffId] : [...image.config.rootfs.diff_ids],
    },
    history: [...(image.config.history ?? []), ...entries],
  };
  const layers: Descriptor[] = layer
    ? [...image.manifest.layers, { mediaType: gzipLayerMediaType(familyOf(image.manifestMediaType)), digest: layer.digest, size: layer.size }]
    : [...image.manifest.layers];
  return { ...image, config, manifest: { ...image.manifest, layers } };
}
