/**
 * The registry client's authorization: what each registry challenged us with,
 * its credentials (resolved once, their secrets redacted from then on), and the
 * Authorization header for a request (Basic, a static Bearer token, or a token
 * from the challenge's realm, cached per scope).
 */
import {
  TokenCache,
  basicHeader,
  mergeScopes,
  parseChallenges,
  readTokenResponse,
  tokenRequestInit,
  type Challenge,
} from './auth.ts';
import { credentialSecrets, type Credential, type Keychain } from './credentials.ts';
import { RegistryAuthError, type SecretRedactor } from './errors.ts';
import { readAll } from './streams.ts';
import { errorInfo, type RegistryEvent, type RegistryRequest, type RegistryResponse } from './request.ts';

interface AuthState {
  challenge?: Challenge;
  credential?: Promise<Credential | undefined>;
}

interface TokenFetch {
  realm: string;
  service: string | undefined;
  scopes: string[];
  credential: Credential | undefined;
}

interface RegistryAuthorizerOptions {
  keychain: Keychain;
  redactor: SecretRedactor;
  userAgent: string;
  logger: ((event: RegistryEvent) => void) | undefined;
  /** Sends the token service request (with retries, without auth). */
  request: (spec: RegistryRequest) => Promise<RegistryResponse>;
}

export class RegistryAuthorizer {
  readonly #options: RegistryAuthorizerOptions;
  readonly #tokens = new TokenCache();
  readonly #states = new Map<string, AuthState>();

  constructor(options: RegistryAuthorizerOptions) {
    this.#options = options;
  }

  /** The challenge a registry last answered with, if any. */
  challenge(registry: string): Challenge | undefined {
    return this.#states.get(registry)?.challenge;
  }

  /** Remember a `WWW-Authenticate` answer (Bearer preferred over Basic). */
  learnChallenge(registry: string, header: string | null): Challenge | undefined {
    const challenges = parseChallenges(header);
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (challenge) {
      const state = this.#state(registry);
      state.challenge = challenge;
    }
    return challenge;
  }

  #state(registry: string): AuthState {
    let state = this.#states.get(registry);
    if (!state) {
      state = {};
      this.#states.set(registry, state);
    }
    return state;
  }

  /** The registry's credential from the keychain, resolved once (a failure is retried next time). */
  credential(registry: string): Promise<Credential | undefined> {
    const { keychain, redactor } = this.#options;
    const state = this.#state(registry);
    state.credential ??= keychain.resolve(registry).then(
      (credential) => {
        redactor.add(...credentialSecrets(credential));
        return credential;
      },
      (error: unknown) => {
        state.credential = undefined;
        throw new RegistryAuthError(
          `getting credentials for ${registry}: ${redactor.redact((error as Error).message)}`,
          { registry },
          { cause: redactor.sanitize(error) },
        );
      },
    );
    return state.credential;
  }

  /**
   * The Authorization header for a request. `retry` is given when answering
   * a 401: the token is fetched anew, for our scopes plus the challenge's.
   */
  async authorization(spec: RegistryRequest, retry: { scope: string | undefined } | undefined): Promise<string | undefined> {
    const state = this.#states.get(spec.registry);
    const challenge = state?.challenge;
    if (!challenge) return undefined;
    const credential = await this.credential(spec.registry);
    if (challenge.scheme === 'basic') {
      if (credential?.kind === 'basic') return basicHeader(credential);
      if (credential?.kind === 'bearer') return `Bearer ${credential.token}`;
      return undefined;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.kind === 'bearer') return `Bearer ${credential.token}`;
    const realm = challenge.params.realm;
    if (!realm) return undefined;
    const scopes = mergeScopes([...(spec.scopes ?? []), ...(retry?.scope ? [retry.scope] : [])]);
    const service = challenge.params.service;
    const key = this.#tokens.key(spec.registry, { realm, service, scopes });
    if (retry) this.#tokens.invalidate(key);
    const token = await this.#tokens.obtain(key, () => {
      this.#options.logger?.({ type: 'auth', registry: spec.registry, scheme: 'bearer', scopes, credential: credential?.kind ?? 'anonymous' });
      return this.#fetchToken(spec, { realm, service, scopes, credential });
    });
    return `Bearer ${token}`;
  }

  async #fetchToken(spec: RegistryRequest, request: TokenFetch): Promise<{ token: string; expiresInSeconds: number }> {
    let realmUrl: URL;
    try {
      realmUrl = new URL(request.realm);
    } catch {
      throw new RegistryAuthError(`authenticating to ${spec.registry}: token realm is not a URL`, errorInfo(spec));
    }
    const { url, init } = tokenRequestInit(request, this.#options.userAgent);
    const what = `authenticating to ${spec.registry} for ${request.scopes.join(' ') || 'registry access'} at ${realmUrl.origin}${realmUrl.pathname}`;
    const response = await this.#options.request({
      what,
      registry: spec.registry,
      ...(spec.repository === undefined ? {} : { repository: spec.repository }),
      method: init.method ?? 'GET',
      url,
      headers: init.headers as Record<string, string>,
      ...(init.body === undefined ? {} : { body: () => init.body as string }),
      expect: [200],
      noAuth: true,
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(await readAll(response.body, 1 << 20)));
    } catch {
      parsed = undefined;
    }
    const token = readTokenResponse(parsed);
    if (!token) throw new RegistryAuthError(`${what}: the token service's answer has no token`, errorInfo(spec));
    this.#options.redactor.add(token.token);
    return token;
  }
}
