import { connect as connectPlain, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

/**
 * A small HTTP/1.1 client: keep-alive connections per origin, a request body from a buffer or a
 * stream (Content-Length, else chunked coding), an answer framed by Content-Length, chunked
 * coding or the end of the connection, its body a stream that holds the connection back when
 * its reader is slow.
 *
 * Why not Node's http module: a fresh process compiles the JavaScript of Node's HTTP client
 * (Node's built-in modules come without their functions compiled) for its first request, about
 * 5 ms, and each request after costs ~0.7 ms of CPU against ~0.2 ms here; a command that sends a
 * dozen small requests paid more for that than for the requests. This file is compiled once into
 * imgbuild's own code cache (src/cli/launch.cjs). What it leaves out, no registry needs: HTTP/2,
 * pipelining, upgrades, proxies (Node's http module did not read proxy variables either).
 */

export interface Http1Options {
  /** Connections open at once per origin; more requests wait for one to be free. */
  connectionsPerOrigin: number;
  /** A connection silent this long while a request is on it fails the request with ETIMEDOUT. */
  idleTimeoutMs: number;
  /** TLS options for https: origins (trust, certificate checks), asked for at the first such connection. */
  tlsOptions: () => Promise<ConnectionOptions>;
}

export interface Http1Request {
  url: URL;
  method: string;
  /**
   * Sent as given; Host is added, and Content-Length for a buffer or string body and for a
   * POST, PUT or PATCH without one. A stream body without content-length goes in chunked coding.
   */
  headers: Record<string, string>;
  body?: Buffer | string | Readable | null;
  signal?: AbortSignal;
}

/** An answer's body: `complete` once every byte the framing announced has arrived. */
export class ResponseStream extends Readable {
  complete = false;

  constructor(private readonly onRead: () => void, private readonly onDestroy: (error: Error | null) => void) {
    super({ highWaterMark: 64 * 1024 });
    // A body may fail before its reader has started; the reader gets the error when it reads
    // (a destroyed stream keeps it), so it must not also crash the process unheard.
    this.on('error', () => {});
  }

  override _read(): void {
    this.onRead();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.complete) this.onDestroy(error);
    callback(error);
  }
}

export interface Http1Response {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: ResponseStream;
}

/** Heads larger than this are refused (Node's limit is 16 KiB; registries send a few hundred bytes). */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** Buffer bodies up to this size leave in the same packet as the head. */
const COALESCE_BYTES = 64 * 1024;
const INVALID_HEADER = /[\r\n\0]/;
/** Methods whose requests carry a body: without one they say so (Content-Length: 0). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

function protocolError(message: string): Error {
  return Object.assign(new Error(message), { code: 'HPE_INVALID' });
}

function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason });
}

/** How the body of the answer being read is delimited, and how far it has come. */
type Framing =
  | { kind: 'none' }
  | { kind: 'length'; left: number }
  | { kind: 'close' }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string };

/** One request on a connection, from the first byte written to the last byte of its answer. */
interface Exchange {
  method: string;
  resolve(response: Http1Response): void;
  reject(error: Error): void;
  response?: Http1Response;
  framing?: Framing;
  requestWritten: boolean;
  /** The stream body being written, detached when the exchange ends first. */
  source?: Readable;
  keepAlive: boolean;
}

class Connection {
  private head: Buffer[] = [];
  private headBytes = 0;
  private exchange: Exchange | undefined;
  private readonly timeoutError: Error;

