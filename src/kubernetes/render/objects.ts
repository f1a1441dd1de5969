/**
 * Kubernetes objects for a build in the cluster, as pure functions of their inputs. Nothing here
 * knows which builder runs in the pod: a caller (an engine) hands in its container, and the
 * renderers add what every build pod needs (the workspace, the context delivery, credentials,
 * labels, deadlines). `--dry-run` prints exactly these objects; the run module applies them.
 */
import type { V1ConfigMap, V1Container, V1Job, V1Pod, V1PodSecurityContext, V1Secret, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'imgbuild';
export const BUILD_ID_LABEL = 'imgbuild.dev/build-id';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
/** When a client created the object; `imgbuild clean --older-than` reads it. */
export const CREATED_ANNOTATION = 'imgbuild.dev/created';

/** Where the build context is unpacked in every build pod. */
export const WORKSPACE = '/workspace';

export interface BuildIdentity {
  /** Short, DNS-label safe, unique per build: names every object of the build. */
  buildId: string;
  namespace: string;
  /** ISO time the client started the build. */
  createdAt: string;
}

export function objectName(identity: BuildIdentity, suffix?: string): string {
  return suffix ? `imgbuild-${identity.buildId}-${suffix}` : `imgbuild-${identity.buildId}`;
}

export function buildLabels(identity: BuildIdentity, component: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY, [BUILD_ID_LABEL]: identity.buildId, [COMPONENT_LABEL]: component };
}

