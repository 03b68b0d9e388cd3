import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildFixtureLayouts } from './fixtures.ts';
import { run } from './proc.ts';
import './types.ts';

const env = inject('testenv');

function getStatus(url: string, ca: Buffer, auth?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v2/', url), { ca, headers: auth ? { authorization: `Basic ${auth}` } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the plain loopback registry', () => {
  it('serves the fixture run image under the layout digest', async () => {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${env.fixtures.run.registryRef}`]);
    const inspected = JSON.parse(stdout) as { Digest: string; Labels: Record<string, string> };
    expect(inspected.Digest).toBe(env.fixtures.run.manifestDigest);
    expect(inspected.Labels['io.cnb-extender.testenv.image']).toBe('run');
  });

  it('gets the same digests when the fixtures are built again from scratch', async () => {
    const cacheRoot = await mkdtemp(join(tmpdir(), 'cnb-testenv-rebuild-'));
    try {
      const again = await buildFixtureLayouts({ cacheRoot });
      expect(again.build.manifestDigest).toBe(env.fixtures.build.manifestDigest);
      expect(again.run.manifestDigest).toBe(env.fixtures.run.manifestDigest);
      expect(again.build.layoutDir.startsWith(cacheRoot)).toBe(true);
    } finally {
      await rm(cacheRoot, { recursive: true, force: true });
    }
  });
});

describe('the TLS + htpasswd registry', () => {
  const secure = env.secureRegistry;
  const ca = readFileSync(secure.caFile);

  it('answers /v2/ with 401 without credentials and 200 with them', async () => {
    expect(await getStatus(secure.url, ca)).toBe(401);
    const auth = Buffer.from(`${secure.username}:${secure.password}`).toString('base64');
    expect(await getStatus(secure.url, ca, auth)).toBe(200);
    const wrong = Buffer.from(`${secure.username}:not-the-password`).toString('base64');
    expect(await getStatus(secure.url, ca, wrong)).toBe(401);
  });

  it('takes a push from skopeo with --dest-creds and --dest-cert-dir', async () => {
    const target = `docker://${secure.host}/pushed/run:latest`;
    const certDir = join(secure.certsDir, secure.host);
    await run(
      'skopeo',
      [
        '--insecure-policy', 'copy', '--quiet', '--preserve-digests',
        '--dest-creds', `${secure.username}:${secure.password}`, '--dest-cert-dir', certDir,
        `oci:${env.fixtures.run.layoutDir}:${env.fixtures.run.layoutTag}`, target,
      ],
      { display: 'skopeo copy --dest-creds <credentials> …' },
    );
    const { stdout } = await run(
      'skopeo',
      ['inspect', '--creds', `${secure.username}:${secure.password}`, '--cert-dir', certDir, target],
      { display: 'skopeo inspect --creds <credentials> …' },
    );
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(env.fixtures.run.manifestDigest);
    await expect(run('skopeo', ['inspect', '--cert-dir', certDir, '--no-creds', target])).rejects.toThrow(/unauthorized|authentication required/i);
  });
});

describe('registry readiness', () => {
  it('does not take another server on the port for its registry', async () => {
    const { createServer } = await import('node:http');
    const { startRegistry } = await import('./registry.ts');
    // An impostor that answers /v2/ just like a registry would.
    const impostor = createServer((_req, res) => {
      res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' });
      res.end('{}');
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const address = impostor.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const dir = await mkdtemp(join(tmpdir(), 'cnb-testenv-impostor-'));
    try {
      await expect(startRegistry({ dir, port })).rejects.toThrow(/address already in use/);
    } finally {
      impostor.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
