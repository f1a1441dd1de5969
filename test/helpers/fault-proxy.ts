// An HTTP proxy on 127.0.0.1 in front of a real (plain-HTTP) test registry that
// injects the faults a real server cannot be made to produce on demand: error
// statuses for the next N matching requests, a connection reset in the middle
// of a request body (or before any answer, for GET and HEAD), and a response
// body altered on its way to the client. It logs every request so tests can assert what the
// client did (retries, upload status checks, bytes re-sent), not how long it took.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What a registry API request is, from its method and path. */
export type RequestKind =
  | 'api-root'
  | 'manifest'
  | 'blob'
  | 'upload-start'
  | 'upload-chunk'
  | 'upload-status'
  | 'upload-complete'
  | 'upload-cancel'
  | 'other';

export interface ProxiedRequest {
  method: string;
  /** Path and query as the client sent it. */
  url: string;
  kind: RequestKind;
  /** Status sent to the client; 0 when the connection was reset instead. */
  status: number;
  /** Request body bytes received from the client. */
  bodyBytes: number;
  /** Request body bytes passed on to the registry. */
  forwardedBytes: number;
  /** 'status' when answered by an injected status, 'reset' when the connection was cut, 'altered' when the answer's body was changed. */
  fault?: 'status' | 'reset' | 'altered';
  /** When the proxy received the request (Date.now()), to check the gap a retry left. */
  receivedAt: number;
  /** The request's Content-Range header, if any (chunk uploads). */
  contentRange?: string;
  /** Whether the request carried an Authorization header. */
  authorized: boolean;
}

export interface RequestMatcher {
  method?: string;
  /** Tested against the path and query. */
  path?: RegExp;
  kind?: RequestKind;
  /** Let this many matching requests through untouched before the fault applies; default 0. */
  after?: number;
}

export interface StatusFault extends RequestMatcher {
  status: number;
  /** How many matching requests get the status; default 1. Infinity for "from now on". */
  times?: number;
  headers?: Record<string, string>;
  /** JSON body; default a registry-style error body naming the injected fault. */
  body?: unknown;
  /** Answer only once this settles: a fault timed by an event the test waits for, not by a clock. */
  until?: Promise<unknown>;
}

export interface ResetFault extends RequestMatcher {
  /** Cut the connection once this many body bytes came from the client. */
  afterBytes: number;
  /**
   * true (default): those bytes reach the registry before the cut, as when a connection
   * dies mid-transfer. false: none of the body reaches the registry.
   */
  forwardBeforeReset?: boolean;
  times?: number;
}

export interface AlterFault extends RequestMatcher {
  /** New body for the registry's answer; headers (Content-Length, digests) are passed on unchanged. */
  alter(body: Buffer): Buffer;
  /** Answer headers to leave out too (e.g. docker-content-digest, which a registry need not send). */
  dropHeaders?: string[];
  times?: number;
}

export interface RunningFaultProxy {
  /** "127.0.0.1:PORT", to use as the registry host. */
  host: string;
  /** Every request, oldest first. */
  log: ProxiedRequest[];
  /** Requests in the log that match. */
  matching(matcher: RequestMatcher): ProxiedRequest[];
  count(matcher: RequestMatcher): number;
  failNext(fault: StatusFault): void;
  /**
   * Cuts the connection of the next matching requests. With afterBytes 0 the request is
   * cut on arrival, before the registry sees it: the way to reset a GET or a HEAD.
   */
  resetNext(fault: ResetFault): void;
  /** Changes the body of the registry's answer to the next matching requests (corrupted content in transit). */
  alterNext(fault: AlterFault): void;
  /** TCP connections the proxy accepted since it started (or since reset()). */
  connectionsAccepted(): number;
  /** Drops pending faults and the log. */
  reset(): void;
  stop(): Promise<void>;
}

export function requestKind(method: string, url: string): RequestKind {
  const pathname = url.split('?')[0]!;
  if (pathname === '/v2/' || pathname === '/v2') return 'api-root';
  if (/^\/v2\/.+\/manifests\/[^/]+$/.test(pathname)) return 'manifest';
  if (/^\/v2\/.+\/blobs\/uploads\/?$/.test(pathname)) return method === 'POST' ? 'upload-start' : 'other';
  if (/^\/v2\/.+\/blobs\/uploads\/[^/]+$/.test(pathname)) {
    switch (method) {
      case 'PATCH':
        return 'upload-chunk';
      case 'GET':
      case 'HEAD':
        return 'upload-status';
      case 'PUT':
        return 'upload-complete';
      case 'DELETE':
        return 'upload-cancel';
      default:
        return 'other';
    }
  }
  if (/^\/v2\/.+\/blobs\/sha256:[0-9a-f]+$/.test(pathname)) return 'blob';
  return 'other';
}

function matches(matcher: RequestMatcher, entry: Pick<ProxiedRequest, 'method' | 'url' | 'kind'>): boolean {
  return (
    (matcher.method === undefined || matcher.method.toUpperCase() === entry.method) &&
    (matcher.kind === undefined || matcher.kind === entry.kind) &&
    (matcher.path === undefined || matcher.path.test(entry.url))
  );
}

interface Pending<T> {
  fault: T;
  /** Matching requests still to let through. */
  toSkip: number;
  remaining: number;
}

/** Takes one use of the first pending fault that matches, if any. */
function takeFault<T extends RequestMatcher>(pending: Array<Pending<T>>, entry: ProxiedRequest): T | undefined {
  for (const candidate of pending) {
    if (candidate.remaining <= 0 || !matches(candidate.fault, entry)) continue;
    if (candidate.toSkip > 0) {
      candidate.toSkip--;
      continue;
    }
    candidate.remaining--;
    return candidate.fault;
  }
  return undefined;
}

