/**
 * The registry client against the real loopback registries of the test
 * environment (plain HTTP, and TLS + htpasswd), plus loopback token and fault
 * servers in front of them. No mocked fetch anywhere.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sha256 } from '../digest.ts';
import { MediaType } from '../media-types.ts';
import { canonicalJson, type Descriptor, type ImageIndex, type ImageManifest } from '../model.ts';
import { parseReference, type ImageReference } from '../reference.ts';
import { RegistryClient, type RegistryClientOptions, type RegistryEvent } from './client.ts';
import { staticKeychain } from './credentials.ts';
import { DigestMismatchError, MalformedContentError, NotFoundError, RegistryAuthError, RegistryError } from './errors.ts';
import { layoutBlobSource, memoryBlobSink, memoryBlobSource, pullImage, pushImage, pushLayoutImage, resolveDigest, type PushEvent } from './image.ts';
import { buildTestImage, makeSourceTree, type TestImage } from './test-images.ts';
import { startFaultProxy, startTokenServer, type LoopbackServer, type ProxyRequestInfo } from './test-servers.ts';

const run = promisify(execFile);

/** The part of the test environment (tools/testenv) these tests use. */
interface Env {
  registry: { host: string; url: string };
  secureRegistry: { host: string; url: string; caFile: string; certsDir: string; username: string; password: string };
  fixtures?: { run?: { registryRef: string; manifestDigest: string } };
}
const env = (inject as unknown as (key: string) => Env)('testenv');

let work: string;
let image: TestImage;
const clients: RegistryClient[] = [];
const servers: LoopbackServer[] = [];

function client(options: RegistryClientOptions = {}): RegistryClient {
  // Never pick up the developer's own credentials or insecure list.
  const c = new RegistryClient({ env: { HOME: work }, keychain: staticKeychain({}), insecureRegistries: [], ...options });
  clients.push(c);
  return c;
}

function secureClient(options: RegistryClientOptions = {}): RegistryClient {
  const { host, username, password, caFile } = env.secureRegistry;
  return client({ caFile, keychain: staticKeychain({ [host]: { kind: 'basic', username, password } }), ...options });
}

function repo(name: string): string {
  return `oci-client-test/${name}-${randomBytes(4).toString('hex')}`;
}

function ref(registry: string, repository: string, tag = 'v1'): ImageReference {
  return parseReference(`${registry}/${repository}:${tag}`);
}

/** Everything a user could see of a failure or a run: messages, causes, inspect output, log events. */
function everythingShown(error: unknown, events: RegistryEvent[] = []): string {
  const chain: string[] = [];
  let current: unknown = error;
  for (let i = 0; i < 10 && current; i++) {
    chain.push(String((current as Error).message), String((current as Error).stack));
    current = (current as { cause?: unknown }).cause;
  }
  return [...chain, inspect(error, { depth: 10, showHidden: true }), JSON.stringify(events)].join('\n');
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-registry-test-'));
  image = await buildTestImage(await makeSourceTree(work), work);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  await rm(work, { recursive: true, force: true });
});

async function skopeo(args: string[]): Promise<string> {
  try {
    return (await run('skopeo', args, { maxBuffer: 16 << 20 })).stdout;
  } catch (error) {
    throw new Error(`skopeo ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`);
  }
}

async function expectSameImageInLayout(layoutDir: string) {
  await expectLayoutHolds(layoutDir, image);
}

async function expectLayoutHolds(layoutDir: string, expected: TestImage) {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as ImageIndex;
  expect(index.manifests.map((m) => m.digest)).toEqual([expected.digest]);
  for (const [digest, bytes] of expected.blobs) {
    expect(sha256(await readFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7))))).toBe(sha256(bytes));
  }
}

