// Runs the built imgbuild CLI (the esbuild bundle users get, dist/imgbuild.mjs) as a
// child process, the way a user or a script would: argv, environment, stdin, cwd in;
// exit code, stdout and stderr out.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, open, rm, stat, symlink } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runChecked } from './tools.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE = path.join(REPO_ROOT, 'dist', 'imgbuild.mjs');
const BUILD_LOCK = path.join(REPO_ROOT, 'dist', '.imgbuild-test-build.lock');
const LOCK_WAIT_MS = 120_000;
const STALE_LOCK_MS = 120_000;
const DEFAULT_TIMEOUT_MS = 120_000;

export interface CliOptions {
  /** Added to (or, with value undefined, removed from) the clean base environment. */
  env?: Record<string, string | undefined>;
  /** Written to the CLI's stdin, which is then closed; without it stdin is empty (closed at once). */
  stdin?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
  /** 'discard' counts stdout bytes without keeping them (for a verify of a huge file). */
  stdout?: 'capture' | 'discard';
  /** A command that runs node and the CLI, e.g. ['/usr/bin/time', '-v'] to measure it; its output joins stderr. */
  wrapper?: string[];
  /**
   * Run the `imgbuild` command npm links (dist/imgbuild, the shell launcher, on the CommonJS
   * bundle) through a symlink, with this node first on PATH, instead of node on the ES module bundle.
   */
  launcher?: boolean;
}

export interface CliResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: number;
  stderr: string;
  timedOut: boolean;
}

export interface RunningCli {
  child: ChildProcess;
  result: Promise<CliResult>;
}

// Every test process builds once, then runs its own copy of the bundle: another test
// process rebuilding dist/ meanwhile must not hand a half-written file to node.
let cliPromise: Promise<string> | undefined;
let privateDir: string | undefined;
let cleanHome: string | undefined;

process.on('exit', () => {
  for (const dir of [privateDir, cleanHome]) if (dir) rmSync(dir, { recursive: true, force: true });
});

async function acquireLock(): Promise<() => Promise<void>> {
  await mkdir(path.dirname(BUILD_LOCK), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(BUILD_LOCK, 'wx');
      await handle.close();
      return () => rm(BUILD_LOCK, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock left by a crashed test process must not block every later run.
      const age = await stat(BUILD_LOCK).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) await rm(BUILD_LOCK, { force: true });
      if (Date.now() > deadline) throw new Error(`waited ${LOCK_WAIT_MS} ms for ${BUILD_LOCK}; remove it if no test is running`);
      await sleep(100);
    }
  }
}

async function buildCli(): Promise<string> {
  privateDir = await mkdtemp(path.join(tmpdir(), 'imgbuild-test-cli-'));
  const copy = path.join(privateDir, 'imgbuild.mjs');
  const release = await acquireLock();
  try {
    await runChecked(process.execPath, ['scripts/bundle.mjs'], { cwd: REPO_ROOT, timeoutMs: 120_000 });
    await copyFile(BUNDLE, copy);
    // The launcher and the bundle it runs, linked from bin/ as npm links a package's command.
    const dist = path.join(REPO_ROOT, 'dist');
    await mkdir(path.join(privateDir, 'dist'));
    await Promise.all(['imgbuild', 'cli.cjs', 'imgbuild.cjs', 'kubernetes-client.cjs', 'imgbuild.mjs'].map((name) => cp(path.join(dist, name), path.join(privateDir!, 'dist', name))));
    await mkdir(path.join(privateDir, 'bin'));
    await symlink('../dist/imgbuild', path.join(privateDir, 'bin', 'imgbuild'));
  } finally {
    await release();
  }
  return copy;
}

/** Bundles the CLI with scripts/bundle.mjs (once per test process) and returns the path to run. */
export function ensureCliBuilt(): Promise<string> {
  cliPromise ??= buildCli();
  return cliPromise;
}

/**
 * The environment the CLI gets: this process's, minus everything that would let the
 * developer's own setup leak in (credentials, SOURCE_DATE_EPOCH), with HOME an empty
 * directory so ~/.docker/config.json is never read.
 */
async function cleanEnvironment(extra: CliOptions['env']): Promise<NodeJS.ProcessEnv> {
  cleanHome ??= await mkdtemp(path.join(tmpdir(), 'imgbuild-test-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: cleanHome };
  for (const name of ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'SOURCE_DATE_EPOCH', 'XDG_RUNTIME_DIR', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT']) {
    delete env[name];
  }
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Starts `imgbuild ARGS` and returns the child (to watch or kill it) and its eventual result. */
export async function startCli(args: readonly string[], options: CliOptions = {}): Promise<RunningCli> {
  const bundle = await ensureCliBuilt();
  const env = await cleanEnvironment(options.env);
  if (options.launcher) env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}`;
  const imgbuild = options.launcher ? [path.join(path.dirname(bundle), 'bin', 'imgbuild')] : [process.execPath, bundle];
  const [command, ...commandArgs] = [...(options.wrapper ?? []), ...imgbuild, ...args];
  const child = spawn(command!, commandArgs, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const result = new Promise<CliResult>((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stdoutBytes = 0;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (options.stdout !== 'discard') stdout.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stdoutBytes,
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
      });
    });
  });
  child.stdin!.on('error', () => {
    // The CLI may exit without reading stdin.
  });
  child.stdin!.end(options.stdin);
  return { child, result };
}

/** Runs `imgbuild ARGS` to completion; never throws for a non-zero exit. */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return (await startCli(args, options)).result;
}

/** A one-line description of a CLI result, for assertion messages. */
export function describeResult(result: CliResult): string {
  return `exit ${result.code}${result.signal ? ` (signal ${result.signal})` : ''}${result.timedOut ? ' (timed out)' : ''}\n--- stderr ---\n${result.stderr}--- stdout ---\n${result.stdout}`;
}
