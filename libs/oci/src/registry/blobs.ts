/**
 * Blob operations of the registry client: existence checks, verified and
 * resumable downloads, cross-repository mounts, and uploads (one PUT or PATCH
 * chunks) that start over from a fresh body when they fail retryably.
 */
import type { Digest } from '../digest.ts';
import type { Descriptor } from '../model.ts';
import type { RepositoryRef } from '../reference.ts';
import type { Scope } from './auth.ts';
import { DigestMismatchError, RegistryError, describeNetworkError } from './errors.ts';
import { errorInfo, inRepository, type RegistryRequest, type RegistryResponse } from './request.ts';
import { contentRangeStart, resumingStream } from './resume.ts';
import { judgeFailure, pause } from './retry.ts';
import { mapStreamErrors, rechunk, tap, toWebStream, verifyingStream, watchedSource, type BlobData } from './streams.ts';
import type { RegistryTransport } from './transport.ts';

export interface PushBlobOptions {
  /** Repositories of the same registry to try a cross-repository mount from. */
  mountFrom?: string[];
  /** Skip the HEAD that avoids uploading a blob the repository already has. */
  skipExistenceCheck?: boolean;
  /** Override the client's chunk size for this blob. */
  chunkSize?: number;
}

export type BlobPushResult = 'exists' | 'mounted' | 'uploaded';

/** Source of a blob's bytes; a function is called again for every attempt. */
export type BlobBody = Uint8Array | (() => BlobData | Promise<BlobData>);

type BlobRef = Digest | Pick<Descriptor, 'digest' | 'size'>;

/** One upload attempt of one blob, and what its requests have in common. */
interface Upload {
  transport: RegistryTransport;
  repo: RepositoryRef;
  digest: Digest;
  what: string;
  scopes: Scope[];
}

/** HEAD a blob: its size when the repository has it, undefined when not. */
export async function blobExists(transport: RegistryTransport, repo: RepositoryRef, digest: Digest): Promise<{ size: number } | undefined> {
  const response = await transport.request({
    what: `checking blob ${digest} in ${repo.registry}/${repo.repository}`,
    method: 'HEAD',
    ...inRepository(repo, `blobs/${digest}`, ['pull']),
    expect: [200, 404],
  });
  await response.body?.cancel().catch(() => {});
  if (response.status === 404) return undefined;
  return { size: Number(response.headers.get('content-length') ?? NaN) };
}

/**
 * A blob's bytes as a stream, resumed with Range requests when it breaks
 * part-way and checked against the digest (and size) at its end.
 */
export async function getBlob(transport: RegistryTransport, repo: RepositoryRef, blob: BlobRef): Promise<ReadableStream<Uint8Array>> {
  const digest = typeof blob === 'string' ? blob : blob.digest;
  const size = typeof blob === 'string' ? undefined : blob.size;
  const what = `pulling blob ${digest} from ${repo.registry}/${repo.repository}`;
  const resumed = await resumingBlobStream(transport, repo, digest, size, what);
  const expected: { digest: Digest; size?: number } = { digest };
  if (size !== undefined) expected.size = size;
  const verified = verifyingStream(
    resumed,
    expected,
    (actual) =>
      new DigestMismatchError(
        actual.digest === digest
          ? `${what}: received more than the expected ${size} bytes`
          : `${what}: received ${actual.size} bytes with digest ${actual.digest}`,
        errorInfo(repo),
      ),
  );
  // Anything else failing while the body streams becomes a RegistryError too.
  return mapStreamErrors(verified, (error) =>
    error instanceof RegistryError
      ? error
      : new RegistryError(`${what}: ${transport.redactor.redact(describeNetworkError(error))}`, errorInfo(repo, judgeFailure(error)), {
          cause: transport.redactor.sanitize(error),
        }),
  );
}

/** A blob's body that reopens itself from where it broke, within the retry policy's attempts. */
async function resumingBlobStream(
  transport: RegistryTransport,
  repo: RepositoryRef,
  digest: Digest,
  size: number | undefined,
  what: string,
): Promise<ReadableStream<Uint8Array>> {
  const open = (offset: number) => openBlobAt(transport, repo, digest, what, offset);
  return resumingStream((await open(0)).body, {
    attempts: Math.max(1, transport.retryPolicy.attempts),
    delayMs: (attempt) => transport.backoff(attempt),
    retryable: (error) => judgeFailure(error).retryable,
    reopen: open,
    signal: transport.signal,
    onRetry: ({ attempt, offset, delayMs, error }) => {
      const reason = `${judgeFailure(error).codes[0] ?? 'network error'}; resuming at byte ${offset}`;
      transport.logger?.({ type: 'retry', method: 'GET', url: `${repo.registry}/${repo.repository} blob ${digest}`, attempt, delayMs, reason });
    },
    fail: (error, { attempts, received }) => {
      if (transport.isAborted()) return transport.abortError(repo.registry);
      if (error instanceof RegistryError) return error;
      const tries = attempts > 1 ? ` (after ${attempts} attempts, ${received}${size === undefined ? '' : ` of ${size}`} bytes received)` : '';
      const { codes, retryable } = judgeFailure(error);
      return new RegistryError(`${what}: ${transport.redactor.redact(describeNetworkError(error))}${tries}`, errorInfo(repo, { codes, retryable }), {
        cause: transport.redactor.sanitize(error),
      });
    },
  });
}