describe('round trip', { timeout: 60_000 }, () => {
  it('pushes an image built from a directory to the plain registry, pulls it back, and skopeo reads it', async () => {
    const c = client();
    expect((await c.ping(env.registry.host)).url).toBe(`http://${env.registry.host}/v2/`);
    const target = ref(env.registry.host, repo('plain'));
    const pushed = await pushLayoutImage(c, target, image.layoutDir, { selector: { refName: 'latest' } });
    expect(pushed.descriptor.digest).toBe(image.digest);
    expect(pushed.reference.digest).toBe(image.digest);
    expect(pushed.blobs.map((b) => b.result)).toEqual(['uploaded', 'uploaded']);
    expect(await resolveDigest(c, target)).toBe(image.digest);

    const pulledDir = join(work, 'pulled-plain');
    const pulled = await pullImage(c, target, { layoutDir: pulledDir, platform: { os: 'linux', architecture: 'amd64' } });
    expect(pulled.descriptor.digest).toBe(image.digest);
    expect(Buffer.from(pulled.manifestBytes)).toEqual(Buffer.from(image.manifestBytes));
    await expectSameImageInLayout(pulledDir);

    const name = `docker://${target.registry}/${target.repository}:v1`;
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', name]);
    expect(sha256(raw)).toBe(image.digest);
    const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', name])) as { Digest: string; Layers: string[] };
    expect(inspected.Digest).toBe(image.digest);
    expect(inspected.Layers).toEqual(image.manifest.layers.map((l) => l.digest));
    const copied = join(work, 'skopeo-plain');
    await skopeo(['copy', '--src-tls-verify=false', name, `oci:${copied}:v1`]);
    await expectSameImageInLayout(copied);
  });

  it('does the same against the TLS + htpasswd registry with its CA, in chunks', async () => {
    const c = secureClient({ chunkSize: 64 * 1024 });
    expect(await c.ping(env.secureRegistry.host)).toMatchObject({ url: `https://${env.secureRegistry.host}/v2/`, authScheme: 'basic' });
    const target = ref(env.secureRegistry.host, repo('secure'));
    const pushed = await pushImage(c, target, { manifest: image.manifest, source: layoutBlobSource(image.layoutDir) });
    expect(pushed.descriptor.digest).toBe(image.digest);

    const pulledDir = join(work, 'pulled-secure');
    expect((await pullImage(c, target, { layoutDir: pulledDir })).descriptor.digest).toBe(image.digest);
    await expectSameImageInLayout(pulledDir);

    const { host, certsDir, username, password } = env.secureRegistry;
    const name = `docker://${host}/${target.repository}:v1`;
    const tlsArgs = ['--cert-dir', join(certsDir, host), '--creds', `${username}:${password}`];
    const inspected = JSON.parse(await skopeo(['inspect', ...tlsArgs, name])) as { Digest: string };
    expect(inspected.Digest).toBe(image.digest);
    const copied = join(work, 'skopeo-secure');
    await skopeo(['copy', '--src-cert-dir', join(certsDir, host), '--src-creds', `${username}:${password}`, name, `oci:${copied}:v1`]);
    await expectSameImageInLayout(copied);
  });

  it('trusts the CA through a certs.d directory too', async () => {
    const { host, certsDir, username, password } = env.secureRegistry;
    const c = client({ certsDir, keychain: staticKeychain({ [host]: { kind: 'basic', username, password } }) });
    expect((await c.ping(host)).status).toBe(200);
  });

  it('refuses a registry whose certificate it cannot verify, saying how to fix it', async () => {
    const c = client();
    await expect(c.ping(env.secureRegistry.host)).rejects.toThrow(/TLS certificate not trusted .*CNB_INSECURE_REGISTRIES/);
    // Listed as insecure, verification is off.
    const insecure = client({
      insecureRegistries: [env.secureRegistry.host],
      keychain: staticKeychain({ [env.secureRegistry.host]: { kind: 'basic', username: env.secureRegistry.username, password: env.secureRegistry.password } }),
    });
    expect((await insecure.ping(env.secureRegistry.host)).status).toBe(200);
  });

  it('reads CNB_INSECURE_REGISTRIES from the environment', () => {
    const c = new RegistryClient({ env: { CNB_INSECURE_REGISTRIES: 'a.example:5000, b.example' }, keychain: staticKeychain({}) });
    expect([c.isInsecure('a.example:5000'), c.isInsecure('b.example:443'), c.isInsecure('c.example')]).toEqual([true, true, false]);
  });

  it('pulls the fixture image that other tools pushed', async () => {
    const fixture = env.fixtures?.run;
    expect(fixture, 'the test environment provides fixtures.run').toBeDefined();
    const c = client();
    const fixtureRef = parseReference(fixture!.registryRef);
    expect(await resolveDigest(c, fixtureRef)).toBe(fixture!.manifestDigest);
    const sink = memoryBlobSink();
    const pulled = await pullImage(c, fixtureRef, { sink });
    expect(pulled.descriptor.digest).toBe(fixture!.manifestDigest);
    expect(sink.blobs.size).toBe(pulled.manifest.layers.length + 2);
  });

  it('skips blobs the repository has, mounts from another repository, and verifies what it pulls', async () => {
    const c = client({ chunkSize: 50_000 });
    const first = ref(env.registry.host, repo('mount-src'));
    await pushImage(c, first, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    const again = await pushImage(c, first, { manifest: image.manifest, source: memoryBlobSource(image.blobs), tags: ['v2'] });
    expect(again.blobs.map((b) => b.result)).toEqual(['exists', 'exists']);
    expect(again.tags).toEqual(['v1', 'v2']);
    expect(await c.listTags(first)).toEqual(expect.arrayContaining(['v1', 'v2']));

    const second = ref(env.registry.host, repo('mount-dst'));
    const mounted = await pushImage(c, second, { manifest: image.manifest, source: memoryBlobSource(new Map()), mountFrom: [first.repository] });
    expect(mounted.blobs.map((b) => b.result)).toEqual(['mounted', 'mounted']);
    expect(await resolveDigest(c, second)).toBe(image.digest);

    const layer = image.manifest.layers[0]!;
    const bytes = await c.getBlobBytes(second, layer);
    expect(sha256(bytes)).toBe(layer.digest);
    // A digest the content does not have: the stream fails at its end.
    const wrongSize = { digest: layer.digest, size: layer.size - 1 };
    await expect(c.getBlobBytes(second, wrongSize)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await c.blobExists(second, sha256('nothing'))).toBeUndefined();
    expect(await c.headManifest(ref(env.registry.host, second.repository, 'missing'))).toBeUndefined();
  });

  it('pushes a sparse layout when the registry can mount what it lacks, and pulls into a shared layout', async () => {
    const c = client();
    const base = ref(env.registry.host, repo('sparse-base'));
    await pushLayoutImage(c, base, image.layoutDir);
    // The same image without its layer blob, as the extender's run-image output is.
    const sparseDir = join(work, 'sparse');
    await run('cp', ['-a', image.layoutDir, sparseDir]);
    await rm(join(sparseDir, 'blobs', 'sha256', image.manifest.layers[0]!.digest.slice(7)));
    const elsewhere = ref(env.registry.host, repo('sparse-fail'));
    await expect(pushLayoutImage(c, elsewhere, sparseDir)).rejects.toThrow(/not in the layout \(sparse layout\?\)/);
    expect(await c.headManifest(elsewhere)).toBeUndefined();
    const mounted = await pushLayoutImage(c, ref(env.registry.host, repo('sparse-ok')), sparseDir, { mountFrom: [base.repository] });
    expect(mounted.descriptor.digest).toBe(image.digest);
    expect(mounted.blobs.map((b) => b.result)).toEqual(['mounted', 'mounted']);

    // Two pulls into one layout keep both entries.
    const shared = join(work, 'shared-layout');
    await pullImage(c, base, { layoutDir: shared, refName: 'first' });
    await pullImage(c, base, { layoutDir: shared, refName: 'second' });
    const index = JSON.parse(await readFile(join(shared, 'index.json'), 'utf8')) as ImageIndex;
    expect(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest])).toEqual([
      ['first', image.digest],
      ['second', image.digest],
    ]);
  });

  it('resolves an index to the platform manifest', async () => {
    const c = client();
    const repository = repo('index');
    const arm = await buildTestImage(await makeSourceTree(work, 1000), work, { os: 'linux', architecture: 'arm64', variant: 'v8' });
    const amd = await buildTestImage(await makeSourceTree(work, 1000), work, { os: 'linux', architecture: 'amd64' });
    for (const img of [arm, amd]) {
      await pushImage(c, { registry: env.registry.host, repository, digest: img.digest }, { manifest: img.manifest, source: memoryBlobSource(img.blobs) });
    }
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm.descriptor, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const indexBytes = new TextEncoder().encode(canonicalJson(index));
    const target = ref(env.registry.host, repository, 'multi');
    await c.putManifest(target, 'multi', indexBytes, MediaType.ociIndex);
    expect(await resolveDigest(c, target)).toBe(sha256(indexBytes));
    const resolved = await c.resolveImage(target, { os: 'linux', architecture: 'arm64' });
    expect(resolved.descriptor.digest).toBe(arm.digest);
    expect(resolved.index?.descriptor.digest).toBe(sha256(indexBytes));
    expect(await resolveDigest(c, target, { platform: { os: 'linux', architecture: 'amd64' } })).toBe(amd.digest);
    expect((await c.resolveImage(target, { os: 'linux', architecture: 'arm64', variant: 'v8' })).descriptor.digest).toBe(arm.digest);
    await expect(c.resolveImage(target, { os: 'linux', architecture: 's390x' })).rejects.toThrow(
      /no manifest for platform linux\/s390x \(index has: linux\/amd64, linux\/arm64\/v8\)/,
    );
    await expect(c.resolveImage(target, { os: 'linux', architecture: 's390x' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('authentication', { timeout: 60_000 }, () => {
  it('reports a 401 without credentials clearly', async () => {
    const c = client({ caFile: env.secureRegistry.caFile });
    const target = ref(env.secureRegistry.host, repo('noauth'));
    const error = await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) }).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryAuthError);
    expect(error.message).toContain(`${env.secureRegistry.host}/${target.repository}`);
    expect(error.message).toMatch(/HTTP 401/);
    expect(error.message).toMatch(/no credentials for 127\.0\.0\.1:\d+ were found/);
    expect(error).toMatchObject({ status: 401, registry: env.secureRegistry.host, repository: target.repository });
  });

  it('reports rejected credentials without showing them', async () => {
    const password = `wrong-${randomBytes(8).toString('hex')}`;
    const events: RegistryEvent[] = [];
    const c = client({
      caFile: env.secureRegistry.caFile,
      keychain: staticKeychain({ [env.secureRegistry.host]: { kind: 'basic', username: 'someone', password } }),
      logger: (e) => events.push(e),
    });
    const error = await c.getManifest(ref(env.secureRegistry.host, repo('badauth'))).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryAuthError);
    expect(error.message).toMatch(/HTTP 401.*credentials for 127\.0\.0\.1:\d+ were rejected/);
    const shown = everythingShown(error, events);
    expect(shown).not.toContain(password);
    expect(shown).not.toContain(Buffer.from(`someone:${password}`).toString('base64'));
  });

  async function pushAndPullWith(options: RegistryClientOptions, name: string) {
    const c = client({ caFile: env.secureRegistry.caFile, ...options });
    const target = ref(env.secureRegistry.host, repo(name));
    await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    expect(await resolveDigest(c, target)).toBe(image.digest);
  }

  it('uses CNB_REGISTRY_AUTH', async () => {
    const { host, username, password } = env.secureRegistry;
    const header = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    await pushAndPullWith({ keychain: undefined, env: { HOME: work, CNB_REGISTRY_AUTH: JSON.stringify({ [host]: header }) } }, 'env-auth');
  });

  it('uses auths of DOCKER_CONFIG/config.json', async () => {
    const { host, username, password } = env.secureRegistry;
    const configDir = join(work, 'docker-config-auths');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } }));
    await pushAndPullWith({ keychain: undefined, env: { HOME: work, DOCKER_CONFIG: configDir } }, 'config-auth');
  });

  it('uses ~/.docker/config.json when DOCKER_CONFIG is unset', async () => {
    const { host, username, password } = env.secureRegistry;
    const home = join(work, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [`https://${host}`]: { username, password } } }));
    await pushAndPullWith({ keychain: undefined, env: { HOME: home } }, 'home-auth');
  });

  it('runs a credential helper from PATH (credHelpers and credsStore)', async () => {
    const { host, username, password } = env.secureRegistry;
    const bin = join(work, 'helper-bin');
    await mkdir(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-cnbtest');
    await writeFile(
      helper,
      `#!/bin/sh\nread -r server\necho "$server" >> "${bin}/asked"\nif [ "$server" = "${host}" ]; then printf '{"Username":"%s","Secret":"%s"}' "${username}" "${password}"; else echo "credentials not found in native keychain"; exit 1; fi\n`,
    );
    await chmod(helper, 0o755);
    const PATH = `${bin}:${process.env.PATH}`;
    for (const [name, config] of [
      ['helpers', { credHelpers: { [host]: 'cnbtest' } }],
      ['store', { credsStore: 'cnbtest' }],
    ] as const) {
      const configDir = join(work, `docker-config-${name}`);
      await mkdir(configDir, { recursive: true });
      await writeFile(join(configDir, 'config.json'), JSON.stringify(config));
      await pushAndPullWith({ keychain: undefined, env: { HOME: work, DOCKER_CONFIG: configDir, PATH } }, `helper-${name}`);
    }
    expect((await readFile(join(bin, 'asked'), 'utf8')).trim().split('\n')).toEqual([host, host]);
  });

  it('gets Bearer tokens from the challenge realm, per scope, cached', async () => {
    const username = 'token-user';
    const password = `token-pass-${randomBytes(6).toString('hex')}`;
    const tokens = await startTokenServer({ upstream: env.registry.host, username, password });
    servers.push(tokens);
    const events: RegistryEvent[] = [];
    const c = client({ keychain: staticKeychain({ [tokens.host]: { kind: 'basic', username, password } }), logger: (e) => events.push(e) });
    expect(await c.ping(tokens.host)).toMatchObject({ authScheme: 'bearer' });
    const source = ref(tokens.host, repo('bearer-a'));
    await pushImage(c, source, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    // One token per scope: /v2/ (none), the existence checks (pull), the uploads and the manifest (pull,push).
    expect(tokens.tokenRequests.map((r) => r.scopes.join(' '))).toEqual([
      '',
      `repository:${source.repository}:pull`,
      `repository:${source.repository}:pull,push`,
    ]);
    // Reading the repository again reuses the cached pull token.
    expect(await resolveDigest(c, source)).toBe(image.digest);
    await pullImage(c, source, { sink: memoryBlobSink() });
    expect(tokens.tokenRequests.length).toBe(3);
    expect(tokens.rejected).toBe(0);
    expect(tokens.tokenRequests.every((r) => r.authorized && r.account === username)).toBe(true);

    // A mount asks for push on the target and pull on the source repository in one token.
    const target = ref(tokens.host, repo('bearer-b'));
    const mounted = await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(new Map()), mountFrom: [source.repository] });
    expect(mounted.blobs.map((b) => b.result)).toEqual(['mounted', 'mounted']);
    expect(tokens.tokenRequests.map((r) => r.scopes.join(' '))).toContain(
      `repository:${source.repository}:pull repository:${target.repository}:pull,push`,
    );
    expect(everythingShown(undefined, events)).not.toContain(password);

    // Wrong password: the token service's 401 is reported, naming the registry.
    const wrong = client({ keychain: staticKeychain({ [tokens.host]: { kind: 'basic', username, password: 'not-the-password' } }) });
    const error = await resolveDigest(wrong, source).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryAuthError);
    expect(error.message).toMatch(new RegExp(`authenticating to ${tokens.host} for repository:${source.repository}:pull at ${tokens.url}/token: HTTP 401`));
    expect(everythingShown(error)).not.toContain('not-the-password');
  });
});

