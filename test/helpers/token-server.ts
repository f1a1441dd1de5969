// A token server for the distribution token protocol, so the real registry
// (distribution 2.8, `auth: token:`) can be run with Bearer-token auth in tests.
// Users log in with Basic auth; each gets a JWT granting, per repository, the
// asked actions its permissions allow. distribution 2.8 checks iss, aud, exp/nbf
// and the signature with the key of the `x5c` leaf certificate, which must chain
// to `rootcertbundle` (here the self-signed certificate itself).
import { createPrivateKey, randomBytes, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRegistry, type RunningRegistry } from './registry.js';
import { runChecked } from './tools.js';

export type RepositoryAction = 'pull' | 'push' | 'delete' | '*';

/** `pattern` is a repository name where `*` matches any run of characters (`dest/*`, `*`). */
export interface RepositoryPermission {
  pattern: string;
  actions: RepositoryAction[];
}

export interface TokenUser {
  password: string;
  permissions: RepositoryPermission[];
}

export interface TokenServerOptions {
  users: Record<string, TokenUser>;
  /** What a request without credentials may do; default nothing (a token with no access). */
  anonymous?: RepositoryPermission[];
  /** Which field carries the token in the answer; default 'token'. */
  tokenField?: 'token' | 'access_token' | 'both';
  service?: string;
  issuer?: string;
  /** Lifetime written in `exp` and `expires_in`; default 300 s. */
  expiresInSeconds?: number;
  /**
   * Identity (refresh) tokens this server accepts in an OAuth2 `grant_type=refresh_token` POST,
   * each standing for a user of `users`: what `docker login` stores as `identitytoken`.
   */
  refreshTokens?: Record<string, string>;
}

/** One token request, as the server saw it. */
export interface TokenRequestRecord {
  /** The Basic-auth user (or the user a refresh token stands for), or undefined for an anonymous request. */
  username?: string;
  /** 'refresh_token' for an OAuth2 POST exchanging an identity token; undefined for the GET with Basic auth. */
  grantType?: string;
  service?: string;
  /** Every `scope` parameter, split on spaces (a client may send several in one). */
  scopes: string[];
  status: number;
  /** What the issued token grants (empty when refused). */
  granted: Array<{ name: string; actions: string[] }>;
}

export interface RunningTokenServer {
  /** `http://127.0.0.1:PORT/token` */
  realm: string;
  service: string;
  issuer: string;
  /** PEM of the self-signed certificate whose key signs the tokens. */
  certFile: string;
  /** Every token request so far, oldest first. */
  requests: TokenRequestRecord[];
  /** The registry's `auth:` section for this server. */
  registryAuthConfig(): Record<string, unknown>;
  /**
   * The next `count` accepted token requests get a token that grants nothing, as a client
   * holding a token without the scope a request needs sees it: the registry answers 401.
   */
  grantNothingToNext(count: number): void;
  stop(): Promise<void>;
}

interface SigningKey {
  dir: string;
  key: KeyObject;
  certFile: string;
  certDerBase64: string;
}

// One key per test process: key generation costs a little, tokens from every server may share it.
let signingKeyPromise: Promise<SigningKey> | undefined;

function signingKey(): Promise<SigningKey> {
  signingKeyPromise ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-test-token-key-'));
    keyDirToRemove = dir;
    const keyFile = path.join(dir, 'token.key');
    const certFile = path.join(dir, 'token.crt');
    await runChecked('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=imgbuild test token issuer',
    ]);
    const certPem = await readFile(certFile, 'utf8');
    return {
      dir,
      key: createPrivateKey(await readFile(keyFile, 'utf8')),
      certFile,
      certDerBase64: new X509Certificate(certPem).raw.toString('base64'),
    };
  })();
  return signingKeyPromise;
}

