/**
 * Image references (`registry/repository:tag@digest`), parsed the way Docker
 * normalises them: a missing registry means Docker Hub (`docker.io`), a
 * single-component Hub repository gets the `library/` prefix, `index.docker.io`
 * is folded into `docker.io`. The grammar follows distribution's reference
 * package (domain with optional port or bracketed IPv6, lowercase path
 * components with `.`, `_`, `__` or `-+` separators, tags `[\w][\w.-]{0,127}`,
 * digests `algorithm:hex`).
 */
import type { Digest } from './digest.ts';

export class ImageReferenceError extends Error {
  override name = 'ImageReferenceError';
}

/** A named image reference after normalisation. */
export interface ImageReference {
  /** Registry as named in the reference: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/busybox`, `fixtures/run`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** A registry and a repository in it; what the registry client addresses. */
export interface RepositoryRef {
  registry: string;
  repository: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_LEGACY = 'index.docker.io';
/** The host that actually serves Docker Hub's distribution API. */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
export const DEFAULT_TAG = 'latest';
const OFFICIAL_PREFIX = 'library/';
export const REPOSITORY_MAX_LENGTH = 255;

// Grammar pieces (sources of regular expressions, combined below).
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|-+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[[a-fA-F0-9:]+\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REFERENCE_RE = new RegExp(`^((?:${DOMAIN}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const NAME_RE = new RegExp(`^(?:(${DOMAIN})/)?(${REMOTE_NAME})$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const HEX_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface ParseReferenceOptions {
  /**
   * Tag to add when the reference has neither tag nor digest; `false` keeps
   * it bare. Default `latest`, as `docker pull` does.
   */
  defaultTag?: string | false;
}

/**
 * Parse a (possibly familiar) named reference: `busybox`, `busybox:1.36`,
 * `ghcr.io/org/app@sha256:…`, `127.0.0.1:5000/app:tag@sha256:…`, `[::1]:5000/app`.
 * Throws ImageReferenceError naming the input and what is wrong with it.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): ImageReference {
  const fail = (why: string): never => {
    throw new ImageReferenceError(`invalid image reference ${JSON.stringify(input)}: ${why}`);
  };
  if (input === '') fail('repository name must have at least one component');
  if (IDENTIFIER_RE.test(input)) fail('a 64-character hexadecimal string is an image ID, not a repository name');

  const [domain, remainder] = splitDockerDomain(input);
  const tagAt = remainder.indexOf(':');
  const remote = tagAt === -1 ? remainder : remainder.slice(0, tagAt);
  if (remote.toLowerCase() !== remote) fail(`repository name ${JSON.stringify(remote)} must be lowercase`);

  const match = REFERENCE_RE.exec(`${domain}/${remainder}`);
  if (!match) fail(explainInvalid(remainder));
  const name = match![1]!;
  const tag = match![2];
  const digest = match![3];
  const nameMatch = NAME_RE.exec(name);
  if (!nameMatch) fail('invalid repository name');
  const registry = nameMatch![1] ?? domain;
  const repository = nameMatch![2]!;
  if (repository.length > REPOSITORY_MAX_LENGTH) {
    fail(`repository name must not be more than ${REPOSITORY_MAX_LENGTH} characters`);
  }
  const ref: ImageReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = validateDigest(digest, fail);
  const defaultTag = options.defaultTag ?? DEFAULT_TAG;
  if (ref.tag === undefined && ref.digest === undefined && defaultTag !== false) ref.tag = defaultTag;
  return ref;
}

/** A reference that is only a digest (`sha256:…` or a bare 64-hex image ID). */
export interface DigestOnlyReference {
  digest: Digest;
}

/**
 * Parse anything `docker` accepts where an image is expected: a bare image ID
 * or digest (returned as `{ digest }`), or a named reference.
 */
export function parseAnyReference(input: string, options: ParseReferenceOptions = {}): ImageReference | DigestOnlyReference {
  if (IDENTIFIER_RE.test(input)) return { digest: `sha256:${input}` };
  if (DIGEST_RE.test(input)) {
    return {
      digest: validateDigest(input, (why) => {
        throw new ImageReferenceError(`invalid image reference ${JSON.stringify(input)}: ${why}`);
      }),
    };
  }
  return parseReference(input, options);
}

export function isDigestOnly(ref: ImageReference | DigestOnlyReference): ref is DigestOnlyReference {
  return !('repository' in ref);
}

/** `registry/repository[:tag][@digest]`, fully qualified (`docker.io/library/busybox:latest`). */
export function formatReference(ref: ImageReference | DigestOnlyReference): string {
  if (isDigestOnly(ref)) return ref.digest;
  let out = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The short form `docker` shows: Docker Hub's domain and `library/` dropped. */
export function familiarReference(ref: ImageReference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository;
    if (name.startsWith(OFFICIAL_PREFIX) && !name.slice(OFFICIAL_PREFIX.length).includes('/')) {
      name = name.slice(OFFICIAL_PREFIX.length);
    }
  }
  if (ref.tag !== undefined) name += `:${ref.tag}`;
  if (ref.digest !== undefined) name += `@${ref.digest}`;
  return name;
}

/** The same repository with another tag (validated); any digest is dropped. */
export function withTag(ref: RepositoryRef, tag: string): ImageReference {
  if (!TAG_RE.test(tag)) throw new ImageReferenceError(`invalid tag ${JSON.stringify(tag)}`);
  return { registry: ref.registry, repository: ref.repository, tag };
}

/** The same repository pinned to a digest (validated); the tag is kept for display. */
export function withDigest(ref: RepositoryRef & { tag?: string }, digest: string): ImageReference {
  const checked = validateDigest(digest, (why) => {
    throw new ImageReferenceError(`invalid digest ${JSON.stringify(digest)}: ${why}`);
  });
  const out: ImageReference = { registry: ref.registry, repository: ref.repository, digest: checked };
  if (ref.tag !== undefined) out.tag = ref.tag;
  return out;
}

/**
 * The `host[:port]` that serves the distribution API for a registry name:
 * Docker Hub's names map to `registry-1.docker.io`, everything else is itself.
 */
export function registryEndpoint(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_ENDPOINT : registry;
}

export function isDockerHub(registry: string): boolean {
  return registry === DOCKER_HUB || registry === DOCKER_HUB_LEGACY || registry === DOCKER_HUB_ENDPOINT;
}

/** Host without port, brackets kept for IPv6 (`[::1]`). */
export function registryHostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(0, registry.indexOf(']') + 1);
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

/**
 * Split a familiar name into domain and remainder the way Docker does: the
 * first component is a registry when it is `localhost`, contains `.` or `:`,
 * or has uppercase letters (which repository paths may not).
 */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash === -1) return [DOCKER_HUB, OFFICIAL_PREFIX + name];
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === 'localhost') [domain, remainder] = [first, rest];
  else if (first === DOCKER_HUB_LEGACY) [domain, remainder] = [DOCKER_HUB, rest];
  else if (/[.:]/.test(first) || first.toLowerCase() !== first) [domain, remainder] = [first, rest];
  else [domain, remainder] = [DOCKER_HUB, name];
  if (domain === DOCKER_HUB && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return [domain, remainder];
}

function validateDigest(value: string, fail: (why: string) => never): Digest {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  const expected = HEX_LENGTHS[algorithm];
  if (expected === undefined) fail(`unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) {
    fail(`${algorithm} digest must be ${expected} lowercase hexadecimal characters`);
  }
  return value as Digest;
}

function explainInvalid(remainder: string): string {
  const at = remainder.indexOf('@');
  const beforeDigest = at === -1 ? remainder : remainder.slice(0, at);
  if (at !== -1 && !DIGEST_RE.test(remainder.slice(at + 1))) return 'invalid digest';
  const colon = beforeDigest.lastIndexOf(':');
  if (colon !== -1 && !beforeDigest.slice(colon + 1).includes('/')) {
    const tag = beforeDigest.slice(colon + 1);
    if (!TAG_RE.test(tag)) return `invalid tag ${JSON.stringify(tag)}`;
  }
  return 'invalid reference format';
}