  constructor(
    readonly socket: Socket,
    private readonly pool: OriginPool,
    idleTimeoutMs: number,
    host: string,
  ) {
    this.timeoutError = Object.assign(new Error(`no data from ${host} for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' });
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.exchange) socket.destroy(this.timeoutError);
    });
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (error) => this.failed(error));
    socket.on('close', () => this.closed());
    socket.on('drain', () => this.exchange?.source?.resume());
  }

  get usable(): boolean {
    return !this.socket.destroyed && this.socket.readyState !== 'closed';
  }

  start(exchange: Exchange, head: Buffer, body: Http1Request['body'], chunked: boolean): void {
    this.exchange = exchange;
    this.socket.ref();
    if (body === undefined || body === null || typeof body === 'string' || Buffer.isBuffer(body)) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      if (bytes && bytes.length > 0 && bytes.length <= COALESCE_BYTES) this.socket.write(Buffer.concat([head, bytes]));
      else {
        this.socket.write(head);
        if (bytes && bytes.length > 0) this.socket.write(bytes);
      }
      exchange.requestWritten = true;
      return;
    }
    this.socket.write(head);
    exchange.source = body;
    body.on('data', (chunk: Buffer | string) => {
      if (exchange !== this.exchange) return;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (bytes.length === 0) return;
      const written = chunked ? this.socket.write(Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF])) : this.socket.write(bytes);
      if (!written) body.pause();
    });
    body.once('end', () => {
      if (exchange !== this.exchange) return;
      if (chunked) this.socket.write(LAST_CHUNK);
      exchange.requestWritten = true;
      exchange.source = undefined;
    });
    body.once('error', (error) => {
      if (exchange === this.exchange) this.socket.destroy(error);
    });
  }

  private received(chunk: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) {
      // Bytes nobody asked for: the connection can no longer be trusted to frame answers.
      this.socket.destroy();
      return;
    }
    let rest: Buffer | undefined = chunk;
    while (rest && rest.length > 0 && exchange === this.exchange) {
      rest = exchange.framing ? this.bodyBytes(exchange, rest) : this.headBytesOf(exchange, rest);
    }
    // Bytes after the answer's end: the server frames answers differently than we read them.
    if (rest && rest.length > 0) this.socket.destroy();
  }

  /** Collects the head; returns what follows it (the body's first bytes), or undefined while incomplete. */
  private headBytesOf(exchange: Exchange, chunk: Buffer): Buffer | undefined {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const buffered = this.head.length === 1 ? chunk : Buffer.concat(this.head);
    const end = buffered.indexOf(CRLF_CRLF, Math.max(0, this.headBytes - chunk.length - 3));
    if (end === -1) {
      this.head = [buffered];
      if (this.headBytes > MAX_HEAD_BYTES) this.socket.destroy(protocolError(`answer head larger than ${MAX_HEAD_BYTES} bytes`));
      return undefined;
    }
    this.head = [];
    this.headBytes = 0;
    const rest = buffered.subarray(end + 4);
    const parsed = parseHead(buffered.toString('latin1', 0, end));
    if (!parsed) {
      this.socket.destroy(protocolError('malformed HTTP answer'));
      return undefined;
    }
    const { statusCode, headers, version } = parsed;
    // 1xx answers (100 Continue, 103 Early Hints) come before the real one.
    if (statusCode >= 100 && statusCode < 200 && statusCode !== 101) return rest;
    const connection = String(headers.connection ?? '').toLowerCase();
    exchange.keepAlive = version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');
    const framing = framingOf(exchange.method, statusCode, headers);
    if (framing instanceof Error) return this.destroyWith(framing);
    exchange.framing = framing;
    if (exchange.framing.kind === 'close') exchange.keepAlive = false;
    const body = new ResponseStream(
      () => this.socket.resume(),
      () => this.socket.destroy(),
    );
    exchange.response = { statusCode, headers, body };
    exchange.resolve(exchange.response);
    if (exchange.framing.kind === 'none' || (exchange.framing.kind === 'length' && exchange.framing.left === 0)) this.bodyDone(exchange);
    return rest;
  }

  /** Hands body bytes to the reader; returns bytes past the body's end (there should be none). */
  private bodyBytes(exchange: Exchange, chunk: Buffer): Buffer | undefined {
    const framing = exchange.framing!;
    const body = exchange.response!.body;
    const deliver = (bytes: Buffer): void => {
      if (bytes.length > 0 && !body.push(bytes)) this.socket.pause();
    };
    switch (framing.kind) {
      case 'none':
        return chunk;
      case 'close':
        deliver(chunk);
        return undefined;
      case 'length': {
        const take = Math.min(framing.left, chunk.length);
        framing.left -= take;
        deliver(take === chunk.length ? chunk : chunk.subarray(0, take));
        if (framing.left === 0) this.bodyDone(exchange);
        return chunk.subarray(take);
      }
      case 'chunked':
        return this.chunkedBytes(exchange, framing, chunk, deliver);
    }
  }

  private chunkedBytes(exchange: Exchange, framing: Extract<Framing, { kind: 'chunked' }>, chunk: Buffer, deliver: (bytes: Buffer) => void): Buffer | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (framing.state === 'data') {
        const take = Math.min(framing.left, chunk.length - offset);
        deliver(chunk.subarray(offset, offset + take));
        offset += take;
        framing.left -= take;
        if (framing.left === 0) framing.state = 'data-end';
        continue;
      }
      // The other states read lines: a chunk size, the CRLF after a chunk's data, trailers.
      const newline = chunk.indexOf(0x0a, offset);
      const end = newline === -1 ? chunk.length : newline + 1;
      framing.line += chunk.toString('latin1', offset, end);
      offset = end;
      if (newline === -1) {
        if (framing.line.length > 4096) this.socket.destroy(protocolError('chunk size line too long'));
        return undefined;
      }
      const line = framing.line.replace(/\r?\n$/, '');
      framing.line = '';
      if (framing.state === 'data-end') {
        if (line !== '') return this.destroyWith(protocolError('no CRLF after a chunk'));
        framing.state = 'size';
      } else if (framing.state === 'size') {
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!size) return this.destroyWith(protocolError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`));
        framing.left = Number.parseInt(size[1]!, 16);
        framing.state = framing.left === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        // The empty line after the trailers ends the body.
        this.bodyDone(exchange);
        return chunk.subarray(offset);
      }
    }
    return undefined;
  }

  private destroyWith(error: Error): undefined {
    this.socket.destroy(error);
    return undefined;
  }

  private bodyDone(exchange: Exchange): void {
    const body = exchange.response!.body;
    body.complete = true;
    body.push(null);
    if (exchange.requestWritten) {
      this.finish(exchange);
      return;
    }
    // Answered before the request body was all sent (an early 401 or 413): stop sending; the
    // connection cannot carry another request.
    this.exchange = undefined;
    exchange.source?.destroy();
    this.socket.destroy();
  }

  private finish(exchange: Exchange): void {
    if (exchange !== this.exchange) return;
    this.exchange = undefined;
    if (!exchange.keepAlive) {
      this.socket.destroy();
      return;
    }
    this.socket.resume();
    this.pool.release(this);
  }

  private failed(error: Error): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    if (!exchange) return;
    exchange.source?.destroy();
    if (!exchange.response) exchange.reject(error);
    else if (!exchange.response.body.complete) exchange.response.body.destroy(error);
  }

  private closed(): void {
    const exchange = this.exchange;
    if (exchange?.framing?.kind === 'close' && exchange.response) {
      // The end of the connection is the end of this body.
      this.exchange = undefined;
      exchange.response.body.complete = true;
      exchange.response.body.push(null);
    } else if (exchange) {
      this.failed(hangUp());
    }
    this.pool.remove(this);
  }

  abort(exchange: Exchange, error: Error): void {
    if (exchange !== this.exchange) return;
    this.socket.destroy(error);
  }
}

