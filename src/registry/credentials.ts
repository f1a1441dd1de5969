/**
 * Registry credentials found where `docker login` and `podman login` leave them, resolved the way
 * the docker CLI resolves them, so a machine already logged in needs no extra flags.
 *
 * Secrets never enter an error message or a log line: messages name files, entries and helper
 * programs only.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isPlainObject } from '../json-shape.js';
import { InputError } from '../errors.js';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth refresh token, exchanged at the token endpoint instead of a password. */
  identityToken?: string;
}

export interface CredentialSourceOptions {
  /** Default process.env. Reads HOME, DOCKER_CONFIG, REGISTRY_AUTH_FILE; PATH finds credential helpers. */
  env?: NodeJS.ProcessEnv;
  /** From `--username` + `--password-stdin`; wins over every file. `registry` undefined = every registry. */
  explicit?: { registry?: string; username: string; password: string };
}

export interface CredentialStore {
  /** Credentials for a registry host ("localhost:5000", "docker.io"), or undefined for anonymous. Cached per registry. */
  get(registry: string): Promise<Credential | undefined>;
}

/** What docker uses as Docker Hub's server address: its `auths` key and what its helpers receive. */
const DOCKER_HUB_SERVER_ADDRESS = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
/** A helper answers this username when its Secret is an identity token, not a password. */
const IDENTITY_TOKEN_USERNAME = '<token>';
/** docker-credential-helpers' not-found message: an absence, not a failure. */
const HELPER_NOT_FOUND_MESSAGE = 'credentials not found in native keychain';
const HELPER_TIMEOUT_MS = 60_000;
const HELPER_OUTPUT_LIMIT = 1024 * 1024;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface AuthEntry {
  auth?: string | null;
  username?: string | null;
  password?: string | null;
  identitytoken?: string | null;
}

interface ConfigFileShape {
  auths?: Record<string, AuthEntry> | null;
  credHelpers?: Record<string, string> | null;
  credsStore?: string | null;
}

const isOptionalString = (value: unknown) => value === undefined || value === null || typeof value === 'string';

/** Where a docker config breaks the shape docker writes ("auths.HOST.auth"), or undefined when it does not. */
function configShapeProblem(json: unknown): { path: string; message: string } | undefined {
  if (!isPlainObject(json)) return { path: '', message: 'expected an object' };
  const { auths, credHelpers, credsStore } = json;
  if (auths !== undefined && auths !== null) {
    if (!isPlainObject(auths)) return { path: 'auths', message: 'expected an object' };
    for (const [host, entry] of Object.entries(auths)) {
      if (!isPlainObject(entry)) return { path: `auths.${host}`, message: 'expected an object' };
      for (const field of ['auth', 'username', 'password', 'identitytoken']) {
        if (!isOptionalString(entry[field])) return { path: `auths.${host}.${field}`, message: 'expected a string' };
      }
    }
  }
  if (credHelpers !== undefined && credHelpers !== null) {
    if (!isPlainObject(credHelpers)) return { path: 'credHelpers', message: 'expected an object' };
    for (const [host, helper] of Object.entries(credHelpers)) if (typeof helper !== 'string') return { path: `credHelpers.${host}`, message: 'expected a string' };
  }
  if (!isOptionalString(credsStore)) return { path: 'credsStore', message: 'expected a string' };
  return undefined;
}

interface ConfigFileLocation {
  path: string;
  /** How messages name it: "auth file /run/auth.json (REGISTRY_AUTH_FILE)", "docker config /root/.docker/config.json". */
  label: string;
}

interface ConfigFile extends ConfigFileLocation {
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore: string | undefined;
}

/** The registry being asked about, in the spellings config keys and helpers use. */
interface Target {
  /** Lowercase host[:port]; Docker Hub's aliases all become "docker.io". */
  canonicalHost: string;
  /** What docker passes to helpers and looks up first in `auths`. */
  serverAddress: string;
}

/** Where each credential handed out came from, for `describeCredentialSource`. */
const credentialOrigins = new WeakMap<Credential, string>();

