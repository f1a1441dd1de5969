import { describeLayer, type AddSpec } from '../image/layer.js';
import { type ConfigEdits, describeEdits } from '../image/mutate.js';
import type { Plan, PlanStep } from './steps.js';

export interface AddChanges {
  from: string;
  adds: AddSpec[];
  edits: ConfigEdits;
  chmod?: number;
  chown?: { uid: number; gid: number };
}

/**
 * `imgbuild add` as a plan (pure): the config edits as one step, then the files as one
 * layer, with the history lines `add` has always written (so the digests stay the same).
 */
export function planFromAdd(changes: AddChanges): Plan {
  const steps: PlanStep[] = [];
  const editText = describeEdits(changes.edits);
  if (editText) steps.push({ kind: 'config', edits: changes.edits, history: { createdBy: editText }, where: 'the config flags' });
  if (changes.adds.length) {
    steps.push({
      kind: 'copy',
      items: changes.adds.map((spec) => ({ sources: [spec.source], destination: spec.destination, text: spec.text })),
      chmod: changes.chmod,
      chown: changes.chown,
      destinations: 'as-written',
      history: { createdBy: describeLayer(changes.adds, { chmod: changes.chmod, chown: changes.chown }) },
      where: '--add',
    });
  }
  return { base: changes.from, steps };
}
