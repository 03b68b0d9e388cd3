/**
 * The unix://, tcp:// and mutual-TLS client paths, against a loopback
 * forwarder into dockerd's BuildKit (the session goes through Control/Session).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BuildKitBackend, BuildKitClient } from './index.ts';
import { grpcTlsListen, makeTestPki, startGrpcForwarder, type GrpcForwarder, type TestPki } from '@cnb-extender/testenv';
import { applyDockerfile, flatten } from './test-support.ts';

const docker = inject('testenv').docker;
let dir: string;
let pki: TestPki;
const forwarders: GrpcForwarder[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-transports-'));
  pki = await makeTestPki(dir);
});

afterAll(async () => {
  for (const f of forwarders) await f.close();
  await rm(dir, { recursive: true, force: true });
});

async function forwarder(kind: 'unix' | 'tcp' | 'tls'): Promise<GrpcForwarder> {
  const f = await startGrpcForwarder(docker.socketPath, kind === 'unix' ? { kind, path: join(dir, `bk-${forwarders.length}.sock`) } : kind === 'tcp' ? { kind } : await grpcTlsListen(pki));
  forwarders.push(f);
  return f;
}

const DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nUSER root\nARG build_id\nCOPY hello.txt /t/hello.txt\nRUN echo "$build_id" > /t/id\n';

describe.each(['unix', 'tcp', 'tls'] as const)('standalone-style endpoint over %s (loopback forwarder into dockerd)', (kind) => {
  it('applies a Dockerfile with the session tunnelled through Control/Session', async () => {
    const f = await forwarder(kind);
    const context = await mkdtemp(join(dir, 'ctx-'));
    await writeFile(join(context, 'hello.txt'), `hello over ${kind}\n`);
    const backend = new BuildKitBackend({
      address: f.address,
      engine: `docker://${docker.socketPath}`,
      ...(kind === 'tls' ? { tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile } } : {}),
    });
    const applied = await applyDockerfile(backend, DOCKERFILE, context, { args: [{ name: 'extra', value: kind }] });
    try {
      const fs = await flatten(applied.newLayers);
      expect(fs.get('t/hello.txt')?.content.toString()).toBe(`hello over ${kind}\n`);
      expect(fs.get('t/id')?.content.toString()).toBe('b-1\n');
      expect(f.connections).toBeGreaterThan(0);
    } finally {
      await applied.dispose();
    }
  });
});

describe('mutual TLS', () => {
  it('is refused without a client certificate the daemon trusts', async () => {
    const f = await forwarder('tls');
    const client = new BuildKitClient(f.address, { tls: { caFile: pki.caFile, certFile: pki.strangerCertFile, keyFile: pki.strangerKeyFile } });
    await expect(client.listWorkers()).rejects.toThrow(/BuildKit|grpc|socket|alert|certificate|closed/i);
    await client.close();
  });

  it('takes TLS files from the address query, as a BUILDKIT_HOST value can carry them', async () => {
    const f = await forwarder('tls');
    const client = new BuildKitClient(`${f.address}?ca=${pki.caFile}&cert=${pki.clientCertFile}&key=${pki.clientKeyFile}`);
    const workers = await client.listWorkers();
    expect(workers.map((w) => w.id)).toContain('moby');
    await client.close();
  });
});

describe('BUILDKIT_HOST', () => {
  it('is the address when none is given', async () => {
    const f = await forwarder('unix');
    const backend = new BuildKitBackend({ env: { BUILDKIT_HOST: f.address } });
    expect(backend.address).toBe(f.address);
    const client = new BuildKitClient(backend.address);
    expect((await client.probe()).dockerWorker).toBe(true);
    await client.close();
  });
});
