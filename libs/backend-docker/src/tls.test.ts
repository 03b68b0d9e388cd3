/**
 * TLS to a `tcp://` daemon from the Docker CLI's variables (DOCKER_TLS_VERIFY,
 * DOCKER_TLS, DOCKER_CERT_PATH), against loopback TLS forwarders into the test
 * dockerd's socket: one requiring a client certificate from the test CA (as
 * `dockerd --tlsverify`), one with a server certificate from another CA that
 * serves any client (as `dockerd --tls`).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeTestPki, startSocketForwarder, type SocketForwarder, type TestPki } from '@cnb-extender/testenv';
import { ExtenderError, MemorySink, extend } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerPaths, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { dockerDefinition } from './definition.ts';
import { connect, dockerTlsFromEnv, isDockerReachable, type DockerBackend } from './index.ts';

const env = inject('testenv');
let dir: string;
let pki: TestPki;
/** Requires a client certificate signed by the test CA. */
let mutual: SocketForwarder;
/** Server certificate from another CA; no client certificate asked for. */
let otherCa: SocketForwarder;
/** DOCKER_CERT_PATH directories. */
const certs = { client: '', caOnly: '', stranger: '', certNoKey: '', empty: '', home: '' };
const workspaces: Workspace[] = [];

async function certDir(name: string, files: Record<string, string>): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  for (const [to, from] of Object.entries(files)) await copyFile(from, join(path, to));
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docker-tls-'));
  await mkdir(join(dir, 'pki'));
  pki = await makeTestPki(join(dir, 'pki'));
  const client = { 'ca.pem': pki.caFile, 'cert.pem': pki.clientCertFile, 'key.pem': pki.clientKeyFile };
  certs.client = await certDir('client', client);
  certs.caOnly = await certDir('ca-only', { 'ca.pem': pki.caFile });
  certs.stranger = await certDir('stranger', { 'ca.pem': pki.caFile, 'cert.pem': pki.strangerCertFile, 'key.pem': pki.strangerKeyFile });
  certs.certNoKey = await certDir('cert-no-key', { 'ca.pem': pki.caFile, 'cert.pem': pki.clientCertFile });
  certs.empty = await certDir('empty', {});
  certs.home = join(dir, 'home');
  await certDir('home/.docker', client);
  mutual = await startSocketForwarder(env.docker.socketPath, { tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile } });
  otherCa = await startSocketForwarder(env.docker.socketPath, { tls: { certFile: pki.otherServerCertFile, keyFile: pki.otherServerKeyFile } });
});

afterAll(async () => {
  await mutual?.close();
  await otherCa?.close();
  for (const ws of workspaces) await ws.remove();
  await rm(dir, { recursive: true, force: true });
});

const ONE = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\nUSER 1000:1000\n';
const TWO = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo two > /two\nUSER 1000:1000\n';

/** The backend as the catalog creates it, from `vars` only. */
async function fromEnv(vars: Record<string, string>): Promise<DockerBackend> {
  return (await dockerDefinition.create({ env: vars })) as DockerBackend;
}

/** extend() of the run fixture with `dockerfiles`, the backend made by its definition from `vars` only. */
async function extendWith(vars: Record<string, string>, dockerfiles = [ONE], runImage = env.fixtures.run.registryRef) {
  const run = env.fixtures.run;
  const ws = await createWorkspace({
    runImage,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions: dockerfiles.map((content, i) => ({ id: `test/tls-${i}`, run: content })),
  });
  workspaces.push(ws);
  const backend = await fromEnv(vars);
  const events = new MemorySink();
  return { backend, events, result: extend({ kind: 'run', inputs: ws.inputs, backend, events }) };
}

/** Paths in layer `index` of an extend() result, read from the run output layout (the work dir is gone). */
async function pathsIn(extended: { outputDir?: string; image: { layers: { descriptor: { digest: string } }[] } }, index: number): Promise<string[]> {
  const digest = extended.image.layers.at(index)!.descriptor.digest;
  return readLayerPaths({ kind: 'file', path: join(extended.outputDir!, 'blobs', 'sha256', digest.slice('sha256:'.length)) });
}

