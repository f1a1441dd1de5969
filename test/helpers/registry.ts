// Starts real CNCF distribution registries (Debian's /usr/bin/docker-registry,
// distribution 2.8) on loopback ports for integration tests (or on a given address,
// e.g. inside a network namespace): plain HTTP, or HTTPS with a test CA, optionally
// with htpasswd basic auth.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureCliBuilt } from './cli.js';
import { runChecked } from './tools.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface RunningRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  scheme: 'http' | 'https';
  /** Registry storage root (filesystem driver): tests may inspect or corrupt blobs here. */
  dataDir: string;
  auth?: { username: string; password: string };
  /** PEM of the CA that signed the server certificate (https only). */
  caFile?: string;
  /** Directory holding only caFile as ca.crt: usable as skopeo --cert-dir (https only). */
  certDir?: string;
  /** Directory with a config.json holding the credentials for host, usable as DOCKER_CONFIG (auth only). */
  dockerConfigDir?: string;
  /** SIGTERM, wait for exit, remove the temporary directories. */
  stop(): Promise<void>;
  /** SIGKILL now, keeping the data (to simulate a crash mid-upload); restart() brings it back. */
  kill(): void;
  /** Starts again on the same port and data dir (after kill). */
  restart(): Promise<void>;
  /** Captured stdout and stderr of every run of this registry. */
  logs(): string;
}

export interface StartRegistryOptions {
  tls?: boolean;
  auth?: boolean;
  deleteEnabled?: boolean;
  /**
   * The registry's whole `auth:` section (e.g. `{ token: { realm, service, issuer, rootcertbundle } }`),
   * instead of the htpasswd one `auth: true` writes. The caller then knows the credentials itself.
   */
  authConfig?: Record<string, unknown>;
  /**
   * Listen on this address and port instead of a free loopback port, optionally inside a
   * network namespace (`ip netns exec`): a registry that is not on loopback (see netns.ts).
   */
  listen?: { address: string; port: number; netns?: string };
  /**
   * Which server: CNCF distribution (the judge, default) or imgbuild's own embedded registry
   * (`imgbuild registry serve` from the built bundle, storing in dataDir).
   */
  server?: 'distribution' | 'imgbuild';
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const MAX_LOG_CHARS = 1_000_000;
const PORT_ATTEMPTS = 5;

// Everything still alive when the test process exits is killed and removed, even
// when a test failed before its after hook ran.
const liveProcesses = new Set<ChildProcess>();
const tempDirs = new Set<string>();
function killAllSync(): void {
  for (const child of liveProcesses) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.on('exit', killAllSync);
// A signal would end the process without 'exit': clean up, then exit as the signal would have.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
  process.once(signal, () => {
    killAllSync();
    process.exit(128 + number);
  });
}

async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** A loopback port that was free a moment ago; the caller retries if it is taken meanwhile. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not read the port of a probe socket'))));
    });
  });
}

interface TestCertificates {
  caFile: string;
  certDir: string;
  serverCertFile: string;
  serverKeyFile: string;
}

// One CA and server certificate per test process: openssl key generation is slow
// enough to matter when many registries start.
let certificatesPromise: Promise<TestCertificates> | undefined;

export function testCertificates(): Promise<TestCertificates> {
  certificatesPromise ??= generateCertificates();
  return certificatesPromise;
}