export function createCredentialStore(options: CredentialSourceOptions = {}): CredentialStore {
  const env = options.env ?? process.env;
  const cache = new Map<string, Promise<Credential | undefined>>();
  let configFiles: Promise<ConfigFile[]> | undefined;

  const resolve = async (target: Target): Promise<Credential | undefined> => {
    const explicit = options.explicit;
    if (explicit !== undefined && (explicit.registry === undefined || toTarget(explicit.registry).canonicalHost === target.canonicalHost)) {
      return remember({ username: explicit.username, password: explicit.password }, 'credentials given with --username and --password-stdin');
    }
    configFiles ??= loadConfigFiles(env);
    let files: ConfigFile[];
    try {
      files = await configFiles;
    } catch (error) {
      configFiles = undefined;
      throw error;
    }
    for (const file of files) {
      const found = await lookupInFile(file, target, env);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  return {
    get(registry: string): Promise<Credential | undefined> {
      const target = toTarget(registry);
      let pending = cache.get(target.canonicalHost);
      if (pending === undefined) {
        pending = resolve(target);
        cache.set(target.canonicalHost, pending);
        // A failure (a broken helper, say) is not remembered, so the next call tries again.
        pending.catch(() => cache.delete(target.canonicalHost));
      }
      return pending;
    },
  };
}

/**
 * Where a credential came from, for messages such as "the registry refused credentials from ...";
 * for `undefined` (nothing found), which files were searched. Never contains a secret.
 */
export function describeCredentialSource(credential: Credential | undefined, options: CredentialSourceOptions = {}): string {
  const origin = credential === undefined ? undefined : credentialOrigins.get(credential);
  if (origin !== undefined) return origin;
  const files = configFileLocations(options.env ?? process.env).map((file) => file.label);
  return `no credentials found in ${files.join(' or ')}`;
}

function remember(credential: Credential, origin: string): Credential {
  const frozen = Object.freeze(credential);
  credentialOrigins.set(frozen, origin);
  return frozen;
}

/** Accepts "host[:port]" or a URL as docker writes `auths` keys. */
function hostOf(registryOrUrl: string): string {
  const withoutScheme = registryOrUrl.replace(/^https?:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  return slash === -1 ? withoutScheme : withoutScheme.slice(0, slash);
}

function canonicalHostOf(registryOrUrl: string): string {
  const host = hostOf(registryOrUrl).toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

function toTarget(registry: string): Target {
  const canonicalHost = canonicalHostOf(registry);
  return { canonicalHost, serverAddress: canonicalHost === 'docker.io' ? DOCKER_HUB_SERVER_ADDRESS : hostOf(registry) };
}

/** The entry for `target`: the exact server address first, then any key naming the same host (URL keys, Hub aliases). */
function findEntry<T>(record: Record<string, T>, target: Target): { key: string; value: T } | undefined {
  const exact = record[target.serverAddress];
  if (exact !== undefined) return { key: target.serverAddress, value: exact };
  for (const [key, value] of Object.entries(record)) {
    if (canonicalHostOf(key) === target.canonicalHost) return { key, value };
  }
  return undefined;
}

function configFileLocations(env: NodeJS.ProcessEnv): ConfigFileLocation[] {
  const locations: ConfigFileLocation[] = [];
  const authFile = env['REGISTRY_AUTH_FILE'];
  if (authFile) locations.push({ path: authFile, label: `auth file ${authFile} (REGISTRY_AUTH_FILE)` });
  const dockerConfigDir = env['DOCKER_CONFIG'] || join(env['HOME'] || homedir(), '.docker');
  const dockerConfig = join(dockerConfigDir, 'config.json');
  locations.push({ path: dockerConfig, label: `docker config ${dockerConfig}` });
  return locations;
}

async function loadConfigFiles(env: NodeJS.ProcessEnv): Promise<ConfigFile[]> {
  const files: ConfigFile[] = [];
  for (const location of configFileLocations(env)) {
    const file = await loadConfigFile(location);
    if (file !== undefined) files.push(file);
  }
  return files;
}

async function loadConfigFile(location: ConfigFileLocation): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(location.path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`cannot read ${location.label}: ${code ?? String(error)}`, {
      hint: 'make the file readable, or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere',
    });
  }
  // Like docker: an empty file is an empty configuration.
  if (text.trim() === '') return { ...location, auths: {}, credHelpers: {}, credsStore: undefined };

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // Only the position is kept: the parser's own message quotes file content, which may be a secret.
    throw new InputError(`${location.label} is not valid JSON${jsonErrorPosition(text, error)}`, {
      hint: 'fix the file (`docker login` rewrites it), or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere',
    });
  }
  const problem = configShapeProblem(json);
  if (problem) {
    const where = problem.path === '' ? 'the top level' : `"${problem.path}"`;
    throw new InputError(`${location.label} has an unexpected shape at ${where}: ${problem.message}`, {
      hint: 'expected {"auths": {HOST: {"auth": BASE64}}, "credHelpers": {HOST: NAME}, "credsStore": NAME}',
    });
  }
  const config = json as ConfigFileShape;
  return {
    ...location,
    auths: config.auths ?? {},
    credHelpers: config.credHelpers ?? {},
    credsStore: config.credsStore || undefined,
  };
}

function jsonErrorPosition(text: string, error: unknown): string {
  const match = /at position (\d+)/.exec(error instanceof Error ? error.message : '');
  if (match === null) return '';
  const offset = Number(match[1]);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

/**
 * Like the docker CLI: a per-host credential helper, else the default credential store, else the
 * file's own `auths`. A store that has nothing for this host lets the next one answer.
 */
async function lookupInFile(file: ConfigFile, target: Target, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const perHostHelper = findEntry(file.credHelpers, target);
  if (perHostHelper !== undefined && perHostHelper.value !== '') {
    const found = await askCredentialHelper(perHostHelper.value, target, env, `"credHelpers" in ${file.label}`);
    if (found !== undefined) return found;
  }
  if (file.credsStore !== undefined) {
    const found = await askCredentialHelper(file.credsStore, target, env, `"credsStore" in ${file.label}`);
    if (found !== undefined) return found;
  }
  const entry = findEntry(file.auths, target);
  if (entry !== undefined) return credentialFromAuthEntry(entry.value, `${file.label}, auths entry "${entry.key}"`);
  return undefined;
}

function credentialFromAuthEntry(entry: AuthEntry, origin: string): Credential | undefined {
  let username = entry.username || undefined;
  let password = entry.password || undefined;
  if (entry.auth) {
    const [decodedUser, decodedPassword] = decodeBasicAuth(entry.auth, origin);
    username = decodedUser;
    password = decodedPassword;
  }
  const identityToken = entry.identitytoken || undefined;
  if (username === undefined && password === undefined && identityToken === undefined) return undefined;
  return remember(
    {
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(identityToken === undefined ? {} : { identityToken }),
    },
    origin,
  );
}

/** `auth` is base64 of "user:password"; the password may itself contain ":". */
function decodeBasicAuth(encoded: string, origin: string): [string, string] {
  const compact = encoded.trim();
  const malformed = (problem: string): InputError =>
    new InputError(`${origin}: "auth" ${problem}`, {
      hint: 'log in again with `docker login` (or `podman login`) to rewrite it, or delete the entry',
    });
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw malformed('is not valid base64');
  const decoded = Buffer.from(compact, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw malformed('does not decode to "username:password"');
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

/** Runs `docker-credential-<helper> get` as docker does: server address on stdin, JSON on stdout. */
async function askCredentialHelper(
  helper: string,
  target: Target,
  env: NodeJS.ProcessEnv,
  configuredBy: string,
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  if (!HELPER_NAME.test(helper)) {
    throw new InputError(`credential helper name ${JSON.stringify(helper)} (${configuredBy}) is not a plain program suffix`, {
      hint: `use a name such as "ecr-login", which runs docker-credential-ecr-login from PATH`,
    });
  }
  const result = await runHelper(program, target.serverAddress, env);
  const origin = `credential helper ${program} (${configuredBy})`;

  if (result.kind === 'missing') {
    throw new InputError(`credential helper ${program} (${configuredBy}) is not installed or not on PATH`, {
      hint: `install ${program}, or remove "${helper}" from ${configuredBy}`,
    });
  }
  if (result.kind === 'timeout') {
    throw new InputError(`credential helper ${program} did not answer within ${HELPER_TIMEOUT_MS / 1000}s for ${target.serverAddress}`, {
      hint: 'it may be waiting for a password prompt or a locked keychain; run it by hand to see, or remove it from the config',
    });
  }
  if (result.kind === 'spawn-failed') {
    throw new InputError(`credential helper ${program} (${configuredBy}) could not be started: ${result.code}`, {
      hint: `check that ${program} is an executable program`,
    });
  }
  if (result.exitCode !== 0) {
    const output = `${result.stdout}\n${result.stderr}`;
    if (output.includes(HELPER_NOT_FOUND_MESSAGE)) return undefined;
    throw new InputError(
      `credential helper ${program} failed for ${target.serverAddress} (exit ${result.exitCode})${helperErrorDetail(output)}`,
      { hint: `run \`echo ${target.serverAddress} | ${program} get\` to see the problem, or log in again` },
    );
  }

  let answer: unknown;
  try {
    answer = JSON.parse(result.stdout);
  } catch {
    answer = undefined;
  }
  if (!isPlainObject(answer) || !isOptionalString(answer.Username) || !isOptionalString(answer.Secret)) {
    // Its output is not shown: it may hold the secret.
    throw new InputError(`credential helper ${program} answered with something other than JSON {"ServerURL", "Username", "Secret"}`, {
      hint: `check that ${program} is a docker credential helper`,
    });
  }
  const { Username: username, Secret: secret } = answer as { Username?: string | null; Secret?: string | null };
  if (!secret && !username) return undefined;
  if (username === IDENTITY_TOKEN_USERNAME) return secret ? remember({ identityToken: secret }, origin) : undefined;
  return remember({ ...(username ? { username } : {}), ...(secret ? { password: secret } : {}) }, origin);
}

/** The helper's own error text, first line only, unless it looks like it could carry credentials. */
function helperErrorDetail(output: string): string {
  const firstLine = output.trim().split('\n')[0]?.trim() ?? '';
  if (firstLine === '' || /secret|password|token|[{}]/i.test(firstLine)) return '';
  return `: ${firstLine.length > 200 ? `${firstLine.slice(0, 200)}...` : firstLine}`;
}

type HelperRun =
  | { kind: 'exited'; exitCode: number; stdout: string; stderr: string }
  | { kind: 'missing' }
  | { kind: 'timeout' }
  | { kind: 'spawn-failed'; code: string };

function runHelper(program: string, serverAddress: string, env: NodeJS.ProcessEnv): Promise<HelperRun> {
  return new Promise((resolvePromise) => {
    // PATH from `env` decides which program runs, as it would for docker in that environment.
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Our own timer rather than spawn's `timeout`, which outlives a helper that failed to start.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, HELPER_TIMEOUT_MS);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let outputBytes = 0;
    let settled = false;
    const settle = (run: HelperRun): void => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        resolvePromise(run);
      }
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      outputBytes += chunk.length;
      if (outputBytes <= HELPER_OUTPUT_LIMIT) into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') settle({ kind: 'missing' });
      else settle({ kind: 'spawn-failed', code: error.code ?? error.message });
    });
    child.on('close', (exitCode, signal) => {
      if (signal !== null) {
        settle(timedOut ? { kind: 'timeout' } : { kind: 'exited', exitCode: 128, stdout: '', stderr: `killed by ${signal}` });
        return;
      }
      settle({
        kind: 'exited',
        exitCode: exitCode ?? 1,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    // A helper that exits without reading stdin must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverAddress);
  });
}
