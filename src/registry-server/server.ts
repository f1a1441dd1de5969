/**
 * The embedded registry: the OCI distribution API over a filesystem store, on node:http(s).
 * Everything it acknowledges (201/202) is on disk and fsynced before the answer is sent.
 */
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { isStoredDigest, type Digest } from '../digest.js';
import { ImgbuildError, InputError, RegistryError, UsageError } from '../errors.js';
import { MediaType } from '../image/mediatypes.js';
import { monotonicMs, silentLogger, type Logger } from '../logger.js';
import { FilesystemStorage } from '../storage/filesystem.js';
import { manifestLinks, MAX_MANIFEST_BYTES } from '../storage/manifest-links.js';
import type { ManagedStorage } from '../storage/storage.js';
import { loadHtpasswd, parseBasicAuthorization, type Htpasswd } from './htpasswd.js';
import {
  clientHost,
  nextPageLink,
  paginate,
  parseContentRange,
  parseListenAddress,
  parseManifestReference,
  parsePageSize,
  parseRangeHeader,
  routeRequest,
  uploadRangeHeader,
  type Route,
} from './protocol.js';

export interface RegistryServerOptions {
  /** Where blobs, manifests, tags and uploads are kept (created if missing). */
  dir: string;
  /** `host:port`; default `127.0.0.1:0`, a free loopback port. */
  listen?: string;
  /** An htpasswd file of bcrypt entries: every request then needs Basic auth. */
  htpasswd?: string;
  /** PEM certificate chain and key: serve HTTPS. */
  tlsCert?: string;
  tlsKey?: string;
  /** One line per request goes to `info`. */
  logger?: Logger;
  /** Aborting closes the server as close() does. */
  signal?: AbortSignal;
}

export interface RunningRegistryServer {
  /** e.g. `http://127.0.0.1:5000` */
  url: string;
  /** `host:port`, as image references name this registry. */
  host: string;
  /** Stops accepting, lets requests in flight finish (for a while), then closes. */
  close(): Promise<void>;
}

/** How long close() lets requests in flight finish before cutting them. */
const SHUTDOWN_GRACE_MS = 5_000;
/** Uploads nothing has written to for this long are removed, at start and then daily (as distribution does: a week). */
const UPLOAD_IDLE_LIMIT_MS = 7 * 24 * 3600_000;
const UPLOAD_PURGE_INTERVAL_MS = 24 * 3600_000;
const API_VERSION_HEADER = ['Docker-Distribution-API-Version', 'registry/2.0'] as const;

/** A distribution error answer: status, code, message (and what it was about). */
class ApiError extends RegistryError {
  constructor(status: number, code: string, message: string) {
    super(message, { status, code });
  }
}

const unsupported = (method: string, what: string) => new ApiError(405, 'UNSUPPORTED', `${method} is not supported on ${what}`);

function digestParameter(value: string | null, what: string): Digest {
  if (value === null || value === '') throw new ApiError(400, 'DIGEST_INVALID', `${what} needs a digest query parameter`);
  if (!isStoredDigest(value)) throw new ApiError(400, 'DIGEST_INVALID', `digest ${value} is not supported; this registry stores sha256:<64 hex> and sha512:<128 hex> digests`);
  return value;
}

async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > limit) throw new ApiError(413, 'MANIFEST_INVALID', `a manifest of ${declared} bytes is more than the ${limit} this registry accepts`);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request) {
    length += (chunk as Buffer).length;
    if (length > limit) throw new ApiError(413, 'MANIFEST_INVALID', `a manifest of more than ${limit} bytes is more than this registry accepts`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, headOnly = false): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(headOnly ? undefined : text);
}

function sendEmpty(response: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Length': '0', ...headers });
  response.end();
}

function uploadHeaders(name: string, id: string, size: number): Record<string, string> {
  return { Location: `/v2/${name}/blobs/uploads/${id}`, Range: uploadRangeHeader(size), 'Docker-Upload-UUID': id };
}

