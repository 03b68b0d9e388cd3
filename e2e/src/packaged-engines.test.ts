/**
 * The release build's extender on the engines platforms run today (Docker 28
 * with BuildKit 0.25, buildah 1.43: the test environment's `current` engine
 * set), run kind, as an operator runs it beside a daemon: the standalone
 * executable from the `extender-v…+linux.x86-64.tgz` tarball, started as a
 * process with `-backend docker` (DOCKER_HOST), `-backend buildkit`
 * (BUILDKIT_HOST=docker://…) and `-backend buildah` (the current buildah first
 * in PATH). Each result must equal the in-place backend's on the same
 * extensions, after the normalisation of `./index.ts` (runtime mount points
 * left out, builder labels dropped).
 *
 * The extensions include what the classic builder of Docker 28 fails
 * (`COPY --chmod`, a RUN as a non-root USER in a WORKDIR it creates), so the
 * docker backend must build with BuildKit there by default.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { extend, readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import { createWorkspace, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { describeTree } from '@cnb-extender/oci/testing';
import { createInplaceBackend } from '@cnb-extender/backend-inplace';
import { buildRelease, REPO_ROOT } from '@cnb-extender/release';
import { STATED_DIFFERENCES, normalizeConfig, normalizeTree, treeDiff, type ComparableConfig } from './index.ts';

const HEAD = 'ARG base_image\nFROM ${base_image}\nUSER root\n';
const EXTENSIONS: WorkspaceExtension[] = [
  {
    id: 'e2e/chmod',
    run: `${HEAD}COPY --chmod=0751 tool.sh /opt/tool/tool.sh\nCOPY --chown=1000:1000 --chmod=0640 conf.txt /opt/tool/conf.txt\nUSER 1000:1000\n`,
    context: { 'tool.sh': '#!/bin/sh\necho tool\n', 'conf.txt': 'conf\n' },
  },
  {
    id: 'e2e/user-workdir',
    run: `${HEAD}RUN mkdir -p /home/cnb && chown 1000:1000 /home/cnb\nUSER 1000:1000\nWORKDIR /home/cnb/fresh/deeper\nRUN echo made-by-cnb > made && id -u > uid\n`,
  },
  {
    id: 'e2e/files',
    run: `${HEAD}RUN mkdir -p /e2e/files && echo one > /e2e/files/one && ln /e2e/files/one /e2e/files/hard && ln -s one /e2e/files/soft && chmod 4755 /e2e/files/one\nRUN rm /etc/cnb-fixture && echo appended >> /etc/passwd\nENV E2E_ENGINE=current\nLABEL e2e.engines=current\nUSER 1000:1000\n`,
  },
];

interface Outcome {
  tree: string[];
  config: ComparableConfig;
  layers: number;
}

const env = inject('testenv');
const current = env.engines.find((e) => e.id === 'current');
let scratch = '';
let extender = '';
let reference: Outcome;
const workspaces: Workspace[] = [];
let base: ImageDescription;

async function workspace(): Promise<Workspace> {
  const run = env.fixtures.run;
  const ws = await createWorkspace({
    platformApi: '0.13',
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions: EXTENSIONS,
  });
  workspaces.push(ws);
  return ws;
}

/** The tree and config of the image a run-kind layout holds (base layers from the fixture layout). */
async function outcomeOf(outputDir: string, name: string): Promise<Outcome> {
  const out = (await readLayoutImage(outputDir, 'out')).image;
  for (let i = 0; i < base.layers.length; i++) expect(out.layers[i]?.descriptor.digest, `${name}: base layer ${i} kept`).toBe(base.layers[i]!.descriptor.digest);
  const rootfs = await mkdtemp(join(scratch, `rootfs-${name}-`));
  for (let i = 0; i < out.layers.length; i++) {
    const layer = i < base.layers.length ? base.layers[i]! : out.layers[i]!;
    const blob = layer.blob;
    if (blob?.kind !== 'file') throw new Error(`${name}: layer ${i} has no file blob`);
    await applyLayer(rootfs, blob.path, { absolutePaths: 'root', expectedDiffId: out.layers[i]!.diffId });
  }
  return { tree: normalizeTree(await describeTree(rootfs)), config: normalizeConfig(out.config.config), layers: out.layers.length - base.layers.length };
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The packaged extender, run kind, on `ws` with `-backend <backend>` and `vars` added to a clean environment. */
function runExtender(ws: Workspace, backend: string, vars: Record<string, string>): Promise<CliRun> {
  const args = ['-kind', 'run', '-backend', backend, '-layers', ws.layersDir, '-app', ws.appDir, '-platform', ws.platformDir, '-extend-dir', ws.extendDir, '-log-level', 'debug', '-no-color'];
  const childEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: scratch, CNB_PLATFORM_API: '0.13', ...vars };
  return new Promise((resolve, reject) => {
    const child = spawn(extender, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  if (!current) throw new Error('the test environment has no current engine set (env.engines lacks "current")');
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'e2e-engines-'));
  const release = await buildRelease({ outDir: join(scratch, 'release'), platforms: ['amd64'] });
  const tarball = release.platforms.amd64!.extenderTarball;
  const unpacked = join(scratch, 'extender');
  await mkdir(unpacked);
  const extracted = spawnSync('tar', ['-xzf', tarball, '-C', unpacked], { encoding: 'utf8' });
  expect(extracted.status, extracted.stderr).toBe(0);
  extender = join(unpacked, 'extender', 'extender');

  const run = env.fixtures.run;
  base = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
  // the reference: the in-place backend on an unpacked base (the library; in run kind the executable would change this machine's root)
  const ws = await workspace();
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend: createInplaceBackend({ root: 'unpack', network: false }) });
  reference = await outcomeOf(result.outputDir!, 'inplace');
}, 600_000);

