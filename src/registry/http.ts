import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, RegistryError, TlsError } from '../errors.js';
import { orAbort } from '../abort.js';
import { isLoopbackRegistry } from '../reference.js';
import { type Logger, monotonicMs } from '../logger.js';
import { trustedCertificates } from './trust.js';
import { type ResponseBody, Transport } from './transport.js';

/**
 * HTTP for one registry host: scheme discovery (https, with docker's plain-HTTP fallback for
 * loopback and --insecure registries), TLS trust, and retries with backoff. Knows nothing of
 * images or auth.
 */

export interface TlsOptions {
  /** Allow plain HTTP and skip certificate checks for this registry. */
  insecure?: boolean;
  /** PEM file with extra CA certificates to trust. */
  caFile?: string;
  /** Directory of `*.crt` CA certificates for this registry (like skopeo's --cert-dir). */
  certDir?: string;
  /** certs.d roots searched for `<registry>/*.crt`; default docker's and containers' (see trust.ts). */
  certsDirs?: string[];
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8000 };

export type Body = Buffer | string | Readable;

export interface Ping {
  status: number;
  wwwAuthenticate: string | string[] | undefined;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path and query, or an absolute URL (upload locations may be absolute). */
  url: string;
  headers?: Record<string, string>;
  /** Called for each attempt, so a streamed body can be opened anew on retry. */
  body?: () => Body;
  /** Statuses that are answers, not failures worth retrying (e.g. 404 for HEAD). */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
  url: string;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
]);
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** The error codes of `error` and the causes it wraps. */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

export function isRetryableError(error: unknown): boolean {
  return errorCodes(error).some((code) => RETRYABLE_ERROR_CODES.has(code));
}

/** Delay before retry `attempt` (1-based): exponential with jitter, or what Retry-After asks. */
export function retryDelayMs(attempt: number, policy: RetryPolicy, retryAfter?: string, now = Date.now()): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 60_000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.min(Math.max(date - now, 0), 60_000);
  }
  const exponential = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return exponential / 2 + Math.random() * (exponential / 2);
}