describe('identity tokens', { timeout: 60_000 }, () => {
  it('exchanges an X-Identity token from CNB_REGISTRY_AUTH at the token service (OAuth2 refresh_token)', async () => {
    const refreshToken = `refresh-${randomBytes(8).toString('hex')}`;
    const tokens = await startTokenServer({ upstream: env.registry.host, username: 'nobody', password: randomBytes(8).toString('hex'), refreshToken });
    servers.push(tokens);
    const events: RegistryEvent[] = [];
    const c = client({ keychain: undefined, env: { HOME: work, CNB_REGISTRY_AUTH: JSON.stringify({ [tokens.host]: `X-Identity ${refreshToken}` }) }, logger: (e) => events.push(e) });
    const target = ref(tokens.host, repo('identity'));
    await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    expect(await resolveDigest(c, target)).toBe(image.digest);
    expect(tokens.tokenRequests.length).toBeGreaterThan(0);
    expect(tokens.tokenRequests.every((r) => r.authorized)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(refreshToken);
  });
});

describe('faults', { timeout: 60_000 }, () => {
  const fast = { attempts: 4, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 1500 };

  it('retries 503s (honouring Retry-After) and connection resets, and the push succeeds', async () => {
    // Request 1 is the client's endpoint probe (GET /v2/), which takes any answer.
    const proxy = await startFaultProxy(env.registry.host, (r) => {
      if (r.count === 2 || r.count === 3) return { status: 503, headers: { 'retry-after': '1' } };
      if (r.count === 4) return 'reset';
      return 'pass';
    });
    servers.push(proxy);
    const events: RegistryEvent[] = [];
    const c = client({ retry: fast, logger: (e) => events.push(e) });
    const target = ref(proxy.host, repo('flaky'));
    const pushed = await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    expect(pushed.descriptor.digest).toBe(image.digest);
    const retries = events.filter((e): e is Extract<RegistryEvent, { type: 'retry' }> => e.type === 'retry');
    expect(retries.filter((e) => e.reason === 'HTTP 503').map((e) => e.delayMs)).toEqual([1000, 1000]);
    expect(retries.length).toBe(3);
    // It really is in the registry behind the proxy.
    expect(await resolveDigest(client(), ref(env.registry.host, target.repository))).toBe(image.digest);
  });

  it('gives up on a registry that always fails, naming registry, repository and status, claiming nothing', async () => {
    const proxy = await startFaultProxy(env.registry.host, () => ({ status: 503 }));
    servers.push(proxy);
    const c = client({ retry: fast });
    const target = ref(proxy.host, repo('down'));
    const progress: PushEvent[] = [];
    const error = await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs), onProgress: (e) => progress.push(e) }).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toContain(`${proxy.host}/${target.repository}`);
    expect(error.message).toMatch(/: HTTP 503 Service Unavailable.* after 4 attempts$/);
    expect(error).toMatchObject({ status: 503, registry: proxy.host, repository: target.repository, retryable: true });
    expect(progress).toEqual([]);
    expect(await client().headManifest(ref(env.registry.host, target.repository))).toBeUndefined();
  });

  it('does not report the manifest or create the tag when only the manifest upload fails', async () => {
    const proxy = await startFaultProxy(env.registry.host, (r) => (r.method === 'PUT' && r.url.includes('/manifests/') ? { status: 500 } : 'pass'));
    servers.push(proxy);
    const c = client({ retry: fast });
    const target = ref(proxy.host, repo('nomanifest'));
    const progress: PushEvent[] = [];
    const error = await pushImage(c, target, { manifest: image.manifest, source: memoryBlobSource(image.blobs), onProgress: (e) => progress.push(e) }).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toMatch(new RegExp(`pushing manifest ${image.digest} as v1 to ${proxy.host}/${target.repository}: HTTP 500`));
    expect(progress.map((e) => e.type)).toEqual(['blob', 'blob']);
    expect(await client().headManifest(ref(env.registry.host, target.repository))).toBeUndefined();
    expect(await client().listTags(ref(env.registry.host, target.repository))).toEqual([]);
  });

  it('times out a registry that stops answering', async () => {
    const target = ref(env.registry.host, repo('slow'));
    await pushImage(client(), target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    const proxy = await startFaultProxy(env.registry.host, (r) => (r.url.includes('/blobs/sha256:') && r.method === 'GET' ? 'hang' : 'pass'));
    servers.push(proxy);
    const c = client({ retry: { ...fast, attempts: 2 }, timeoutMs: 300 });
    const error = await c.getBlobBytes(ref(proxy.host, target.repository), image.manifest.layers[0]!).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toMatch(/pulling blob sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+\/oci-client-test\/slow-[0-9a-f]+: no progress for 300 ms.*\(after 2 attempts\)/);
  });

  it('fails a download whose bytes do not match the digest', async () => {
    const target = ref(env.registry.host, repo('corrupt'));
    await pushImage(client(), target, { manifest: image.manifest, source: memoryBlobSource(image.blobs) });
    const proxy = await startFaultProxy(env.registry.host, (r) =>
      r.url.includes('/blobs/sha256:') && r.method === 'GET' ? { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: 'not the layer' } : 'pass',
    );
    servers.push(proxy);
    const c = client();
    const error = await pullImage(c, ref(proxy.host, target.repository), { sink: memoryBlobSink() }).catch((e) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error.message).toMatch(/pulling blob sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+\/oci-client-test\/corrupt-[0-9a-f]+: received 13 bytes with digest sha256:/);
  });
});

