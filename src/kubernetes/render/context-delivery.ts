/**
 * How a local build context gets into the build pod's workspace, as pure renderers.
 *
 * - Small contexts travel in a ConfigMap (text in `data`, the rest in `binaryData`); the init
 *   container copies each entry to its path and mode with a script that is itself in the ConfigMap.
 * - Larger ones are streamed as a tar over `exec` into the init container, which waits for them:
 *   the receiving command reads exactly the announced number of bytes (stdin is never closed,
 *   which loses the exit status on older exec protocols), unpacks them and prints their sha256.
 *   The client compares that hash with the one it sent, and only then creates the sentinel file
 *   the init container waits for: the build cannot start on a damaged or partial context.
 *
 * The receiver is either a shell (busybox: the Kaniko engine's init image) or imgbuild itself
 * (`imgbuild __context ...`, for pods whose image has nothing but Node): same protocol, same
 * objects, no shell needed.
 */
import type { V1Container, V1ConfigMap, V1Volume } from '@kubernetes/client-node';
import { type BuildIdentity, objectName, renderConfigMap, WORKSPACE } from './objects.js';

/**
 * Who lays the context out in the pod. `shell`: an image with a POSIX shell, sha256sum and tar.
 * `imgbuild`: a Node image running imgbuild; `launch` is what follows the image's entrypoint (node)
 * to start imgbuild, and `container` what its container needs (the bundle's mount, env, security).
 */
export type ContextReceiver =
  | { kind: 'shell'; image: string }
  | { kind: 'imgbuild'; image: string; launch: string[]; container: Pick<V1Container, 'volumeMounts' | 'env' | 'securityContext'> };

function asReceiver(receiver: string | ContextReceiver): ContextReceiver {
  return typeof receiver === 'string' ? { kind: 'shell', image: receiver } : receiver;
}

/**
 * `exec` runs a program by path, outside the entrypoint; in the imgbuild receiver's container the
 * first process is node (the entrypoint), so /proc/1/exe is node wherever the image keeps it.
 */
const NODE_OF_PID_1 = '/proc/1/exe';
/** The JSON list of entries (with their ConfigMap keys) that `imgbuild __context unpack` reads. */
export const CONTEXT_MANIFEST_KEY = 'imgbuild-context.json';

export interface ContextEntry {
  /** POSIX path relative to the context root, no leading `./`. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Permission bits (0o7777). */
  mode: number;
  size: number;
  linkTarget?: string;
  /** Modification time, kept by the imgbuild receiver (the direct engine writes it into layers unless SOURCE_DATE_EPOCH is set). */
  mtimeSeconds?: number;
}

/** One line of the imgbuild receiver's manifest: an entry and, for a file, its ConfigMap key. */
export interface ManifestEntry extends ContextEntry {
  key?: string;
}

/**
 * The API server refuses objects over 1 MiB (etcd's request limit, with metadata); stay well
 * under it, counting binary content as base64.
 */
export const CONFIGMAP_CONTEXT_BUDGET = 900 * 1024;
const CONTEXT_MOUNT = '/imgbuild/context';
const UNPACK_SCRIPT_KEY = 'imgbuild-unpack.sh';
/** Created by the client when the streamed context has been received and checked. */
export const CONTEXT_READY_MARKER = `${WORKSPACE}/.imgbuild-context-ready`;

export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The encoded size a set of files takes in a ConfigMap (approximate: base64 for all). */
export function configMapSize(entries: ContextEntry[]): number {
  return entries.reduce((total, entry) => total + Math.ceil(entry.size / 3) * 4 + entry.path.length + 64, 0);
}

export function fitsInConfigMap(entries: ContextEntry[]): boolean {
  return configMapSize(entries) <= CONFIGMAP_CONTEXT_BUDGET;
}

/** ConfigMap keys allow `[-._a-zA-Z0-9]`; index + readable tail keeps them unique and legible. */
function configMapKey(index: number, path: string): string {
  const tail = path.split('/').pop()!.replace(/[^-._a-zA-Z0-9]/g, '_').slice(-40);
  return `${index}-${tail}`;
}

/** The script that lays the ConfigMap's entries out in the workspace. */
export function renderUnpackScript(entries: ContextEntry[], keys: Map<string, string>): string {
  const lines = ['set -eu', `cd ${WORKSPACE}`];
  for (const entry of entries) {
    const target = shellQuote(entry.path);
    const mode = entry.mode.toString(8);
    if (entry.type === 'directory') lines.push(`mkdir -p ${target} && chmod ${mode} ${target}`);
    else if (entry.type === 'symlink') lines.push(`ln -s ${shellQuote(entry.linkTarget ?? '')} ${target}`);
    else lines.push(`cp ${CONTEXT_MOUNT}/${keys.get(entry.path)} ${target} && chmod ${mode} ${target}`);
  }
  lines.push(`echo "context: ${entries.filter((entry) => entry.type === 'file').length} files in ${WORKSPACE}"`);
  return `${lines.join('\n')}\n`;
}

export interface RenderedDelivery {
  initContainer: V1Container;
  volumes: V1Volume[];
  configMap?: V1ConfigMap;
}

const initSecurity = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' as const } };

/**
 * Entries must be listed parents first (as a directory walk yields them); `contents` holds each
 * file's bytes by path. `receiver` is the shell image (a string) or an imgbuild receiver.
 */