/** The label selector that finds every object of one build, or of all builds. */
export function buildSelector(buildId?: string): string {
  return buildId ? `${MANAGED_BY_LABEL}=${MANAGED_BY},${BUILD_ID_LABEL}=${buildId}` : `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
}

function metadata(identity: BuildIdentity, name: string, component: string) {
  return { name, namespace: identity.namespace, labels: buildLabels(identity, component), annotations: { [CREATED_ANNOTATION]: identity.createdAt } };
}

/**
 * The empty ConfigMap a build creates first, named in every other object's ownerReferences when
 * they are created. The Secret is never listed (the minimal Role cannot list Secrets): were the
 * client killed after creating it, only this owner, which `imgbuild clean` finds by label, would
 * lead to it; deleting the owner has Kubernetes delete the rest.
 */
export const OWNER_COMPONENT = 'owner';

export function renderOwnerConfigMap(identity: BuildIdentity): V1ConfigMap {
  return renderConfigMap(identity, objectName(identity, OWNER_COMPONENT), OWNER_COMPONENT, {});
}

export function isOwnerConfigMap(object: KubernetesObject): boolean {
  return object.kind === 'ConfigMap' && object.metadata?.labels?.[COMPONENT_LABEL] === OWNER_COMPONENT;
}

/** A ConfigMap: UTF-8 text in `data`, anything else base64 in `binaryData`. */
export function renderConfigMap(identity: BuildIdentity, name: string, component: string, entries: Record<string, Buffer>): V1ConfigMap {
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  for (const [key, content] of Object.entries(entries)) {
    const text = content.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(content) && !text.includes('\0')) data[key] = text;
    else binaryData[key] = content.toString('base64');
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(identity, name, component),
    ...(Object.keys(data).length ? { data } : {}),
    ...(Object.keys(binaryData).length ? { binaryData } : {}),
  };
}

/** Registry credentials in the shape docker's config.json has them. */
export interface DockerConfigAuths {
  auths: Record<string, { username?: string; password?: string; auth?: string; identitytoken?: string }>;
}

/** A `kubernetes.io/dockerconfigjson` Secret. Never printed: see `redactForDisplay`. */
export function renderDockerConfigSecret(identity: BuildIdentity, name: string, config: DockerConfigAuths): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(identity, name, 'credentials'),
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
  };
}

/** Where a build container finds the registry credentials and CA bundle. */
export const DOCKER_CONFIG_DIR = '/imgbuild/docker';
export const CA_DIR = '/imgbuild/ca';

/** A mounted piece of a build container: the volume, its mount, and the environment that points at it. */
export interface ContainerMount {
  volume: V1Volume;
  mount: V1VolumeMount;
  env?: { name: string; value: string }[];
}

/** The dockerconfigjson Secret as `$DOCKER_CONFIG/config.json`, as docker and Kaniko read it. */
export function dockerConfigMount(secretName: string): ContainerMount {
  return {
    volume: { name: 'registry-credentials', secret: { secretName, items: [{ key: '.dockerconfigjson', path: 'config.json' }] } },
    // A mount point of its own: Kaniko leaves mounts alone when it unpacks a base image onto /.
    mount: { name: 'registry-credentials', mountPath: DOCKER_CONFIG_DIR, readOnly: true },
    env: [{ name: 'DOCKER_CONFIG', value: DOCKER_CONFIG_DIR }],
  };
}

/** The `--ca-file` ConfigMap as `${CA_DIR}/ca.crt`. */
export function caMount(configMapName: string): ContainerMount {
  return { volume: { name: 'registry-ca', configMap: { name: configMapName } }, mount: { name: 'registry-ca', mountPath: CA_DIR, readOnly: true } };
}

export interface BuildJobSpec {
  identity: BuildIdentity;
  /** Prepares WORKSPACE (see context-delivery.ts). */
  initContainer: V1Container;
  /** The builder, with its own mounts; WORKSPACE is mounted into it here. */
  builder: V1Container;
  /** Volumes beyond the workspace emptyDir (context ConfigMap, credentials, CA, scratch dirs). */
  volumes: V1Volume[];
  podSecurityContext?: V1PodSecurityContext;
  /** The whole Job's deadline (`--timeout`). */
  activeDeadlineSeconds?: number;
  /** Safety net when the client dies before it deletes the Job. */
  ttlSecondsAfterFinished: number;
  /** The workspace emptyDir's sizeLimit (e.g. `2Gi`); none by default. */
  workspaceSizeLimit?: string;
}

const WORKSPACE_VOLUME = 'workspace';
export const workspaceMount: V1VolumeMount = { name: WORKSPACE_VOLUME, mountPath: WORKSPACE };

/** The build Job: one pod, never retried, never restarted, with the workspace in an emptyDir. */
export function renderBuildJob(spec: BuildJobSpec): V1Job {
  const name = objectName(spec.identity);
  const labels = buildLabels(spec.identity, 'build');
  const withWorkspace = (container: V1Container): V1Container => ({
    ...container,
    volumeMounts: [workspaceMount, ...(container.volumeMounts ?? []).filter((mount) => mount.mountPath !== WORKSPACE)],
  });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(spec.identity, name, 'build'),
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: spec.ttlSecondsAfterFinished,
      ...(spec.activeDeadlineSeconds === undefined ? {} : { activeDeadlineSeconds: spec.activeDeadlineSeconds }),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(spec.podSecurityContext ? { securityContext: spec.podSecurityContext } : {}),
          initContainers: [withWorkspace(spec.initContainer)],
          containers: [withWorkspace(spec.builder)],
          volumes: [{ name: WORKSPACE_VOLUME, emptyDir: spec.workspaceSizeLimit ? { sizeLimit: spec.workspaceSizeLimit } : {} }, ...spec.volumes],
        },
      },
    },
  };
}

export interface VerificationPodSpec {
  identity: BuildIdentity;
  /** The image by digest, as the node should pull it. */
  image: string;
  /** A shell command line, run with `sh -c`. */
  command: string;
  activeDeadlineSeconds?: number;
  /** Run as RESTRICTED_UID whatever the image's USER, so the pod passes Pod Security "restricted". */
  restricted?: boolean;
}

/** The non-root user of pods that must pass Pod Security "restricted" (distroless's `nonroot`). */
export const RESTRICTED_UID = 65532;

/** Pod-level settings that Pod Security "restricted" requires. */
export function restrictedPodSecurityContext(): V1PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: RESTRICTED_UID, runAsGroup: RESTRICTED_UID, fsGroup: RESTRICTED_UID, seccompProfile: { type: 'RuntimeDefault' } };
}

/** A pod that runs a command in the new image once; it needs nothing but the image's own shell. */
export function renderVerificationPod(spec: VerificationPodSpec): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: metadata(spec.identity, objectName(spec.identity, 'verify'), 'verify'),
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(spec.activeDeadlineSeconds === undefined ? {} : { activeDeadlineSeconds: spec.activeDeadlineSeconds }),
      ...(spec.restricted ? { securityContext: restrictedPodSecurityContext() } : {}),
      containers: [
        {
          name: 'verify',
          image: spec.image,
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', spec.command],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
        },
      ],
    },
  };
}

type KubernetesObject = V1Job | V1Pod | V1ConfigMap | V1Secret;

/**
 * Multi-document YAML as `kubectl apply -f -` takes it. Secrets are replaced by a comment that
 * names them and what they hold, so no secret material is ever printed.
 */
export function renderYaml(objects: KubernetesObject[]): string {
  return objects
    .map((object) => {
      if (object.kind === 'Secret') {
        const secret = object as V1Secret;
        return `# Secret ${secret.metadata?.name} (${secret.type}) is created from your local credentials when the build runs; not printed.\n`;
      }
      return stringify(object, { lineWidth: 0, aliasDuplicateObjects: false });
    })
    .join('---\n');
}
