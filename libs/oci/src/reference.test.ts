import { describe, expect, it } from 'vitest';
import {
  ImageReferenceError,
  familiarReference,
  formatReference,
  parseAnyReference,
  parseReference,
  registryEndpoint,
  registryHostname,
  withDigest,
  withTag,
} from './reference.ts';

const DIGEST = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['index.docker.io/library/busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['index.docker.io/fooo/bar', 'docker.io', 'fooo/bar', 'latest', undefined],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar', 'latest', undefined],
    ['dmcgowan/myapp', 'docker.io', 'dmcgowan/myapp', 'latest', undefined],
    ['test_com/foo', 'docker.io', 'test_com/foo', 'latest', undefined],
    ['test.com/foo', 'test.com', 'foo', 'latest', undefined],
    ['test-com:8080/foo', 'test-com:8080', 'foo', 'latest', undefined],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo', 'latest', undefined],
    ['localhost/foo', 'localhost', 'foo', 'latest', undefined],
    ['localhost:5000/a/b/c:t', 'localhost:5000', 'a/b/c', 't', undefined],
    ['127.0.0.1:5000/private/moonbase', '127.0.0.1:5000', 'private/moonbase', 'latest', undefined],
    ['[::1]:5000/app:v1', '[::1]:5000', 'app', 'v1', undefined],
    ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', '[fc00:1:2:3:4:5:6:7]:5000', 'library/debian', 'latest', undefined],
    ['Foo/bar', 'Foo', 'bar', 'latest', undefined],
    ['192.168.0.1', 'docker.io', 'library/192.168.0.1', 'latest', undefined],
    ['docker---rules/dock__er', 'docker.io', 'docker---rules/dock__er', 'latest', undefined],
    [`redis@${DIGEST}`, 'docker.io', 'library/redis', undefined, DIGEST],
    [`busybox:latest@${DIGEST}`, 'docker.io', 'library/busybox', 'latest', DIGEST],
    [`ghcr.io/org/app:v2@${DIGEST}`, 'ghcr.io', 'org/app', 'v2', DIGEST],
    ['thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'docker.io', 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'latest', undefined],
  ])('%s', (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect(ref).toEqual({ registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) });
  });

  it('keeps a bare name bare on request', () => {
    expect(parseReference('busybox', { defaultTag: false })).toEqual({ registry: 'docker.io', repository: 'library/busybox' });
  });

  it.each([
    ['', /at least one component/],
    ['https://github.com/docker/docker', /invalid reference format/],
    ['docker/Docker', /must be lowercase/],
    ['docker.io/docker/Docker', /must be lowercase/],
    ['-docker', /invalid reference format/],
    ['-docker/docker', /invalid reference format/],
    ['docker-/docker', /invalid reference format/],
    ['docker///docker', /invalid reference format/],
    ['____/____', /invalid reference format/],
    ['dock..er/docker', /invalid reference format/],
    ['dock_.er/docker', /invalid reference format/],
    ['docker/', /invalid reference format/],
    ['[fc00::1]', /invalid (reference format|tag)/],
    ['[fc00::1]:5000', /invalid reference format/],
    ['fc00::1:5000/debian', /invalid reference format/],
    ['[fe80::1%eth0]:5000/debian', /invalid reference format/],
    ['[2001:db8:3:4::192.0.2.33]:5000/debian', /invalid reference format/],
    ['1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', /image ID/],
    ['busybox:-tag', /invalid tag/],
    [`busybox:${'a'.repeat(129)}`, /invalid tag/],
    ['busybox@sha256:abc', /invalid digest/],
    ['busybox@sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789', /lowercase hexadecimal/],
    ['busybox@md5:0123456789abcdef0123456789abcdef', /unsupported digest algorithm/],
    [`${'a/'.repeat(128)}b`, /not be more than 255/],
  ])('rejects %j', (input, message) => {
    expect(() => parseReference(input)).toThrow(ImageReferenceError);
    expect(() => parseReference(input)).toThrow(message);
  });

  it('accepts a 64-hex path when a registry is named', () => {
    const hex = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';
    expect(parseReference(`docker.io/${hex}`).repository).toBe(`library/${hex}`);
  });
});

describe('parseAnyReference', () => {
  it('reads digests and image IDs as digest-only references', () => {
    expect(parseAnyReference(DIGEST)).toEqual({ digest: DIGEST });
    expect(parseAnyReference(DIGEST.slice('sha256:'.length))).toEqual({ digest: DIGEST });
  });
  it('reads short hex strings as names', () => {
    expect(formatReference(parseAnyReference('dbcc1'))).toBe('docker.io/library/dbcc1:latest');
  });
});

describe('formatting', () => {
  it('round-trips full and familiar forms', () => {
    for (const [input, full, familiar] of [
      ['ubuntu', 'docker.io/library/ubuntu:latest', 'ubuntu:latest'],
      ['library/foo/bar', 'docker.io/library/foo/bar:latest', 'library/foo/bar:latest'],
      ['127.0.0.1:8000/privatebase', '127.0.0.1:8000/privatebase:latest', '127.0.0.1:8000/privatebase:latest'],
      [`busybox:latest@${DIGEST}`, `docker.io/library/busybox:latest@${DIGEST}`, `busybox:latest@${DIGEST}`],
    ] as const) {
      const ref = parseReference(input);
      expect(formatReference(ref)).toBe(full);
      expect(familiarReference(ref)).toBe(familiar);
      expect(parseReference(full)).toEqual(ref);
    }
  });

  it('maps Docker Hub to its API endpoint and leaves others alone', () => {
    expect(registryEndpoint('docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpoint('index.docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpoint('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(registryHostname('[::1]:5000')).toBe('[::1]');
    expect(registryHostname('localhost:5000')).toBe('localhost');
    expect(registryHostname('ghcr.io')).toBe('ghcr.io');
  });

  it('validates tags and digests it adds', () => {
    const ref = parseReference('example.com/app');
    expect(withTag(ref, 'v1')).toEqual({ registry: 'example.com', repository: 'app', tag: 'v1' });
    expect(() => withTag(ref, '.bad')).toThrow(/invalid tag/);
    expect(withDigest(ref, DIGEST).digest).toBe(DIGEST);
    expect(() => withDigest(ref, 'foo')).toThrow(/invalid digest/);
  });
});