function parseHead(text: string): { statusCode: number; version: string; headers: Record<string, string | string[] | undefined> } | undefined {
  const lines = text.split('\r\n');
  const status = /^HTTP\/(1\.[01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!status) return undefined;
  const headers: Record<string, string | string[] | undefined> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const known = headers[name];
    headers[name] = known === undefined ? value : Array.isArray(known) ? [...known, value] : [known, value];
  }
  return { statusCode: Number(status[2]), version: status[1]!, headers };
}

function framingOf(method: string, statusCode: number, headers: Record<string, string | string[] | undefined>): Framing | Error {
  if (method === 'HEAD' || statusCode === 204 || statusCode === 304) return { kind: 'none' };
  const encoding = headers['transfer-encoding'];
  if (encoding !== undefined && String(encoding).toLowerCase().includes('chunked')) return { kind: 'chunked', state: 'size', left: 0, line: '' };
  const length = headers['content-length'];
  if (length !== undefined) {
    const value = Array.isArray(length) ? length[0]! : length;
    if (!/^\d+$/.test(value) || (Array.isArray(length) && length.some((other) => other !== value))) return protocolError(`bad content-length ${JSON.stringify(length)}`);
    return { kind: 'length', left: Number(value) };
  }
  return { kind: 'close' };
}

