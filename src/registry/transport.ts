import type { Readable } from 'node:stream';
import { createSecureContext, type ConnectionOptions } from 'node:tls';
import { Http1Client, type Http1Request, type ResponseStream } from './http1.js';

/**
 * HTTP/1.1 requests with keep-alive connections, over imgbuild's own small client (see
 * http1.ts for why not Node's http module, and below for why not a library).
 *
 * An HTTP library in JavaScript with a WebAssembly parser costs a command that sends a dozen
 * small requests more than the requests themselves (compiling the module, and waiting at exit
 * for V8 to finish optimising it): about 60 ms of a 1 KiB add on Node 20.
 */

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

/** A request as the HTTP client takes it (it adds Host and the body's framing). */
export type TransportRequest = Http1Request;

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
  private readonly client: Http1Client;

  constructor(options: TransportOptions) {
    let tlsOptions: Promise<ConnectionOptions> | undefined;
    this.client = new Http1Client({
      connectionsPerOrigin: options.connectionsPerHost ?? 16,
      idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
      // The CA files are read, and every trusted CA parsed (tens of milliseconds), only when
      // HTTPS is used, once.
      tlsOptions: () =>
        (tlsOptions ??= options.certificates().then((ca) => ({ secureContext: createSecureContext({ ca }), rejectUnauthorized: !options.insecure }))),
    });
  }

  /**
   * Sends one request and resolves with the answer's status and headers; the body streams.
   * GET and HEAD follow redirects (registries send blob downloads to storage elsewhere),
   * without the Authorization header once the origin changes.
   */
  async request(request: TransportRequest): Promise<TransportResponse> {
    let { url, headers } = request;
    for (let redirects = 0; ; redirects++) {
      const response = await this.requestOnce({ ...request, url, headers });
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

  private async requestOnce(request: TransportRequest): Promise<TransportResponse> {
    const response = await this.client.request(request);
    return { statusCode: response.statusCode, headers: response.headers, body: withConsumers(response.body, response.headers) };
  }

  /** Closes every connection. */
  close(): void {
    this.client.close();
  }
}

function withConsumers(incoming: ResponseStream, headers: TransportResponse['headers']): ResponseBody {
  const collect = async (): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const dump = (): Promise<void> => {
    // A body already received in full must still be read to its end: only then does the
    // connection go back to the pool.
    if (incoming.readableEnded || incoming.destroyed) return Promise.resolve();
    if (!incoming.complete && Number(headers['content-length'] ?? 0) > DUMP_LIMIT) {
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