describe('credentials stay secret', { timeout: 60_000 }, () => {
  it('never shows passwords, basic headers or tokens in errors, causes or log events', async () => {
    const { host, caFile, username, password } = env.secureRegistry;
    const basic = Buffer.from(`${username}:${password}`).toString('base64');
    const shown: string[] = [];
    const events: RegistryEvent[] = [];

    // Good credentials, then failures after authentication succeeded (missing manifest, bad digest upload).
    const c = client({ caFile, keychain: staticKeychain({ [host]: { kind: 'basic', username, password } }), logger: (e) => events.push(e) });
    const target = ref(host, repo('secret'));
    shown.push(everythingShown(await c.getManifest(target).catch((e) => e)));
    shown.push(everythingShown(await c.pushBlob(target, { digest: sha256('other'), size: 4 }, new TextEncoder().encode('data')).catch((e) => e)));
    // A registry that resets connections after the credentials were sent.
    const proxy = await startFaultProxy(env.registry.host, () => 'reset');
    servers.push(proxy);
    const resets = client({ retry: { attempts: 2, baseDelayMs: 10 }, keychain: staticKeychain({ [proxy.host]: { kind: 'basic', username, password } }), logger: (e) => events.push(e) });
    shown.push(everythingShown(await resets.getManifest(ref(proxy.host, 'x/y')).catch((e) => e)));
    // Bearer-token credentials from CNB_REGISTRY_AUTH that the registry rejects.
    const token = `tok-${randomBytes(12).toString('hex')}`;
    const bearer = client({ caFile, keychain: undefined, env: { HOME: work, CNB_REGISTRY_AUTH: JSON.stringify({ [host]: `Bearer ${token}` }) }, logger: (e) => events.push(e) });
    shown.push(everythingShown(await bearer.getManifest(target).catch((e) => e)));
    // A credential helper that fails.
    const failing = client({ caFile, keychain: undefined, env: { HOME: work, DOCKER_CONFIG: join(work, 'bad-helper'), PATH: '/nonexistent' } });
    await mkdir(join(work, 'bad-helper'), { recursive: true });
    await writeFile(join(work, 'bad-helper', 'config.json'), JSON.stringify({ credHelpers: { [host]: 'missing' } }));
    const helperError = await failing.getManifest(target).catch((e) => e);
    expect(helperError).toBeInstanceOf(RegistryAuthError);
    expect(helperError.message).toMatch(/getting credentials for 127\.0\.0\.1:\d+: credential helper docker-credential-missing/);

    const all = [...shown, JSON.stringify(events)].join('\n');
    expect(all).toMatch(/HTTP 404/);
    expect(all).toMatch(/HTTP 401/);
    for (const secret of [password, basic, token]) expect(all).not.toContain(secret);
    expect(c.redact(`Authorization: Basic ${basic}`)).toBe('Authorization: Basic ***');
  });
});

