/**
 * Against a real standalone buildkitd: the test environment's (BuildKit as
 * Docker Engine 28 vendors it, OCI worker on runc), reached on its unix socket
 * and on its loopback TCP port with mutual TLS.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { describe, expect, inject, it } from 'vitest';
import { BuildKitBackend, BuildKitClient, type TlsOptions } from './index.ts';
import { applyDockerfile, flatten } from './test-support.ts';
import { waitForBuildkitd } from '@cnb-extender/testenv';

// waits while the environment builds and starts it (minutes on a new machine)
const buildkitd = await waitForBuildkitd(inject('testenv'));

interface Endpoint {
  kind: string;
  address: string;
  tls?: TlsOptions;
}

const endpoints: Endpoint[] = [
  { kind: 'unix socket', address: buildkitd.unixAddress },
  { kind: 'TCP with mutual TLS', address: buildkitd.tcpAddress, tls: { ...buildkitd.tls } },
];

const withTls = (e: Endpoint) => (e.tls ? { tls: e.tls } : {});

describe.each(endpoints)(`standalone buildkitd ${buildkitd.version} over a $kind ($address)`, (endpoint) => {
  it('probes a standalone buildkitd (Control/Info, oci exporter)', async () => {
    const client = new BuildKitClient(endpoint.address, withTls(endpoint));
    try {
      const info = await client.probe();
      expect(info.dockerWorker).toBe(false);
      expect(info.version).not.toBe('');
      expect(info.exporters).toContain('oci');
    } finally {
      await client.close();
    }
  });

  it('applies a Dockerfile through the oci exporter and reads the layers back', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'bk-standalone-'));
    await writeFile(join(ctx, 'hello.txt'), 'hello buildkitd\n');
    const applied = await applyDockerfile(
      new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint) }),
      'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY hello.txt /t/hello.txt\nRUN mkdir -p /workspace && echo no > /workspace/x && echo yes > /t/ran\n',
      ctx,
    );
    try {
      const fs = await flatten(applied.newLayers);
      expect(fs.get('t/hello.txt')?.content.toString()).toBe('hello buildkitd\n');
      expect(fs.get('t/ran')?.content.toString()).toBe('yes\n');
      expect([...fs.keys()].filter((p) => p.startsWith('workspace/'))).toEqual([]);
    } finally {
      await applied.dispose();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('standalone buildkitd over TCP', () => {
  it('is refused without a client certificate', async () => {
    const client = new BuildKitClient(buildkitd.tcpAddress, { tls: { caFile: buildkitd.tls.caFile, serverName: buildkitd.tls.serverName } });
    try {
      await expect(client.listWorkers()).rejects.toThrow(/BuildKit|grpc|socket|alert|certificate|closed/i);
    } finally {
      await client.close();
    }
  });
});

for (const endpoint of endpoints) {
  runBackendContract(() => new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint) }), {
    name: `BuildKitBackend (standalone buildkitd ${buildkitd.version} over a ${endpoint.kind}) passes the backend contract`,
  });
}
