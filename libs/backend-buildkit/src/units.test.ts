import { describe, expect, it } from 'vitest';
import { chooseExportMode } from './export-mode.ts';
import { instructionFromError, instructionFromHistory, instructionFromVertex } from './solve-status.ts';
import type { DaemonInfo } from './client.ts';
import { encodeSolveRequest } from '@cnb-extender/buildkit-session';
import { ProtoWriter, fields, mapEntry } from '@cnb-extender/buildkit-session';
import { defaultAddress, parseAddress } from '@cnb-extender/buildkit-session';
import { staticKeychain } from '@cnb-extender/oci';
import { layoutContext, namedContextKeys, registryOf, scopedKeychain, takesLayoutContexts } from './base-context.ts';

describe('protobuf codec', () => {
  it('round-trips varints (64-bit), strings, maps and nested messages', () => {
    const buf = new ProtoWriter().int(1, 2n ** 62n).string(2, 'héllo').map(3, { k: 'v' }).message(4, new ProtoWriter().int(1, 7)).finish();
    const got = [...fields(buf)];
    expect(got.map((f) => f.field)).toEqual([1, 2, 3, 4]);
    expect(got[0]?.value).toBe(2n ** 62n);
    expect(got[1]?.value.toString()).toBe('héllo');
    expect(mapEntry(got[2]!.value as Buffer)).toEqual(['k', Buffer.from('v')]);
  });

  it('writes the exporter to the old fields (3, 4) and the repeated field (13)', () => {
    const buf = encodeSolveRequest({
      ref: 'r',
      session: 's',
      frontend: 'dockerfile.v0',
      frontendAttrs: { 'build-arg:a': 'b' },
      exporters: [{ type: 'moby', attrs: { name: 'x' } }],
      exporterFields: 'both',
      cacheImports: [{ type: 'registry', attrs: { ref: 'c' } }],
      cacheExports: [],
      entitlements: [],
    });
    const numbers = [...fields(buf)].map((f) => f.field);
    expect(numbers).toEqual([1, 3, 4, 5, 6, 7, 8, 13]);
  });
});

describe('instructions as the core names them', () => {
  it('reads BuildKit history back as the Dockerfile line', () => {
    expect(instructionFromHistory('RUN /bin/sh -c echo hi # buildkit')).toBe('RUN echo hi');
    expect(instructionFromHistory('RUN |2 build_id=x user_id=1000 /bin/sh -c echo $build_id # buildkit')).toBe('RUN echo $build_id');
    expect(instructionFromHistory('COPY a.txt /opt/a.txt # buildkit')).toBe('COPY a.txt /opt/a.txt');
    expect(instructionFromVertex('[ 2/13] RUN exit 3')).toBe('RUN exit 3');
    expect(instructionFromError('executor failed running [/bin/sh -c exit 3]: exit code: 3')).toBe('RUN exit 3');
    expect(instructionFromError('process "/bin/sh -c exit 3" did not complete successfully: exit code: 3')).toBe('RUN exit 3');
    expect(instructionFromError('failed to solve with frontend dockerfile.v0: parse error')).toBeUndefined();
  });
});

describe('addresses', () => {
  it('parses the forms BUILDKIT_HOST and DOCKER_HOST take', () => {
    expect(parseAddress('unix:///run/buildkit/buildkitd.sock')).toMatchObject({ kind: 'unix', socketPath: '/run/buildkit/buildkitd.sock' });
    expect(parseAddress('tcp://127.0.0.1:1234')).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 1234 });
    expect(parseAddress('tcp://buildkitd:1234?tlsdir=/certs')).toMatchObject({ tls: { caFile: '/certs/ca.pem', certFile: '/certs/cert.pem', keyFile: '/certs/key.pem' } });
    expect(parseAddress('docker://', { DOCKER_HOST: 'unix:///x/docker.sock' })).toMatchObject({ kind: 'docker', socketPath: '/x/docker.sock' });
    expect(parseAddress('docker://', {})).toMatchObject({ kind: 'docker', socketPath: '/var/run/docker.sock' });
    expect(parseAddress('docker://', { DOCKER_HOST: 'tcp://10.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' })).toMatchObject({
      kind: 'docker',
      host: '10.0.0.1',
      tls: { caFile: '/c/ca.pem' },
    });
    expect(parseAddress('docker:///var/run/docker.sock')).toMatchObject({ kind: 'docker', socketPath: '/var/run/docker.sock' });
    expect(() => parseAddress('ssh://host')).toThrow(/unsupported scheme ssh/);
    expect(defaultAddress({ BUILDKIT_HOST: 'tcp://b:1' })).toBe('tcp://b:1');
    expect(defaultAddress({})).toBe('docker://');
  });
});