async function generateCertificates(): Promise<TestCertificates> {
  const dir = await makeTempDir('imgbuild-test-pki-');
  // skopeo treats every *.key in a cert dir as a client key, so the CA cert sits alone.
  const certDir = path.join(dir, 'trust');
  await mkdir(certDir);
  const caFile = path.join(certDir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  const serverKeyFile = path.join(dir, 'server.key');
  const serverCsr = path.join(dir, 'server.csr');
  const serverCertFile = path.join(dir, 'server.crt');
  const extFile = path.join(dir, 'server.ext');
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await runChecked('openssl', [
    'req', '-x509', ...ecKey, '-keyout', caKey, '-out', caFile, '-days', '7',
    '-subj', '/CN=imgbuild test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await runChecked('openssl', ['req', '-new', ...ecKey, '-keyout', serverKeyFile, '-out', serverCsr, '-subj', '/CN=localhost']);
  await writeFile(
    extFile,
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await runChecked('openssl', [
    'x509', '-req', '-in', serverCsr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial',
    '-out', serverCertFile, '-days', '7', '-extfile', extFile,
  ]);
  return { caFile, certDir, serverCertFile, serverKeyFile };
}

async function bcryptHtpasswdLine(username: string, password: string): Promise<string> {
  // The registry accepts only bcrypt entries; openssl cannot make them, apache2-utils' htpasswd can.
  try {
    const result = await runChecked('htpasswd', ['-Bbn', username, password]);
    return result.stdout.trim();
  } catch (error) {
    throw new Error(
      `cannot create a bcrypt htpasswd entry for the auth test registry: ${(error as Error).message}\n` +
        'Install it with: apt-get install -y apache2-utils',
    );
  }
}

function registryConfigYaml(options: {
  address: string;
  port: number;
  dataDir: string;
  httpSecret: string;
  deleteEnabled: boolean;
  tls?: TestCertificates;
  htpasswdFile?: string;
  authConfig?: Record<string, unknown>;
}): string {
  // JSON is valid YAML, and needs no quoting rules of its own.
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', fields: { service: 'registry' } },
    storage: {
      filesystem: { rootdirectory: options.dataDir },
      delete: { enabled: options.deleteEnabled },
      // Keep half-finished uploads: crash tests look at them after a restart.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `${options.address}:${options.port}`,
      // A fixed secret keeps upload session state valid across restart().
      secret: options.httpSecret,
      ...(options.tls ? { tls: { certificate: options.tls.serverCertFile, key: options.tls.serverKeyFile } } : {}),
    },
  };
  if (options.authConfig) {
    config.auth = options.authConfig;
  } else if (options.htpasswdFile) {
    config.auth = { htpasswd: { realm: 'imgbuild-test', path: options.htpasswdFile } };
  }
  return JSON.stringify(config, null, 2);
}

/** GET /v2/ once; resolves with the status code, rejects on connection errors. */
export function getV2Status(
  registry: Pick<RunningRegistry, 'host' | 'scheme' | 'caFile'>,
  authorization?: string,
  caPem?: string,
): Promise<number> {
  const url = `${registry.scheme}://${registry.host}/v2/`;
  const headers = authorization ? { authorization } : {};
  return new Promise((resolve, reject) => {
    const onResponse = (response: http.IncomingMessage) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    };
    const request =
      registry.scheme === 'https'
        ? https.get(url, { headers, ca: caPem, agent: false }, onResponse)
        : http.get(url, { headers, agent: false }, onResponse);
    request.setTimeout(2_000, () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a registry on a free loopback port and waits until GET /v2/ answers 200 or 401. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RunningRegistry> {
  const rootDir = await makeTempDir('imgbuild-test-registry-');
  const dataDir = path.join(rootDir, 'data');
  await mkdir(dataDir);
  const configFile = path.join(rootDir, 'config.yml');
  const httpSecret = randomBytes(16).toString('hex');
  const tls = options.tls ? await testCertificates() : undefined;
  const caPem = tls ? await readFile(tls.caFile, 'utf8') : undefined;

  let auth: RunningRegistry['auth'];
  let htpasswdFile: string | undefined;
  if (options.auth) {
    auth = { username: 'tester', password: randomBytes(12).toString('base64url') };
    htpasswdFile = path.join(rootDir, 'htpasswd');
    await writeFile(htpasswdFile, `${await bcryptHtpasswdLine(auth.username, auth.password)}\n`);
  }

  let logText = '';
  const appendLog = (chunk: Buffer) => {
    logText += chunk.toString('utf8');
    if (logText.length > MAX_LOG_CHARS) logText = logText.slice(-MAX_LOG_CHARS / 2);
  };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = 0;
  const address = options.listen?.address ?? '127.0.0.1';
  const scheme: RunningRegistry['scheme'] = tls ? 'https' : 'http';

  const imgbuildBundle = options.server === 'imgbuild' ? await ensureCliBuilt() : undefined;
  const registryCommand = (): [string, string[]] =>
    imgbuildBundle
      ? [
          process.execPath,
          [
            imgbuildBundle, 'registry', 'serve', '--dir', dataDir, '--listen', `${address}:${port}`,
            ...(htpasswdFile ? ['--htpasswd', htpasswdFile] : []),
            ...(tls ? ['--tls-cert', tls.serverCertFile, '--tls-key', tls.serverKeyFile] : []),
          ],
        ]
      : [REGISTRY_BINARY, ['serve', configFile]];

  const spawnRegistry = () => {
    const [command, args] = registryCommand();
    logText += `--- ${command} ${args.join(' ')} (${address}:${port}) ---\n`;
    const netns = options.listen?.netns;
    // `ip netns exec` execs the registry, so the child is the registry itself and signals reach it.
    const started = netns
      ? spawn('ip', ['netns', 'exec', netns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    liveProcesses.add(started);
    started.stdout?.on('data', appendLog);
    started.stderr?.on('data', appendLog);
    exited = new Promise((resolve) => {
      started.on('error', (error) => {
        logText += `cannot run ${REGISTRY_BINARY}: ${error.message} (install the Debian package docker-registry)\n`;
        liveProcesses.delete(started);
        resolve();
      });
      started.on('exit', (code, signal) => {
        logText += `--- registry exited (code ${code}, signal ${signal}) ---\n`;
        liveProcesses.delete(started);
        resolve();
      });
    });
    child = started;
    return started;
  };

  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null && liveProcesses.has(child);

  // Resolves true when ready, false when the process exited first (e.g. port taken).
  const waitUntilReady = async (): Promise<boolean> => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!isRunning()) return false;
      try {
        const status = await getV2Status({ host: `${address}:${port}`, scheme }, undefined, caPem);
        if (status === 200 || status === 401) return true;
      } catch {
        // Not listening yet.
      }
      await delay(50);
    }
    throw new Error(
      `the test registry on ${address}:${port} did not answer GET /v2/ within ${READY_TIMEOUT_MS} ms.\n--- registry logs ---\n${logText}`,
    );
  };

  const writeConfig = () =>
    writeFile(configFile, registryConfigYaml({ address, port, dataDir, httpSecret, deleteEnabled: options.deleteEnabled ?? false, tls, htpasswdFile, authConfig: options.authConfig }));

  let ready = false;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS && !ready; attempt++) {
    port = options.listen?.port ?? (await findFreePort());
    await writeConfig();
    spawnRegistry();
    try {
      ready = await waitUntilReady();
    } catch (error) {
      child?.kill('SIGKILL');
      await exited;
      await removeTempDir(rootDir);
      throw error;
    }
    if (!ready && !/address already in use|port is in use/i.test(logText)) {
      await removeTempDir(rootDir);
      throw new Error(`the test registry exited before it was ready.\n--- registry logs ---\n${logText}`);
    }
  }
  if (!ready) {
    await removeTempDir(rootDir);
    throw new Error(`no free loopback port for the test registry after ${PORT_ATTEMPTS} tries.\n--- registry logs ---\n${logText}`);
  }

  const host = `${address}:${port}`;
  let dockerConfigDir: string | undefined;
  if (auth) {
    dockerConfigDir = path.join(rootDir, 'docker-config');
    await mkdir(dockerConfigDir);
    const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    await writeFile(path.join(dockerConfigDir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: encoded } } }, null, 2));
  }

  let stopped = false;
  let killRequested = false;
  return {
    host,
    scheme,
    dataDir,
    auth,
    caFile: tls?.caFile,
    certDir: tls?.certDir,
    dockerConfigDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (isRunning()) {
        child?.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
        });
        const outcome = await Promise.race([exited, timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          child?.kill('SIGKILL');
          await exited;
        }
      }
      await removeTempDir(rootDir);
    },
    kill() {
      if (isRunning()) {
        killRequested = true;
        child?.kill('SIGKILL');
      }
    },
    async restart() {
      if (stopped) throw new Error(`the test registry on ${host} was stopped and its data removed; it cannot restart`);
      if (isRunning() && !killRequested) {
        throw new Error(`the test registry on ${host} is still running; kill() it before restart()`);
      }
      await exited;
      killRequested = false;
      spawnRegistry();
      if (!(await waitUntilReady())) {
        throw new Error(`the test registry on ${host} did not come back after restart.\n--- registry logs ---\n${logText}`);
      }
    },
    logs: () => logText,
  };
}

/** Where the registry's filesystem driver keeps the bytes of a blob (manifests included). */
export function storedBlobFile(registry: Pick<RunningRegistry, 'dataDir'>, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

/**
 * Rewrites a stored blob in place, as disk rot or a tampering operator would: the registry
 * goes on serving it under its old digest. Returns a function that puts the original back.
 */
export async function alterStoredBlob(
  registry: Pick<RunningRegistry, 'dataDir'>,
  digest: string,
  alter: (bytes: Buffer) => Buffer,
): Promise<() => Promise<void>> {
  const file = storedBlobFile(registry, digest);
  const original = await readFile(file);
  const altered = alter(original);
  if (altered.equals(original)) throw new Error(`alterStoredBlob: the alteration left ${digest} unchanged`);
  await writeFile(file, altered);
  return () => writeFile(file, original);
}
