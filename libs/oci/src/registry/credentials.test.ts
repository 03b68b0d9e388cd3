import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  defaultKeychain,
  dockerConfigKeychain,
  envKeychain,
  normalizeRegistryKey,
  runCredentialHelper,
} from './credentials.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oci-credentials-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A `docker-credential-<name>` script answering for one server URL, recording what it was asked. */
async function writeHelper(name: string, serverUrl: string, username: string, secret: string): Promise<string> {
  const binDir = join(dir, `bin-${name}`);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(binDir, { recursive: true });
  const script = join(binDir, `docker-credential-${name}`);
  await writeFile(
    script,
    [
      '#!/bin/sh',
      `[ "$1" = get ] || exit 2`,
      'read -r server',
      `echo "$server" >> "${join(binDir, 'asked')}"`,
      `if [ "$server" = "${serverUrl}" ]; then`,
      `  printf '{"ServerURL":"%s","Username":"${username}","Secret":"${secret}"}' "$server"`,
      'else',
      '  echo "credentials not found in native keychain"; exit 1',
      'fi',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return binDir;
}

describe('CNB_REGISTRY_AUTH', () => {
  it('reads Basic, Bearer and X-Identity headers per registry', async () => {
    const keychain = envKeychain(
      JSON.stringify({
        '127.0.0.1:5000': `Basic ${b64('user:pa:ss')}`,
        'index.docker.io': 'Bearer registry-token',
        'ghcr.io': 'X-Identity refresh-token',
      }),
    );
    expect(await keychain.resolve('127.0.0.1:5000')).toEqual({ kind: 'basic', username: 'user', password: 'pa:ss' });
    expect(await keychain.resolve('docker.io')).toEqual({ kind: 'bearer', token: 'registry-token' });
    expect(await keychain.resolve('ghcr.io')).toEqual({ kind: 'identity', token: 'refresh-token' });
    expect(await keychain.resolve('example.com')).toBeUndefined();
  });

  it('rejects malformed values without echoing them', () => {
    expect(() => envKeychain('{not json secret-value')).toThrow(/CNB_REGISTRY_AUTH is not valid JSON/);
    expect(() => envKeychain('{not json secret-value')).not.toThrow(/secret-value/);
    expect(() => envKeychain(JSON.stringify({ r: 'Digest secret-value' }))).toThrow(/entry for r/);
    expect(() => envKeychain(JSON.stringify({ r: 'Digest secret-value' }))).not.toThrow(/secret-value/);
    expect(() => envKeychain('[]')).toThrow(/JSON object/);
  });
});

describe('docker config', () => {
  it('normalises registry keys like docker does', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistryKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistryKey('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(normalizeRegistryKey('GHCR.io')).toBe('ghcr.io');
  });

  it('reads auths entries (auth, username/password, tokens)', async () => {
    const configDir = join(dir, 'auths');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://127.0.0.1:5000': { auth: b64('alice:secret1') },
          'https://index.docker.io/v1/': { username: 'bob', password: 'secret2' },
          'quay.io': { identitytoken: 'idtoken' },
          'gcr.io': { registrytoken: 'regtoken' },
        },
      }),
    );
    const keychain = dockerConfigKeychain({ configDir, env: {} });
    expect(await keychain.resolve('127.0.0.1:5000')).toEqual({ kind: 'basic', username: 'alice', password: 'secret1' });
    expect(await keychain.resolve('docker.io')).toEqual({ kind: 'basic', username: 'bob', password: 'secret2' });
    expect(await keychain.resolve('quay.io')).toEqual({ kind: 'identity', token: 'idtoken' });
    expect(await keychain.resolve('gcr.io')).toEqual({ kind: 'bearer', token: 'regtoken' });
    expect(await keychain.resolve('example.com')).toBeUndefined();
  });

  it('uses credHelpers before credsStore before auths, and falls back when a store has nothing', async () => {
    const helperBin = await writeHelper('perreg', '127.0.0.1:6000', 'helper-user', 'helper-secret');
    const storeBin = await writeHelper('store', 'https://index.docker.io/v1/', 'hub-user', 'hub-secret');
    const configDir = join(dir, 'helpers');
    const { mkdir, readFile } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({
        credsStore: 'store',
        credHelpers: { '127.0.0.1:6000': 'perreg' },
        auths: { '127.0.0.1:6000': { auth: b64('file:ignored') }, 'other.example': { auth: b64('file:used') } },
      }),
    );
    const env = { PATH: `${helperBin}:${storeBin}:${process.env.PATH}` };
    const keychain = dockerConfigKeychain({ configDir, env });
    expect(await keychain.resolve('127.0.0.1:6000')).toEqual({ kind: 'basic', username: 'helper-user', password: 'helper-secret' });
    expect(await keychain.resolve('docker.io')).toEqual({ kind: 'basic', username: 'hub-user', password: 'hub-secret' });
    expect(await keychain.resolve('other.example')).toEqual({ kind: 'basic', username: 'file', password: 'used' });
    expect((await readFile(join(storeBin, 'asked'), 'utf8')).split('\n')).toContain('https://index.docker.io/v1/');
  });

  it('reports a missing helper by name without its output', async () => {
    await expect(runCredentialHelper('does-not-exist-xyz', 'r.example', { PATH: dir })).rejects.toThrow(
      /docker-credential-does-not-exist-xyz for r\.example: not found on PATH/,
    );
  });

  it('treats a missing config file as anonymous', async () => {
    expect(await dockerConfigKeychain({ configDir: join(dir, 'nothing-here'), env: {} }).resolve('x.io')).toBeUndefined();
  });

  it('puts CNB_REGISTRY_AUTH before the docker config', async () => {
    const configDir = join(dir, 'order');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('config:pw') } } }));
    const both = defaultKeychain({ DOCKER_CONFIG: configDir, CNB_REGISTRY_AUTH: JSON.stringify({ 'r.example': `Basic ${b64('env:pw')}` }) });
    expect(await both.resolve('r.example')).toMatchObject({ username: 'env' });
    const configOnly = defaultKeychain({ DOCKER_CONFIG: configDir });
    expect(await configOnly.resolve('r.example')).toMatchObject({ username: 'config' });
  });
});