export function renderConfigMapDelivery(identity: BuildIdentity, receiver: string | ContextReceiver, entries: ContextEntry[], contents: Map<string, Buffer>): RenderedDelivery {
  const using = asReceiver(receiver);
  const keys = new Map<string, string>();
  const data: Record<string, Buffer> = {};
  entries.forEach((entry, index) => {
    if (entry.type !== 'file') return;
    const key = configMapKey(index, entry.path);
    keys.set(entry.path, key);
    const content = contents.get(entry.path);
    if (!content) throw new Error(`no content for context file ${entry.path}`);
    data[key] = content;
  });
  const name = objectName(identity, 'context');
  const volumeMounts = [{ name: 'context-source', mountPath: CONTEXT_MOUNT, readOnly: true }];
  let initContainer: V1Container;
  if (using.kind === 'shell') {
    data[UNPACK_SCRIPT_KEY] = Buffer.from(renderUnpackScript(entries, keys));
    initContainer = { name: 'prepare-context', image: using.image, command: ['sh', '-c', `sh ${CONTEXT_MOUNT}/${UNPACK_SCRIPT_KEY}`], volumeMounts, securityContext: initSecurity };
  } else {
    // Only what the receiver needs: never the local paths the entries were read from.
    const manifest: ManifestEntry[] = entries.map(({ path: entryPath, type, mode, size, linkTarget, mtimeSeconds }) => ({
      path: entryPath,
      type,
      mode,
      size,
      ...(linkTarget === undefined ? {} : { linkTarget }),
      ...(mtimeSeconds === undefined ? {} : { mtimeSeconds }),
      ...(keys.has(entryPath) ? { key: keys.get(entryPath) } : {}),
    }));
    data[CONTEXT_MANIFEST_KEY] = Buffer.from(`${JSON.stringify(manifest)}\n`);
    initContainer = imgbuildInit(using, ['unpack', '--from', CONTEXT_MOUNT, '--to', WORKSPACE], volumeMounts);
  }
  return { configMap: renderConfigMap(identity, name, 'context', data), volumes: [{ name: 'context-source', configMap: { name } }], initContainer };
}

function imgbuildInit(receiver: Extract<ContextReceiver, { kind: 'imgbuild' }>, args: string[], volumeMounts: V1Container['volumeMounts'] = []): V1Container {
  return {
    name: 'prepare-context',
    image: receiver.image,
    args: [...receiver.launch, '__context', ...args],
    ...receiver.container,
    volumeMounts: [...(receiver.container.volumeMounts ?? []), ...(volumeMounts ?? [])],
  };
}

/** The init container waits (up to `waitSeconds`) for the client to stream the context in. */
export function renderExecDelivery(receiver: string | ContextReceiver, waitSeconds: number): RenderedDelivery {
  const using = asReceiver(receiver);
  if (using.kind === 'imgbuild') {
    return { volumes: [], initContainer: imgbuildInit(using, ['wait', '--marker', CONTEXT_READY_MARKER, '--seconds', String(waitSeconds)]) };
  }
  const script = [
    'set -eu',
    `echo "waiting for the build context to be streamed in"`,
    `i=0; until [ -e ${CONTEXT_READY_MARKER} ]; do i=$((i+1)); [ $i -le ${waitSeconds * 5} ] || { echo "no context after ${waitSeconds}s" >&2; exit 1; }; sleep 0.2; done`,
    `rm -f ${CONTEXT_READY_MARKER}`,
    'echo "context received"',
  ].join('\n');
  return {
    volumes: [],
    initContainer: { name: 'prepare-context', image: using.image, command: ['sh', '-c', script], securityContext: initSecurity },
  };
}

/**
 * Run in the waiting init container: read exactly `size` bytes of tar from stdin (the client
 * never closes stdin), unpack them into the workspace while a fifo feeds the same bytes to
 * `sha256sum` (so the context takes its size on the node's disk once, not twice), then print
 * the hash. The client lets the build start only when it matches the one it sent.
 */
export function receiveContextCommand(size: number, receiver: string | ContextReceiver = 'shell', workspace = WORKSPACE): string[] {
  const using = asReceiver(receiver);
  if (using.kind === 'imgbuild') return [NODE_OF_PID_1, ...using.launch, '__context', 'receive', '--size', String(size), '--to', workspace];
  const fifo = `${workspace}/.imgbuild-context.fifo`;
  const sum = `${workspace}/.imgbuild-context.sha256`;
  return [
    'sh',
    '-c',
    [
      'set -eu',
      `rm -f ${fifo} && mkfifo ${fifo}`,
      `sha256sum < ${fifo} > ${sum} &`,
      `head -c ${size} | tee ${fifo} | tar -x -f - -C ${workspace}`,
      'wait $!',
      `cat ${sum}`,
      `rm -f ${fifo} ${sum}`,
    ].join('\n'),
  ];
}

export function markContextReadyCommand(receiver: string | ContextReceiver = 'shell'): string[] {
  const using = asReceiver(receiver);
  if (using.kind === 'imgbuild') return [NODE_OF_PID_1, ...using.launch, '__context', 'ready', '--marker', CONTEXT_READY_MARKER];
  return ['sh', '-c', `touch ${CONTEXT_READY_MARKER}`];
}