/**
 * GET a blob from `offset` on. A registry that ignores Range answers 200 with
 * the whole blob: `start` says where its body begins.
 */
async function openBlobAt(
  transport: RegistryTransport,
  repo: RepositoryRef,
  digest: Digest,
  what: string,
  offset: number,
): Promise<{ body: ReadableStream<Uint8Array>; start: number }> {
  const response = await transport.request({
    what,
    method: 'GET',
    ...inRepository(repo, `blobs/${digest}`, ['pull']),
    // Ranges count bytes of the blob itself, not of a compressed transfer.
    headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
    expect: offset > 0 ? [200, 206] : [200],
  });
  const start = response.status === 206 ? contentRangeStart(response.headers.get('content-range')) : 0;
  if (start === undefined) {
    await response.body?.cancel().catch(() => {});
    throw new RegistryError(`${what}: HTTP 206 without a readable Content-Range`, errorInfo(repo, { status: 206 }));
  }
  return { body: response.body ?? toWebStream(new Uint8Array(0)), start };
}

/** Cross-repository mount; true when the registry mounted it (201), false otherwise. */
export async function mountBlob(transport: RegistryTransport, repo: RepositoryRef, digest: Digest, fromRepository: string): Promise<boolean> {
  const query = new URLSearchParams({ mount: digest, from: fromRepository });
  const response = await transport.request({
    what: `mounting blob ${digest} from ${fromRepository} into ${repo.registry}/${repo.repository}`,
    registry: repo.registry,
    repository: repo.repository,
    method: 'POST',
    url: `/v2/${repo.repository}/blobs/uploads/?${query}`,
    headers: { 'content-length': '0' },
    expect: [201, 202],
    scopes: [
      { repository: repo.repository, actions: ['pull', 'push'] },
      { repository: fromRepository, actions: ['pull'] },
    ],
  });
  await response.body?.cancel().catch(() => {});
  if (response.status === 201) return true;
  // The registry started an upload instead; abandon it.
  const location = response.headers.get('location');
  if (location) {
    await transport
      .request({
        what: `cancelling upload in ${repo.registry}/${repo.repository}`,
        registry: repo.registry,
        repository: repo.repository,
        method: 'DELETE',
        url: new URL(location, response.url).toString(),
        expect: [200, 202, 204, 404],
        retry: false,
        scopes: [{ repository: repo.repository, actions: ['pull', 'push'] }],
      })
      .then((r) => r.body?.cancel())
      .catch(() => {});
  }
  return false;
}

/**
 * Make sure a repository has a blob: skip it when it is there, mount it from
 * another repository when possible, else upload it (see `uploadBlob`).
 */
export async function pushBlob(
  transport: RegistryTransport,
  repo: RepositoryRef,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  body: BlobBody,
  options: PushBlobOptions & { chunkSize: number },
): Promise<BlobPushResult> {
  const { digest } = descriptor;
  if (!options.skipExistenceCheck && (await blobExists(transport, repo, digest))) return 'exists';
  for (const from of options.mountFrom ?? []) {
    if (from === repo.repository) continue;
    if (await mountBlob(transport, repo, digest, from)) return 'mounted';
  }
  await uploadBlob(transport, repo, descriptor, body, options.chunkSize);
  return 'uploaded';
}

/**
 * Upload a blob (one PUT, or PATCH chunks). An upload that fails retryably (a
 * reset or timeout part-way, 429, 5xx) is started over from a fresh body. A
 * failure of the body's own source is not retried: it is reported as reading
 * the content.
 */
