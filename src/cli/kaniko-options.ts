/**
 * The flags of the cluster engines (no Kubernetes client is loaded here: the commands load it
 * only when they run, so the direct engine starts as fast as before).
 */
import { type Command, Option } from 'commander';
import { UsageError } from '../errors.js';

export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export interface KanikoFlags extends KubeFlags {
  engine?: 'direct' | 'kaniko';
  dryRun?: boolean;
  /** The direct engine as a restricted pod in the cluster. */
  inCluster?: boolean;
  nodeImage?: string;
  runnerImage?: string;
  kanikoImage?: string;
  initImage?: string;
  registrySecret?: string;
  nonRoot?: boolean;
  cpu?: string;
  memory?: string;
  timeout?: string;
  keep?: boolean;
  cacheRepo?: string;
  verifyCommand?: string;
  expectOutput?: string;
  pullVia?: string;
  insecure?: boolean;
  caFile?: string;
  verbose?: boolean;
  quiet?: boolean;
  output: 'text' | 'json';
}

export function kubeOptions(command: Command): Command {
  return command
    .option('--kubeconfig <FILE>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the pod\'s service account, as kubectl)')
    .option('--context <NAME>', 'kubeconfig context (default: the current one)')
    .option('-n, --namespace <NS>', "namespace (default: the context's, else default)");
}

/** The flags of a build in the cluster, shared by `add` and `build`. */
export function kanikoOptions(command: Command, options: { engineOption?: boolean } = {}): Command {
  if (options.engineOption !== false) {
    command.addOption(new Option('--engine <ENGINE>', 'direct: imgbuild pushes from here; kaniko: a Kaniko Job in the cluster builds and pushes').choices(['direct', 'kaniko']).default('direct'));
  }
  return kubeOptions(
    command
      .option('--in-cluster', 'run the direct engine in the cluster as a Job whose pod passes Pod Security "restricted" (non-root, no capabilities, read-only root); see docs/in-cluster.md')
      .option('--node-image <REF>', 'with --in-cluster: a Node >= 20 image whose entrypoint is node; imgbuild comes in a ConfigMap (env IMGBUILD_NODE_IMAGE)')
      .option('--runner-image <REF>', 'with --in-cluster: an image made by `imgbuild runner-image` (it holds imgbuild; no ConfigMap)')
      .option('--dry-run', 'with --engine kaniko or --in-cluster: print the objects the build would apply, as YAML, and apply nothing')
      .option('--kaniko-image <REF>', 'Kaniko executor image (env IMGBUILD_KANIKO_IMAGE)')
      .option('--init-image <REF>', 'image with a shell that prepares the context (env IMGBUILD_INIT_IMAGE; default the Kaniko debug image)')
      .option('--registry-secret <NAME>', 'an existing dockerconfigjson Secret for Kaniko, instead of one made from your docker config')
      .option('--cache-repo <REF>', "Kaniko's layer cache repository (--cache=true --cache-repo)")
      .option('--non-root', 'run Kaniko as uid 1000 (runAsNonRoot); Kaniko cannot unpack most images so, see docs/kaniko.md')
      .option('--cpu <QUANTITY>', 'CPU request and limit of the build container, e.g. 1 or 500m')
      .option('--memory <QUANTITY>', 'memory request and limit of the build container, e.g. 2Gi')
      .option('--timeout <DURATION>', 'fail the build after this long (Job activeDeadlineSeconds), e.g. 600, 10m, 1h')
      .option('--keep', 'keep the Job, its pod and the other objects after the build (for debugging)')
      .option('--verify-command <SH>', 'after the build, run this shell command in a pod from the new image (by digest)')
      .option('--expect-output <TEXT>', 'with --verify-command: fail unless its output is exactly this')
      .option('--pull-via <HOST:PORT>', "with --verify-command: the registry address the nodes pull through (replaces the destination's)"),
  );
}

export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${flag} ${text} is not a duration`, `write seconds or a number with a unit, e.g. ${flag} 600, ${flag} 10m, ${flag} 2h`);
  const seconds = Number(match[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[match[2] ?? 's']!;
  if (seconds <= 0) throw new UsageError(`${flag} ${text} must be positive`, `e.g. ${flag} 10m`);
  return seconds;
}

export function addCleanCommand(program: Command): void {
  kubeOptions(
    program
      .command('clean')
      .summary('delete what interrupted cluster builds left behind')
      .description('Delete every Job, pod, ConfigMap and Secret imgbuild created in the namespace\n(label app.kubernetes.io/managed-by=imgbuild), or only those older than --older-than.')
      .option('--older-than <DURATION>', 'only objects created before this long ago, e.g. 1h (default: all)')
      .addOption(new Option('-o, --output <FORMAT>', 'result format on stdout').choices(['text', 'json']).default('text')),
  )
    .addHelpText('after', '\nExamples:\n  imgbuild clean -n ci --older-than 2h\n  imgbuild clean --context kind-dev')
    .action(async (flags: CleanFlags) => (await import('./kaniko.js')).runClean(flags));
}

export interface CleanFlags extends KubeFlags {
  olderThan?: string;
  output: 'text' | 'json';
}

export interface InClusterVerifyFlags extends KubeFlags {
  command?: string;
  expectOutput?: string;
  pullVia?: string;
  verbose?: boolean;
  quiet?: boolean;
  output: 'text' | 'json';
}
