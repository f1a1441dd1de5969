/**
 * The Kubernetes API as the build engines use it: create, read, list and delete any object, with
 * API errors turned into messages that say what was refused and how to get it allowed.
 */
import { ApiException, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { ImgbuildError } from '../../errors.js';
import type { ResolvedCluster } from '../config.js';

/** The cluster refused or failed a request. */
export class KubernetesError extends ImgbuildError {
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.status = options.status;
  }
}

const PLURALS: Record<string, string> = { Job: 'jobs', Pod: 'pods', ConfigMap: 'configmaps', Secret: 'secrets', Event: 'events' };

function bodyMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return (body as { message?: string } | undefined)?.message;
}

/** An API failure in the user's terms: RBAC names the verb and resource, a dead server its address. */
export function describeApiError(error: unknown, action: { verb: string; kind: string; namespace?: string }, cluster: ResolvedCluster): KubernetesError {
  const resource = PLURALS[action.kind] ?? action.kind.toLowerCase();
  if (error instanceof ApiException) {
    const detail = bodyMessage(error.body) ?? error.message;
    if (error.code === 403) {
      return new KubernetesError(`the cluster does not allow you to ${action.verb} ${resource}${action.namespace ? ` in namespace ${action.namespace}` : ''} (Forbidden): ${detail}`, {
        status: 403,
        hint: `ask for a Role that grants "${action.verb}" on "${resource}" there (docs/kaniko.md lists the minimal Role), or pick another --namespace`,
      });
    }
    if (error.code === 401) {
      return new KubernetesError(`the API server ${cluster.server} did not accept your credentials (context ${cluster.contextName})`, {
        status: 401,
        hint: 'refresh them (`kubectl get ns` shows the same problem), or pick another --context',
      });
    }
    if (error.code === 404 && /namespaces? "[^"]+" not found/.test(detail)) {
      return new KubernetesError(`namespace ${action.namespace} does not exist`, { status: 404, hint: 'create it (kubectl create namespace NAME) or pass --namespace' });
    }
    return new KubernetesError(`${action.verb} ${resource}: the API server answered ${error.code}: ${detail}`, { status: error.code });
  }
  const code = (error as NodeJS.ErrnoException)?.code ?? (error as { cause?: NodeJS.ErrnoException })?.cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
    return new KubernetesError(`cannot reach the API server ${cluster.server} (${code}) of context ${cluster.contextName}`, {
      hint: 'check that the cluster is up and the kubeconfig is the right one (KUBECONFIG, --kubeconfig, --context)',
    });
  }
  return new KubernetesError(`${action.verb} ${resource}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

export class ClusterApi {
  readonly objects: KubernetesObjectApi;
  constructor(readonly cluster: ResolvedCluster) {
    this.objects = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
  }

  get namespace(): string {
    return this.cluster.namespace;
  }

  async create<T extends KubernetesObject>(object: T, options: { dryRun?: boolean } = {}): Promise<T> {
    try {
      return await this.objects.create(object, undefined, options.dryRun ? 'All' : undefined, 'imgbuild');
    } catch (error) {
      throw describeApiError(error, { verb: 'create', kind: object.kind!, namespace: object.metadata?.namespace }, this.cluster);
    }
  }

  async read<T extends KubernetesObject>(apiVersion: string, kind: string, name: string): Promise<T | undefined> {
    try {
      return await this.objects.read<T>({ apiVersion, kind, metadata: { name, namespace: this.namespace } } as never);
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw describeApiError(error, { verb: 'get', kind, namespace: this.namespace }, this.cluster);
    }
  }

  async list<T extends KubernetesObject>(apiVersion: string, kind: string, selectors: { label?: string; field?: string } = {}): Promise<T[]> {
    try {
      const list = await this.objects.list<T>(apiVersion, kind, this.namespace, undefined, undefined, undefined, selectors.field, selectors.label);
      return list.items;
    } catch (error) {
      throw describeApiError(error, { verb: 'list', kind, namespace: this.namespace }, this.cluster);
    }
  }

  /** Deletes an object and (for a Job) its pods; a missing object is not an error. */
  async delete(object: KubernetesObject): Promise<void> {
    try {
      await this.objects.delete(object, undefined, undefined, 0, undefined, 'Background');
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return;
      throw describeApiError(error, { verb: 'delete', kind: object.kind!, namespace: object.metadata?.namespace }, this.cluster);
    }
  }
}