/** The connections of one origin: idle ones to reuse, and requests waiting for one. */
class OriginPool {
  private readonly idle: Connection[] = [];
  private open = 0;
  private readonly waiting: Array<{ take(connection: Connection | Error): void }> = [];
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly options: Http1Options,
  ) {}

  /** A connection for one request: an idle one, a new one, or the next one freed. */
  acquire(signal: AbortSignal | undefined): Promise<Connection> {
    while (this.idle.length > 0) {
      const connection = this.idle.pop()!;
      if (connection.usable) return Promise.resolve(connection);
    }
    if (this.open < this.options.connectionsPerOrigin) {
      this.open++;
      return this.connect().catch((error: Error) => {
        this.open--;
        this.next();
        throw error;
      });
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        take: (connection: Connection | Error) => {
          signal?.removeEventListener('abort', onAbort);
          if (connection instanceof Error) reject(connection);
          else resolve(connection);
        },
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(abortError(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private async connect(): Promise<Connection> {
    const host = this.url.hostname.startsWith('[') ? this.url.hostname.slice(1, -1) : this.url.hostname;
    const port = Number(this.url.port) || (this.url.protocol === 'https:' ? 443 : 80);
    let socket: Socket;
    if (this.url.protocol === 'https:') {
      const options = await this.options.tlsOptions();
      // Server name indication is for names; an address is checked against the certificate's IPs.
      socket = connectTls({ ...options, host, port, ...(isIP(host) ? {} : { servername: host }) });
    } else {
      socket = connectPlain({ host, port });
    }
    return new Connection(socket, this, this.options.idleTimeoutMs, this.url.host);
  }

  /** A connection done with its request: to the next waiting request, else kept idle (closed once the client is). */
  release(connection: Connection): void {
    if (this.closed) {
      connection.socket.destroy();
      return;
    }
    const waiter = this.waiting.shift();
    if (waiter) {
      waiter.take(connection);
      return;
    }
    // An idle connection does not keep the process alive.
    connection.socket.unref();
    this.idle.push(connection);
  }

  /** A connection closed: forgotten, and its place given to a waiting request. */
  remove(connection: Connection): void {
    const index = this.idle.indexOf(connection);
    if (index !== -1) this.idle.splice(index, 1);
    this.open--;
    this.next();
  }

  private next(): void {
    const waiter = this.waiting.shift();
    if (!waiter) return;
    this.open++;
    this.connect().then(
      (connection) => waiter.take(connection),
      (error: Error) => {
        this.open--;
        waiter.take(error);
        this.next();
      },
    );
  }

  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }
}

export class Http1Client {
  private readonly pools = new Map<string, OriginPool>();

  constructor(private readonly options: Http1Options) {}

  async request(request: Http1Request): Promise<Http1Response> {
    const { url, method, signal } = request;
    if (signal?.aborted) throw abortError(signal);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported URL scheme ${url.protocol} in ${url.href}`);
    const { head, chunked } = requestHead(request);
    const headBytes = Buffer.from(chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`, 'latin1');
    const key = `${url.protocol}//${url.host}`;
    let pool = this.pools.get(key);
    if (!pool) this.pools.set(key, (pool = new OriginPool(new URL(key), this.options)));
    const connection = await pool.acquire(signal);
    if (signal?.aborted) {
      pool.release(connection);
      throw abortError(signal);
    }
    return new Promise<Http1Response>((resolve, reject) => {
      const exchange: Exchange = { method, resolve, reject, requestWritten: false, keepAlive: true };
      if (signal) {
        const onAbort = () => connection.abort(exchange, abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        const forget = () => signal.removeEventListener('abort', onAbort);
        // Until the whole answer has come: an abort while its body is read ends the body too.
        exchange.resolve = (response) => {
          response.body.once('end', forget);
          response.body.once('close', forget);
          resolve(response);
        };
        exchange.reject = (error) => {
          forget();
          reject(error);
        };
      }
      connection.start(exchange, headBytes, request.body, chunked);
    });
  }

  /** Closes the idle connections; those in use close when their answer has been read. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}

/** The request line and headers (without the blank line), and whether the body goes chunked. */
function requestHead(request: Http1Request): { head: string; chunked: boolean } {
  const { url, method, body } = request;
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  let length = false;
  for (const [name, value] of Object.entries(request.headers)) {
    if (INVALID_HEADER.test(name) || INVALID_HEADER.test(value) || name.includes(':')) {
      throw Object.assign(new TypeError(`invalid character in header ${JSON.stringify(name)}`), { code: 'ERR_INVALID_CHAR' });
    }
    head += `${name}: ${value}\r\n`;
    length ||= name.toLowerCase() === 'content-length';
  }
  if (length) return { head, chunked: false };
  if (body instanceof Readable) return { head, chunked: true };
  if (typeof body === 'string' || Buffer.isBuffer(body)) return { head: `${head}content-length: ${Buffer.byteLength(body)}\r\n`, chunked: false };
  return { head: BODY_METHODS.has(method) ? `${head}content-length: 0\r\n` : head, chunked: false };
}
