/**
 * A current Docker Engine with the containerd image store (opt-in on Engine 24–28,
 * the default for new installs from Engine 29): dockerd's BuildKit then runs a
 * containerd worker (no `moby` id, no `-moby` version) and images are exported
 * as OCI layout archives. The docker and buildkit backends must apply a group of
 * two Dockerfiles (the second on the first's result, which only the daemon's
 * image store holds) and give the in-place tree.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureCurrentEngineRoot, startDockerd, writeEngineTools, type RunningDockerd } from '@cnb-extender/testenv';
import { extend, readLayoutImage, type ExtenderBackend, type ImageDescription } from '@cnb-extender/extender-core';
import { createWorkspace, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { describeTree } from '@cnb-extender/oci/testing';
import { createInplaceBackend } from '@cnb-extender/backend-inplace';
import { createDockerBackend } from '@cnb-extender/backend-docker';
import { BuildKitBackend, BuildKitClient } from '@cnb-extender/backend-buildkit';
import { STATED_DIFFERENCES, normalizeTree, treeDiff } from './index.ts';

const HEAD = 'ARG base_image\nFROM ${base_image}\nUSER root\n';
const EXTENSIONS: WorkspaceExtension[] = [
  { id: 'e2e/first', run: `${HEAD}COPY --chmod=0751 tool.sh /opt/tool/tool.sh\nRUN echo first > /first\nUSER 1000:1000\n`, context: { 'tool.sh': '#!/bin/sh\n' } },
  { id: 'e2e/second', run: `${HEAD}RUN cat /first > /second && rm /first\nUSER 1000:1000\nWORKDIR /home/cnb/made-here\nRUN id -u > uid\n` },
];

const env = inject('testenv');
let dir = '';
let dockerd: RunningDockerd | undefined;
let base: ImageDescription;
let reference: string[];
const workspaces: Workspace[] = [];

async function treeOf(backend: ExtenderBackend): Promise<string[]> {
  const run = env.fixtures.run;
  const ws = await createWorkspace({ platformApi: '0.13', runImage: run.registryRef, baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' }, extensions: EXTENSIONS });
  workspaces.push(ws);
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend });
  const out = (await readLayoutImage(result.outputDir!, 'out')).image;
  const rootfs = await mkdtemp(join(dir, 'rootfs-'));
  for (let i = 0; i < out.layers.length; i++) {
    const blob = (i < base.layers.length ? base.layers[i]! : out.layers[i]!).blob;
    if (blob?.kind !== 'file') throw new Error(`layer ${i} has no file blob`);
    await applyLayer(rootfs, blob.path, { absolutePaths: 'root', expectedDiffId: out.layers[i]!.diffId });
  }
  return normalizeTree(await describeTree(rootfs));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'e2e-containerd-store-'));
  const root = await ensureCurrentEngineRoot();
  const tools = await writeEngineTools(root.root, join(dir, 'engine'));
  dockerd = await startDockerd(join(dir, 'd'), { enter: tools.enter, label: 'containerd image store', containerdStore: true });
  const run = env.fixtures.run;
  base = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
  reference = await treeOf(createInplaceBackend({ root: 'unpack', network: false }));
}, 300_000);

afterAll(async () => {
  for (const ws of workspaces) await ws.remove();
  await dockerd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a current Docker Engine with the containerd image store', () => {
  it('runs its BuildKit as a containerd worker, still recognised as dockerd\'s', async () => {
    const client = new BuildKitClient(`docker://${dockerd!.socketPath}`);
    try {
      const info = await client.probe();
      expect(info.workers[0]?.labels['org.mobyproject.buildkit.worker.executor']).toBe('containerd');
      expect(info.dockerWorker).toBe(true);
      expect(info.exporters).toContain('moby');
    } finally {
      await client.close();
    }
  });

  it.each([
    { name: 'docker (BuildKit by default)', make: () => createDockerBackend({ host: dockerd!.host }) },
    { name: 'buildkit (docker://)', make: () => new BuildKitBackend({ address: `docker://${dockerd!.socketPath}` }) },
  ])('$name applies both Dockerfiles with the in-place result', async ({ make }) => {
    const tree = await treeOf(make());
    expect(treeDiff(reference, tree)).toEqual(STATED_DIFFERENCES.buildkitChmodParents(['opt', 'opt/tool'], '751'));
    expect(tree.find((l) => l.startsWith('second '))).toMatch(/ file 644 0:0 /);
    expect(tree.some((l) => l.startsWith('first '))).toBe(false);
  });
});
