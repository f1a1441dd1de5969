/**
 * Finds the cluster the way kubectl does:
 *   --kubeconfig FILE (only that file) > KUBECONFIG (a list, merged: the first file that names a
 *   cluster, user, context or current-context wins) > ~/.kube/config > the pod's service account
 *   (KUBERNETES_SERVICE_HOST/PORT and the mounted token), as client-go's in-cluster config.
 * The context is --context or the current one; the namespace is --namespace, else the context's,
 * else the service account's (in a pod), else `default`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { rootCertificates } from 'node:tls';
import path from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { UsageError, InputError } from '../errors.js';
import { extraCaCertificates } from '../registry/trust.js';

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  /** Default process.env: KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT. */
  env?: NodeJS.ProcessEnv;
  /** Prefix of /var/run/secrets/kubernetes.io/serviceaccount (tests point it at a temp dir). */
  serviceAccountRoot?: string;
}

export interface ResolvedCluster {
  kubeConfig: KubeConfig;
  contextName: string;
  namespace: string;
  server: string;
  /** Where the configuration came from, for messages: a file list or "in-cluster service account". */
  source: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface ConfigPieces {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext?: string;
}

function loadFile(file: string, flag: string): ConfigPieces {
  const config = new KubeConfig();
  try {
    config.loadFromFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read the kubeconfig ${file} (${flag}): ${code ?? (error as Error).message}`, {
      hint: code === 'ENOENT' ? 'check the path, or unset it to use ~/.kube/config' : 'check that it is a kubeconfig YAML file (`kubectl config view` reads the same)',
    });
  }
  return { clusters: config.clusters, users: config.users, contexts: config.contexts, currentContext: config.currentContext || undefined };
}

/** kubectl's merge: the first file to set a name (or the current context) wins. */
export function mergeKubeconfigs(pieces: ConfigPieces[]): ConfigPieces {
  const merged: ConfigPieces = { clusters: [], users: [], contexts: [] };
  const addFirst = <T extends { name: string }>(into: T[], items: T[]) => {
    for (const item of items) if (!into.some((existing) => existing.name === item.name)) into.push(item);
  };
  for (const piece of pieces) {
    addFirst(merged.clusters, piece.clusters);
    addFirst(merged.users, piece.users);
    addFirst(merged.contexts, piece.contexts);
    merged.currentContext ??= piece.currentContext;
  }
  return merged;
}

function fromServiceAccount(env: NodeJS.ProcessEnv, root: string): { kubeConfig: KubeConfig; namespace?: string } | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(path.join(root, SERVICE_ACCOUNT_DIR, 'token'))) return undefined;
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  const kubeConfig = new KubeConfig();
  // client-node reads the address from process.env; give it the resolved one for this call.
  process.env.KUBERNETES_SERVICE_HOST = host;
  process.env.KUBERNETES_SERVICE_PORT = port;
  try {
    kubeConfig.loadFromCluster(root === '/' ? '' : root);
  } finally {
    for (const [key, value] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  const namespaceFile = path.join(root, SERVICE_ACCOUNT_DIR, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  return { kubeConfig, namespace: namespace || undefined };
}

/**
 * A cluster without a CA of its own is checked against Node's default trust, which holds
 * NODE_EXTRA_CA_CERTS only when Node read it at start; the `imgbuild` command hands it on
 * instead (see src/cli/imgbuild.sh), so it is given here as the cluster's CA, with Node's roots.
 */
function withExtraCertificates(cluster: Cluster, env: NodeJS.ProcessEnv): Cluster {
  if (cluster.caData || cluster.caFile || cluster.skipTLSVerify || !cluster.server.startsWith('https:')) return cluster;
  const extra = extraCaCertificates(env);
  return extra ? { ...cluster, caData: Buffer.from([...rootCertificates, extra].join('\n')).toString('base64') } : cluster;
}

export function resolveCluster(options: ClusterOptions = {}): ResolvedCluster {
  const env = options.env ?? process.env;
  let pieces: ConfigPieces | undefined;
  let source: string;
  let serviceAccountNamespace: string | undefined;
  let kubeConfig: KubeConfig;
  if (options.kubeconfig) {
    pieces = loadFile(options.kubeconfig, '--kubeconfig');
    source = options.kubeconfig;
  } else if (env.KUBECONFIG) {
    // kubectl skips list entries that do not exist, but fails when none does.
    const files = env.KUBECONFIG.split(path.delimiter).filter((file) => file && existsSync(file));
    if (files.length === 0) {
      throw new InputError(`KUBECONFIG=${env.KUBECONFIG} names no existing file`, { hint: 'point KUBECONFIG at your kubeconfig, or pass --kubeconfig FILE' });
    }
    pieces = mergeKubeconfigs(files.map((file) => loadFile(file, 'KUBECONFIG')));
    source = files.join(path.delimiter);
  } else {
    const home = env.HOME || homedir();
    const defaultFile = path.join(home, '.kube', 'config');
    if (existsSync(defaultFile)) {
      pieces = loadFile(defaultFile, '~/.kube/config');
      source = defaultFile;
    } else {
      const inCluster = fromServiceAccount(env, options.serviceAccountRoot ?? '/');
      if (!inCluster) {
        throw new InputError('no Kubernetes cluster configured: no --kubeconfig, no KUBECONFIG, no ~/.kube/config, and not running in a pod with a service account', {
          hint: 'pass --kubeconfig FILE or set KUBECONFIG, as for kubectl',
        });
      }
      kubeConfig = inCluster.kubeConfig;
      serviceAccountNamespace = inCluster.namespace;
      source = 'in-cluster service account';
    }
  }
  if (pieces) {
    kubeConfig = new KubeConfig();
    const clusters = pieces.clusters.map((cluster) => withExtraCertificates(cluster, env));
    kubeConfig.loadFromOptions({ clusters, users: pieces.users, contexts: pieces.contexts, currentContext: pieces.currentContext ?? '' });
  }
  const config = kubeConfig!;
  const contextName = options.context ?? config.getCurrentContext();
  if (!contextName) {
    throw new UsageError(`the kubeconfig (${source}) has no current context`, `pass --context NAME (one of: ${config.getContexts().map((context) => context.name).join(', ') || 'none defined'}), or run \`kubectl config use-context NAME\``);
  }
  const context = config.getContextObject(contextName);
  if (!context) {
    throw new UsageError(`context "${contextName}" is not in the kubeconfig (${source})`, `use one of: ${config.getContexts().map((item) => item.name).join(', ') || 'none defined'}`);
  }
  config.setCurrentContext(contextName);
  const cluster = config.getCluster(context.cluster);
  if (!cluster) throw new UsageError(`context "${contextName}" names cluster "${context.cluster}", which the kubeconfig (${source}) does not define`, 'fix the kubeconfig, or pick another --context');
  return {
    kubeConfig: config,
    contextName,
    namespace: options.namespace || context.namespace?.trim() || serviceAccountNamespace || 'default',
    server: cluster.server,
    source,
  };
}