afterAll(async () => {
  for (const ws of workspaces) await ws.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** What BuildKit does differently from the in-place backend here, as Docker allows (see ./index.ts). */
const BUILDKIT_DIFFERENCES = STATED_DIFFERENCES.buildkitChmodParents(['opt', 'opt/tool'], '751');
const BACKENDS = [
  { backend: 'docker', vars: () => ({ DOCKER_HOST: current!.docker.host }), stated: BUILDKIT_DIFFERENCES },
  { backend: 'buildkit', vars: () => ({ BUILDKIT_HOST: `docker://${current!.docker.socketPath}` }), stated: BUILDKIT_DIFFERENCES },
  { backend: 'buildah', vars: () => ({ PATH: `${current!.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` }), stated: [] },
];

describe(`the release build's extender on ${current ? current.description : 'the current engines'}`, () => {
  it('the in-place reference holds what the extensions say', () => {
    const line = (path: string) => reference.tree.find((l) => l.split(' ', 1)[0] === path) ?? `(no ${path})`;
    expect(line('opt/tool/tool.sh')).toMatch(/ file 751 0:0 /);
    expect(line('opt/tool/conf.txt')).toMatch(/ file 640 1000:1000 /);
    expect(line('home/cnb/fresh/deeper')).toMatch(/ directory 755 1000:1000$/);
    expect(line('home/cnb/fresh/deeper/made')).toMatch(/ 1000:1000 /);
    expect(line('e2e/files/one')).toMatch(/ file 4755 /);
    expect(reference.tree.some((l) => l.startsWith('etc/cnb-fixture'))).toBe(false);
    expect(reference.config.Env).toContain('E2E_ENGINE=current');
  });

  it.each(BACKENDS)('-backend $backend extends the run image with the in-place result', async ({ backend, vars, stated }) => {
    const ws = await workspace();
    const result = await runExtender(ws, backend, vars());
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    const entries = await readdir(join(ws.extendedDir, 'run'));
    expect(entries, output).toHaveLength(1);
    expect(entries[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    const outcome = await outcomeOf(join(ws.extendedDir, 'run', entries[0]!), backend);
    expect(treeDiff(reference.tree, outcome.tree), `${backend} vs inplace`).toEqual(stated);
    expect(outcome.config).toEqual(reference.config);
    // nothing but the layer cache is left in the extend directory
    expect((await readdir(ws.extendDir)).filter((e) => e !== 'cache' && e !== 'cache.lock'), output).toEqual([]);
    if (backend === 'docker') expect(output).not.toMatch(/classic builder/);
  });
});
