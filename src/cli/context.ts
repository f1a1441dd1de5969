import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { RegistryClient } from '../registry/client.js';
import { createCredentialStore } from '../registry/credentials.js';

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
  clientFor(registry: string): RegistryClient;
  /** A private temporary directory, removed on exit and on Ctrl-C. */
  workDir(): string;
  close(): Promise<void>;
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
  const onSignal = (signal: NodeJS.Signals) => {
    removeWorkDir();
    process.stderr.write(`\ninterrupted (${signal})\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', removeWorkDir);
  return {
    logger,
    clientFor(registry) {
      let client = clients.get(registry);
      if (!client) {
        client = new RegistryClient(registry, { insecure: flags.insecure, caFile: flags.caFile, certDir: flags.certDir, credentials, logger });
        clients.set(registry, client);
      }
      return client;
    },
    workDir() {
      directory ??= mkdtempSync(path.join(tmpdir(), 'imgbuild-'));
      return directory;
    },
    async close() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await Promise.all([...clients.values()].map((client) => client.close()));
      removeWorkDir();
    },
  };
}
