/**
 * Against a real standalone buildkitd: the test environment's (BuildKit as
 * Docker Engine 28 vendors it, OCI worker on runc), reached on its unix socket
 * and on its loopback TCP port with mutual TLS.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, extend, readLayoutImage } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerFiles, runBackendContract } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { describe, expect, inject, it } from 'vitest';
import type { TlsOptions } from '@cnb-extender/buildkit-session';
import { BuildKitBackend, BuildKitClient } from './index.ts';
import { applyDockerfile, flatten, runBase } from './test-support.ts';
import { waitForBuildkitd } from '@cnb-extender/testenv';

// waits while the environment builds and starts it (minutes on a new machine)
const env = inject('testenv');
const buildkitd = await waitForBuildkitd(env);
/** A registry address nothing listens on: the daemon must never need the base's registry. */
const NO_ROUTE = '127.0.0.1:2';

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

  it('honours <Dockerfile>.dockerignore beside the Dockerfile over the context\'s .dockerignore', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'bk-standalone-'));
    await writeFile(join(ctx, '.dockerignore'), 'kept.txt\n');
    await writeFile(join(ctx, 'kept.txt'), 'kept\n');
    await writeFile(join(ctx, 'secret.txt'), 'secret\n');
    await writeFile(join(ctx, 'run.Dockerfile.dockerignore'), 'secret.txt\n');
    const applied = await applyDockerfile(new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint) }), 'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY . /ign/\n', ctx);
    try {
      const fs = await flatten(applied.newLayers);
      expect(fs.get('ign/kept.txt')?.content.toString()).toBe('kept\n');
      expect(fs.has('ign/secret.txt')).toBe(false);
    } finally {
      await applied.dispose();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);

  it('takes the base from the extender as an OCI-layout named context: no route to its registry, base layers never sent back', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'bk-standalone-'));
    const fixture = await runBase();
    const digest = fixture.reference!.split('@')[1]!;
    const base = { ...fixture, reference: `${NO_ROUTE}/unreachable/run@${digest}` };
    const events = new MemorySink();
    const applied = await applyDockerfile(
      new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint) }),
      'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo from-layout > /t-layout\n',
      ctx,
      { base, events },
    );
    try {
      expect((await flatten(applied.newLayers)).get('t-layout')?.content.toString()).toBe('from-layout\n');
      const exported = events.events.find((e) => e.type === 'debug' && /written into the session store/.test(e.message));
      expect(exported?.type === 'debug' && exported.message).toMatch(new RegExp(`, ${base.layers.length} already there$`));
      expect(events.events.some((e) => e.type === 'warning')).toBe(false);
    } finally {
      await applied.dispose();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);

  it('lets the daemon pull the base from its registry when the operator asks (baseFrom: registry), reading an oci tarball back', async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'bk-standalone-'));
    const events = new MemorySink();
    const applied = await applyDockerfile(
      new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint), baseFrom: 'registry' }),
      'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo pulled > /t-pulled\n',
      ctx,
      { events },
    );
    try {
      expect((await flatten(applied.newLayers)).get('t-pulled')?.content.toString()).toBe('pulled\n');
      expect(events.events.some((e) => e.type === 'debug' && /written into the session store/.test(e.message))).toBe(false);
    } finally {
      await applied.dispose();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);

  it('applies a group of Dockerfiles through the core with the base only in the extend directory', async () => {
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      platformApi: '0.13',
      runImage: `${NO_ROUTE}/unreachable/run@${run.manifestDigest}`,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [
        { id: 'first', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo a > /opt-a\nUSER 1000:1000\n' },
        { id: 'second', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN cat /opt-a > /opt-b\nUSER 1000:1000\n' },
      ],
    });
    try {
      const backend = new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint) });
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend, events: new MemorySink() });
      const out = readdirSync(join(ws.extendedDir, 'run'));
      expect(out).toHaveLength(1);
      const image = (await readLayoutImage(join(ws.extendedDir, 'run', out[0]!), 'out')).image;
      const added = image.layers.slice(image.layers.length - 2);
      expect((await readLayerFiles(added[1]!.blob!)).get('opt-b')?.toString()).toBe('a\n');
      expect(result.user).toBe('1000:1000');
      expect(backend.openSessions).toBe(0);
    } finally {
      await ws.remove();
    }
  }, 180_000);
});

describe('BuildKit cache export and import through the standalone daemon', () => {
  const prune = () => execFileSync(buildkitd.buildctl, ['--addr', buildkitd.unixAddress, 'prune', '--all'], { stdio: 'ignore' });
  type Entry = { type: string; attrs: Record<string, string> };
  const cases: { kind: string; endpoint: Endpoint; exports: Entry[]; imports: Entry[] }[] = [
    { kind: 'type=local into the extend directory', endpoint: endpoints[0]!, exports: [{ type: 'local', attrs: {} }], imports: [{ type: 'local', attrs: {} }] },
    {
      kind: 'type=registry to the loopback registry',
      endpoint: endpoints[1]!,
      exports: [{ type: 'registry', attrs: { ref: `${env.registry.host}/cache/buildkit:${randomBytes(4).toString('hex')}`, mode: 'max' } }],
      imports: [],
    },
  ];
  it.each(cases)('$kind: a second run on a pruned daemon is served from the cache', async ({ endpoint, exports, imports }) => {
    const extendDir = await mkdtemp(join(tmpdir(), 'bk-cache-extend-'));
    const ctx = await mkdtemp(join(tmpdir(), 'bk-cache-ctx-'));
    const token = randomBytes(8).toString('hex');
    const dockerfile = `ARG base_image\nFROM \${base_image}\nUSER root\nRUN echo ${token} > /cached && sleep 1\n`;
    const importsFor = imports.length > 0 ? imports : exports.map((e) => ({ type: e.type, attrs: { ref: e.attrs['ref']! } }));
    try {
      const first = await applyDockerfile(new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint), cacheExports: exports }), dockerfile, ctx, { extendDir });
      await first.dispose();
      if (exports[0]!.type === 'local') {
        const index = JSON.parse(readFileSync(join(extendDir, 'cache', 'buildkit', 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
        expect(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])).toEqual(['latest']);
      }
      prune();
      const events = new MemorySink();
      const second = await applyDockerfile(new BuildKitBackend({ address: endpoint.address, ...withTls(endpoint), cacheImports: importsFor }), dockerfile, ctx, { extendDir, events });
      try {
        expect(events.events.filter((e) => e.type === 'cache-hit').map((e) => (e.type === 'cache-hit' ? e.instruction : ''))).toContain(`RUN echo ${token} > /cached && sleep 1`);
        expect((await flatten(second.newLayers)).get('cached')?.content.toString()).toBe(`${token}\n`);
      } finally {
        await second.dispose();
      }
    } finally {
      await rm(extendDir, { recursive: true, force: true });
      await rm(ctx, { recursive: true, force: true });
    }
  }, 180_000);
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
