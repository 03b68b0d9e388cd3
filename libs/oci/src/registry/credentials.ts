/**
 * Where registry credentials come from, in the lifecycle's order:
 *
 * 1. `CNB_REGISTRY_AUTH`: JSON mapping a registry to an Authorization header,
 *    `{"registry.example.com": "Basic <base64 user:pass>"}`, `"Bearer <registry token>"`
 *    or `"X-Identity <identity token>"` (what the lifecycle's `BuildEnvVar` writes).
 * 2. Docker's config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
 *    `credHelpers[registry]`, then `credsStore`, then `auths[registry]`
 *    (`auth`, `username`/`password`, `identitytoken`, `registrytoken`).
 *    Helpers are run as `docker-credential-<name> get` with the server URL on stdin.
 * 3. Otherwise anonymous.
 *
 * Registry names are matched the way Docker matches them: scheme and path of a
 * config key are ignored, and Docker Hub's names (`docker.io`, `index.docker.io`,
 * `registry-1.docker.io`, `https://index.docker.io/v1/`) are one registry.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isDockerHub } from '../reference.ts';
import { CredentialError } from './errors.ts';

export type Credential =
  /** HTTP Basic, also used to obtain Bearer tokens from a token service. */
  | { kind: 'basic'; username: string; password: string }
  /** A registry token sent as `Authorization: Bearer …` as it is. */
  | { kind: 'bearer'; token: string }
  /** An OAuth2 refresh token exchanged at the token service (`grant_type=refresh_token`). */
  | { kind: 'identity'; token: string; username?: string };

export interface Keychain {
  /** Credentials for a registry (`host[:port]` as in references), or undefined for anonymous. */
  resolve(registry: string): Promise<Credential | undefined>;
}

/** Docker Hub's key in Docker's config and for its credential helpers. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** The secret strings of a credential, for redaction. */
export function credentialSecrets(credential: Credential | undefined): string[] {
  if (!credential) return [];
  switch (credential.kind) {
    case 'basic':
      return [
        credential.password,
        Buffer.from(`${credential.username}:${credential.password}`).toString('base64'),
        encodeURIComponent(credential.password),
      ];
    case 'bearer':
    case 'identity':
      return [credential.token];
  }
}

/** Normalise a registry name or config key to compare them: no scheme, no path, Hub aliases folded. */
export function normalizeRegistryKey(key: string): string {
  let host = key.trim();
  host = host.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash !== -1) host = host.slice(0, slash);
  host = host.toLowerCase();
  return isDockerHub(host) ? 'docker.io' : host;
}

/** Parse an Authorization-header-style value as CNB_REGISTRY_AUTH holds them. */
export function parseAuthHeaderValue(value: string, where: string): Credential {
  const match = /^(basic|bearer|x-identity)\s+(.*)$/is.exec(value.trim());
  if (!match) {
    throw new CredentialError(`${where}: expected "Basic <base64>", "Bearer <token>" or "X-Identity <token>"`);
  }
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!.trim();
  if (scheme === 'bearer') return { kind: 'bearer', token: rest };
  if (scheme === 'x-identity') return { kind: 'identity', token: rest };
  return decodeBasic(rest, where);
}