describe('interrupted transfers', { timeout: 120_000 }, () => {
  const fast = { attempts: 4, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 1500 };
  const MB20 = 20 * 1024 * 1024;
  let big: TestImage;
  let layer: ImageManifest['layers'][number];
  let source: ImageReference;

  beforeAll(async () => {
    // Random bytes do not compress: the layer blob is a little over 20 MB.
    big = await buildTestImage(await makeSourceTree(work, MB20), work);
    layer = big.manifest.layers[0]!;
    expect(layer.size).toBeGreaterThan(MB20);
    source = ref(env.registry.host, repo('big'));
    await pushImage(client(), source, { manifest: big.manifest, source: memoryBlobSource(big.blobs) });
  });

  const isLayerGet = (r: ProxyRequestInfo) => r.method === 'GET' && r.url.endsWith(`/blobs/${layer.digest}`);
  const retries = (events: RegistryEvent[]) => events.filter((e): e is Extract<RegistryEvent, { type: 'retry' }> => e.type === 'retry');

  /** The start of each GET's Range (0 without one) and the status it got. */
  function layerGets(proxy: { requests: ProxyRequestInfo[] }, events: RegistryEvent[]) {
    const starts = proxy.requests.filter(isLayerGet).map((g) => (g.headers.range ? Number(/^bytes=(\d+)-$/.exec(String(g.headers.range))?.[1]) : 0));
    const statuses = events.flatMap((e) => (e.type === 'response' && e.url.endsWith(`/blobs/${layer.digest}`) ? [e.status] : []));
    return { starts, statuses };
  }

  it('resumes a layer download reset halfway three times (Range requests), into a layout, with the right bytes', async () => {
    let resets = 0;
    const proxy = await startFaultProxy(env.registry.host, (r) => (isLayerGet(r) && resets++ < 3 ? { forward: { cutResponseAfter: 'half' } } : 'pass'));
    servers.push(proxy);
    const events: RegistryEvent[] = [];
    const c = client({ retry: fast, logger: (e) => events.push(e) });
    const parent = await mkdtemp(join(work, 'resume-'));
    const layoutDir = join(parent, 'layout');
    const pulled = await pullImage(c, ref(proxy.host, source.repository), { layoutDir });
    expect(pulled.descriptor.digest).toBe(big.digest);
    expect(sha256(await readFile(join(layoutDir, 'blobs', 'sha256', layer.digest.slice(7))))).toBe(layer.digest);
    await expectLayoutHolds(layoutDir, big);
    expect(await readdir(parent)).toEqual(['layout']);
    // A reset loses what was still in flight, so where each resume starts depends on
    // the kernel; it never goes back, and every ranged request got a 206.
    const { starts, statuses } = layerGets(proxy, events);
    expect(starts.length).toBe(4);
    expect(starts[0]).toBe(0);
    expect(starts.every((s, i) => i === 0 || (s >= starts[i - 1]! && s < layer.size))).toBe(true);
    expect(statuses).toEqual(starts.map((s, i) => (i > 0 && s > 0 ? 206 : 200)));
    expect(retries(events).map((e) => e.reason)).toEqual(starts.slice(1).map((s) => expect.stringMatching(new RegExp(`resuming at byte ${s}$`))));
  });

  it('resumes exactly where a body that ended early stopped', async () => {
    let cuts = 0;
    const proxy = await startFaultProxy(env.registry.host, (r) => (isLayerGet(r) && cuts++ < 3 ? { forward: { cutResponseAfter: 'half', cutWith: 'close' } } : 'pass'));
    servers.push(proxy);
    const events: RegistryEvent[] = [];
    const c = client({ retry: fast, logger: (e) => events.push(e) });
    const bytes = await c.getBlobBytes(ref(proxy.host, source.repository), layer);
    expect(sha256(bytes)).toBe(layer.digest);
    // Each response sends half of what it was asked for.
    const first = Math.floor(layer.size / 2);
    const second = first + Math.floor((layer.size - first) / 2);
    const third = second + Math.floor((layer.size - second) / 2);
    expect(layerGets(proxy, events)).toEqual({ starts: [0, first, second, third], statuses: [200, 206, 206, 206] });
  });

  it('starts over, skipping what it has, when the registry ignores Range', async () => {
    let count = 0;
    const proxy = await startFaultProxy(env.registry.host, (r) =>
      isLayerGet(r) ? { forward: { dropHeaders: ['range'], ...(count++ === 0 ? { cutResponseAfter: 'half' as const, cutWith: 'close' as const } : {}) } } : 'pass',
    );
    servers.push(proxy);
    const events: RegistryEvent[] = [];
    const c = client({ retry: fast, logger: (e) => events.push(e) });
    const bytes = await c.getBlobBytes(ref(proxy.host, source.repository), layer);
    expect(sha256(bytes)).toBe(layer.digest);
    expect(bytes.byteLength).toBe(layer.size);
    expect(layerGets(proxy, events)).toEqual({ starts: [0, Math.floor(layer.size / 2)], statuses: [200, 200] });
  });

  it('gives up on a registry that always resets, with a clear error, leaving nothing behind', async () => {
    const proxy = await startFaultProxy(env.registry.host, (r) => (isLayerGet(r) ? { forward: { cutResponseAfter: 'half' } } : 'pass'));
    servers.push(proxy);
    const c = client({ retry: fast });
    const parent = await mkdtemp(join(work, 'always-reset-'));
    const target = ref(proxy.host, source.repository);
    const error = await pullImage(c, target, { layoutDir: join(parent, 'layout') }).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toMatch(
      new RegExp(`^pulling blob ${layer.digest} from ${proxy.host}/${source.repository}: .*\\(after 4 attempts, \\d+ of ${layer.size} bytes received\\)$`),
    );
    expect(error).toMatchObject({ registry: proxy.host, repository: source.repository, retryable: true });
    expect(proxy.requests.filter(isLayerGet).length).toBe(4);
    expect(await readdir(parent)).toEqual([]);
  });

  it('stops waiting to resume when the signal is aborted', async () => {
    const proxy = await startFaultProxy(env.registry.host, (r) => (isLayerGet(r) ? { forward: { cutResponseAfter: 'half' } } : 'pass'));
    servers.push(proxy);
    const controller = new AbortController();
    // A backoff far longer than the test's timeout: only the abort can end it in time.
    const backoff = { attempts: 5, baseDelayMs: 600_000, maxDelayMs: 600_000 };
    const c = client({ retry: backoff, signal: controller.signal, logger: (e) => e.type === 'retry' && controller.abort() });
    const error = await c.getBlobBytes(ref(proxy.host, source.repository), layer).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toMatch(/cancelled/);
    expect(proxy.requests.filter(isLayerGet).length).toBe(1);
  });

  for (const [name, chunkSize] of [['one PUT', 0], ['PATCH chunks', 4 * 1024 * 1024]] as const) {
    it(`starts an upload over from a fresh body when the connection resets in the middle (${name})`, async () => {
      let resets = 0;
      const isUpload = (r: ProxyRequestInfo) => (r.method === 'PUT' || r.method === 'PATCH') && r.url.includes('/blobs/uploads/') && Number(r.headers['content-length']) > 1024 * 1024;
      const proxy = await startFaultProxy(env.registry.host, (r) => (isUpload(r) && resets++ < 2 ? { forward: { cutRequestAfter: 'half' } } : 'pass'));
      servers.push(proxy);
      const events: RegistryEvent[] = [];
      const c = client({ retry: fast, chunkSize, logger: (e) => events.push(e) });
      const target = ref(proxy.host, repo('push-reset'));
      let opened = 0;
      const pushed = await pushImage(c, target, {
        manifest: big.manifest,
        source: { open: (d) => (opened++, memoryBlobSource(big.blobs).open(d)) },
      });
      expect(pushed.descriptor.digest).toBe(big.digest);
      expect(resets).toBeGreaterThanOrEqual(2);
      expect(opened).toBe(4); // config once, the layer three times
      expect(retries(events).filter((e) => e.url.endsWith(`blob ${layer.digest}`)).length).toBe(2);
      const bytes = await client().getBlobBytes(ref(env.registry.host, target.repository), layer);
      expect(sha256(bytes)).toBe(layer.digest);
    });
  }

  it('pushes layers streamed from another registry whose downloads reset, without restarting the upload', async () => {
    let resets = 0;
    const from = await startFaultProxy(env.registry.host, (r) => (isLayerGet(r) && resets++ < 3 ? { forward: { cutResponseAfter: 'half' } } : 'pass'));
    const to = await startFaultProxy(env.registry.host, () => 'pass');
    servers.push(from, to);
    const c = client({ retry: fast });
    const target = ref(to.host, repo('push-from-registry'));
    const pushed = await pushImage(c, target, {
      manifest: big.manifest,
      source: { open: (d) => c.getBlob(ref(from.host, source.repository), d) },
    });
    expect(pushed.descriptor.digest).toBe(big.digest);
    expect(from.requests.filter(isLayerGet).length).toBe(4);
    // One upload of the layer: the source resumed on its own.
    expect(to.requests.filter((r) => r.method === 'PUT' && r.url.includes(layer.digest.slice(7))).length).toBe(1);
    expect(await resolveDigest(client(), ref(env.registry.host, target.repository))).toBe(big.digest);
  });

  it('does not retry an upload whose source fails', async () => {
    const c = client({ retry: fast });
    const target = ref(env.registry.host, repo('push-source-fails'));
    let opened = 0;
    const failing = () => {
      opened++;
      return new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(1024));
          controller.error(new Error('disk read failed'));
        },
      });
    };
    const error = await c.pushBlob(target, layer, failing).catch((e) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toMatch(/disk read failed/);
    expect(error.retryable).toBe(false);
    expect(opened).toBe(1);
  });
});

