/** Deleting what a build created: one build's objects, or every old imgbuild object (`imgbuild clean`). */
import type { KubernetesObject } from '@kubernetes/client-node';
import { buildSelector, BUILD_ID_LABEL, CREATED_ANNOTATION } from '../render/objects.js';
import type { ClusterApi } from './api.js';

/** Jobs first (their pods go with them), then whatever else carries the labels. */
const KINDS: [apiVersion: string, kind: string][] = [
  ['batch/v1', 'Job'],
  ['v1', 'Pod'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
];

export async function listBuildObjects(api: ClusterApi, buildId?: string): Promise<KubernetesObject[]> {
  const found: KubernetesObject[] = [];
  for (const [apiVersion, kind] of KINDS) {
    for (const item of await api.list(apiVersion, kind, { label: buildSelector(buildId) })) found.push({ ...item, apiVersion, kind });
  }
  return found;
}

export async function deleteBuildObjects(api: ClusterApi, buildId: string): Promise<number> {
  const objects = await listBuildObjects(api, buildId);
  for (const object of objects) await api.delete(object);
  return objects.length;
}

export interface CleanResult {
  deleted: { kind: string; name: string; buildId: string }[];
  kept: number;
}

/** Deletes every imgbuild object in the namespace created before `olderThanMs` ago (0: all). */
export async function cleanBuildObjects(api: ClusterApi, olderThanMs: number, now = Date.now()): Promise<CleanResult> {
  const result: CleanResult = { deleted: [], kept: 0 };
  for (const object of await listBuildObjects(api)) {
    const created = Date.parse(object.metadata?.annotations?.[CREATED_ANNOTATION] ?? String(object.metadata?.creationTimestamp ?? ''));
    if (olderThanMs > 0 && !(now - created >= olderThanMs)) {
      result.kept += 1;
      continue;
    }
    await api.delete(object);
    result.deleted.push({ kind: object.kind!, name: object.metadata!.name!, buildId: object.metadata?.labels?.[BUILD_ID_LABEL] ?? '' });
  }
  return result;
}
