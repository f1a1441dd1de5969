import { AuthError } from '../errors.js';
import type { Credential } from './credentials.js';

/** One challenge of a WWW-Authenticate header, e.g. `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate value, which may hold several challenges separated by commas
 * (RFC 7235): `Bearer realm="a",service="b", Basic realm="c"`.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const challenges: Challenge[] = [];
  for (const value of values) {
    const tokenPattern = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
    const paramPattern = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
    let position = 0;
    while (position < value.length) {
      tokenPattern.lastIndex = position;
      const scheme = tokenPattern.exec(value);
      if (!scheme) break;
      position = tokenPattern.lastIndex;
      const params: Record<string, string> = {};
      for (;;) {
        paramPattern.lastIndex = position;
        const param = paramPattern.exec(value);
        // A bare token followed by space is the next challenge's scheme, not a parameter.
        if (!param) break;
        params[param[1]!.toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : (param[3] ?? '');
        position = paramPattern.lastIndex;
      }
      challenges.push({ scheme: scheme[1]!.toLowerCase(), params });
      while (value[position] === ',' || value[position] === ' ') position++;
    }
  }
  return challenges;
}

/** Repository scope strings as the token protocol writes them. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/** Merges scopes, joining actions of the same resource (`repository:a:pull` + `repository:a:push`). */
export function mergeScopes(...lists: ReadonlyArray<readonly string[]>): string[] {
  const actions = new Map<string, Set<string>>();
  for (const scope of lists.flat()) {
    for (const single of scope.split(' ').filter(Boolean)) {
      const colon = single.lastIndexOf(':');
      const resource = colon > 0 ? single.slice(0, colon) : single;
      const set = actions.get(resource) ?? new Set<string>();
      if (colon > 0) for (const action of single.slice(colon + 1).split(',')) set.add(action);
      actions.set(resource, set);
    }
  }
  return [...actions.entries()]
    .map(([resource, set]) => (set.size ? `${resource}:${[...set].sort().join(',')}` : resource))
    .sort();
}

export function basicAuthorization(credential: Credential): string | undefined {
  if (credential.username === undefined || credential.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

/** The request that asks a token server for a token, per the distribution token spec. */
export interface TokenRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export function tokenRequest(challenge: Challenge, scopes: readonly string[], credential: Credential | undefined): TokenRequest {
  const realm = challenge.params.realm;
  if (!realm) throw new AuthError('the registry asked for a Bearer token but named no realm to get it from');
  const service = challenge.params.service;
  if (credential?.identityToken) {
    // An identity token (docker login with OAuth) is exchanged with a refresh_token grant.
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: 'imgbuild' });
    if (service) form.set('service', service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    return {
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    };
  }
  const url = new URL(realm);
  if (service) url.searchParams.set('service', service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  const basic = credential && basicAuthorization(credential);
  if (basic) headers.authorization = basic;
  return { method: 'GET', url: url.toString(), headers };
}

/** Reads `token` or `access_token` from a token server's answer. */
export function tokenFromResponse(body: unknown): { token: string; expiresInSeconds: number } {
  const record = (body ?? {}) as Record<string, unknown>;
  const token = typeof record.token === 'string' && record.token ? record.token : record.access_token;
  if (typeof token !== 'string' || !token) {
    throw new AuthError('the token server answered without a token', {
      hint: 'check the registry auth configuration; the token endpoint returned neither "token" nor "access_token"',
    });
  }
  const expires = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : 60;
  return { token, expiresInSeconds: expires };
}
