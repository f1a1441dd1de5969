import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthError, NotFoundError, RegistryError } from '../errors.js';
import { abortAfterGrace, orAbort } from '../abort.js';
import { assertDigest, type Digest, DigestingStream, isDigest, sha256Digest } from '../digest.js';
import { registryApiHost } from '../reference.js';
import type { GrowthState } from '../image/growing-file.js';
import { MANIFEST_ACCEPT } from '../image/mediatypes.js';
import { silentLogger, type Logger } from '../logger.js';
import {
  basicAuthorization,
  type Challenge,
  mergeScopes,
  parseChallenges,
  pullScope,
  pushScope,
  tokenFromResponse,
  tokenRequest,
} from './auth.js';
import type { CredentialStore, Credential } from './credentials.js';
import { headerValue, type HttpRequest, type HttpResponse, RegistryHttp, retryDelayMs, type RetryPolicy, type TlsOptions } from './http.js';

/** A manifest as served: the exact bytes, their digest, and the media type. */
export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

export interface RegistryClientOptions extends TlsOptions {
  credentials?: CredentialStore;
  logger?: Logger;
  retry?: RetryPolicy;
  /** Blobs up to this size go in one PUT; larger ones in resumable chunks of `chunkSize`. */
  monolithicUploadLimit?: number;
  chunkSize?: number;
}

/** Opens bytes [start, end) of a blob; called again to resume after a failure. */
export type BlobSource = (start: number, end: number) => Readable;

/** A blob whose bytes may still be arriving (see GrowingFile). */
export interface GrowingBlobSource {
  open: BlobSource;
  waitFor(offset: number): Promise<GrowthState>;
}

export interface UploadProgress {
  (uploadedBytes: number): void;
}

const DEFAULT_MONOLITHIC_LIMIT = 32 * 1024 * 1024;
/**
 * After an abort, a chunk (or one-request upload) in flight may finish for this long before it
 * is cut: distribution refuses to cancel a session whose last chunk was cut (the state token it
 * gave no longer matches the bytes it holds), so cutting at once would leave the session behind.
 */
const UPLOAD_ABORT_GRACE_MS = 5_000;
const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

/**
 * The OCI distribution API of one registry: manifests and blobs, with auth.
 * Every byte read is checked against the digest it was asked by.
 */
export class RegistryClient {
  readonly http: RegistryHttp;
  private readonly logger: Logger;
  private challenge: Challenge | undefined;
  private challengeKnown = false;
  private readonly tokens = new Map<string, CachedToken>();
  private credential: Promise<Credential | undefined> | undefined;
  private readonly monolithicLimit: number;
  /** Upload sessions being closed that no caller waits for (see ensureBlob). */
  private readonly closing = new Set<Promise<void>>();
  private readonly chunkSize: number;

  constructor(
    readonly registry: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.http = new RegistryHttp(registry, registryApiHost(registry), options, this.logger, options.retry);
    this.monolithicLimit = options.monolithicUploadLimit ?? DEFAULT_MONOLITHIC_LIMIT;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  }

