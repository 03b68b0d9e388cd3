/**
 * A distribution-spec v2 registry client on Node's built-in `fetch`.
 *
 * - Endpoints: HTTPS; plain HTTP is tried after HTTPS only for loopback
 *   registries and those listed in `CNB_INSECURE_REGISTRIES` (which also skip
 *   certificate verification). Extra CAs come from `ca`/`caFile`/`certsDir`.
 * - Auth: the `/v2/` challenge decides Basic or Bearer; Bearer tokens come from
 *   the challenge's realm with `service` and `scope`, cached per scope.
 * - Retries with exponential backoff on 429, 5xx and connection failures,
 *   honouring `Retry-After`; an inactivity timeout on every request. A blob
 *   download that breaks part-way resumes with a Range request (resume.ts).
 * - Manifests are checked for shape before anyone reads them (validate.ts).
 * - Errors name the action, registry, repository and HTTP status; credentials
 *   are redacted from messages, causes and log events.
 *
 * The work is done by transport.ts (endpoints, retries, timeouts, errors),
 * authorizer.ts (challenges, credentials, tokens), blobs.ts and manifests.ts;
 * this class is their one public face.
 */
import type { Digest } from '../digest.ts';
import type { Descriptor, Platform } from '../model.ts';
import { hostPlatform } from '../platform.ts';
import type { ImageReference, RepositoryRef } from '../reference.ts';
import { blobExists, getBlob, mountBlob, pushBlob, type BlobBody, type BlobPushResult, type PushBlobOptions } from './blobs.ts';
import type { Keychain } from './credentials.ts';
import { getManifest, headManifest, listTags, putManifest, resolveImage, type ManifestResult, type ResolvedImage } from './manifests.ts';
import type { RegistryRequest, RegistryResponse } from './request.ts';
import type { RetryPolicy } from './retry.ts';
import { readAll } from './streams.ts';
import { RegistryTransport, type RegistryClientOptions } from './transport.ts';

export type { RetryPolicy } from './retry.ts';
export type { BlobBody, BlobPushResult, PushBlobOptions } from './blobs.ts';
export { MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT, platformMatches, type ManifestResult, type ResolvedImage } from './manifests.ts';
export type { RegistryEvent, RegistryRequest, RegistryResponse } from './request.ts';
export { isLoopbackRegistry, parseInsecureRegistries, parseRetryAfter, type RegistryClientOptions } from './transport.ts';

export class RegistryClient {
  readonly keychain: Keychain;
  readonly retryPolicy: RetryPolicy;
  readonly timeoutMs: number;
  readonly chunkSize: number;
  readonly #transport: RegistryTransport;

  constructor(options: RegistryClientOptions = {}) {
    this.#transport = new RegistryTransport(options);
    this.keychain = this.#transport.keychain;
    this.retryPolicy = this.#transport.retryPolicy;
    this.timeoutMs = this.#transport.timeoutMs;
    this.chunkSize = options.chunkSize ?? 0;
  }

  /** Release pooled connections. */
  async close(): Promise<void> {
    return this.#transport.close();
  }

  /** Redact every secret this client has handled from a string (for callers' own logs). */
  redact(text: string): string {
    return this.#transport.redactor.redact(text);
  }

  isInsecure(registry: string): boolean {
    return this.#transport.isInsecure(registry);
  }

  /** Check the registry speaks distribution v2 (`GET /v2/`), learning its scheme and auth challenge. */
  async ping(registry: string): Promise<{ url: string; status: number; authScheme?: string }> {
    await this.#transport.endpoint(registry);
    const response = await this.request({
      what: `pinging ${registry}`,
      registry,
      method: 'GET',
      url: '/v2/',
      expect: [200],
    });
    await response.body?.cancel();
    const challenge = this.#transport.authorizer.challenge(registry);
    const out: { url: string; status: number; authScheme?: string } = { url: response.url, status: response.status };
    if (challenge) out.authScheme = challenge.scheme;
    return out;
  }

  /**
   * Send a request with auth, retries and timeouts. Resolves with a response whose
   * status is in `spec.expect`; anything else becomes a RegistryError.
   */
  async request(spec: RegistryRequest): Promise<RegistryResponse> {
    return this.#transport.request(spec);
  }

  // --------------------------------------------------------------- manifests

  async headManifest(ref: ImageReference, options: { accept?: readonly string[] } = {}): Promise<Descriptor | undefined> {
    return headManifest(this.#transport, ref, options);
  }

  async getManifest(ref: ImageReference, options: { accept?: readonly string[] } = {}): Promise<ManifestResult> {
    return getManifest(this.#transport, ref, options);
  }

  /** Upload a manifest under a tag or its digest; checks the registry computed the same digest. */
  async putManifest(repo: RepositoryRef, reference: string, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    return putManifest(this.#transport, repo, reference, bytes, mediaType);
  }

  /**
   * Follow a reference to an image manifest: an index is resolved to the entry
   * for `platform` (default: this host's), nested indexes included.
   */
  async resolveImage(ref: ImageReference, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
    return resolveImage(this.#transport, ref, platform);
  }

  /** Tags of a repository (`GET /v2/<name>/tags/list`), following pagination. */
  async listTags(repo: RepositoryRef): Promise<string[]> {
    return listTags(this.#transport, repo);
  }

  // ------------------------------------------------------------------- blobs

  /** HEAD a blob: its size when the repository has it, undefined when not. */
  async blobExists(repo: RepositoryRef, digest: Digest): Promise<{ size: number } | undefined> {
    return blobExists(this.#transport, repo, digest);
  }

  /**
   * A blob's bytes as a stream. A body that breaks part-way is resumed with a
   * Range request (a registry that ignores Range is read again from the start,
   * skipping what was passed on), within the retry policy's attempts. The
   * stream errors at its end with a DigestMismatchError when the whole content
   * does not match the digest (or size).
   */
  async getBlob(repo: RepositoryRef, blob: Digest | Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    return getBlob(this.#transport, repo, blob);
  }

  /** A whole blob in memory (configs, small files), verified. */
  async getBlobBytes(repo: RepositoryRef, blob: Digest | Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    return readAll(await this.getBlob(repo, blob));
  }

  /** Cross-repository mount; true when the registry mounted it (201), false otherwise. */
  async mountBlob(repo: RepositoryRef, digest: Digest, fromRepository: string): Promise<boolean> {
    return mountBlob(this.#transport, repo, digest, fromRepository);
  }

  /**
   * Make sure a repository has a blob: skip it when it is there, mount it from
   * another repository when possible, else upload it (one PUT, or PATCH chunks).
   * An upload that fails retryably (a reset or timeout part-way, 429, 5xx) is
   * started over from a fresh body. A failure of the body's own source is not
   * retried: it is reported as reading the content.
   */
  async pushBlob(repo: RepositoryRef, descriptor: Pick<Descriptor, 'digest' | 'size'>, body: BlobBody, options: PushBlobOptions = {}): Promise<BlobPushResult> {
    return pushBlob(this.#transport, repo, descriptor, body, { ...options, chunkSize: options.chunkSize ?? this.chunkSize });
  }
}
