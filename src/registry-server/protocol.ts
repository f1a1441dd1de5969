/**
 * The distribution API's pure parts: which route a request names, byte ranges, pagination and
 * listen addresses. No I/O here, so each rule is a unit test.
 */
import { isStoredDigest, type Digest } from '../digest.js';
import { isRepositoryPath, isTagName } from '../reference.js';

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload-start'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

/** A request the API does not know (404), or one naming an invalid repository (400 NAME_INVALID). */
export type RouteMiss = { kind: 'not-found' } | { kind: 'name-invalid'; name: string };

// The repository name may hold slashes, so each route is matched from its end.
const NAMED_ROUTES: ReadonlyArray<[RegExp, (name: string, last: string) => Route]> = [
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (name) => ({ kind: 'upload-start', name })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (name, id) => ({ kind: 'upload', name, id })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (name, digest) => ({ kind: 'blob', name, digest })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (name, reference) => ({ kind: 'manifest', name, reference })],
  [/^\/v2\/(.+)\/tags\/list$/, (name) => ({ kind: 'tags', name })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (name, digest) => ({ kind: 'referrers', name, digest })],
];

/** Maps a request path (without the query) to the API route it names. */
export function routeRequest(pathname: string): Route | RouteMiss {
  if (pathname === '/v2' || pathname === '/v2/') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  for (const [pattern, make] of NAMED_ROUTES) {
    const match = pattern.exec(pathname);
    if (!match) continue;
    const name = match[1]!;
    if (!isRepositoryPath(name)) return { kind: 'name-invalid', name };
    return make(name, match[2] === undefined ? '' : decodeURIComponent(match[2]));
  }
  return { kind: 'not-found' };
}

/** A manifest reference: a tag, or a digest (sha256 or sha512 to be served). */
export function parseManifestReference(reference: string): { tag: string } | { digest: Digest } | undefined {
  if (isStoredDigest(reference)) return { digest: reference };
  if (isTagName(reference)) return { tag: reference };
  return undefined;
}

/** Bytes [start, end] inclusive, as HTTP ranges count. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A `Range: bytes=...` request header against a blob of `size` bytes: undefined for the whole
 * blob (no header, or one we do not serve partially such as several ranges), 'unsatisfiable'
 * for a range outside the blob (416).
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: RFC 9110 lets a server answer with the whole representation.
  if (!match) return undefined;
  const [, first, last] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // A suffix: the last N bytes.
    const length = Number(last);
    if (length === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return 'unsatisfiable';
  return { start, end };
}

/** An upload chunk's `Content-Range: <start>-<end>` (inclusive), as the spec writes it. */
export function parseContentRange(header: string | undefined): ByteRange | undefined | 'invalid' {
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match) return 'invalid';
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) return 'invalid';
  return { start, end };
}

/** The `Range` header of an upload holding `size` bytes ("0-0" when empty, as distribution says). */
export function uploadRangeHeader(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

export interface Page {
  items: string[];
  /** The `last` to ask for the next page, when there is one. */
  next: string | undefined;
}

/** Sorted names after `last`, at most `n` of them (all of them when n is undefined). */
export function paginate(sortedItems: readonly string[], n: number | undefined, last: string | undefined): Page {
  const after = last === undefined ? sortedItems : sortedItems.filter((item) => item > last);
  if (n === undefined || after.length <= n) return { items: [...after], next: undefined };
  const items = after.slice(0, n);
  return { items, next: n === 0 ? undefined : items[items.length - 1] };
}

/** The `n` query parameter: a count, or undefined when absent; 'invalid' otherwise. */
export function parsePageSize(value: string | null): number | undefined | 'invalid' {
  if (value === null || value === '') return undefined;
  if (!/^\d+$/.test(value)) return 'invalid';
  return Number(value);
}

/** The `Link` header pointing at the next page: `<path?n=..&last=..>; rel="next"`. */
export function nextPageLink(pathname: string, n: number, last: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ ...extra, n: String(n), last });
  return `<${pathname}?${query.toString()}>; rel="next"`;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all interfaces). */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]!);
  return { host, port };
}

/** How clients should name a server listening on `host:port` (a wildcard address means loopback here). */
export function clientHost(host: string, port: number): string {
  if (host === '0.0.0.0') return `127.0.0.1:${port}`;
  if (host === '::') return `[::1]:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