async function failure(promise: Promise<unknown>): Promise<ExtenderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExtenderError);
  expect((err as ExtenderError).code).toBe('APPLY_FAILED');
  return err as ExtenderError;
}

/** No PEM body of any key the test made appears in `text`. */
async function expectNoKeyMaterial(text: string): Promise<void> {
  expect(text).not.toMatch(/PRIVATE KEY|BEGIN/);
  for (const key of [pki.clientKeyFile, pki.strangerKeyFile]) {
    const body = (await readFile(key, 'utf8')).split('\n')[1]!;
    expect(text).not.toContain(body);
  }
}

describe('docker backend over TLS', () => {
  it('applies two extensions through extend() with mutual TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH)', async () => {
    const vars = { DOCKER_HOST: mutual.address, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs.client };
    const before = { connections: mutual.connections, refused: mutual.refused, bytesIn: mutual.bytesIn };
    // a run image reference the daemon does not know: the base is sent over TLS
    const runImage = `127.0.0.1:1/fixtures/run@${env.fixtures.run.manifestDigest}`;
    const { backend, events, result } = await extendWith(vars, [ONE, TWO], runImage);
    expect(backend.tls).toEqual({ verify: true, certPath: certs.client, certPathFrom: 'DOCKER_CERT_PATH' });
    const extended = await result;
    expect(extended.image.layers).toHaveLength(4);
    expect(await pathsIn(extended, 2)).toContain('one');
    expect(await pathsIn(extended, 3)).toContain('two');
    const loads = events.ofType('debug').map((e) => e.message).filter((m) => m.startsWith('docker: loading base'));
    expect(loads).toEqual([expect.stringMatching(/: sending all 2 layers$/), expect.stringMatching(/: 3 of 3 layers already in the daemon, sending 0$/)]);
    expect(mutual.bytesIn - before.bytesIn).toBeGreaterThan(extended.image.layers[0]!.descriptor.size);
    expect(mutual.connections).toBeGreaterThan(before.connections);
    expect(mutual.refused).toBe(before.refused);
    // -backend auto's probe sees the daemon with the same variables, and not without them
    expect(await isDockerReachable({ env: vars })).toBe(true);
    expect(await isDockerReachable({ env: { DOCKER_HOST: mutual.address } })).toBe(false);
  });

  it('refuses a client without a certificate, or with one from another CA, saying the TLS handshake failed', async () => {
    for (const [certPath, expected] of [
      [certs.caOnly, /: the daemon (requires a client certificate and there is none: no|closed the connection; no client certificate was offered \(no) DOCKER_CERT_PATH\/cert\.pem \(.*\/ca-only\/cert\.pem\) with key\.pem beside it\)?$/],
      [certs.stranger, /: the daemon (does not accept|closed the connection; it may not accept) the client certificate DOCKER_CERT_PATH\/cert\.pem \(.*\/stranger\/cert\.pem\)$/],
    ] as const) {
      const refused = mutual.refused;
      const { result } = await extendWith({ DOCKER_HOST: mutual.address, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certPath });
      const err = await failure(result);
      expect(err.message).toMatch(/^failed to extend run image: applying Dockerfile for test\/tls-0: connecting to the Docker daemon at tcp:\/\/127\.0\.0\.1:\d+ with TLS: the TLS handshake failed \(.+\)/);
      expect(err.message).toMatch(expected);
      await expectNoKeyMaterial(err.message);
      expect(mutual.refused).toBeGreaterThan(refused);
    }
  });

  it("refuses a daemon certificate from another CA with DOCKER_TLS_VERIFY=1", async () => {
    const { result } = await extendWith({ DOCKER_HOST: otherCa.address, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs.client });
    const err = await failure(result);
    expect(err.message).toMatch(
      /connecting to the Docker daemon at tcp:\/\/127\.0\.0\.1:\d+ with TLS: the TLS handshake failed \(unable to verify the first certificate\): the daemon's certificate must be signed by DOCKER_CERT_PATH\/ca\.pem \(.*\/client\/ca\.pem\) and name the host \(DOCKER_TLS_VERIFY\)$/,
    );
    await expectNoKeyMaterial(err.message);
  });

  it('uses TLS without verifying the daemon with DOCKER_TLS=1 (no files needed)', async () => {
    const before = otherCa.connections;
    const vars = { DOCKER_HOST: otherCa.address, DOCKER_TLS: '1', DOCKER_CERT_PATH: certs.empty };
    const { backend, result } = await extendWith(vars);
    expect(backend.tls).toMatchObject({ verify: false });
    expect(await pathsIn(await result, -1)).toContain('one');
    expect(otherCa.connections).toBeGreaterThan(before);
    expect(await isDockerReachable({ env: vars })).toBe(true);
  });

  it('names the file and the variable when a certificate file is missing', async () => {
    const none = join(dir, 'none');
    const { result } = await extendWith({ DOCKER_HOST: mutual.address, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: none });
    expect((await failure(result)).message).toBe(
      `failed to extend run image: applying Dockerfile for test/tls-0: connecting to the Docker daemon at ${mutual.address} with TLS: reading DOCKER_CERT_PATH/ca.pem (${none}/ca.pem): no such file (DOCKER_TLS_VERIFY verifies the daemon against it)`,
    );
    expect(() => connect(mutual.address, { env: { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs.certNoKey } })).toThrow(
      `reading DOCKER_CERT_PATH/key.pem (${certs.certNoKey}/key.pem): no such file (a client certificate needs both cert.pem and key.pem)`,
    );
    // without DOCKER_CERT_PATH the files are in ~/.docker, as for the docker CLI
    expect(() => connect(mutual.address, { env: { DOCKER_TLS_VERIFY: '1', HOME: certs.empty } })).toThrow(
      `reading ~/.docker/ca.pem (${certs.empty}/.docker/ca.pem): no such file (DOCKER_TLS_VERIFY verifies the daemon against it; set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem)`,
    );
    expect(await isDockerReachable({ env: { DOCKER_HOST: mutual.address, DOCKER_TLS_VERIFY: '1', HOME: certs.home } })).toBe(true);
  });
});