async function uploadBlob(
  transport: RegistryTransport,
  repo: RepositoryRef,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  body: BlobBody,
  chunkSize: number,
): Promise<void> {
  const { digest } = descriptor;
  const attempts = Math.max(1, transport.retryPolicy.attempts);
  for (let attempt = 1; ; attempt++) {
    const source = watchedSource(body);
    try {
      await uploadOnce(transport, repo, descriptor, source.open, chunkSize);
      return;
    } catch (caught) {
      const failed = source.failure();
      const error = failed
        ? new RegistryError(
            `pushing blob ${digest} to ${repo.registry}/${repo.repository}: reading its content: ${transport.redactor.redact(describeNetworkError(failed.error))}`,
            errorInfo(repo),
            { cause: transport.redactor.sanitize(failed.error) },
          )
        : caught;
      if (!(error instanceof RegistryError) || !error.retryable || attempt >= attempts || transport.isAborted()) throw error;
      const delayMs = transport.backoff(attempt);
      const reason = error.status ? `HTTP ${error.status}` : (error.codes[0] ?? 'network error');
      transport.logger?.({ type: 'retry', method: 'PUT', url: `${repo.registry}/${repo.repository} blob ${digest}`, attempt, delayMs, reason });
      await pause(delayMs, transport.signal);
    }
  }
}

async function uploadOnce(
  transport: RegistryTransport,
  repo: RepositoryRef,
  descriptor: Pick<Descriptor, 'digest' | 'size'>,
  open: () => Promise<ReadableStream<Uint8Array>>,
  chunkSize: number,
): Promise<void> {
  const { digest, size } = descriptor;
  const upload: Upload = {
    transport,
    repo,
    digest,
    what: `pushing blob ${digest} to ${repo.registry}/${repo.repository}`,
    scopes: [{ repository: repo.repository, actions: ['pull', 'push'] }],
  };
  const location = await startUpload(upload);
  if (chunkSize <= 0 || size <= chunkSize) {
    await completeUpload(upload, location, { 'content-type': 'application/octet-stream', 'content-length': String(size) }, async (touch) =>
      tap(await open(), touch),
    );
    return;
  }
  const sent = await sendChunks(upload, location, await open(), chunkSize);
  if (sent.offset !== size) {
    throw new DigestMismatchError(`${upload.what}: the source had ${sent.offset} bytes, the descriptor says ${size}`, errorInfo(repo));
  }
  await completeUpload(upload, sent.location, { 'content-length': '0' });
}

/** POST for an upload session; its location. */
async function startUpload(upload: Upload): Promise<string> {
  const { transport, repo } = upload;
  const started = await transport.request({
    what: upload.what,
    registry: repo.registry,
    repository: repo.repository,
    method: 'POST',
    url: `/v2/${repo.repository}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    expect: [202],
    scopes: upload.scopes,
  });
  await started.body?.cancel().catch(() => {});
  return uploadLocation(upload, started);
}

/** PATCH the source in chunks; the session's last location and the bytes sent. */
async function sendChunks(
  upload: Upload,
  location: string,
  source: ReadableStream<Uint8Array>,
  chunkSize: number,
): Promise<{ location: string; offset: number }> {
  const { transport, repo } = upload;
  let offset = 0;
  for await (const chunk of rechunk(source, chunkSize)) {
    const response = await transport.request({
      what: `${upload.what} (bytes ${offset}-${offset + chunk.byteLength - 1})`,
      registry: repo.registry,
      repository: repo.repository,
      method: 'PATCH',
      url: location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.byteLength),
        'content-range': `${offset}-${offset + chunk.byteLength - 1}`,
      },
      body: () => chunk,
      expect: [202],
      scopes: upload.scopes,
      retry: false,
    });
    await response.body?.cancel().catch(() => {});
    location = uploadLocation(upload, response);
    offset += chunk.byteLength;
  }
  return { location, offset };
}

/** The closing PUT with the digest (and the whole body, when not chunked); checks what the registry stored. */
async function completeUpload(
  upload: Upload,
  location: string,
  headers: Record<string, string>,
  body?: RegistryRequest['body'],
): Promise<void> {
  const { transport, repo, digest, what } = upload;
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  const done = await transport.request({
    what,
    registry: repo.registry,
    repository: repo.repository,
    method: 'PUT',
    url,
    headers,
    ...(body ? { body } : {}),
    expect: [201],
    scopes: upload.scopes,
    retry: false,
  });
  await done.body?.cancel().catch(() => {});
  const reported = done.headers.get('docker-content-digest');
  if (reported && reported !== digest) {
    throw new DigestMismatchError(`${what}: registry stored it as ${reported}`, errorInfo(repo));
  }
}

function uploadLocation(upload: Upload, response: RegistryResponse): string {
  const location = response.headers.get('location');
  if (!location) {
    throw new RegistryError(`${upload.what}: the registry gave no upload location`, errorInfo(upload.repo, { status: response.status }));
  }
  return new URL(location, response.url).toString();
}
