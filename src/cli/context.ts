import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { RegistryClient } from '../registry/client.js';
import { createCredentialStore, type CredentialStore } from '../registry/credentials.js';

/** Options every command that talks to a registry takes. */
export interface RegistryFlags {
  insecure?: boolean;
  caFile?: string;
  certDir?: string;
  username?: string;
  passwordStdin?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

export interface CommandContext {
  logger: Logger;
  /** Docker config, credential helpers and --username/--password-stdin (cluster builds copy them into a Secret). */
  credentials: CredentialStore;
  clientFor(registry: string): RegistryClient;
  /** A private temporary directory, removed on exit and on Ctrl-C. */
  workDir(): string;
  /** Aborted on SIGINT or SIGTERM: the library call given it stops, cleans up and rejects. */
  signal: AbortSignal;
  /** The signal that interrupted the command, if one did. */
  readonly interruptedBy: NodeJS.Signals | undefined;
  close(): Promise<void>;
}

/** How long an interrupted command may take to close upload sessions and remove its files. */
const CLEANUP_LIMIT_MS = 10_000;

export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new UsageError('--password-stdin reads the password from standard input, but it is a terminal', "pipe it in, e.g. `printf '%s' \"$PASSWORD\" | imgbuild ... --username me --password-stdin`");
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // Drop one trailing newline, as `docker login --password-stdin` does.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * Builds the registry clients (one per host, sharing tokens) and the credential store from
 * the flags. `credentialRegistry` is the registry `--username` applies to.
 */
export async function createContext(flags: RegistryFlags, credentialRegistry?: string): Promise<CommandContext> {
  const logger = createLogger(flags.verbose ? 'debug' : flags.quiet ? 'warn' : 'info');
  if (flags.passwordStdin && !flags.username) throw new UsageError('--password-stdin needs --username', 'pass --username NAME together with --password-stdin');
  let explicit: { registry?: string; username: string; password: string } | undefined;
  if (flags.username !== undefined) {
    if (!flags.passwordStdin) throw new UsageError('--username needs --password-stdin', 'pipe the password in and add --password-stdin (passwords are never taken as flags, so they stay out of shell history)');
    const password = await readStdin();
    if (!password) throw new UsageError('--password-stdin read an empty password', 'pipe the password into the command');
    explicit = { registry: credentialRegistry, username: flags.username, password };
  }
  const credentials = createCredentialStore({ explicit });
  const clients = new Map<string, RegistryClient>();
  let directory: string | undefined;
  const removeWorkDir = () => {
    if (directory) rmSync(directory, { recursive: true, force: true });
    directory = undefined;
  };
  const interrupt = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  const exitNow = (signal: NodeJS.Signals) => {
    removeWorkDir();
    process.exit(exitCodeForSignal(signal));
  };
  // The first signal asks the work to stop and clean up (close upload sessions, remove its files);
  // the command then ends with 130/143. A second signal, or cleanup taking too long, exits at once.
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedBy) {
      process.stderr.write(`interrupted again (${signal}): exiting without waiting for cleanup\n`);
      exitNow(interruptedBy);
    }
    interruptedBy = signal;
    process.stderr.write(`\ninterrupted (${signal}): stopping and cleaning up\n`);
    interrupt.abort(new Error(`interrupted (${signal})`));
    setTimeout(() => {
      process.stderr.write(`cleanup did not finish within ${CLEANUP_LIMIT_MS / 1000} s; exiting\n`);
      exitNow(signal);
    }, CLEANUP_LIMIT_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', removeWorkDir);
  return {
    logger,
    credentials,
    clientFor(registry) {
      let client = clients.get(registry);
      if (!client) {
        client = new RegistryClient(registry, { insecure: flags.insecure, caFile: flags.caFile, certDir: flags.certDir, credentials, logger });
        clients.set(registry, client);
      }
      return client;
    },
    workDir() {
      try {
        directory ??= mkdtempSync(path.join(tmpdir(), 'imgbuild-'));
      } catch (error) {
        throw new InputError(`cannot make a temporary directory in ${tmpdir()}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
          hint: 'point TMPDIR at an existing directory this user can write to, or unset it',
          cause: error,
        });
      }
      return directory;
    },
    signal: interrupt.signal,
    get interruptedBy() {
      return interruptedBy;
    },
    async close() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await Promise.all([...clients.values()].map((client) => client.close()));
      removeWorkDir();
    },
  };
}