let keyDirToRemove: string | undefined;
process.on('exit', () => {
  if (keyDirToRemove) rmSync(keyDirToRemove, { recursive: true, force: true });
});

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** An ES256 JWT: the signature is r||s (IEEE P1363), as JWS requires and libtrust expects. */
function signJwt(header: object, claims: object, key: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${base64url(signature)}`;
}

function patternMatches(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return regex.test(name);
}

/** The actions of `asked` on repository `name` that `permissions` allow. */
function allowedActions(permissions: readonly RepositoryPermission[], name: string, asked: readonly string[]): string[] {
  const allowed = new Set<string>();
  for (const permission of permissions) {
    if (!patternMatches(permission.pattern, name)) continue;
    for (const action of asked) {
      if (permission.actions.includes('*') || permission.actions.includes(action as RepositoryAction)) allowed.add(action);
    }
  }
  return [...allowed].sort();
}

/** Parses `repository:NAME:a,b` (NAME may hold colons only with a port, which repositories do not have). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const match = header ? /^Basic\s+(\S+)$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function startTokenServer(options: TokenServerOptions): Promise<RunningTokenServer> {
  const key = await signingKey();
  const service = options.service ?? 'imgbuild-test-registry';
  const issuer = options.issuer ?? 'imgbuild-test-token-issuer';
  const lifetime = options.expiresInSeconds ?? 300;
  const requests: TokenRequestRecord[] = [];
  let emptyGrantsLeft = 0;

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://token.invalid');
    const reply = (status: number, body: object) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || (request.method !== 'GET' && request.method !== 'POST')) {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: `${request.method} ${url.pathname}: only GET and POST /token are served` }] });
      return;
    }
    if (request.method === 'POST') {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => answer(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    } else {
      answer(url.searchParams);
    }

    function answer(params: URLSearchParams): void {
      const scopes = params.getAll('scope').flatMap((scope) => scope.split(' ')).filter(Boolean);
      const record: TokenRequestRecord = { service: params.get('service') ?? undefined, scopes, status: 0, granted: [] };
      requests.push(record);

      const authorization = request.headers.authorization;
      const credentials = basicCredentials(authorization);
      let permissions: readonly RepositoryPermission[];
      if (request.method === 'POST') {
        // OAuth2 as docker's registry token spec describes it: an identity token for an access token.
        record.grantType = params.get('grant_type') ?? undefined;
        const refreshToken = params.get('refresh_token') ?? '';
        const username = record.grantType === 'refresh_token' && Object.hasOwn(options.refreshTokens ?? {}, refreshToken) ? options.refreshTokens![refreshToken] : undefined;
        const user = username !== undefined && Object.hasOwn(options.users, username) ? options.users[username] : undefined;
        if (!user) {
          record.status = 401;
          reply(401, { error: 'invalid_grant', error_description: 'unknown refresh token or unsupported grant_type' });
          return;
        }
        record.username = username;
        permissions = user.permissions;
      } else if (authorization !== undefined) {
        record.username = credentials?.username;
        const user = credentials && Object.hasOwn(options.users, credentials.username) ? options.users[credentials.username] : undefined;
        if (!user || user.password !== credentials!.password) {
          record.status = 401;
          response.setHeader('www-authenticate', `Basic realm="${service}"`);
          reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required: wrong username or password' }] });
          return;
        }
        permissions = user.permissions;
      } else {
        permissions = options.anonymous ?? [];
      }

      const access: Array<{ type: string; name: string; actions: string[] }> = [];
      for (const scope of scopes) {
        const parsed = parseScope(scope);
        if (!parsed || parsed.type !== 'repository') continue;
        const actions = allowedActions(permissions, parsed.name, parsed.actions);
        if (actions.length) access.push({ type: 'repository', name: parsed.name, actions });
      }
      if (emptyGrantsLeft > 0) {
        emptyGrantsLeft--;
        access.length = 0;
      }
      record.granted = access.map(({ name, actions }) => ({ name, actions }));

      const now = Math.floor(Date.now() / 1000);
      const token = signJwt(
        { typ: 'JWT', alg: 'ES256', x5c: [key.certDerBase64] },
        {
          iss: issuer,
          sub: record.username ?? '',
          aud: service,
          exp: now + lifetime,
          nbf: now - 1,
          iat: now,
          jti: randomUUID(),
          access,
        },
        key.key,
      );
      record.status = 200;
      const field = options.tokenField ?? 'token';
      reply(200, {
        ...(field === 'token' || field === 'both' ? { token } : {}),
        ...(field === 'access_token' || field === 'both' ? { access_token: token } : {}),
        expires_in: lifetime,
        issued_at: new Date(now * 1000).toISOString(),
      });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const realm = `http://127.0.0.1:${port}/token`;

  return {
    realm,
    service,
    issuer,
    certFile: key.certFile,
    requests,
    registryAuthConfig: () => ({ token: { realm, service, issuer, rootcertbundle: key.certFile } }),
    grantNothingToNext(count: number) {
      emptyGrantsLeft = count;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TokenAuthRegistry {
  /** The registry; `auth` holds the admin user, so fixtures (skopeo) can push anything. */
  registry: RunningRegistry;
  tokenServer: RunningTokenServer;
  /** Every user's password, by name (admin included). */
  passwords: { admin: string; pusher: string; reader: string };
  stop(): Promise<void>;
}

/**
 * A real registry behind a token server with the users of these tests:
 * `admin` may do anything; `pusher` pull+push on `dest/*` and pull on `base/*`;
 * `reader` only pull, everywhere. Passwords are random per run.
 */
export async function startTokenAuthRegistry(options: Pick<TokenServerOptions, 'tokenField' | 'anonymous' | 'refreshTokens'> = {}): Promise<TokenAuthRegistry> {
  const password = () => randomBytes(12).toString('base64url');
  const passwords = { admin: password(), pusher: password(), reader: password() };
  const tokenServer = await startTokenServer({
    ...options,
    users: {
      admin: { password: passwords.admin, permissions: [{ pattern: '*', actions: ['*'] }] },
      pusher: {
        password: passwords.pusher,
        permissions: [
          { pattern: 'dest/*', actions: ['pull', 'push'] },
          { pattern: 'base/*', actions: ['pull'] },
        ],
      },
      reader: { password: passwords.reader, permissions: [{ pattern: '*', actions: ['pull'] }] },
    },
  });
  let registry: RunningRegistry;
  try {
    registry = await startRegistry({ authConfig: tokenServer.registryAuthConfig() });
  } catch (error) {
    await tokenServer.stop();
    throw error;
  }
  return {
    registry: { ...registry, auth: { username: 'admin', password: passwords.admin } },
    tokenServer,
    passwords,
    async stop() {
      await Promise.all([registry.stop(), tokenServer.stop()]);
    },
  };
}