function decodeBasic(encoded: string, where: string): Credential {
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new CredentialError(`${where}: Basic credentials are not base64 of "username:password"`);
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Credentials from a map of registry → header value, as in CNB_REGISTRY_AUTH. */
export function headerMapKeychain(map: Record<string, string>, source: string): Keychain {
  const entries = new Map<string, Credential>();
  for (const [registry, header] of Object.entries(map)) {
    if (typeof header !== 'string') throw new CredentialError(`${source}: the entry for ${registry} is not a string`);
    entries.set(normalizeRegistryKey(registry), parseAuthHeaderValue(header, `${source}: entry for ${registry}`));
  }
  return {
    async resolve(registry) {
      return entries.get(normalizeRegistryKey(registry));
    },
  };
}

/** Credentials from `CNB_REGISTRY_AUTH` (or the given value). Throws on malformed JSON without echoing it. */
export function envKeychain(value: string | undefined = process.env.CNB_REGISTRY_AUTH): Keychain {
  if (value === undefined || value.trim() === '') return { resolve: async () => undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new CredentialError('CNB_REGISTRY_AUTH is not valid JSON (expected {"<registry>": "Basic …"})');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CredentialError('CNB_REGISTRY_AUTH must be a JSON object mapping registries to Authorization headers');
  }
  return headerMapKeychain(parsed as Record<string, string>, 'CNB_REGISTRY_AUTH');
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, DockerAuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface DockerConfigKeychainOptions {
  /** Directory holding config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
  /** Environment for credential helpers (PATH decides which helper runs). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Time a helper may take. Default 30 s. */
  helperTimeoutMs?: number;
}

/** Credentials from Docker's config.json: credHelpers, credsStore, auths. Missing file means anonymous. */
export function dockerConfigKeychain(options: DockerConfigKeychainOptions = {}): Keychain {
  const env = options.env ?? process.env;
  const dir = options.configDir ?? env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
  const file = join(dir, 'config.json');
  let loaded: Promise<DockerConfigFile | undefined> | undefined;
  const load = () =>
    (loaded ??= readFile(file, 'utf8').then(
      (text) => {
        try {
          return JSON.parse(text) as DockerConfigFile;
        } catch {
          throw new CredentialError(`docker config ${file} is not valid JSON`);
        }
      },
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw new CredentialError(`reading docker config ${file}: ${error.code ?? error.message}`);
      },
    ));

  return {
    async resolve(registry) {
      const config = await load();
      if (!config) return undefined;
      const wanted = normalizeRegistryKey(registry);
      const serverUrl = wanted === 'docker.io' ? DOCKER_HUB_CONFIG_KEY : registry;
      const helper = findByKey(config.credHelpers, wanted);
      if (helper) {
        return runCredentialHelper(helper, serverUrl, env, options.helperTimeoutMs);
      }
      if (config.credsStore) {
        const fromStore = await runCredentialHelper(config.credsStore, serverUrl, env, options.helperTimeoutMs);
        if (fromStore) return fromStore;
      }
      const entry = findByKey(config.auths, wanted);
      return entry ? authEntryCredential(entry, `docker config ${file}: auths entry for ${registry}`) : undefined;
    },
  };
}

function findByKey<T>(map: Record<string, T> | undefined, wanted: string): T | undefined {
  if (!map) return undefined;
  for (const [key, value] of Object.entries(map)) {
    if (normalizeRegistryKey(key) === wanted) return value;
  }
  return undefined;
}

function authEntryCredential(entry: DockerAuthEntry, where: string): Credential | undefined {
  if (entry.registrytoken) return { kind: 'bearer', token: entry.registrytoken };
  if (entry.identitytoken) {
    const out: Credential = { kind: 'identity', token: entry.identitytoken };
    if (entry.username) out.username = entry.username;
    return out;
  }
  if (entry.auth) return decodeBasic(entry.auth, where);
  if (entry.username && entry.password !== undefined) {
    return { kind: 'basic', username: entry.username, password: entry.password };
  }
  return undefined;
}

/**
 * Run `docker-credential-<name> get`. "credentials not found" means anonymous;
 * other failures throw without the helper's output (it may hold secrets).
 */
export function runCredentialHelper(
  name: string,
  serverUrl: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, ['get'], { env, timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) {
        if (/credentials not found/i.test(String(stdout))) return resolve(undefined);
        const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : `exited with ${describeExit(error)}`;
        return reject(new CredentialError(`credential helper ${program} for ${serverUrl}: ${why}`));
      }
      let parsed: { Username?: string; Secret?: string };
      try {
        parsed = JSON.parse(String(stdout));
      } catch {
        return reject(new CredentialError(`credential helper ${program} for ${serverUrl}: output is not JSON`));
      }
      if (!parsed.Secret) return resolve(undefined);
      if (parsed.Username === '<token>') return resolve({ kind: 'identity', token: parsed.Secret });
      resolve({ kind: 'basic', username: parsed.Username ?? '', password: parsed.Secret });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(serverUrl);
  });
}

function describeExit(error: Error): string {
  const e = error as Error & { code?: unknown; signal?: unknown; killed?: boolean };
  if (e.killed || e.signal) return `signal ${String(e.signal ?? 'SIGTERM')} (timed out?)`;
  return `code ${String(e.code)}`;
}

/** The first keychain that has credentials for a registry wins. */
export function multiKeychain(...keychains: Keychain[]): Keychain {
  return {
    async resolve(registry) {
      for (const keychain of keychains) {
        const found = await keychain.resolve(registry);
        if (found) return found;
      }
      return undefined;
    },
  };
}

/** Fixed credentials per registry (tests, or a caller that has them already). */
export function staticKeychain(map: Record<string, Credential>): Keychain {
  const entries = new Map(Object.entries(map).map(([k, v]) => [normalizeRegistryKey(k), v]));
  return { resolve: async (registry) => entries.get(normalizeRegistryKey(registry)) };
}

/** The lifecycle's order: CNB_REGISTRY_AUTH, then Docker's config, then anonymous. */
export function defaultKeychain(env: NodeJS.ProcessEnv = process.env): Keychain {
  const options: DockerConfigKeychainOptions = { env };
  if (env.DOCKER_CONFIG) options.configDir = env.DOCKER_CONFIG;
  return multiKeychain(envKeychain(env.CNB_REGISTRY_AUTH), dockerConfigKeychain(options));
}
