import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { createSecureContext } from 'node:tls';

/**
 * HTTP/1.1 requests over Node's own http and https modules, with keep-alive connections.
 *
 * Node's HTTP parser is native code already in the binary; an HTTP library in JavaScript
 * with a WebAssembly parser costs a command that sends a dozen small requests more than the
 * requests themselves (compiling the module, and waiting at exit for V8 to finish optimising
 * it): about 60 ms of a 1 KiB add on Node 20.
 */

// Required, not imported: importing node:http as an ES module makes Node 22 and later evaluate
// every export, among them WebSocket, which loads Node's bundled fetch library (~20 ms).
const requireBuiltin = createRequire(import.meta.url);
const http = requireBuiltin('node:http') as typeof Http;
const https = requireBuiltin('node:https') as typeof Https;

/** A response body: a stream, with the ways to consume it that callers need. */
export interface ResponseBody extends Readable {
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** Reads and drops the rest, so the connection can serve the next request; never throws. */
  dump(): Promise<void>;
}

export interface TransportResponse {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export interface TransportRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: Buffer | string | Readable | null;
  signal?: AbortSignal;
}

export interface TransportOptions {
  /** PEM certificates to trust for HTTPS (the system's and any extra), asked for once, at the first HTTPS request. */
  certificates: () => Promise<string[]>;
  /** Skip certificate checks. */
  insecure: boolean;
  /** A connection idle this long (waiting for an answer or for body bytes) fails with ETIMEDOUT. */
  idleTimeoutMs?: number;
  /** Connections open at once per host. */
  connectionsPerHost?: number;
}

/** Larger unread bodies are not drained by dump(): the connection is closed instead. */
const DUMP_LIMIT = 256 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class Transport {
  private readonly plain: Http.Agent;
  private secure: Promise<Https.Agent> | undefined;

  constructor(private readonly options: TransportOptions) {
    this.plain = new http.Agent({ keepAlive: true, maxSockets: options.connectionsPerHost ?? 16 });
  }

  /**
   * Sends one request and resolves with the answer's status and headers; the body streams.
   * GET and HEAD follow redirects (registries send blob downloads to storage elsewhere),
   * without the Authorization header once the origin changes.
   */
  async request(request: TransportRequest): Promise<TransportResponse> {
    let { url, headers } = request;
    for (let redirects = 0; ; redirects++) {
      const response = await this.requestOnce({ ...request, url, headers }, await this.agentFor(url));
      const location = response.headers.location;
      const follow = (request.method === 'GET' || request.method === 'HEAD') && REDIRECTS.has(response.statusCode);
      if (!follow || typeof location !== 'string' || redirects >= MAX_REDIRECTS) return response;
      await response.body.dump();
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization'));
      }
      url = next;
    }
  }

  private agentFor(url: URL): Http.Agent | Promise<Https.Agent> {
    if (url.protocol === 'http:') return this.plain;
    if (url.protocol !== 'https:') throw new Error(`unsupported URL scheme ${url.protocol} in ${url.href}`);
    // The CA files are read, and every trusted CA parsed (tens of milliseconds), only when
    // HTTPS is used, once.
    this.secure ??= this.options.certificates().then(
      (ca) => new https.Agent({ keepAlive: true, maxSockets: this.options.connectionsPerHost ?? 16, secureContext: createSecureContext({ ca }), rejectUnauthorized: !this.options.insecure }),
    );
    return this.secure;
  }

  private requestOnce(request: TransportRequest, agent: Http.Agent): Promise<TransportResponse> {
    const { url, body } = request;
    const headers: Record<string, string> = { ...request.headers };
    if (typeof body === 'string' || Buffer.isBuffer(body)) headers['content-length'] = String(Buffer.byteLength(body));
    else if (!body && ['POST', 'PUT', 'PATCH'].includes(request.method)) headers['content-length'] = '0';
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
      const outgoing = (url.protocol === 'https:' ? https : http).request(url, {
        method: request.method,
        headers,
        agent,
        signal: request.signal,
      });
      outgoing.setTimeout(idleTimeoutMs, () => {
        const error = Object.assign(new Error(`no data from ${url.host} for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' });
        outgoing.destroy(error);
      });
      outgoing.on('error', reject);
      outgoing.once('response', (incoming) => {
        const headers: TransportResponse['headers'] = {};
        for (const [name, values] of Object.entries(incoming.headersDistinct)) {
          if (values) headers[name] = values.length === 1 ? values[0] : values;
        }
        resolve({ statusCode: incoming.statusCode ?? 0, headers, body: withConsumers(incoming) });
      });
      if (body instanceof Readable) {
        body.once('error', (error) => outgoing.destroy(error));
        body.pipe(outgoing);
      } else {
        outgoing.end(body ?? undefined);
      }
    });
  }

  /** Closes every connection. */
  close(): void {
    this.plain.destroy();
    this.secure?.then((agent) => agent.destroy(), () => {});
  }
}

function withConsumers(incoming: Http.IncomingMessage): ResponseBody {
  const collect = async (): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const dump = (): Promise<void> => {
    // A body already received in full must still be read to its end: only then does the
    // connection go back to the pool.
    if (incoming.readableEnded || incoming.destroyed) return Promise.resolve();
    if (!incoming.complete && Number(incoming.headers['content-length'] ?? 0) > DUMP_LIMIT) {
      incoming.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      incoming.once('end', resolve);
      incoming.once('close', resolve);
      incoming.once('error', () => resolve());
      incoming.resume();
    });
  };
  return Object.assign(incoming, {
    text: async () => (await collect()).toString('utf8'),
    arrayBuffer: async () => {
      const bytes = await collect();
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
    dump,
  });
}
