import { describe, expect, it } from 'vitest';
import { instructionFromError, instructionFromHistory, instructionFromVertex } from './backend.ts';
import { encodeSolveRequest } from '@cnb-extender/buildkit-session';
import { ProtoWriter, fields, mapEntry } from '@cnb-extender/buildkit-session';
import { defaultAddress, parseAddress } from '@cnb-extender/buildkit-session';

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
