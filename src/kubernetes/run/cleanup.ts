/**
 * Deleting what a build created: one build's objects, or every old imgbuild object (`imgbuild clean`).
 * Secrets are deleted by name, never listed: the minimal Role needs no right to read Secrets.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { buildSelector, BUILD_ID_LABEL, CREATED_ANNOTATION, objectName } from '../render/objects.js';
import type { ClusterApi } from './api.js';

/** Jobs first (their pods go with them), then whatever else carries the labels. */
const LISTED_KINDS: [apiVersion: string, kind: string][] = [
  ['batch/v1', 'Job'],
  ['v1', 'Pod'],
  ['v1', 'ConfigMap'],
];

/** The Secret a build may have made (see kaniko.ts); deleting a missing one is not an error. */
function credentialsSecret(api: ClusterApi, buildId: string): KubernetesObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: objectName({ buildId, namespace: api.namespace, createdAt: '' }, 'credentials'), namespace: api.namespace } };
}

export async function listBuildObjects(api: ClusterApi, buildId?: string): Promise<KubernetesObject[]> {
  const lists = await Promise.all(
    LISTED_KINDS.map(async ([apiVersion, kind]) => (await api.list(apiVersion, kind, { label: buildSelector(buildId) })).map((item) => ({ ...item, apiVersion, kind }))),
  );
  return lists.flat();
}

/** Deletes objects concurrently (a missing one is not an error); the first failure is thrown once all are done. */
export async function deleteObjects(api: ClusterApi, objects: KubernetesObject[]): Promise<void> {
  const results = await Promise.allSettled(objects.map((object) => api.delete(object)));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function deleteBuildObjects(api: ClusterApi, buildId: string): Promise<number> {
  const objects = await listBuildObjects(api, buildId);
  await deleteObjects(api, [...objects, credentialsSecret(api, buildId)]);
  return objects.length;
}

export interface CleanResult {
  deleted: { kind: string; name: string; buildId: string }[];
  kept: number;
}

/** Deletes every imgbuild object in the namespace created more than `olderThanMs` ago (0: all). */
export async function cleanBuildObjects(api: ClusterApi, olderThanMs: number, now = Date.now()): Promise<CleanResult> {
  const result: CleanResult = { deleted: [], kept: 0 };
  const builds = new Set<string>();
  for (const object of await listBuildObjects(api)) {
    const stamp = object.metadata?.annotations?.[CREATED_ANNOTATION] ?? object.metadata?.creationTimestamp;
    const created = stamp === undefined ? Number.NaN : new Date(stamp).getTime();
    if (olderThanMs > 0 && !(now - created >= olderThanMs)) {
      result.kept += 1;
      continue;
    }
    const buildId = object.metadata?.labels?.[BUILD_ID_LABEL] ?? '';
    await api.delete(object);
    result.deleted.push({ kind: object.kind!, name: object.metadata!.name!, buildId });
    if (buildId) builds.add(buildId);
  }
  for (const buildId of builds) await api.delete(credentialsSecret(api, buildId));
  return result;
}
