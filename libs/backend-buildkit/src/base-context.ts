/**
 * How a standalone buildkitd gets the base without a registry round trip: the
 * Dockerfile's `FROM ${base_image}` is answered by an `oci-layout://` named
 * context whose blobs the session serves, pinned by the manifest digest. And
 * which registries the daemon may ask the session credentials for.
 */
import semver from 'semver';
import { parseReference, type Keychain } from '@cnb-extender/oci';

/** The session's store id for the base (`oci:` + this is what the daemon asks for). */
export const BASE_STORE = 'cnb-extender-base';

/** BuildKit took `oci-layout://` named contexts in v0.11, the same release that added `Control/Info`. */
export const LAYOUT_CONTEXT_MIN_VERSION = '0.11.0';

/**
 * Whether a daemon takes the base as an OCI-layout named context. An empty
 * version means `Control/Info` is missing, so the daemon is older than v0.11.
 * Builds without a version stamp (`v0.0.0+unknown`) answered Info: new enough.
 */
export function takesLayoutContexts(version: string): boolean {
  if (version === '') return false;
  const parsed = semver.coerce(version);
  if (!parsed || parsed.version === '0.0.0') return true;
  return semver.gte(parsed, LAYOUT_CONTEXT_MIN_VERSION);
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The names the dockerfile frontend may look the base up by: the reference as
 * `FROM` reads after expansion, and its familiar form (Docker Hub's domain and
 * `library/` dropped, `:latest` trimmed), which is the key BuildKit tries.
 */
export function namedContextKeys(reference: string): string[] {
  const keys = new Set<string>([reference]);
  try {
    const ref = parseReference(reference, { defaultTag: false });
    let name = DOCKER_HUB.has(ref.registry) ? ref.repository.replace(/^library\/(?=[^/]+$)/, '') : `${ref.registry}/${ref.repository}`;
    if (ref.tag !== undefined) name += `:${ref.tag}`;
    if (ref.digest !== undefined) name += `@${ref.digest}`;
    keys.add(name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name);
  } catch {
    // Not a reference BuildKit could parse either: the exact text is all there is.
  }
  return [...keys];
}

/** `oci-layout://<store>@<digest>`: BuildKit refuses a layout context without a digest. */
export function layoutContext(manifestDigest: string): string {
  return `oci-layout://${BASE_STORE}@${manifestDigest}`;
}

/** The registry host of an image or cache reference, or undefined for what is not one. */
export function registryOf(reference: string): string | undefined {
  try {
    const host = parseReference(reference, { defaultTag: false }).registry;
    return DOCKER_HUB.has(host) ? 'docker.io' : host;
  } catch {
    return undefined;
  }
}

/**
 * A keychain that answers only for the given registries: the daemon asks the
 * session for credentials by host, and gets none for a registry the build has
 * no business with, whatever the operator's keychain holds.
 */
export function scopedKeychain(keychain: Keychain, registries: Iterable<string>): Keychain & { readonly registries: ReadonlySet<string> } {
  const allowed = new Set<string>();
  for (const r of registries) allowed.add(DOCKER_HUB.has(r) ? 'docker.io' : r);
  return {
    registries: allowed,
    async resolve(host: string) {
      const normal = DOCKER_HUB.has(host) ? 'docker.io' : host;
      return allowed.has(normal) ? keychain.resolve(host) : undefined;
    },
  };
}