describe('the Docker CLI TLS variables', () => {
  it('are read as the CLI reads them: any non-empty value is set, DOCKER_TLS_VERIFY wins, files from DOCKER_CERT_PATH, DOCKER_CONFIG or ~/.docker', () => {
    expect(dockerTlsFromEnv({})).toBeUndefined();
    expect(dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '', DOCKER_TLS: '' })).toBeUndefined();
    expect(dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '0', DOCKER_CERT_PATH: '/c' })).toEqual({ verify: true, certPath: '/c', certPathFrom: 'DOCKER_CERT_PATH' });
    expect(dockerTlsFromEnv({ DOCKER_TLS: '1', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' })).toMatchObject({ verify: true });
    expect(dockerTlsFromEnv({ DOCKER_TLS: '1', DOCKER_CONFIG: '/cfg' })).toEqual({ verify: false, certPath: '/cfg', certPathFrom: 'DOCKER_CONFIG (DOCKER_CERT_PATH is not set)' });
    expect(dockerTlsFromEnv({ DOCKER_TLS_VERIFY: '1', HOME: '/h' })).toEqual({ verify: true, certPath: '/h/.docker', certPathFrom: '~/.docker (DOCKER_CERT_PATH is not set)' });
  });

  it('do not apply to a unix socket, and the definition takes them from its env without connecting', async () => {
    expect((await fromEnv({ DOCKER_HOST: 'unix:///x.sock', DOCKER_TLS_VERIFY: '1' })).tls).toBeUndefined();
    expect((await fromEnv({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS: '1', DOCKER_CERT_PATH: '/nonexistent' })).tls).toEqual({
      verify: false,
      certPath: '/nonexistent',
      certPathFrom: 'DOCKER_CERT_PATH',
    });
  });
});