function blobCreated(response: ServerResponse, name: string, digest: Digest): void {
  sendEmpty(response, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}

/** The request handler: routes, auth and one log line per request. */
export function createRegistryHandler(storage: ManagedStorage, options: { htpasswd?: Htpasswd; logger?: Logger } = {}) {
  const logger = options.logger ?? silentLogger;

  async function pageOf(url: URL, all: string[]): Promise<{ items: string[]; link?: string }> {
    const n = parsePageSize(url.searchParams.get('n'));
    if (n === 'invalid') throw new ApiError(400, 'PAGINATION_NUMBER_INVALID', `n=${url.searchParams.get('n')} is not a count`);
    const page = paginate(all, n, url.searchParams.get('last') ?? undefined);
    return { items: page.items, link: page.next === undefined || n === undefined ? undefined : nextPageLink(url.pathname, n, page.next) };
  }

  async function serveBlob(request: IncomingMessage, response: ServerResponse, name: string, digestText: string): Promise<void> {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digestText)) throw new ApiError(400, 'DIGEST_INVALID', `${digestText} is not a digest`);
    const digest = digestText as Digest;
    const size = isStoredDigest(digest) ? await storage.headBlob(name, digest) : undefined;
    if (size === undefined) throw new ApiError(404, 'BLOB_UNKNOWN', `blob ${digest} is not in repository ${name}`);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Accept-Ranges': 'bytes', ETag: `"${digest}"` };
    const range = parseRangeHeader(request.headers.range, size);
    if (range === 'unsatisfiable') {
      sendEmpty(response, 416, { 'Content-Range': `bytes */${size}` });
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    response.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': String(end - start + 1) });
    if (request.method === 'HEAD' || size === 0) {
      response.end();
      return;
    }
    await pipeline(await storage.openBlobRange(name, digest, start, end), response);
  }

  async function route(request: IncomingMessage, response: ServerResponse, url: URL, target: Route): Promise<void> {
    const method = request.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    switch (target.kind) {
      case 'base':
        if (!read) throw unsupported(method, '/v2/');
        return sendJson(response, 200, {}, {}, method === 'HEAD');
      case 'catalog': {
        if (method !== 'GET') throw unsupported(method, 'the catalog');
        const page = await pageOf(url, await storage.listRepositories());
        return sendJson(response, 200, { repositories: page.items }, page.link ? { Link: page.link } : {});
      }
      case 'tags': {
        if (method !== 'GET') throw unsupported(method, 'tag lists');
        const page = await pageOf(url, await storage.listTags(target.name));
        return sendJson(response, 200, { name: target.name, tags: page.items }, page.link ? { Link: page.link } : {});
      }
      case 'manifest': {
        const reference = parseManifestReference(target.reference);
        if (read || method === 'DELETE') {
          if (!reference) throw new ApiError(404, 'MANIFEST_UNKNOWN', `${target.reference} is neither a tag nor a sha256 or sha512 digest`);
          if (method === 'DELETE') {
            if ('digest' in reference) await storage.deleteManifest(target.name, reference.digest);
            else await storage.deleteTag(target.name, reference.tag);
            return sendEmpty(response, 202);
          }
          const manifest = await storage.getManifest(target.name, target.reference);
          response.writeHead(200, {
            'Content-Type': manifest.mediaType,
            'Content-Length': String(manifest.bytes.length),
            'Docker-Content-Digest': manifest.digest,
            ETag: `"${manifest.digest}"`,
          });
          response.end(method === 'HEAD' ? undefined : manifest.bytes);
          return;
        }
        if (method !== 'PUT') throw unsupported(method, 'manifests');
        if (!reference) throw new ApiError(400, 'TAG_INVALID', `${target.reference} is neither a valid tag nor a sha256 or sha512 digest`);
        const bytes = await readBody(request, MAX_MANIFEST_BYTES);
        const contentType = request.headers['content-type'];
        const digest = await storage.putManifest(target.name, target.reference, bytes, contentType ?? '');
        const subject = manifestLinks(bytes, contentType).subject;
        return sendEmpty(response, 201, {
          Location: `/v2/${target.name}/manifests/${digest}`,
          'Docker-Content-Digest': digest,
          ...(subject ? { 'OCI-Subject': subject } : {}),
        });
      }
      case 'blob':
        if (read) return serveBlob(request, response, target.name, target.digest);
        if (method !== 'DELETE') throw unsupported(method, 'blobs');
        await storage.deleteBlob(target.name, digestParameter(target.digest, 'DELETE'));
        return sendEmpty(response, 202);
      case 'upload-start': {
        if (method !== 'POST') throw unsupported(method, 'blob uploads');
        const mount = url.searchParams.get('mount');
        if (mount !== null && isStoredDigest(mount)) {
          const from = url.searchParams.get('from');
          const mounted = from ? await storage.mountBlob(target.name, mount, from) : await storage.linkBlob(target.name, mount);
          if (mounted) return blobCreated(response, target.name, mount);
        }
        const digest = url.searchParams.get('digest');
        if (digest !== null) {
          const checked = digestParameter(digest, 'a monolithic upload');
          await storage.putBlob(target.name, checked, request);
          return blobCreated(response, target.name, checked);
        }
        request.resume();
        const session = await storage.startUpload(target.name);
        return sendEmpty(response, 202, uploadHeaders(target.name, session.id, 0));
      }
      case 'upload': {
        if (method === 'GET') {
          const session = await storage.getUpload(target.name, target.id);
          return sendEmpty(response, 204, uploadHeaders(target.name, session.id, session.size));
        }
        if (method === 'DELETE') {
          await storage.cancelUpload(target.name, target.id);
          return sendEmpty(response, 204);
        }
        if (method !== 'PATCH' && method !== 'PUT') throw unsupported(method, 'an upload');
        const range = parseContentRange(request.headers['content-range']);
        if (range === 'invalid') throw new ApiError(400, 'BLOB_UPLOAD_INVALID', `Content-Range ${request.headers['content-range']} is not <start>-<end>`);
        // The digest is checked before any byte is taken, so a bad PUT leaves the upload as it was.
        const digest = method === 'PUT' ? digestParameter(url.searchParams.get('digest'), 'completing an upload') : undefined;
        try {
          const session = await storage.appendUpload(target.name, target.id, range?.start, request, range ? range.end - range.start + 1 : undefined);
          if (digest === undefined) return sendEmpty(response, 202, uploadHeaders(target.name, session.id, session.size));
          await storage.completeUpload(target.name, target.id, digest);
          return blobCreated(response, target.name, digest);
        } catch (error) {
          if (error instanceof RegistryError && error.status === 416) {
            const current = await storage.getUpload(target.name, target.id);
            throw Object.assign(error, { headers: uploadHeaders(target.name, current.id, current.size) });
          }
          // A retried PUT whose first answer was lost (a dropped connection, a restart): the
          // upload is gone because it completed, and the blob it stored is what was asked for.
          if (digest !== undefined && error instanceof RegistryError && error.code === 'BLOB_UPLOAD_UNKNOWN' && (await storage.headBlob(target.name, digest)) !== undefined) {
            request.resume();
            return blobCreated(response, target.name, digest);
          }
          throw error;
        }
      }
      case 'referrers': {
        if (method !== 'GET') throw unsupported(method, 'referrers');
        const digest = digestParameter(target.digest, 'the referrers API');
        const artifactType = url.searchParams.get('artifactType');
        const all = await storage.referrers(target.name, digest);
        const manifests = artifactType === null ? all : all.filter((descriptor) => descriptor.artifactType === artifactType);
        return sendJson(response, 200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, {
          'Content-Type': MediaType.ociIndex,
          ...(artifactType === null ? {} : { 'OCI-Filters-Applied': 'artifactType' }),
        });
      }
    }
  }

  function sendError(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    // An answer before the body was read: close the connection rather than read what is left.
    if (!request.complete) {
      response.setHeader('Connection', 'close');
      request.resume();
    }
    if (error instanceof RegistryError && error.code !== undefined && error.status !== undefined) {
      const extra = (error as { headers?: Record<string, string> }).headers ?? {};
      sendJson(response, error.status, { errors: [{ code: error.code, message: error.message }] }, extra, request.method === 'HEAD');
      return;
    }
    logger.warn(`registry: ${request.method} ${request.url}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    sendJson(response, 500, { errors: [{ code: 'UNKNOWN', message: 'internal error; see the registry log' }] }, {}, request.method === 'HEAD');
  }

  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const started = monotonicMs();
    let user = '-';
    const remote = request.socket.remoteAddress ?? '-';
    response.setHeader(...API_VERSION_HEADER);
    response.once('close', () => {
      const outcome = response.writableFinished ? String(response.statusCode) : `${response.statusCode} (cut)`;
      logger.info(`${remote} ${user} "${request.method} ${request.url}" ${outcome} ${response.getHeader('content-length') ?? '-'} ${Math.round(monotonicMs() - started)}ms`);
    });
    try {
      const url = new URL(request.url ?? '/', 'http://registry.invalid');
      if (options.htpasswd) {
        const credentials = parseBasicAuthorization(request.headers.authorization);
        if (!credentials || !(await options.htpasswd.verify(credentials.user, credentials.password))) {
          request.resume();
          sendJson(response, 401, { errors: [{ code: 'UNAUTHORIZED', message: credentials ? `user ${credentials.user}: wrong user or password` : 'authentication required' }] }, {
            'WWW-Authenticate': 'Basic realm="imgbuild registry", charset="UTF-8"',
          });
          return;
        }
        user = credentials.user;
      }
      const target = routeRequest(url.pathname);
      if (target.kind === 'not-found') throw new ApiError(404, 'NOT_FOUND', `${url.pathname} is not part of the distribution API`);
      if (target.kind === 'name-invalid') throw new ApiError(400, 'NAME_INVALID', `invalid repository name ${JSON.stringify(target.name)}`);
      await route(request, response, url, target);
    } catch (error) {
      sendError(request, response, error);
    }
  };
}

/** Starts the registry; resolves once it listens. */
export async function startRegistryServer(options: RegistryServerOptions): Promise<RunningRegistryServer> {
  const address = parseListenAddress(options.listen ?? '127.0.0.1:0');
  if (!address) throw new UsageError(`--listen ${options.listen}: expected HOST:PORT, [IPV6]:PORT or :PORT`, 'for example --listen 127.0.0.1:5000');
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new UsageError('TLS needs both a certificate and its key', 'pass --tls-cert FILE and --tls-key FILE together');
  }
  const readPem = async (file: string, what: string) =>
    readFile(file).catch((error: Error) => {
      throw new InputError(`cannot read the TLS ${what} ${file}: ${error.message}`);
    });
  const tls = options.tlsCert && options.tlsKey ? { cert: await readPem(options.tlsCert, 'certificate'), key: await readPem(options.tlsKey, 'key') } : undefined;
  const htpasswd = options.htpasswd ? await loadHtpasswd(options.htpasswd) : undefined;
  const storage = await FilesystemStorage.open(options.dir);
  const purgeIdleUploads = async () => {
    const purged = await storage.purgeIdleUploads(UPLOAD_IDLE_LIMIT_MS).catch((error: Error) => {
      options.logger?.warn(`registry: removing idle uploads failed: ${error.message}`);
      return 0;
    });
    if (purged > 0) options.logger?.info(`registry: removed ${purged} upload(s) idle for over ${UPLOAD_IDLE_LIMIT_MS / 3600_000} hours`);
  };
  await purgeIdleUploads();
  const purging = setInterval(() => void purgeIdleUploads(), UPLOAD_PURGE_INTERVAL_MS).unref();
  const handler = createRegistryHandler(storage, { htpasswd, logger: options.logger });

  const inFlight = new Set<ServerResponse>();
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    inFlight.add(response);
    response.once('close', () => inFlight.delete(response));
    void handler(request, response);
  };
  let server: http.Server;
  try {
    try {
      server = tls ? https.createServer(tls, listener) : http.createServer(listener);
    } catch (error) {
      throw new InputError(`cannot use the TLS certificate and key: ${(error as Error).message}`, { hint: 'pass a PEM certificate chain and its matching PEM private key' });
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(new ImgbuildError(`cannot listen on ${options.listen ?? '127.0.0.1:0'}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`, { hint: 'choose another --listen address or port' }));
      });
      server.listen(address.port, address.host, () => resolve());
    });
  } catch (error) {
    clearInterval(purging);
    await storage.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = clientHost(address.host, port);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + SHUTDOWN_GRACE_MS;
      while (inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      server.closeAllConnections();
      clearInterval(purging);
      await closed;
      await storage.close();
    })();
    return closing;
  };
  if (options.signal) {
    if (options.signal.aborted) await close();
    else options.signal.addEventListener('abort', () => void close(), { once: true });
  }
  return { url: `${tls ? 'https' : 'http'}://${host}`, host, close };
}