describe('malformed documents', { timeout: 60_000 }, () => {
  /** A proxy answering GETs of the manifest tagged `bad` with `document` (an object is sent as JSON). */
  async function serving(document: unknown, contentType: string = MediaType.ociManifest) {
    const proxy = await startFaultProxy(env.registry.host, (r) =>
      r.method === 'GET' && r.url.endsWith('/manifests/bad')
        ? { status: 200, headers: { 'content-type': contentType }, body: typeof document === 'string' ? document : JSON.stringify(document) }
        : 'pass',
    );
    servers.push(proxy);
    return proxy;
  }

  const descriptor = (d: Partial<Descriptor>) => ({ mediaType: MediaType.ociLayerGzip, digest: sha256('x'), size: 1, ...d });

  it('names the reference and what is wrong with a manifest, never a TypeError', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ schemaVersion: 2, mediaType: MediaType.ociManifest, config: descriptor({ mediaType: MediaType.ociConfig }) }, MediaType.ociManifest, /: "layers" is missing$/],
      [{ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }, MediaType.ociManifest, /: "config" is missing$/],
      [{ schemaVersion: 2, config: descriptor({}), layers: {} }, MediaType.ociManifest, /: "layers" is not an array$/],
      [{ schemaVersion: 2, config: descriptor({}), layers: [descriptor({ digest: undefined as never })] }, MediaType.ociManifest, /: "layers\[0\]\.digest" is missing$/],
      [{ schemaVersion: 2, config: descriptor({}), layers: [descriptor({}), descriptor({ size: '12' as never })] }, MediaType.ociManifest, /: "layers\[1\]\.size" is not a non-negative integer$/],
      [{ schemaVersion: 2, config: descriptor({ digest: 'sha256:nothex' as never }), layers: [] }, MediaType.ociManifest, /: "config\.digest" is not a valid digest: /],
      [{ schemaVersion: 2, mediaType: 'application/vnd.oci.image.config.v1+json', config: descriptor({}), layers: [] }, MediaType.ociManifest, /: "mediaType" is "application\/vnd\.oci\.image\.config\.v1\+json", not a manifest or index media type$/],
      [{ schemaVersion: 2, mediaType: MediaType.ociIndex }, MediaType.ociIndex, /: "manifests" is missing$/],
      [{ schemaVersion: 1, name: 'x', fsLayers: [] }, 'application/vnd.docker.distribution.manifest.v1+prettyjws', /: "schemaVersion" is 1, expected 2 \(Docker schema 1 manifests are not supported\)$/],
      [[1, 2], MediaType.ociManifest, /: not a JSON object$/],
      ['{"schemaVersion": 2,', MediaType.ociManifest, /: not JSON \(/],
    ];
    for (const [document, contentType, problem] of cases) {
      const proxy = await serving(document, contentType);
      const target = ref(proxy.host, 'oci-client-test/malformed', 'bad');
      const c = client();
      for (const attempt of [() => c.getManifest(target), () => c.resolveImage(target), () => pullImage(c, target, { sink: memoryBlobSink() })]) {
        const error = await attempt().catch((e) => e);
        expect(error, JSON.stringify(document)).toBeInstanceOf(MalformedContentError);
        expect(error.message).toMatch(new RegExp(`^reading manifest of ${proxy.host.replace(/\./g, '\\.')}/oci-client-test/malformed:bad: `));
        expect(error.message).toMatch(problem);
        expect(error).toMatchObject({ registry: proxy.host, repository: 'oci-client-test/malformed', retryable: false });
      }
    }
  });

  it('checks an index entry before following it', async () => {
    const proxy = await serving({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, size: 10 }] }, MediaType.ociIndex);
    const error = await client().resolveImage(ref(proxy.host, 'oci-client-test/malformed', 'bad')).catch((e) => e);
    expect(error).toBeInstanceOf(MalformedContentError);
    expect(error.message).toMatch(/: "manifests\[0\]\.digest" is missing$/);
  });

  it('names the image and what is wrong with its config', async () => {
    const c = client();
    const target = ref(env.registry.host, repo('bad-config'));
    for (const [config, problem] of [
      [{ architecture: 'amd64', os: 'linux' }, /: "rootfs" is missing$/],
      [{ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: 'sha256:x' } }, /: "rootfs\.diff_ids" is not an array$/],
      [{ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [42] } }, /: "rootfs\.diff_ids\[0\]" is not a digest string$/],
      ['not json', /: not JSON \(/],
    ] as const) {
      const configBytes = new TextEncoder().encode(typeof config === 'string' ? config : JSON.stringify(config));
      const manifest = { ...image.manifest, config: { mediaType: MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.byteLength } };
      await pushImage(c, target, { manifest, source: memoryBlobSource([configBytes, ...image.blobs.values()]) });
      const error = await pullImage(c, target, { sink: memoryBlobSink() }).catch((e) => e);
      expect(error).toBeInstanceOf(MalformedContentError);
      expect(error.message).toMatch(new RegExp(`^reading config ${sha256(configBytes)} of ${env.registry.host.replace(/\./g, '\\.')}/${target.repository}:v1: `));
      expect(error.message).toMatch(problem);
    }
  });
});
