// Thin wrappers around the external tools the integration tests trust as
// independent witnesses (skopeo, umoci, runc), with failure messages that show
// the exact command and its stderr.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunningRegistry } from './registry.js';

export interface RunOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when the process was killed by a signal (timeout included). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Runs a command to completion, never throws for a non-zero exit (see runChecked). */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = error.code === 'ENOENT' ? ` (is '${cmd}' installed? .ci/run installs the test tools)` : '';
      reject(new Error(`cannot run ${cmd}: ${error.message}${hint}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        code,
        signal,
        timedOut,
      });
    });
    child.stdin.on('error', () => {
      // The child may exit without reading its input; that is its business.
    });
    child.stdin.end(options.input);
  });
}

export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** Like run, but throws an Error naming the command, exit status and stderr unless it exits 0. */
export async function runChecked(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    const status = result.timedOut
      ? `timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited ${result.code}`;
    throw new Error(
      `command ${status}: ${describeCommand(cmd, args)}\n--- stderr ---\n${result.stderr.trim()}\n--- stdout ---\n${result.stdout.trim()}`,
    );
  }
  return result;
}

/**
 * skopeo flags that let it talk to a test registry, for the source ('src') or
 * destination ('dest') side of a copy, or for inspect (''): TLS trust or
 * plain HTTP, and credentials.
 */
export function skopeoRegistryFlags(registry: RunningRegistry, side: 'src' | 'dest' | ''): string[] {
  const prefix = side === '' ? '--' : `--${side}-`;
  const flags: string[] = [];
  if (registry.scheme === 'http') {
    flags.push(`${prefix}tls-verify=false`);
  } else if (registry.certDir) {
    flags.push(`${prefix}cert-dir`, registry.certDir);
  }
  if (registry.auth) {
    flags.push(`${prefix}creds`, `${registry.auth.username}:${registry.auth.password}`);
  }
  return flags;
}

// --insecure-policy: the tests must not depend on the machine's /etc/containers/policy.json.
const SKOPEO_GLOBAL_FLAGS = ['--insecure-policy'];

export function skopeo(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runChecked('skopeo', [...SKOPEO_GLOBAL_FLAGS, ...args], options);
}

export type SkopeoInspectMode = 'raw' | 'config' | 'summary';

/**
 * What skopeo sees at registry/REF ("repo:tag" or "repo@sha256:..."), parsed:
 * 'raw' (default) is the manifest or index exactly as served, 'config' the
 * image config blob, 'summary' skopeo's own digest/layers/env view.
 */
export async function skopeoInspect(
  reference: string,
  registry: RunningRegistry,
  mode: SkopeoInspectMode = 'raw',
): Promise<any> {
  const modeFlags = mode === 'raw' ? ['--raw'] : mode === 'config' ? ['--config'] : [];
  const result = await skopeo(['inspect', ...modeFlags, ...skopeoRegistryFlags(registry, ''), `docker://${registry.host}/${reference}`]);
  return JSON.parse(result.stdout);
}

/**
 * Unpacks registry/REF into an OCI runtime bundle (bundleDir/config.json +
 * bundleDir/rootfs) the way a real runtime would see it: skopeo copies it into
 * a temporary OCI layout, umoci unpacks it as root.
 */
export async function umociUnpack(registry: RunningRegistry, reference: string, bundleDir: string): Promise<void> {
  const layoutDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-umoci-layout-'));
  try {
    await skopeo(['copy', ...skopeoRegistryFlags(registry, 'src'), `docker://${registry.host}/${reference}`, `oci:${layoutDir}:unpack`]);
    // umoci wants to create the bundle directory itself.
    await rm(bundleDir, { recursive: true, force: true });
    await runChecked('umoci', ['unpack', '--image', `${layoutDir}:unpack`, bundleDir]);
  } finally {
    await rm(layoutDir, { recursive: true, force: true });
  }
}

let containerCounter = 0;

/**
 * Runs argv in the unpacked bundle with runc (no terminal) and returns what it
 * printed. The container is deleted afterwards, whatever happened.
 */
export async function runcRun(bundleDir: string, argv: readonly string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  const configPath = path.join(bundleDir, 'config.json');
  const spec = JSON.parse(await readFile(configPath, 'utf8'));
  spec.process.args = [...argv];
  spec.process.terminal = false;
  await writeFile(configPath, JSON.stringify(spec, null, 2));

  containerCounter += 1;
  const containerId = `imgbuild-test-${process.pid}-${containerCounter}`;
  try {
    return await run('runc', ['run', '--bundle', bundleDir, containerId], { timeoutMs: options.timeoutMs ?? 60_000 });
  } finally {
    await run('runc', ['delete', '--force', containerId], { timeoutMs: 30_000 });
  }
}

/** The digest the registry serves for REF ("repo:tag"), asked with skopeo; undefined when there is none. */
export async function tagDigest(registry: RunningRegistry, reference: string): Promise<string | undefined> {
  try {
    return (await skopeoInspect(reference, registry, 'summary')).Digest as string;
  } catch (error) {
    if (/manifest unknown|not found/i.test((error as Error).message)) return undefined;
    throw error;
  }
}
