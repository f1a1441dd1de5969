import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { InputError } from '../errors.js';

/**
 * Which CA certificates to trust for one registry, found where docker, podman and the system
 * keep them, so a machine already set up for a private registry needs no flag:
 * Node's bundled roots, the system bundle (where `update-ca-certificates` puts local CAs),
 * NODE_EXTRA_CA_CERTS, `*.crt` in `certs.d/<host:port>/` directories, then `--cert-dir` and `--ca-file`.
 */

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * The system CA bundle: `$SSL_CERT_FILE` when set (OpenSSL and Go read it the same way, so a
 * machine or container that points them at a bundle points us there too), else the first
 * of the distributions' usual paths that exists.
 */
export function systemBundle(env: NodeJS.ProcessEnv = process.env): { file: string; label: string } | undefined {
  if (env.SSL_CERT_FILE) return { file: env.SSL_CERT_FILE, label: 'SSL_CERT_FILE' };
  const file = SYSTEM_BUNDLES.find((candidate) => existsSync(candidate));
  return file === undefined ? undefined : { file, label: 'the system CA bundle' };
}

/** certs.d roots as docker (daemon and rootless) and containers/image (podman, skopeo, buildah) read them. */
export function defaultCertsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? homedir();
  const config = env.XDG_CONFIG_HOME ?? path.join(home, '.config');
  return ['/etc/docker/certs.d', '/etc/containers/certs.d', path.join(config, 'containers/certs.d'), path.join(home, '.docker/certs.d')];
}

export interface TrustSources {
  registry: string;
  caFile?: string;
  /** A directory of `*.crt` files for this registry, like skopeo's --cert-dir. */
  certDir?: string;
  /** certs.d roots searched for a `<registry>/` directory. */
  certsDirs?: string[];
  /** Where SSL_CERT_FILE and HOME are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

async function crtFiles(directory: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return [];
  }
  return names.filter((name) => name.endsWith('.crt')).sort().map((name) => path.join(directory, name));
}

async function readPem(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read CA file ${file} (${flag}): ${(error as Error).message}`, {
      hint: 'give a readable PEM file with the certificate of the CA that signed the registry certificate',
    });
  }
}

/**
 * What any HTTPS connection of imgbuild trusts: Node's bundled roots, the system bundle, and
 * the file NODE_EXTRA_CA_CERTS names (Node adds it to its default; every connection here
 * passes its own list, so it is added here). An unreadable NODE_EXTRA_CA_CERTS is skipped
 * with a warning, as Node does.
 */
export async function baseCertificates(env: NodeJS.ProcessEnv = process.env, warn: (message: string) => void = () => {}): Promise<string[]> {
  const certificates = [...rootCertificates];
  const system = systemBundle(env);
  if (system) certificates.push(await readPem(system.file, system.label));
  const extra = env.NODE_EXTRA_CA_CERTS === system?.file ? undefined : extraCaCertificates(env, warn);
  if (extra) certificates.push(extra);
  return certificates;
}

/**
 * The PEM text of the file NODE_EXTRA_CA_CERTS names; undefined when it is unset, or unreadable
 * (told to `warn`: Node, too, goes on without it).
 */
export function extraCaCertificates(env: NodeJS.ProcessEnv, warn: (message: string) => void = () => {}): string | undefined {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    warn(`ignoring the extra CA certificates in ${file} (NODE_EXTRA_CA_CERTS): ${(error as Error).message}`);
    return undefined;
  }
}

/** PEM texts to trust for `registry` (the complete list: it replaces Node's default) and the extra files they came from. */
export async function trustedCertificates(sources: TrustSources, warn?: (message: string) => void): Promise<{ certificates: string[]; extraFiles: string[] }> {
  const extraFiles: string[] = [];
  for (const root of sources.certsDirs ?? defaultCertsDirs(sources.env)) extraFiles.push(...(await crtFiles(path.join(root, sources.registry))));
  if (sources.certDir) {
    const files = await crtFiles(sources.certDir);
    if (files.length === 0 && !existsSync(sources.certDir)) {
      throw new InputError(`--cert-dir ${sources.certDir} does not exist`, { hint: 'give a directory holding the CA certificate as a .crt file' });
    }
    extraFiles.push(...files);
  }
  const certificates = await baseCertificates(sources.env, warn);
  for (const file of extraFiles) certificates.push(await readPem(file, 'CA certificate'));
  if (sources.caFile) {
    certificates.push(await readPem(sources.caFile, '--ca-file'));
    extraFiles.push(sources.caFile);
  }
  return { certificates, extraFiles };
}
