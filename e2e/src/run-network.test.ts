/**
 * RUN's network per backend, as `-extend-network` sets it through the backend
 * registry (`none`, `default`, `host` → each backend's own option): a RUN
 * without the network has no interface but loopback and cannot reach a TCP
 * server on this machine's loopback; a RUN on the host's network reaches it.
 * A daemon's RUN sees this machine's loopback only with host networking (or
 * where the daemon's default is the host's, as a standalone buildkitd without
 * CNI), so `default` is asserted per backend.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForBuildkitd } from '@cnb-extender/testenv';
import { extend, readLayoutImage, type ExtenderBackend } from '@cnb-extender/extender-core';
import { createWorkspace, type Workspace } from '@cnb-extender/extender-core/testing';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { createInplaceBackend } from '@cnb-extender/backend-inplace';
import { createBuildahBackend } from '@cnb-extender/backend-buildah';
import { createDockerBackend } from '@cnb-extender/backend-docker';
import { BuildKitBackend } from '@cnb-extender/backend-buildkit';

const env = inject('testenv');
const engines = env.engines[0]!; // Debian 12's dockerd (no bridge)
const TOKEN = `reached-${process.pid}`;
let server: Server;
let port = 0;
const temps: string[] = [];
const workspaces: Workspace[] = [];

beforeAll(async () => {
  server = createServer((socket) => socket.end(TOKEN));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  for (const ws of workspaces) await ws.remove();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

interface Probe {
  /** The server's answer, or `unreachable`. */
  reply: string;
  /** Network interfaces the RUN saw (`/proc/net/dev`). */
  interfaces: string[];
}

/** Extends the busybox run image with one RUN that connects to the loopback server and lists its interfaces (busybox nc). */
async function probe(name: string, backend: ExtenderBackend): Promise<Probe> {
  const run = env.fixtures.run;
  const script =
    `echo ${name} > /net-case; (timeout 10 nc 127.0.0.1 ${port} </dev/null >/net-reply 2>/dev/null || echo unreachable > /net-reply); ` +
    `grep : /proc/net/dev | cut -d: -f1 | tr -d ' ' > /net-interfaces`;
  const ws = await createWorkspace({
    platformApi: '0.13',
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions: [{ id: 'e2e/network', run: `ARG base_image\nFROM \${base_image}\nUSER root\nRUN ${script}\nUSER 1000:1000\n` }],
  });
  workspaces.push(ws);
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend });
  const out = (await readLayoutImage(result.outputDir!, 'out')).image;
  const rootfs = await mkdtemp(join(tmpdir(), `e2e-network-${name}-`));
  temps.push(rootfs);
  for (const layer of out.layers) if (layer.blob?.kind === 'file') await applyLayer(rootfs, layer.blob.path, { absolutePaths: 'root' });
  const text = (path: string) => readFile(join(rootfs, path), 'utf8');
  expect((await text('net-case')).trim()).toBe(name);
  return { reply: (await text('net-reply')).trim(), interfaces: (await text('net-interfaces')).split('\n').filter((l) => l !== '').sort() };
}

const CUT_OFF: Probe = { reply: 'unreachable', interfaces: ['lo'] };

describe('-extend-network', () => {
  describe('inplace', () => {
    // the registry maps none → network: false (unshare --net), default and host → the container's network
    it('none cuts RUN off: only loopback, the server is unreachable', async () => {
      expect(await probe('inplace-none', createInplaceBackend({ root: 'unpack', network: false }))).toEqual(CUT_OFF);
    });

    it('default (and host) is the network the extender has: the server answers', async () => {
      expect((await probe('inplace-default', createInplaceBackend({ root: 'unpack', network: true }))).reply).toBe(TOKEN);
    });
  });

  // every buildah of the test environment (1.28, and 1.4x with netavark)
  describe.each(env.engines.map((e) => ({ id: e.id, buildah: e.buildah.executable })))('buildah ($id)', ({ id, buildah }) => {
    it('none: only loopback, the server is unreachable (chroot isolation: buildah in a network namespace of its own)', async () => {
      expect(await probe(`buildah-${id}-none`, createBuildahBackend({ buildah, network: 'none' }))).toEqual(CUT_OFF);
    });

    it('none with the oci isolation: --network none', async () => {
      expect(await probe(`buildah-${id}-none-oci`, createBuildahBackend({ buildah, network: 'none', isolation: 'oci' }))).toEqual(CUT_OFF);
    });

    it('default (and host) is --network host: the server answers', async () => {
      expect((await probe(`buildah-${id}-host`, createBuildahBackend({ buildah, network: 'host' }))).reply).toBe(TOKEN);
    });
  });

  describe('docker', () => {
    const host = engines.docker.host;
    it('none: only loopback, the server is unreachable', async () => {
      expect(await probe('docker-none', createDockerBackend({ host, network: 'none' }))).toEqual(CUT_OFF);
    });

    it('host: the server answers', async () => {
      expect((await probe('docker-host', createDockerBackend({ host, network: 'host' }))).reply).toBe(TOKEN);
    });

    it('default is the daemon\'s bridge: a daemon without one is refused before the build, naming the way out', async () => {
      await expect(probe('docker-default', createDockerBackend({ host, network: 'default' }))).rejects.toThrow(
        `the Docker daemon at ${host} has no default bridge network (dockerd --bridge=none), which RUN steps get with -extend-network default; set -extend-network host (the network of the daemon's host) or none`,
      );
    });
  });

  describe('buildkit', () => {
    const address = `docker://${engines.docker.socketPath}`;
    it('none: only loopback, the server is unreachable', async () => {
      expect(await probe('buildkit-none', new BuildKitBackend({ address, network: 'none' }))).toEqual(CUT_OFF);
    });

    it('host (dockerd grants network.host): the server answers', async () => {
      expect((await probe('buildkit-host', new BuildKitBackend({ address, network: 'host' }))).reply).toBe(TOKEN);
    });

    it('default on a standalone buildkitd without CNI is its host\'s network: the server answers', async () => {
      const standalone = await waitForBuildkitd(env);
      expect((await probe('buildkit-default', new BuildKitBackend({ address: standalone.unixAddress, network: 'default' }))).reply).toBe(TOKEN);
    });
  });
});