/** Starts a proxy to the plain-HTTP registry at `upstreamHost` ("127.0.0.1:PORT"). */
export async function startFaultProxy(upstreamHost: string): Promise<RunningFaultProxy> {
  const log: ProxiedRequest[] = [];
  let statusFaults: Array<Pending<StatusFault>> = [];
  let resetFaults: Array<Pending<ResetFault>> = [];
  let alterFaults: Array<Pending<AlterFault>> = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  let proxyHost = '';

  // The registry writes absolute URLs with the host it was asked by; the client must come back through us.
  const rewriteLocation = (value: string) => value.replace(`http://${upstreamHost}`, `http://${proxyHost}`);

  const server = http.createServer((request, response) => {
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    const entry: ProxiedRequest = {
      method,
      url,
      kind: requestKind(method, url),
      status: 0,
      bodyBytes: 0,
      forwardedBytes: 0,
      receivedAt: Date.now(),
      authorized: request.headers.authorization !== undefined,
      ...(request.headers['content-range'] ? { contentRange: String(request.headers['content-range']) } : {}),
    };
    log.push(entry);

    const statusFault = takeFault(statusFaults, entry);
    if (statusFault) {
      entry.fault = 'status';
      request.on('data', (chunk: Buffer) => (entry.bodyBytes += chunk.length));
      request.on('end', async () => {
        await statusFault.until?.catch(() => {});
        entry.status = statusFault.status;
        const body = JSON.stringify(
          statusFault.body ?? { errors: [{ code: 'UNKNOWN', message: `fault injected by the test proxy: HTTP ${statusFault.status}` }] },
        );
        response.writeHead(statusFault.status, { 'content-type': 'application/json', ...statusFault.headers });
        response.end(body);
      });
      return;
    }

    const resetFault = takeFault(resetFaults, entry);
    if (resetFault && resetFault.afterBytes <= 0) {
      entry.fault = 'reset';
      request.socket.destroy();
      return;
    }
    const alterFault = resetFault ? undefined : takeFault(alterFaults, entry);
    const forwardBeforeReset = resetFault?.forwardBeforeReset ?? true;
    const headers = { ...request.headers, host: upstreamHost };
    const upstream =
      resetFault && !forwardBeforeReset
        ? undefined
        : http.request({ host: '127.0.0.1', port: Number(upstreamHost.split(':')[1]), method, path: url, headers });

    const cut = () => {
      entry.fault = 'reset';
      entry.status = 0;
      request.socket.destroy();
      upstream?.destroy();
    };

    request.on('data', (chunk: Buffer) => {
      if (entry.fault === 'reset') return;
      let piece = chunk;
      if (resetFault) {
        const room = resetFault.afterBytes - entry.bodyBytes;
        if (room <= 0) return cut();
        piece = chunk.subarray(0, room);
      }
      entry.bodyBytes += piece.length;
      if (upstream) {
        entry.forwardedBytes += piece.length;
        if (!upstream.write(piece)) {
          request.pause();
          upstream.once('drain', () => request.resume());
        }
      }
      if (resetFault && entry.bodyBytes >= resetFault.afterBytes) {
        // Let the bytes written reach the registry before the cut, as on a real network.
        if (upstream) upstream.write('', () => cut());
        else cut();
      }
    });
    request.on('end', () => {
      if (entry.fault !== 'reset') upstream?.end();
    });
    if (!upstream) return;
    upstream.on('response', (answer) => {
      if (entry.fault === 'reset') {
        answer.resume();
        return;
      }
      entry.status = answer.statusCode ?? 0;
      const answerHeaders = { ...answer.headers };
      if (typeof answerHeaders.location === 'string') answerHeaders.location = rewriteLocation(answerHeaders.location);
      if (alterFault && method !== 'HEAD') {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          entry.fault = 'altered';
          const altered = alterFault.alter(Buffer.concat(chunks));
          if (answerHeaders['content-length'] !== undefined) answerHeaders['content-length'] = String(altered.length);
          for (const name of alterFault.dropHeaders ?? []) delete answerHeaders[name.toLowerCase()];
          response.writeHead(answer.statusCode ?? 502, answerHeaders);
          response.end(altered);
        });
        return;
      }
      response.writeHead(answer.statusCode ?? 502, answerHeaders);
      answer.pipe(response);
    });
    upstream.on('error', (error) => {
      if (entry.fault === 'reset') return;
      entry.status = 502;
      if (!response.headersSent) {
        response.writeHead(502, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `test proxy: registry unreachable: ${error.message}` }] }));
      } else {
        response.destroy();
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    accepted++;
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  proxyHost = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    host: proxyHost,
    log,
    matching: (matcher) => log.filter((entry) => matches(matcher, entry)),
    count: (matcher) => log.filter((entry) => matches(matcher, entry)).length,
    failNext(fault) {
      statusFaults.push({ fault, toSkip: fault.after ?? 0, remaining: fault.times ?? 1 });
    },
    resetNext(fault) {
      resetFaults.push({ fault, toSkip: fault.after ?? 0, remaining: fault.times ?? 1 });
    },
    alterNext(fault) {
      alterFaults.push({ fault, toSkip: fault.after ?? 0, remaining: fault.times ?? 1 });
    },
    connectionsAccepted: () => accepted,
    reset() {
      accepted = 0;
      statusFaults = [];
      resetFaults = [];
      alterFaults = [];
      log.length = 0;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
