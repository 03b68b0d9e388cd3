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
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, makeTestPki, startBuildkitd, startSocketForwarder, waitForBuildkitd, type BuildkitdEndpoint } from '@cnb-extender/testenv';
import { extend, readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerFiles, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { describeTree } from '@cnb-extender/oci/testing';
import { createInplaceBackend } from '@cnb-extender/backend-inplace';
import { REPO_ROOT } from '@cnb-extender/release';
import { sharedReleaseBuild } from '@cnb-extender/release/testing';
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

interface RunAs {
  /** `-kind` (default run) and flags added after the usual ones. */
  kind?: 'build' | 'run';
  args?: string[];
  uid?: number;
  gid?: number;
  executable?: string;
  /** Sees the output as it arrives (stdout and stderr). */
  onOutput?: (text: string) => void;
}

/** The packaged extender, run kind, on `ws` with `-backend <backend>` and `vars` added to a clean environment. */
function runExtender(ws: Workspace, backend: string, vars: Record<string, string>, as: RunAs = {}): Promise<CliRun> {
  const args = ['-kind', as.kind ?? 'run', '-backend', backend, '-layers', ws.layersDir, '-app', ws.appDir, '-platform', ws.platformDir, '-extend-dir', ws.extendDir, '-log-level', 'debug', '-no-color', ...(as.args ?? [])];
  const childEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: scratch, CNB_PLATFORM_API: '0.13', ...vars };
  return new Promise((resolve, reject) => {
    const child = spawn(as.executable ?? extender, args, {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(as.uid !== undefined ? { uid: as.uid } : {}),
      ...(as.gid !== undefined ? { gid: as.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      as.onOutput?.(c);
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      as.onOutput?.(c);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  if (!current) throw new Error('the test environment has no current engine set (env.engines lacks "current")');
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'e2e-engines-'));
  const release = await sharedReleaseBuild();
  const tarball = release.amd64.extenderTarball;
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
  // the test dockerd has no bridge network, which RUN gets with the default -extend-network
  { backend: 'docker', vars: () => ({ DOCKER_HOST: current!.docker.host, CNB_EXTEND_NETWORK: 'host' }), stated: BUILDKIT_DIFFERENCES },
  { backend: 'buildkit', vars: () => ({ BUILDKIT_HOST: `docker://${current!.docker.socketPath}`, CNB_EXTEND_NETWORK: 'none' }), stated: BUILDKIT_DIFFERENCES },
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

/**
 * The release build's extender against a standalone buildkitd, as a platform
 * runs it on Kubernetes: as uid 1000 with no capabilities, over TCP with mutual
 * TLS (BUILDKIT_HOST with `?tlsdir=`), and with analyzed.toml naming a run image
 * whose registry nothing answers for: the base is only in the extend
 * directory's layout, so the daemon must take it from the extender.
 */
const NO_ROUTE = '127.0.0.1:2';
const CNB_UID = 1000;

describe("the release build's extender against a standalone buildkitd", () => {
  let open = '';
  let openExtender = '';
  let buildkitd: BuildkitdEndpoint;

  beforeAll(async () => {
    buildkitd = await waitForBuildkitd(env);
    // everything uid 1000 touches lives outside the checkout, which may be under a 0700 home
    open = await mkdtemp(join(tmpdir(), 'e2e-standalone-'));
    await chmod(open, 0o755);
    await cp(dirname(extender), join(open, 'extender'), { recursive: true });
    openExtender = join(open, 'extender', 'extender');
  });

  afterAll(async () => {
    if (open) await rm(open, { recursive: true, force: true });
  });

  /** A workspace owned by uid 1000, the base only in its extend directory. */
  async function unprivilegedWorkspace(): Promise<Workspace> {
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      platformApi: '0.13',
      runImage: `${NO_ROUTE}/unreachable/run@${run.manifestDigest}`,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: EXTENSIONS,
      tempRoot: open,
    });
    workspaces.push(ws);
    await chownTree(ws.root, CNB_UID);
    return ws;
  }

  /** `?tlsdir=` contents readable by uid 1000 only: ca.pem, cert.pem, key.pem. */
  async function tlsDir(name: string, files: { ca: string; cert: string; key: string }): Promise<string> {
    const dir = join(open, name);
    await mkdir(dir, { mode: 0o700 });
    await cp(files.ca, join(dir, 'ca.pem'));
    await cp(files.cert, join(dir, 'cert.pem'));
    await cp(files.key, join(dir, 'key.pem'));
    await chownTree(dir, CNB_UID);
    return dir;
  }

  function runAsCnb(ws: Workspace, buildkitHost: string): Promise<CliRun> {
    return runExtender(ws, 'buildkit', { BUILDKIT_HOST: buildkitHost, HOME: ws.root }, { uid: CNB_UID, gid: CNB_UID, executable: openExtender });
  }

  /** Nothing of a run is left: no output layout, nothing but the layer cache in the extend directory. */
  async function expectNothingLeft(ws: Workspace, output: string): Promise<void> {
    expect(await readdir(join(ws.extendedDir, 'run')).catch(() => []), output).toEqual([]);
    expect((await readdir(ws.extendDir)).filter((e) => e !== 'cache' && e !== 'cache.lock'), output).toEqual([]);
    expect((await readdir(join(ws.extendDir, 'cache'))).filter((e) => e !== 'base'), output).toEqual([]);
  }

  it('as uid 1000 with no capabilities, over mutual TLS, with no route to the base registry: the in-place result', async () => {
    const ws = await unprivilegedWorkspace();
    const tls = await tlsDir('tls-good', { ca: buildkitd.tls.caFile, cert: buildkitd.tls.certFile, key: buildkitd.tls.keyFile });
    const result = await runAsCnb(ws, `${buildkitd.tcpAddress}?tlsdir=${tls}`);
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    const entries = await readdir(join(ws.extendedDir, 'run'));
    expect(entries, output).toHaveLength(1);
    const outcome = await outcomeOf(join(ws.extendedDir, 'run', entries[0]!), 'buildkit-standalone');
    expect(treeDiff(reference.tree, outcome.tree), 'standalone buildkitd vs inplace').toEqual(BUILDKIT_DIFFERENCES);
    expect(outcome.config).toEqual(reference.config);
    expect((await readdir(ws.extendDir)).filter((e) => e !== 'cache' && e !== 'cache.lock'), output).toEqual([]);
    expect(output).not.toMatch(/pulls the base image from its registry/);
  });

  it('as uid 1000 with no capabilities, -backend docker through a TCP endpoint of the current dockerd: the in-place result', async () => {
    const forwarder = await startSocketForwarder(current!.docker.socketPath);
    try {
      const ws = await unprivilegedWorkspace();
      // the test dockerd has no bridge: RUN on the daemon host's network
      const result = await runExtender(ws, 'docker', { DOCKER_HOST: forwarder.address, HOME: ws.root, CNB_EXTEND_NETWORK: 'host' }, { uid: CNB_UID, gid: CNB_UID, executable: openExtender });
      const output = `${result.stdout}\n${result.stderr}`;
      expect(result.code, output).toBe(0);
      const entries = await readdir(join(ws.extendedDir, 'run'));
      expect(entries, output).toHaveLength(1);
      const outcome = await outcomeOf(join(ws.extendedDir, 'run', entries[0]!), 'docker-uid-1000');
      expect(treeDiff(reference.tree, outcome.tree), 'docker as uid 1000 vs inplace').toEqual(BUILDKIT_DIFFERENCES);
      expect(outcome.config).toEqual(reference.config);
      expect(forwarder.connections).toBeGreaterThan(0);
    } finally {
      await forwarder.close();
    }
  });

  it('as uid 1000, -backend inplace exits before touching anything and says why', async () => {
    const ws = await unprivilegedWorkspace();
    const before = (await readdir(ws.extendDir)).sort();
    const result = await runExtender(ws, 'inplace', { HOME: ws.root }, { uid: CNB_UID, gid: CNB_UID, executable: openExtender });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(102);
    expect(result.stderr).toMatch(/ERROR: failed to extend run image: the inplace backend cannot run with the privileges of this process: it runs as root \(uid 0\) and this process runs as uid 1000/);
    expect(result.stdout, output).not.toMatch(/Extending/);
    expect((await readdir(ws.extendDir)).sort()).toEqual(before);
    expect(await readdir(join(ws.extendedDir, 'run')).catch(() => [])).toEqual([]);
  });

  const failures = [
    {
      name: 'an unreachable address',
      host: async () => `tcp://127.0.0.1:${await freePort()}?tlsdir=${await tlsDir('tls-unreachable', { ca: buildkitd.tls.caFile, cert: buildkitd.tls.certFile, key: buildkitd.tls.keyFile })}`,
      message: /applying Dockerfile for e2e\/chmod: connecting to BuildKit at tcp:\/\/127\.0\.0\.1:\d+\?tlsdir=[^:]+: connect ECONNREFUSED/,
    },
    {
      name: 'a daemon certificate for another name',
      host: async () => `${buildkitd.tcpAddress}?tlsdir=${await tlsDir('tls-name', { ca: buildkitd.tls.caFile, cert: buildkitd.tls.certFile, key: buildkitd.tls.keyFile })}&servername=buildkitd.elsewhere.example`,
      message: /connecting to BuildKit at tcp:\S+: the daemon certificate is for another name .*buildkitd\.elsewhere\.example/,
    },
    {
      name: 'a CA that did not sign the daemon certificate',
      host: async () => {
        const pki = await makeTestPki(await mkdtemp(join(open, 'pki-')));
        return `${buildkitd.tcpAddress}?tlsdir=${await tlsDir('tls-ca', { ca: pki.otherCaFile, cert: buildkitd.tls.certFile, key: buildkitd.tls.keyFile })}`;
      },
      message: /connecting to BuildKit at tcp:\S+: the daemon certificate is not signed by the CA the client trusts/,
    },
  ];

  it.each(failures)('$name ends with exit 102, a clear error and nothing left', async ({ host, message }) => {
    const ws = await unprivilegedWorkspace();
    const result = await runAsCnb(ws, await host());
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(102);
    expect(output).toMatch(/ERROR: failed to extend run image: /);
    expect(output).toMatch(message);
    expect(output).not.toMatch(/connecting to BuildKit at .*connecting to BuildKit at/);
    await expectNothingLeft(ws, output);
  });

  it('a daemon that dies mid-solve ends with exit 102, a clear error and nothing left', async () => {
    const dir = await mkdtemp(join(open, 'dying-'));
    const daemon = await startBuildkitd(dir, { pki: await makeTestPki(await mkdtemp(join(open, 'pki-'))) });
    try {
      const ws = await createWorkspace({
        platformApi: '0.13',
        runImage: `${NO_ROUTE}/unreachable/run@${env.fixtures.run.manifestDigest}`,
        baseLayout: { from: env.fixtures.run.layoutDir, digest: env.fixtures.run.manifestDigest as Digest, mode: 'full' },
        extensions: [{ id: 'e2e/slow', run: `${HEAD}RUN echo started && sleep 60\n` }],
      });
      workspaces.push(ws);
      const running = runExtender(ws, 'buildkit', { BUILDKIT_HOST: daemon.unixAddress }, { executable: extender, onOutput: (text) => /started/.test(text) && daemon.daemon.child.kill('SIGKILL') });
      const result = await running;
      const output = `${result.stdout}\n${result.stderr}`;
      expect(result.code, output).toBe(102);
      expect(output).toMatch(/ERROR: failed to extend run image: applying Dockerfile for e2e\/slow: building \S+ with BuildKit at unix:\S+: lost the connection to the daemon during the build/);
      await expectNothingLeft(ws, output);
    } finally {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe("the release build's extender on a standalone buildkitd, settings from the command line", () => {
  let buildkitd: BuildkitdEndpoint;
  beforeAll(async () => {
    buildkitd = await waitForBuildkitd(env);
  });

  async function buildWorkspace(): Promise<Workspace> {
    const build = env.fixtures.build;
    const ws = await createWorkspace({
      platformApi: '0.13',
      buildImage: `${NO_ROUTE}/unreachable/build@${build.manifestDigest}`,
      baseLayout: { from: build.layoutDir, digest: build.manifestDigest as Digest, mode: 'full' },
      extensions: [
        { id: 'e2e/tools', build: `${HEAD}RUN echo tools > /tools\nUSER 1000:1000\n` },
        { id: 'e2e/more', build: `${HEAD}RUN cat /tools > /more\nUSER 1000:1000\n` },
      ],
    });
    workspaces.push(ws);
    return ws;
  }

  it('build kind over the unix socket (-backend-opt address), written as a layout and recorded in analyzed.toml', async () => {
    const ws = await buildWorkspace();
    const out = join(ws.root, 'extended-build');
    const result = await runExtender(ws, 'buildkit', {}, { kind: 'build', args: ['-backend-opt', `address=${buildkitd.unixAddress}`, '-extended-build-layout', out] });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    const analyzed = readFileSync(join(ws.layersDir, 'analyzed.toml'), 'utf8');
    const reference = /\[build-image\][^[]*reference = "([^"]+)"/.exec(analyzed)?.[1] ?? '';
    expect(reference, analyzed).toMatch(/@sha256:[0-9a-f]{64}$/);
    const image = (await readLayoutImage(out, reference, reference.split('@')[1] as Digest)).image;
    const last = await readLayerFiles(image.layers.at(-1)!.blob!);
    expect(last.get('more')?.toString()).toBe('tools\n');
  });

  it('build kind over mutual TLS (-backend-opt address and tls-dir), pushed to the loopback registry', async () => {
    const ws = await buildWorkspace();
    const tls = await mkdtemp(join(ws.root, 'tls-'));
    await cp(buildkitd.tls.caFile, join(tls, 'ca.pem'));
    await cp(buildkitd.tls.certFile, join(tls, 'cert.pem'));
    await cp(buildkitd.tls.keyFile, join(tls, 'key.pem'));
    const target = `${env.registry.host}/e2e/standalone-build:${Date.now()}`;
    const result = await runExtender(ws, 'buildkit', {}, {
      kind: 'build',
      args: ['-backend-opt', `address=${buildkitd.tcpAddress}`, '-backend-opt', `tls-dir=${tls}`, '-extended-build-image', target],
    });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.code, output).toBe(0);
    const reference = /\[build-image\][^[]*reference = "([^"]+)"/.exec(readFileSync(join(ws.layersDir, 'analyzed.toml'), 'utf8'))?.[1] ?? '';
    expect(reference).toMatch(new RegExp(`^${env.registry.host.replace(/\./g, '\\.')}/e2e/standalone-build@sha256:[0-9a-f]{64}$`));
    const inspected = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`], { encoding: 'utf8' });
    expect(inspected.status, inspected.stderr).toBe(0);
    expect((JSON.parse(inspected.stdout) as { Digest: string }).Digest).toBe(reference.split('@')[1]);
  });

  it('a type=local cache in the extend directory serves a second run on a pruned daemon', async () => {
    const token = randomBytes(6).toString('hex');
    const extensions: WorkspaceExtension[] = [{ id: 'e2e/cached', run: `${HEAD}RUN echo ${token} > /cached && sleep 2\nUSER 1000:1000\n` }];
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      platformApi: '0.13',
      runImage: `${NO_ROUTE}/unreachable/run@${run.manifestDigest}`,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions,
    });
    workspaces.push(ws);
    const opts = ['-backend-opt', `address=${buildkitd.unixAddress}`, '-backend-opt', 'cache-to=type=local,mode=max', '-backend-opt', 'cache-from=type=local'];
    const first = await runExtender(ws, 'buildkit', {}, { args: opts });
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    expect(readdirSync(join(ws.extendDir, 'cache', 'buildkit'))).toContain('index.json');
    spawnSync(buildkitd.buildctl, ['--addr', buildkitd.unixAddress, 'prune', '--all'], { stdio: 'ignore' });
    await rm(join(ws.extendedDir, 'run'), { recursive: true, force: true });
    const second = await runExtender(ws, 'buildkit', {}, { args: opts });
    const output = `${second.stdout}\n${second.stderr}`;
    expect(second.code, output).toBe(0);
    expect(output).toContain(`e2e/cached: using cached layer for RUN echo ${token} > /cached && sleep 2`);
  });
});

async function chownTree(path: string, id: number): Promise<void> {
  const done = spawnSync('chown', ['-R', `${id}:${id}`, path], { encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`chown -R ${id}:${id} ${path}: ${done.stderr}`);
}
