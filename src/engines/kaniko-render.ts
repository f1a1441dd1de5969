/**
 * What is specific to Kaniko, as pure functions: the executor's arguments and container, the
 * Dockerfile `add --engine kaniko` generates from its flags, and which registries a build touches.
 * The Job around it comes from kubernetes/render (generic for any builder).
 */
import type { V1Container, V1EnvVar, V1PodSecurityContext, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import { UsageError } from '../errors.js';
import type { ConfigEdits } from '../image/mutate.js';
import { parseReference } from '../reference.js';
import { CA_DIR, caMount, dockerConfigMount, WORKSPACE } from '../kubernetes/render/objects.js';

/** The maintained fork (upstream was archived in 2025); `-debug` has the busybox shell the init container uses. */
export const DEFAULT_KANIKO_IMAGE = 'ghcr.io/osscontainertools/kaniko:v1.28.3-debug';

/**
 * Capabilities the executor keeps; everything else is dropped. Kaniko unpacks base images and
 * snapshots the root filesystem as root inside its container, so it needs:
 * CHOWN (files owned by other users in base layers and `COPY --chown`), DAC_OVERRIDE (write into
 * directories whose mode would not let root in without it), FOWNER (chmod/utimes on files it does
 * not own), FSETID (keep setuid/setgid bits), SETUID/SETGID (`RUN` as the image's `USER`).
 * All are in the container runtime's default set and allowed by the Pod Security `baseline` level;
 * `restricted` allows none of them and requires a non-root user, which Kaniko cannot build as.
 */
export const KANIKO_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETUID', 'SETGID'];

/** `--non-root`: the field report's variant, made to get as far as Kaniko allows. */
export const NON_ROOT_UID = 1000;
const NON_ROOT_KANIKO_DIR = '/tmp/kaniko';

export interface KanikoBuildOptions {
  /** Where Kaniko pushes: `registry/repository:tag`, as the cluster reaches it. */
  destination: string;
  /** Relative to the context root. */
  dockerfile: string;
  buildArgs?: string[];
  target?: string;
  labels?: string[];
  cacheRepo?: string;
  /** Skip TLS verification and allow plain HTTP for every registry. */
  insecure?: boolean;
  /** Registries whose CA the ConfigMap named here holds (key `ca.crt`). */
  caBundle?: { configMapName: string; registries: string[] };
  /** Secret of type dockerconfigjson mounted as Kaniko's config.json. */
  credentialsSecret?: string;
  nonRoot?: boolean;
  cpu?: string;
  memory?: string;
  compressionLevel?: number;
  kanikoImage: string;
  verbosity?: 'info' | 'debug' | 'trace';
}

export function kanikoArgs(options: KanikoBuildOptions): string[] {
  const args = [
    `--dockerfile=${WORKSPACE}/${options.dockerfile}`,
    `--context=dir://${WORKSPACE}`,
    `--destination=${options.destination}`,
    // Kaniko writes the digest before it pushes; the engine trusts it only after exit 0.
    '--digest-file=/dev/termination-log',
  ];
  for (const arg of options.buildArgs ?? []) args.push(`--build-arg=${arg}`);
  if (options.target) args.push(`--target=${options.target}`);
  for (const label of options.labels ?? []) args.push(`--label=${label}`);
  if (options.cacheRepo) args.push('--cache=true', `--cache-repo=${options.cacheRepo}`);
  // --skip-tls-verify covers pulls as well; --insecure/--insecure-pull let a plain-HTTP registry work.
  if (options.insecure) args.push('--skip-tls-verify', '--insecure', '--insecure-pull');
  for (const registry of options.caBundle?.registries ?? []) args.push(`--registry-certificate=${registry}=${CA_DIR}/ca.crt`);
  if (options.compressionLevel !== undefined) args.push(`--compression-level=${options.compressionLevel}`);
  if (options.verbosity) args.push(`--verbosity=${options.verbosity}`);
  return args;
}

export function kanikoResources(cpu?: string, memory?: string): V1ResourceRequirements | undefined {
  if (!cpu && !memory) return undefined;
  const amounts = { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) };
  return { requests: amounts, limits: amounts };
}

export interface KanikoPodParts {
  container: V1Container;
  volumes: V1Volume[];
  podSecurityContext?: V1PodSecurityContext;
}