export function headerValue(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

export class RegistryHttp {
  private discovery: Promise<Discovery> | undefined;
  private readonly transport: Transport;
  private readonly ready: Promise<void>;

  constructor(
    readonly registry: string,
    private readonly apiHost: string,
    private readonly tls: TlsOptions,
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {
    // The CA files are read when the first HTTPS connection needs them (a plain-HTTP registry
    // never does, and its first request goes out at once); files named by a flag are read now,
    // so a bad --ca-file fails on the first request whatever the scheme.
    let trust: Promise<string[]> | undefined;
    const certificates = () => (trust ??= this.readTrust());
    this.ready = this.tls.caFile || this.tls.certDir ? certificates().then(() => {}) : Promise.resolve();
    // Surface the error on first use, not as an unhandled rejection.
    this.ready.catch(() => {});
    this.transport = new Transport({ certificates, insecure: this.tls.insecure === true });
  }

  private async readTrust(): Promise<string[]> {
    const trust = await trustedCertificates({ registry: this.registry, caFile: this.tls.caFile, certDir: this.tls.certDir, certsDirs: this.tls.certsDirs }, (message) => this.logger.warn(message));
    if (trust.extraFiles.length) this.logger.debug(`${this.registry}: trusting ${trust.extraFiles.join(', ')}`);
    return trust.certificates;
  }

  /** Whether plain HTTP may be tried when HTTPS fails, as docker allows for these registries. */
  private get plainHttpAllowed(): boolean {
    return this.tls.insecure === true || isLoopbackRegistry(this.registry);
  }

  /**
   * Finds the scheme once: HTTPS first; plain HTTP only for loopback or --insecure registries
   * when the server does not speak TLS. Certificate failures are never "fixed" by falling back.
   */
  private resolveOrigin(signal?: AbortSignal): Promise<string> {
    // Shared by every later request, so one caller's abort must not end it: only that caller stops waiting.
    this.discovery ??= this.discoverOrigin();
    return orAbort(this.discovery, signal).then((found) => found.origin);
  }

  /**
   * The answer got while finding the scheme: to `GET /v2/`, or to the first request when that
   * was a GET or HEAD (see send()). A 401 carries the auth challenge.
   */
  async ping(): Promise<Ping | undefined> {
    this.discovery ??= this.discoverOrigin();
    return (await this.discovery).ping;
  }

  /**
   * Finds the scheme once: HTTPS, or plain HTTP only for loopback or --insecure registries
   * when the server does not speak TLS. Certificate failures are never "fixed" by falling back.
   * A loopback registry is asked over plain HTTP first: one port speaks one protocol, and this
   * spares setting up TLS for the usual local registry; a TLS server's answer to plain HTTP
   * sends us on to HTTPS. For --insecure registries elsewhere both are asked at once and HTTPS
   * wins when it answers.
   */
  private async discoverOrigin(probe?: HttpRequest): Promise<Discovery> {
    await this.ready;
    // The probe's answer is kept for its caller (its body unread) once its origin is chosen.
    const ping = async (origin: string): Promise<Ping & { tlsOnly: boolean; response?: HttpResponse }> => {
      const response = await this.sendOnce(probe ?? { method: 'GET', url: '/v2/' }, origin);
      // A TLS server answers plain HTTP with 400 and a text that names HTTPS (Go, nginx); a HEAD
      // answer has no text, so a GET /v2/ tells.
      const askedAgain = origin.startsWith('http:') && response.status === 400 && probe?.method === 'HEAD' ? await this.sendOnce({ method: 'GET', url: '/v2/' }, origin) : undefined;
      if (askedAgain) await response.body.dump(); // a HEAD answer has no body: its connection is free again
      const tlsOnly = origin.startsWith('http:') && response.status === 400 && /HTTPS/i.test(await (askedAgain ?? response).body.text());
      const keep = probe !== undefined && !tlsOnly;
      if (!tlsOnly && !keep) await response.body.dump();
      return { status: response.status, wwwAuthenticate: response.headers['www-authenticate'], tlsOnly, ...(keep ? { response } : {}) };
    };
    // The probe's failure over the origin chosen is its caller's first failed attempt.
    let probeError: unknown;
    const failed = (error: unknown) => {
      probeError = error;
      return undefined;
    };
    const found = (origin: string, answer: Awaited<ReturnType<typeof ping>> | undefined): Discovery => {
      if (!answer) return probe && probeError !== undefined ? { origin, probeError } : { origin };
      const { response, tlsOnly: _, ...pinged } = answer;
      return { origin, ping: pinged, probeResponse: response };
    };
    const https = `https://${this.apiHost}`;
    const http = `http://${this.apiHost}`;
    const loopback = isLoopbackRegistry(this.registry);
    if (loopback) {
      const answer = await ping(http).catch(failed);
      if (answer && !answer.tlsOnly) return found(http, answer);
    }
    const overHttps = ping(https);
    const overHttp = this.plainHttpAllowed && !loopback ? ping(http) : undefined;
    overHttp?.catch(() => {});
    try {
      const answer = await overHttps;
      // Both were asked: the plain-HTTP answer to a probe is not needed.
      overHttp?.then((other) => other.response?.body.dump(), () => {});
      return found(https, answer);
    } catch (error) {
      // A CA file that cannot be read (read for the first HTTPS request) is no reason to fall back.
      if (error instanceof InputError) throw error;
      if (errorCodes(error).some((code) => TLS_VERIFY_CODES.has(code))) throw this.tlsError(error);
      if (!this.plainHttpAllowed) throw this.connectionError(error, https);
      this.logger.debug(`${this.registry}: using plain HTTP (https: ${String((error as Error).message).split('\n')[0]})`);
      // If plain HTTP failed too, requests retry and report it themselves.
      return found(http, await overHttp?.catch(failed));
    }
  }

  private tlsError(error: unknown): TlsError {
    const code = errorCodes(error).find((c) => TLS_VERIFY_CODES.has(c)) ?? 'TLS';
    return new TlsError(`TLS verification of ${this.registry} failed (${code}): ${(error as Error).message}`, {
      hint:
        `if the registry uses a private CA, pass --ca-file /path/to/ca.pem; ` +
        `if you trust the network and accept no verification, pass --insecure`,
      cause: error,
    });
  }

  private connectionError(error: unknown, origin: string): RegistryError {
    return new RegistryError(`cannot reach registry ${this.registry} at ${origin}: ${(error as Error).message}`, {
      hint: origin.startsWith('http:')
        ? 'check the registry address and that it is running'
        : 'check the registry address and that it is running; for a plain-HTTP registry pass --insecure',
      cause: error,
    });
  }

  private async sendOnce(request: HttpRequest, origin: string): Promise<HttpResponse> {
    const url = new URL(request.url, origin);
    const started = monotonicMs();
    const response = await this.transport.request({
      url,
      method: request.method,
      headers: { 'user-agent': USER_AGENT, ...request.headers },
      body: request.body ? request.body() : null,
      signal: request.signal,
    });
    // Path only: query strings of upload locations and token requests are noise in a log.
    this.logger.debug(`${request.method} ${url.origin}${url.pathname} → ${response.statusCode} (${Math.round(monotonicMs() - started)} ms)`);
    return { status: response.statusCode, headers: response.headers, body: response.body, url: url.toString() };
  }

  /**
   * When nothing has asked this registry yet and `request` is a GET or HEAD, finds the scheme by
   * sending it (rather than a `GET /v2/` first: one round trip fewer) and returns its answer.
   */
  /** Whether `request`, sent now, would be the one that finds the scheme (see probeWith). */
  wouldProbe(request: Pick<HttpRequest, 'method' | 'body'>): boolean {
    return this.discovery === undefined && (request.method === 'GET' || request.method === 'HEAD') && request.body === undefined;
  }

  private async probeWith(request: HttpRequest): Promise<{ response?: HttpResponse; error?: unknown }> {
    if (!this.wouldProbe(request)) return {};
    const discovery = this.discoverOrigin(request);
    this.discovery = discovery;
    const { probeResponse, probeError } = await orAbort(discovery, request.signal);
    return { response: probeResponse, error: probeError };
  }

  /** Absolute URL of a path on this registry (after scheme discovery). */
  async urlFor(path: string): Promise<string> {
    return new URL(path, await this.resolveOrigin()).toString();
  }

  /**
   * Sends a request, retrying on 408/429/5xx and connection failures with backoff.
   * The returned response may have any other status; the caller decides what it means.
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    let probe = await this.probeWith(request);
    const origin = await this.resolveOrigin(request.signal);
    for (let attempt = 1; ; attempt++) {
      let response: HttpResponse;
      try {
        const { response: probed, error: probeError } = probe;
        probe = {};
        if (probeError !== undefined) throw probeError;
        response = probed ?? (await this.sendOnce(request, origin));
      } catch (error) {
        if (request.signal?.aborted) throw error;
        if (errorCodes(error).some((code) => TLS_VERIFY_CODES.has(code))) throw this.tlsError(error);
        if (!isRetryableError(error) || attempt >= this.retry.attempts) {
          if (error instanceof RegistryError) throw error;
          throw this.connectionError(error, origin);
        }
        const delay = retryDelayMs(attempt, this.retry);
        this.logger.debug(`${request.method} ${request.url}: ${(error as Error).message}; retry ${attempt} in ${Math.round(delay)} ms`);
        await sleep(delay, undefined, { signal: request.signal });
        continue;
      }
      if (!RETRYABLE_STATUS.has(response.status) || attempt >= this.retry.attempts) return response;
      await response.body.dump();
      const delay = retryDelayMs(attempt, this.retry, headerValue(response.headers, 'retry-after'));
      this.logger.debug(`${request.method} ${request.url}: HTTP ${response.status}; retry ${attempt} in ${Math.round(delay)} ms`);
      await sleep(delay, undefined, { signal: request.signal });
    }
  }

  /**
   * One attempt, no retry: for requests whose retry needs the caller's judgement
   * (a resumable upload chunk asks the registry where to continue from).
   */
  async sendWithoutRetry(request: HttpRequest): Promise<HttpResponse> {
    const probe = await this.probeWith(request);
    const origin = await this.resolveOrigin(request.signal);
    try {
      if (probe.error !== undefined) throw probe.error;
      return probe.response ?? (await this.sendOnce(request, origin));
    } catch (error) {
      // A CA file that cannot be read (read for the first HTTPS request) is no reason to fall back.
      if (error instanceof InputError) throw error;
      if (errorCodes(error).some((code) => TLS_VERIFY_CODES.has(code))) throw this.tlsError(error);
      throw error;
    }
  }

  get retryPolicy(): RetryPolicy {
    return this.retry;
  }

  async close(): Promise<void> {
    await this.ready.catch(() => {});
    this.transport.close();
  }
}

export const USER_AGENT = 'imgbuild/0.1';

interface Discovery {
  origin: string;
  /** The answer that found the origin (see ping()). */
  ping?: Ping;
  /** The probing request's own answer, body unread, for the caller that sent it. */
  probeResponse?: HttpResponse;
  /** Or how it failed over the chosen origin. */
  probeError?: unknown;
}