describe('the base as a named context, and scoped credentials', () => {
  it('looks the base up by the reference as written and by its familiar form', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(namedContextKeys(`127.0.0.1:5000/fixtures/run@${digest}`)).toEqual([`127.0.0.1:5000/fixtures/run@${digest}`]);
    expect(namedContextKeys('docker.io/library/busybox:latest')).toEqual(['docker.io/library/busybox:latest', 'busybox']);
    expect(namedContextKeys(`index.docker.io/paketobuildpacks/run:base@${digest}`)).toEqual([
      `index.docker.io/paketobuildpacks/run:base@${digest}`,
      `paketobuildpacks/run:base@${digest}`,
    ]);
    expect(layoutContext(digest)).toBe(`oci-layout://cnb-extender-base@${digest}`);
  });

  it('takes layout contexts from daemons with Control/Info (v0.11 on), not from older ones', () => {
    expect(takesLayoutContexts('')).toBe(false);
    expect(takesLayoutContexts('v0.10.6')).toBe(false);
    expect(takesLayoutContexts('v0.11.0')).toBe(true);
    expect(takesLayoutContexts('v0.25.2')).toBe(true);
    expect(takesLayoutContexts('v0.0.0+unknown')).toBe(true);
  });

  it('answers credentials only for the registries the build uses', async () => {
    const keychain = staticKeychain({
      '127.0.0.1:5000': { kind: 'basic', username: 'u', password: 'p' },
      'secret.example': { kind: 'basic', username: 'x', password: 'y' },
      'https://index.docker.io/v1/': { kind: 'basic', username: 'hub', password: 'h' },
    });
    const scoped = scopedKeychain(keychain, [registryOf('127.0.0.1:5000/cache:run')!, registryOf('busybox')!]);
    expect(await scoped.resolve('127.0.0.1:5000')).toMatchObject({ username: 'u' });
    expect(await scoped.resolve('secret.example')).toBeUndefined();
    expect([...scoped.registries]).toEqual(['127.0.0.1:5000', 'docker.io']);
    expect(registryOf('not a reference')).toBeUndefined();
  });
});

describe('how the base reaches the daemon', () => {
  const standalone = (version: string): DaemonInfo => ({ workers: [], version, dockerWorker: false, exporters: ['image', 'oci', 'docker', 'tar', 'local'] });
  it('serves the base through the session to BuildKit v0.11 and later, unless the operator asks for the registry', () => {
    expect(chooseExportMode(standalone('v0.25.2'), false, 'session')).toEqual({ mode: 'store' });
    expect(chooseExportMode(standalone('v0.25.2'), false, 'registry')).toEqual({ mode: 'tar' });
  });
  it('falls back to the registry on older daemons, saying so', () => {
    const choice = chooseExportMode(standalone(''), false, 'session');
    expect(choice).toMatchObject({ mode: 'tar', warning: expect.stringMatching(/older than v0\.11\.0 .* pulls the base image from its registry itself/) });
  });
  it("uses dockerd's image store when it has an engine, and refuses a daemon with no way to give the result back", () => {
    const dockerd: DaemonInfo = { workers: [], version: '', dockerWorker: true, exporters: ['moby', 'tar', 'local'] };
    expect(chooseExportMode(dockerd, true, 'session')).toEqual({ mode: 'moby' });
    expect(chooseExportMode(dockerd, false, 'session')).toMatchObject({ error: expect.stringMatching(/neither the oci exporter nor a Docker Engine/) });
  });
});