/** The executor container and the volumes it alone needs. */
export function renderKanikoContainer(options: KanikoBuildOptions): KanikoPodParts {
  const volumes: V1Volume[] = [];
  const volumeMounts: V1Container['volumeMounts'] = [];
  const env: V1EnvVar[] = [];
  const mounts = [...(options.credentialsSecret ? [dockerConfigMount(options.credentialsSecret)] : []), ...(options.caBundle ? [caMount(options.caBundle.configMapName)] : [])];
  for (const mount of mounts) {
    volumes.push(mount.volume);
    volumeMounts.push(mount.mount);
    env.push(...(mount.env ?? []));
  }
  let podSecurityContext: V1PodSecurityContext | undefined;
  let securityContext: V1Container['securityContext'];
  if (options.nonRoot) {
    // Kaniko's own directory and /tmp must be writable by the user (the debug image has no /tmp).
    volumes.push({ name: 'tmp', emptyDir: {} });
    volumeMounts.push({ name: 'tmp', mountPath: '/tmp' });
    env.push({ name: 'KANIKO_DIR', value: NON_ROOT_KANIKO_DIR });
    podSecurityContext = { runAsNonRoot: true, runAsUser: NON_ROOT_UID, runAsGroup: NON_ROOT_UID, fsGroup: NON_ROOT_UID, seccompProfile: { type: 'RuntimeDefault' } };
    securityContext = { allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } };
  } else {
    securityContext = { allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'], add: KANIKO_CAPABILITIES }, seccompProfile: { type: 'RuntimeDefault' } };
  }
  const resources = kanikoResources(options.cpu, options.memory);
  return {
    container: {
      name: 'kaniko',
      image: options.kanikoImage,
      args: kanikoArgs(options),
      ...(env.length ? { env } : {}),
      ...(resources ? { resources } : {}),
      securityContext,
      terminationMessagePolicy: 'File',
      volumeMounts,
    },
    volumes,
    podSecurityContext,
  };
}

/** A value in a Dockerfile instruction, quoted so that neither the parser nor `$` expansion changes it. */
function dockerfileQuote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n')}"`;
}

function keyValue(flag: string, text: string): string {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`${flag} ${text} is not KEY=VALUE`, `write it as ${flag} KEY=VALUE`);
  return `${text.slice(0, eq)}=${dockerfileQuote(text.slice(eq + 1))}`;
}

export interface GeneratedCopy {
  /** Path in the build context. */
  contextPath: string;
  /** Absolute destination in the image (ends with `/` for "into this directory"). */
  destination: string;
}

/**
 * The Dockerfile that does what `add`'s flags ask: one COPY per --add (files first, so the
 * config edits come after and describe the final image, as the direct engine does).
 */
export function dockerfileForAdd(from: string, copies: GeneratedCopy[], edits: ConfigEdits, copyOptions: { chmod?: number; chown?: { uid: number; gid: number } }): string {
  const lines = [`FROM ${from}`];
  const flags = [
    ...(copyOptions.chown ? [`--chown=${copyOptions.chown.uid}:${copyOptions.chown.gid}`] : []),
    ...(copyOptions.chmod !== undefined ? [`--chmod=${copyOptions.chmod.toString(8).padStart(4, '0')}`] : []),
  ];
  for (const copy of copies) lines.push(`COPY ${[...flags, JSON.stringify([copy.contextPath, copy.destination])].join(' ')}`);
  if (edits.workdir !== undefined) lines.push(`WORKDIR ${edits.workdir}`);
  if (edits.user !== undefined) lines.push(`USER ${edits.user}`);
  for (const env of edits.env ?? []) lines.push(`ENV ${keyValue('--env', env)}`);
  for (const label of edits.labels ?? []) lines.push(`LABEL ${keyValue('--label', label)}`);
  if (edits.entrypoint) lines.push(`ENTRYPOINT ${JSON.stringify(edits.entrypoint)}`);
  if (edits.cmd) lines.push(`CMD ${JSON.stringify(edits.cmd)}`);
  if (edits.volumes?.length) lines.push(`VOLUME ${JSON.stringify(edits.volumes)}`);
  if (edits.expose?.length) lines.push(`EXPOSE ${edits.expose.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The registries a Dockerfile's FROM lines name (stage names, `scratch` and references built from
 * ARGs are skipped: those cannot be known before Kaniko expands them).
 */
export function baseRegistries(dockerfile: string): string[] {
  const stages = new Set<string>();
  const registries = new Set<string>();
  for (const line of dockerfile.split('\n')) {
    const match = /^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!match) continue;
    const image = match[1]!;
    if (match[2]) stages.add(match[2].toLowerCase());
    if (image === 'scratch' || image.includes('$') || stages.has(image.toLowerCase())) continue;
    try {
      registries.add(parseReference(image).registry);
    } catch {
      // Kaniko reports a malformed FROM with the Dockerfile line; nothing to fetch credentials for.
    }
  }
  return [...registries];
}