  private getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.options.credentials?.get(this.registry) ?? Promise.resolve(undefined);
    return this.credential;
  }

  // ---- auth ---------------------------------------------------------------------------

  /** Learns how the registry wants to be authenticated, once (GET /v2/). */
  private async learnChallenge(): Promise<void> {
    if (this.challengeKnown) return;
    const ping = await this.http.ping();
    if (ping) {
      this.setChallenge(ping.status, ping.wwwAuthenticate);
    } else {
      const response = await this.http.send({ method: 'GET', url: '/v2/' });
      await response.body.dump();
      this.setChallenge(response.status, response.headers['www-authenticate']);
    }
    this.challengeKnown = true;
  }

  private setChallenge(status: number, wwwAuthenticate: string | string[] | undefined): void {
    if (status !== 401) return;
    const challenges = parseChallenges(wwwAuthenticate);
    this.challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
  }

  private async authorization(scopes: readonly string[], force = false, signal?: AbortSignal): Promise<string | undefined> {
    await this.learnChallenge();
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const credential = await this.getCredential();
    if (challenge.scheme === 'basic') return credential ? basicAuthorization(credential) : undefined;
    if (challenge.scheme !== 'bearer') return undefined;
    const key = mergeScopes(scopes).join(' ');
    const cached = this.tokens.get(key);
    if (!force && cached && cached.expiresAt > Date.now()) return cached.authorization;
    const request = tokenRequest(challenge, mergeScopes(scopes), credential);
    const response = await this.http.send({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: request.body === undefined ? undefined : () => request.body!,
      signal,
    });
    const text = await response.body.text();
    if (response.status === 401 || response.status === 403) {
      throw this.refusedCredentials(credential, response.status);
    }
    if (response.status !== 200) {
      throw new AuthError(`token server ${new URL(request.url).origin} answered HTTP ${response.status}`, { status: response.status });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AuthError('the token server answered with something that is not JSON');
    }
    const { token, expiresInSeconds } = tokenFromResponse(parsed);
    const authorization = `Bearer ${token}`;
    // Renew a little early so a long push does not use a token that expires in flight.
    this.tokens.set(key, { authorization, expiresAt: Date.now() + Math.max(expiresInSeconds - 10, 5) * 1000 });
    return authorization;
  }

  private refusedCredentials(credential: Credential | undefined, status: number): AuthError {
    if (!credential) {
      return new AuthError(`registry ${this.registry} requires authentication and no credentials were found for it`, {
        status,
        hint: `log in with \`docker login ${this.registry}\`, set DOCKER_CONFIG or REGISTRY_AUTH_FILE, or pass --username with --password-stdin`,
      });
    }
    return new AuthError(`registry ${this.registry} refused the credentials for user "${credential.username ?? '<identity token>'}"`, {
      status,
      hint: 'check the username and password (docker config, REGISTRY_AUTH_FILE or --username/--password-stdin) and that the user may access this repository',
    });
  }

  /** The credentials are good but do not grant what the request needs (a token with too few actions). */
  private notPermitted(credential: Credential, scopes: readonly string[]): AuthError {
    const who = `user "${credential.username ?? '<identity token>'}"`;
    const wanted = mergeScopes(scopes)
      .map((scope) => /^repository:(.+):([^:]+)$/.exec(scope))
      .filter((match): match is RegExpExecArray => match !== null)
      .map(([, repository, actions]) => `${actions!.includes('push') ? 'push to' : 'pull from'} ${repository}`)
      .join(' and ');
    return new AuthError(`${who} is not allowed to ${wanted || scopes.join(' ')} on registry ${this.registry}`, {
      status: 401,
      code: 'insufficient_scope',
      hint: 'the credentials were accepted but lack permission: ask the registry administrator for access, or use an account that has it',
    });
  }

  /**
   * Sends an API request with auth. On a 401 it asks for a token with the scopes the
   * registry named in its challenge merged with ours, once.
   */
  private async request(request: HttpRequest, scopes: readonly string[]): Promise<HttpResponse> {
    // The first GET or HEAD to a registry goes without credentials and also finds the scheme; its
    // answer (a 401 with the challenge, or not) tells how to authenticate, as `GET /v2/` would, one
    // round trip sooner. Other first requests (uploads) learn the challenge from `GET /v2/` first.
    const probing = !this.challengeKnown && this.http.wouldProbe(request);
    let authorization = probing ? undefined : await this.authorization(scopes, false, request.signal);
    // A probe's 401 only teaches the challenge, as GET /v2/ would: the one renewal of a refused token stays.
    for (let attempt = probing ? -1 : 0; ; attempt++) {
      const response = await this.http.send({
        ...request,
        headers: { ...request.headers, ...(authorization ? { authorization } : {}) },
      });
      if (response.status !== 401 || attempt > 0) {
        if (response.status === 401) {
          await response.body.dump();
          const challenge = parseChallenges(response.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
          const credential = await this.getCredential();
          if (credential && challenge?.params.error === 'insufficient_scope') throw this.notPermitted(credential, scopes);
          throw this.refusedCredentials(credential, 401);
        }
        return response;
      }
      await response.body.dump();
      const previous = this.challenge;
      this.setChallenge(response.status, response.headers['www-authenticate']);
      this.challengeKnown = true;
      const extra = this.challenge?.params.scope ? [this.challenge.params.scope] : [];
      if (!this.challenge || (previous?.scheme === 'basic' && authorization)) {
        throw this.refusedCredentials(await this.getCredential(), 401);
      }
      authorization = await this.authorization(mergeScopes(scopes, extra), true, request.signal);
      if (!authorization) throw this.refusedCredentials(undefined, 401);
    }
  }

  private async failure(response: HttpResponse, what: string): Promise<RegistryError> {
    const text = await response.body.text().catch(() => '');
    let code: string | undefined;
    let detail = text.slice(0, 300);
    try {
      const errors = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors;
      if (errors?.length) {
        code = errors[0]!.code;
        detail = errors.map((e) => `${e.code}: ${e.message}`).join('; ');
      }
    } catch {
      // not a JSON error body
    }
    const message = `${what}: HTTP ${response.status}${detail ? ` (${detail})` : ''}`;
    if (response.status === 404) return new NotFoundError(message, { status: 404, code });
    if (response.status === 401 || response.status === 403) {
      return new AuthError(message, {
        status: response.status,
        code,
        hint: 'the credentials in use do not grant this access; check the user\'s permissions on the repository',
      });
    }
    return new RegistryError(message, { status: response.status, code });
  }

  // ---- manifests ---------------------------------------------------------------------

  /** Fetches a manifest by tag or digest; a digest reference is verified, a tag's digest computed. */
  async getManifest(repository: string, reference: string, signal?: AbortSignal, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const response = await this.request(
      { method: 'GET', url: `/v2/${repository}/manifests/${reference}`, headers: { accept }, signal },
      [pullScope(repository)],
    );
    if (response.status !== 200) {
      const error = await this.failure(response, `fetching manifest ${this.registry}/${repository}:${reference}`);
      if (error instanceof NotFoundError) {
        throw new NotFoundError(`image ${this.registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference} not found`, {
          status: 404,
          code: error.code,
          hint: 'check the repository name and tag (`imgbuild inspect` lists what a reference points at)',
        });
      }
      throw error;
    }
    const bytes = Buffer.from(await response.body.arrayBuffer());
    if (isDigest(reference)) assertDigest(bytes, reference, `manifest ${repository}@${reference}`);
    // By tag there is no digest to ask for, but the registry states one: the bytes must match it.
    const stated = headerValue(response.headers, 'docker-content-digest');
    if (stated && isDigest(stated)) assertDigest(bytes, stated, `manifest ${repository}:${reference}`);
    const mediaType = (headerValue(response.headers, 'content-type') ?? '').split(';')[0]!.trim() || mediaTypeFromBody(bytes);
    return { bytes, digest: sha256Digest(bytes), mediaType };
  }

  /** The digest a tag points at now, or undefined when the tag does not exist. */
  async resolveTag(repository: string, reference: string, signal?: AbortSignal): Promise<Digest | undefined> {
    const response = await this.request(
      { method: 'HEAD', url: `/v2/${repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, signal },
      [pullScope(repository)],
    );
    await response.body.dump();
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.failure(response, `checking ${repository}:${reference}`);
    const digest = headerValue(response.headers, 'docker-content-digest');
    if (digest && isDigest(digest)) return digest;
    return (await this.getManifest(repository, reference, signal)).digest;
  }

  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const response = await this.request(
      {
        method: 'PUT',
        url: `/v2/${repository}/manifests/${reference}`,
        headers: { 'content-type': mediaType },
        body: () => bytes,
        signal,
      },
      [pushScope(repository)],
    );
    if (response.status !== 201 && response.status !== 200) {
      throw await this.failure(response, `pushing manifest ${repository}:${reference}`);
    }
    await response.body.dump();
    const served = headerValue(response.headers, 'docker-content-digest');
    if (served && served !== digest) {
      throw new RegistryError(`registry stored manifest ${repository}:${reference} as ${served}, but its bytes hash to ${digest}`);
    }
    return digest;
  }

  // ---- blobs -------------------------------------------------------------------------

  /** The size of a blob in the repository, or undefined if it is not there. */
  async headBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<number | undefined> {
    const response = await this.request({ method: 'HEAD', url: `/v2/${repository}/blobs/${digest}`, signal }, [pullScope(repository)]);
    await response.body.dump();
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.failure(response, `checking blob ${digest} in ${repository}`);
    return Number(headerValue(response.headers, 'content-length') ?? NaN);
  }

  /** A stream of a blob's bytes that fails at its end if they do not hash to `digest`. */
  async openBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<Readable> {
    const response = await this.request({ method: 'GET', url: `/v2/${repository}/blobs/${digest}`, signal }, [pullScope(repository)]);
    if (response.status !== 200) throw await this.failure(response, `fetching blob ${digest} from ${repository}`);
    const verifier = new DigestingStream(digest, `blob ${digest}`);
    response.body.on('error', (error) => verifier.destroy(error));
    return response.body.pipe(verifier);
  }

  async getBlob(repository: string, digest: Digest, signal?: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const stream = await this.openBlob(repository, digest, signal);
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Asks the registry to link a blob from another repository of the same registry.
   * Returns true when mounted; false when the registry declined (the caller uploads).
   */
  async mountBlob(repository: string, digest: Digest, fromRepository: string, signal?: AbortSignal): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from: fromRepository });
    const response = await this.request(
      { method: 'POST', url: `/v2/${repository}/blobs/uploads/?${query}`, signal },
      [pushScope(repository), pullScope(fromRepository)],
    );
    if (response.status === 201) {
      await response.body.dump();
      return true;
    }
    if (response.status === 404 || response.status === 401 || response.status === 403) {
      await response.body.dump();
      return false;
    }
    if (response.status === 202) {
      await response.body.dump();
      // The registry opened an upload session instead; close it so it does not linger.
      const location = headerValue(response.headers, 'location');
      if (location) await this.cancelUpload(repository, location);
      return false;
    }
    throw await this.failure(response, `mounting ${digest} from ${fromRepository}`);
  }

  /** Closes an upload session. Never bound to the caller's signal: it is what runs after an abort. */
  private async cancelUpload(repository: string, location: string): Promise<void> {
    try {
      const response = await this.request({ method: 'DELETE', url: location }, [pushScope(repository)]);
      await response.body.dump();
    } catch (error) {
      this.logger.debug(`could not cancel upload session: ${(error as Error).message}`);
    }
  }

  private async startUpload(repository: string, signal?: AbortSignal): Promise<string> {
    const response = await this.request({ method: 'POST', url: `/v2/${repository}/blobs/uploads/`, signal }, [pushScope(repository)]);
    if (response.status !== 202) throw await this.failure(response, `starting an upload to ${repository}`);
    await response.body.dump();
    return this.location(response, 'upload start');
  }

  private async location(response: HttpResponse, what: string): Promise<string> {
    const location = headerValue(response.headers, 'location');
    if (!location) throw new RegistryError(`registry gave no upload location after ${what}`);
    return new URL(location, await this.http.urlFor('/')).toString();
  }

  private static withDigest(location: string, digest: Digest): string {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    return url.toString();
  }

  /**
   * Uploads a blob: in one POST+PUT when small; otherwise in PATCH chunks that, after a
   * failure, resume from the offset the registry reports it has.
   */
  async uploadBlob(repository: string, digest: Digest, size: number, open: BlobSource, onProgress?: UploadProgress, signal?: AbortSignal): Promise<void> {
    if (size <= this.monolithicLimit) {
      await this.putWhole(repository, await this.startUpload(repository, signal), digest, size, open, onProgress, signal);
      return;
    }
    const complete = { available: size, complete: true };
    await this.uploadGrowingBlob(repository, { open, waitFor: async () => complete }, async () => digest, onProgress, digest, signal);
  }

  /**
   * Puts a blob in place unless the repository has it. For a blob that goes in one request, the
   * HEAD and the POST that opens the upload go out together: a new blob costs two round trips,
   * not three; when it turns out to be there, the session is closed (close() waits for that).
   */
  async ensureBlob(repository: string, digest: Digest, size: number, open: BlobSource, onProgress?: UploadProgress, signal?: AbortSignal): Promise<'existed' | 'uploaded'> {
    if (size > this.monolithicLimit) {
      if ((await this.headBlob(repository, digest, signal)) !== undefined) return 'existed';
      await this.uploadBlob(repository, digest, size, open, onProgress, signal);
      return 'uploaded';
    }
    const session = this.startUpload(repository, signal);
    session.catch(() => {}); // awaited below unless the HEAD decides first; never unhandled
    const closeSession = () => {
      const closing = session.then((location) => this.cancelUpload(repository, location), () => {});
      this.closing.add(closing);
      void closing.finally(() => this.closing.delete(closing));
    };
    let existing: number | undefined;
    try {
      existing = await this.headBlob(repository, digest, signal);
    } catch (error) {
      closeSession();
      throw error;
    }
    if (existing !== undefined) {
      closeSession();
      return 'existed';
    }
    await this.putWhole(repository, await session, digest, size, open, onProgress, signal);
    return 'uploaded';
  }

  /** The one PUT of a monolithic upload into the session at `location`. */
  private async putWhole(repository: string, location: string, digest: Digest, size: number, open: BlobSource, onProgress: UploadProgress | undefined, signal: AbortSignal | undefined): Promise<void> {
    const inFlight = abortAfterGrace(signal, UPLOAD_ABORT_GRACE_MS);
    const response = await this.request(
      {
        method: 'PUT',
        url: RegistryClient.withDigest(location, digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: () => open(0, size),
        signal: inFlight.signal,
      },
      [pushScope(repository)],
    ).catch(async (error: unknown) => {
      if (signal?.aborted) await this.cancelUpload(repository, location);
      throw error;
    }).finally(() => inFlight.release());
    if (signal?.aborted && response.status === 201) {
      // Finished within the grace period: the blob is in place, which moves no tag; report the abort.
      await response.body.dump();
      throw signal.reason;
    }
    if (response.status !== 201) throw await this.failure(response, `uploading blob ${digest} to ${repository}`);
    await response.body.dump();
    onProgress?.(size);
  }

  /** Blobs larger than this go in chunks (and so may start before they are complete). */
  get monolithicUploadLimit(): number {
    return this.monolithicLimit;
  }

  /**
   * Uploads a blob in PATCH chunks while it may still be growing (a layer being built): each
   * chunk is sent once its bytes exist, and the digest is asked for only to complete the
   * upload. After a failure the upload resumes from the offset the registry reports it has.
   * When `signal` aborts, the chunk in flight is cut, the session closed, and its reason thrown.
   */
  async uploadGrowingBlob(
    repository: string,
    source: GrowingBlobSource,
    finalDigest: () => Promise<Digest>,
    onProgress?: UploadProgress,
    label = 'blob',
    signal?: AbortSignal,
  ): Promise<Digest> {
    let location = await this.startUpload(repository, signal);
    const inFlight = abortAfterGrace(signal, UPLOAD_ABORT_GRACE_MS);
    try {
      return await this.sendChunks(repository, location, source, finalDigest, onProgress, label, signal, inFlight.signal, (next) => (location = next));
    } catch (error) {
      // The caller gave up (interrupted, or the push failed elsewhere): close the session rather than leave it.
      if (signal?.aborted) {
        await this.cancelUpload(repository, location);
        throw signal.reason;
      }
      throw error;
    } finally {
      inFlight.release();
    }
  }

  private async sendChunks(
    repository: string,
    startLocation: string,
    source: GrowingBlobSource,
    finalDigest: () => Promise<Digest>,
    onProgress: UploadProgress | undefined,
    label: string,
    signal: AbortSignal | undefined,
    chunkSignal: AbortSignal | undefined,
    moved: (location: string) => void,
  ): Promise<Digest> {
    let location = startLocation;
    let offset = 0;
    let failures = 0;
    const policy = this.http.retryPolicy;
    for (;;) {
      signal?.throwIfAborted();
      const state = await orAbort(source.waitFor(offset + this.chunkSize), signal);
      if (state.complete && offset >= state.available) break;
      const end = Math.min(offset + this.chunkSize, state.available);
      const start = offset;
      try {
        const authorization = await this.authorization([pushScope(repository)]);
        const response = await this.http.sendWithoutRetry({
          method: 'PATCH',
          url: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(end - start),
            'content-range': `${start}-${end - 1}`,
            ...(authorization ? { authorization } : {}),
          },
          body: () => source.open(start, end),
          signal: chunkSignal,
        });
        if (response.status !== 202) {
          if (response.status < 500 && response.status !== 408 && response.status !== 429 && response.status !== 416) {
            throw await this.failure(response, `uploading bytes ${start}-${end - 1} of ${label}`);
          }
          await response.body.dump();
          throw new RegistryError(`chunk ${start}-${end - 1}: HTTP ${response.status}`, { status: response.status });
        }
        await response.body.dump();
        location = await this.location(response, 'a chunk');
        moved(location);
        offset = end;
        failures = 0;
        onProgress?.(offset);
      } catch (error) {
        if (signal?.aborted) throw error;
        if (error instanceof AuthError || (error instanceof RegistryError && error.status !== undefined && error.status < 500 && error.status !== 408 && error.status !== 429 && error.status !== 416)) {
          throw error;
        }
        failures++;
        if (failures >= policy.attempts) {
          throw new RegistryError(`upload of ${label} to ${repository} failed at byte ${start}: ${(error as Error).message}`, {
            hint: 'the registry stopped answering; run the command again (blobs already uploaded are not sent again)',
            cause: error,
          });
        }
        await sleep(retryDelayMs(failures, policy), undefined, { signal });
        // Ask the registry how much of the upload it kept, and continue from there.
        const status = await this.uploadStatus(repository, location).catch((statusError: unknown) => {
          this.logger.debug(`upload status unavailable: ${(statusError as Error).message}`);
          return undefined;
        });
        if (status) {
          location = status.location;
          moved(location);
          offset = status.offset;
          this.logger.debug(`resuming upload of ${label} at byte ${offset}`);
        } else {
          location = await this.startUpload(repository, signal).catch((restartError: unknown) => {
            throw new RegistryError(`upload of ${label} to ${repository} failed at byte ${start} and could not be restarted: ${(restartError as Error).message}`, {
              hint: 'the registry stopped answering; run the command again (blobs already uploaded are not sent again)',
              cause: restartError,
            });
          });
          moved(location);
          offset = 0;
          this.logger.debug(`upload session lost; restarting ${label} from byte 0`);
        }
      }
    }
    const digest = await orAbort(finalDigest(), signal);
    const response = await this.request(
      { method: 'PUT', url: RegistryClient.withDigest(location, digest), headers: { 'content-length': '0' }, signal },
      [pushScope(repository)],
    );
    if (response.status !== 201) throw await this.failure(response, `completing upload of ${digest}`);
    await response.body.dump();
    return digest;
  }

  /** Where an upload session stands: the next offset to send and its current location. */
  private async uploadStatus(repository: string, location: string): Promise<{ offset: number; location: string } | undefined> {
    const response = await this.request({ method: 'GET', url: location }, [pushScope(repository)]);
    await response.body.dump();
    if (response.status !== 204) return undefined;
    const range = headerValue(response.headers, 'range');
    const match = range ? /^(?:bytes=)?0-(\d+)$/.exec(range) : null;
    // distribution answers "0-0" both for nothing stored and for one byte: start over rather than guess.
    if (!match || match[1] === '0') return undefined;
    return { offset: Number(match[1]) + 1, location: await this.location(response, 'an upload status request').catch(() => location) };
  }

  async close(): Promise<void> {
    await Promise.all(this.closing);
    await this.http.close();
  }
}

function mediaTypeFromBody(bytes: Buffer): string {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
    return parsed.manifests ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    return '';
  }
}
