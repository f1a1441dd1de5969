/**
 * The direct engine in the cluster (`--in-cluster`), as pure functions: imgbuild itself runs as
 * the build pod, from imgbuild's one-file bundle on a Node image, as a non-root user with a
 * read-only root filesystem and no capabilities, so the pod passes Pod Security "restricted".
 * The Job around it, the context delivery and the credentials come from kubernetes/render
 * (shared with the Kaniko engine).
 */
import type { V1ConfigMap, V1Container, V1EnvVar, V1PodSecurityContext, V1SecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { ContextReceiver } from '../kubernetes/render/context-delivery.js';
import {
  type BuildIdentity,
  CA_DIR,
  caMount,
  dockerConfigMount,
  objectName,
  renderConfigMap,
  restrictedPodSecurityContext,
  WORKSPACE,
} from '../kubernetes/render/objects.js';
import { kanikoResources } from './kaniko-render.js';

/**
 * A public Node image whose user is not root (uid 65532, `nonroot`) and whose entrypoint is node.
 * Any Node >= 20 image works whose entrypoint runs node with the arguments given (the official
 * `node` images do too); set it with --node-image or IMGBUILD_NODE_IMAGE.
 */
export const DEFAULT_NODE_IMAGE = 'gcr.io/distroless/nodejs22-debian12:nonroot';

/** Where the bundle is in an image made by `imgbuild runner-image`. */
export const BUNDLE_IN_IMAGE = '/imgbuild/imgbuild.mjs';
const RUNTIME_DIR = '/imgbuild/runtime';
/** The bundle, gzipped: 1.7 MB of JavaScript is over a ConfigMap's 1 MiB; gzipped it is about 450 KB. */
export const BUNDLE_KEY = 'imgbuild.mjs.gz';
/** The only writable directory besides the workspace: temp files, HOME, the unpacked bundle. */
const TMP = '/tmp';
export const DEFAULT_TMP_SIZE = '1Gi';
export const DEFAULT_WORKSPACE_SIZE = '2Gi';
/** Kubernetes reads the container's termination message from here (at most 4096 bytes). */
const TERMINATION_LOG = '/dev/termination-log';

/** Where the pod's imgbuild comes from: a ConfigMap with the bundle, or the image itself. */
export type Runtime = { kind: 'configmap'; configMapName: string } | { kind: 'image' };

/**
 * Starts the bundle from the ConfigMap: node -e with a loader that gunzips it into /tmp once (the
 * init container and the builder share /tmp) and imports it with the remaining arguments.
 */
export function bundleLoader(): string {
  const out = `${TMP}/imgbuild.mjs`;
  return [
    `const fs=require('fs'),zlib=require('zlib'),out='${out}';`,
    `if(!fs.existsSync(out)){const part=out+'.'+process.pid;fs.writeFileSync(part,zlib.gunzipSync(fs.readFileSync('${RUNTIME_DIR}/${BUNDLE_KEY}')));fs.renameSync(part,out)}`,
    'process.argv.splice(1,0,out);import(out)',
  ].join('');
}

/** What follows the image's entrypoint (node) to run imgbuild with further arguments. */
export function launchArgs(runtime: Runtime): string[] {
  // A dependency's deprecation warning (punycode on Node 22) is noise in the build log.
  return runtime.kind === 'image' ? ['--no-deprecation', BUNDLE_IN_IMAGE] : ['--no-deprecation', '-e', bundleLoader(), '--'];
}

export function renderRuntimeConfigMap(identity: BuildIdentity, gzippedBundle: Buffer): V1ConfigMap {
  return renderConfigMap(identity, objectName(identity, 'runtime'), 'runtime', { [BUNDLE_KEY]: gzippedBundle });
}

/** Every container of the pod: what Pod Security "restricted" requires, and a read-only root. */
export function restrictedContainerSecurity(): V1SecurityContext {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export interface ImgbuildPodOptions {
  /** A Node image (the bundle comes in a ConfigMap) or a runner image that holds it. */
  image: string;
  runtime: Runtime;
  /** imgbuild's command in the pod (`add ...` or `build ...`), paths under the workspace. */
  args: string[];
  credentialsSecret?: string;
  caConfigMap?: string;
  sourceDateEpoch?: number;
  cpu?: string;
  memory?: string;
  /** sizeLimit of the /tmp emptyDir. */
  tmpSize?: string;
}

export interface ImgbuildPodParts {
  receiver: Extract<ContextReceiver, { kind: 'imgbuild' }>;
  builder: V1Container;
  volumes: V1Volume[];
  podSecurityContext: V1PodSecurityContext;
}

export function renderImgbuildPod(options: ImgbuildPodOptions): ImgbuildPodParts {
  const launch = launchArgs(options.runtime);
  const volumes: V1Volume[] = [{ name: 'tmp', emptyDir: { sizeLimit: options.tmpSize ?? DEFAULT_TMP_SIZE } }];
  const common: V1VolumeMount[] = [{ name: 'tmp', mountPath: TMP }];
  // HOME and the caches point into /tmp: the root filesystem is read-only.
  const env: V1EnvVar[] = [
    { name: 'HOME', value: TMP },
    { name: 'TMPDIR', value: TMP },
    { name: 'XDG_CACHE_HOME', value: `${TMP}/cache` },
    // Both containers leave an error (and the builder its result) where the client reads it.
    { name: 'IMGBUILD_RESULT_FILE', value: TERMINATION_LOG },
  ];
  if (options.runtime.kind === 'configmap') {
    volumes.push({ name: 'imgbuild-runtime', configMap: { name: options.runtime.configMapName } });
    common.push({ name: 'imgbuild-runtime', mountPath: RUNTIME_DIR, readOnly: true });
  }
  const builderMounts = [...common];
  const builderEnv = [...env];
  const registryMounts = [...(options.credentialsSecret ? [dockerConfigMount(options.credentialsSecret)] : []), ...(options.caConfigMap ? [caMount(options.caConfigMap)] : [])];
  for (const mount of registryMounts) {
    volumes.push(mount.volume);
    builderMounts.push(mount.mount);
    builderEnv.push(...(mount.env ?? []));
  }
  if (options.sourceDateEpoch !== undefined) builderEnv.push({ name: 'SOURCE_DATE_EPOCH', value: String(options.sourceDateEpoch) });
  const resources = kanikoResources(options.cpu, options.memory);
  return {
    receiver: { kind: 'imgbuild', image: options.image, launch, container: { volumeMounts: common, env, securityContext: restrictedContainerSecurity() } },
    builder: {
      name: 'imgbuild',
      image: options.image,
      args: [...launch, ...options.args],
      workingDir: WORKSPACE,
      env: builderEnv,
      ...(resources ? { resources } : {}),
      securityContext: restrictedContainerSecurity(),
      terminationMessagePath: TERMINATION_LOG,
      terminationMessagePolicy: 'File',
      volumeMounts: builderMounts,
    },
    volumes,
    podSecurityContext: restrictedPodSecurityContext(),
  };
}

/** The registry flags every command in the pod gets. */
function registryArgs(options: { insecure?: boolean; caConfigMap?: string; verbose?: boolean; quiet?: boolean }): string[] {
  return [
    ...(options.insecure ? ['--insecure'] : []),
    ...(options.caConfigMap ? ['--ca-file', `${CA_DIR}/ca.crt`] : []),
    ...(options.verbose ? ['--verbose'] : []),
    ...(options.quiet ? ['--quiet'] : []),
  ];
}

const repeat = (flag: string, values: readonly string[] | undefined) => (values ?? []).flatMap((value) => [flag, value]);
const optional = (flag: string, value: string | undefined) => (value === undefined ? [] : [flag, value]);

/** `add`'s flags as the user gave them, with each --add source as its path in the workspace. */
export interface InPodAdd {
  from: string;
  to: string;
  /** `SRC:DEST` with SRC relative to the workspace. */
  adds: { workspacePath: string; destination: string }[];
  chmod?: string;
  chown?: string;
  workdir?: string;
  user?: string;
  env?: string[];
  labels?: string[];
  entrypoint?: string;
  cmd?: string;
  volumes?: string[];
  expose?: string[];
  platforms?: string[];
  compressionLevel?: number;
  format?: string;
}

export function inPodAddArgs(add: InPodAdd, registry: { insecure?: boolean; caConfigMap?: string; verbose?: boolean; quiet?: boolean }): string[] {
  return [
    'add',
    '--from', add.from,
    '--to', add.to,
    ...add.adds.flatMap((spec) => ['--add', `${WORKSPACE}/${spec.workspacePath}:${spec.destination}`]),
    ...optional('--chmod', add.chmod),
    ...optional('--chown', add.chown),
    ...optional('--workdir', add.workdir),
    ...optional('--user', add.user),
    ...repeat('--env', add.env),
    ...repeat('--label', add.labels),
    ...optional('--entrypoint', add.entrypoint),
    ...optional('--cmd', add.cmd),
    ...repeat('--volume', add.volumes),
    ...repeat('--expose', add.expose),
    ...repeat('--platform', add.platforms),
    ...optional('--compression-level', add.compressionLevel === undefined ? undefined : String(add.compressionLevel)),
    ...optional('--format', add.format),
    ...registryArgs(registry),
  ];
}

export interface InPodBuild {
  to: string;
  /** The Dockerfile's path in the context. */
  dockerfile: string;
  buildArgs?: Record<string, string>;
  target?: string;
  platforms?: string[];
  compressionLevel?: number;
  format?: string;
}

export function inPodBuildArgs(build: InPodBuild, registry: { insecure?: boolean; caConfigMap?: string; verbose?: boolean; quiet?: boolean }): string[] {
  return [
    'build',
    WORKSPACE,
    '--file', `${WORKSPACE}/${build.dockerfile}`,
    '--to', build.to,
    '--engine', 'direct',
    ...Object.entries(build.buildArgs ?? {}).flatMap(([key, value]) => ['--build-arg', `${key}=${value}`]),
    ...optional('--target', build.target),
    ...repeat('--platform', build.platforms),
    ...optional('--compression-level', build.compressionLevel === undefined ? undefined : String(build.compressionLevel)),
    ...optional('--format', build.format),
    ...registryArgs(registry),
  ];
}
