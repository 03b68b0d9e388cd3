/**
 * The in-place backend where it is meant to run: the extender itself inside a
 * container of the image it extends, started the way a platform starts it.
 *
 * The "container" is a private mount and pid namespace chrooted into an
 * overlay of an unpacked Debian image (the image read-only below, the
 * container's changes in an upper dir of its own, as a container runtime
 * keeps them), with the platform's volumes bind-mounted at /layers,
 * /workspace, /platform and /kaniko, /proc and /dev, and the repository
 * bind-mounted read-only at its own path: the extender runs from source on
 * the repository's Node, which needs the image's glibc. The CLI cannot detect
 * this stand-in for a container runtime, so CNB_EXTEND_IN_CONTAINER=true tells
 * it, as an operator would for a runtime it does not recognise.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLayoutImage } from '@cnb-extender/extender-core';
import { copyLayoutImage, createWorkspace, readLayerPaths, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import { applyLayer, decompressLayer, openLayerSource, type Descriptor, type Digest } from '@cnb-extender/oci';
import { ensureDebianLayouts, type DebianLayouts } from '@cnb-extender/testenv';
import { eventLineValidator } from '@cnb-extender/extender-cli/testing';

const repo = resolve(import.meta.dirname, '..', '..');
const EXTENDER = join(repo, 'apps', 'extender', 'src', 'main.ts');
const PLATFORM_API = '0.13';
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const scratch = mkdtempSync(join(tmpdir(), 'inplace-sandbox-'));
const validateLine = eventLineValidator();

/**
 * Runs inside `unshare --mount --pid --fork`: the overlay as the container's
 * root, the volumes, the repository (read-only: nothing may write there),
 * then chroot with the umask a container runtime starts with. The namespace
 * and its mounts go away with its last process.
 */
const SANDBOX = `set -e
lower=$1 upper=$2 work=$3 root=$4 repo=$5 layers=$6 app=$7 platform=$8 extend=$9
shift 9
mkdir -p "$upper" "$work" "$root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mount --bind "$layers" "$root/layers"
mount --bind "$app" "$root/workspace"
mount --bind "$platform" "$root/platform"
mount --bind "$extend" "$root/kaniko"
mount --rbind "$repo" "$root$repo"
mount -o remount,bind,ro "$root$repo"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
umask 022
exec chroot "$root" "$@"
`;

/** Stand-in for the lifecycle's build phase in the build image: records who it runs as and what it was given. */
const BUILDER = `#!/bin/sh
set -e
out="$CNB_LAYERS_DIR/standin"
mkdir -p "$out"
id -u > "$out/uid"
id -g > "$out/gid"
id -G > "$out/groups"
printf '%s\\n' "$HOME" > "$out/home"
printf '%s\\n' "$USER" > "$out/user"
env > "$out/env"
if command -v tool > /dev/null; then tool > "$out/tool"; fi
exit "\${STANDIN_BUILDER_EXIT:-0}"
`;

interface Volumes {
  layers: string;
  app: string;
  platform: string;
  extend: string;
}

/** One line of the extender's `-log-format json` output. */
interface LogRecord {
  level: string;
  msg: string;
  event?: string;
  key?: string;
  digest?: string;
  diffId?: string;
  instruction?: string;
}

interface SandboxRun {
  /** Exit code, or null when a signal ended the sandbox. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The container's state (upper and work dirs of its overlay). */
  container: string;
  /** The container's changes to the image's filesystem (overlay upper dir). */
  upper: string;
  events: LogRecord[];
}

let sandboxes = 0;

/** Runs the extender from source in a fresh container of `image` (overlay lower dirs) with `volumes` mounted. */
function runExtenderInSandbox(image: string, volumes: Volumes, args: string[], env: Record<string, string> = {}): Promise<SandboxRun> {
  const dir = join(scratch, `container-${++sandboxes}`);
  mkdirSync(dir);
  const upper = join(dir, 'upper');
  const argv = [
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--fork',
    '--kill-child',
    '--',
    'sh',
    '-c',
    SANDBOX,
    'sandbox',
    image,
    upper,
    join(dir, 'work'),
    join(dir, 'root'),
    repo,
    volumes.layers,
    volumes.app,
    volumes.platform,
    volumes.extend,
    process.execPath,
    EXTENDER,
    '-log-format',
    'json',
    // cache misses are debug events
    '-log-level',
    'debug',
    ...args,
  ];
  // what pack passes: no -kind for build, the CNB user, and no extend dir (/kaniko is the default)
  const childEnv = { PATH: IMAGE_PATH, CNB_PLATFORM_API: PLATFORM_API, CNB_EXTEND_IN_CONTAINER: 'true', CNB_USER_ID: '1000', CNB_GROUP_ID: '1000', ...env };
  return new Promise((done, fail) => {
    const child = spawn('unshare', argv, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      const events = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogRecord);
      // every JSON line, on either stream, is one docs/events.md describes
      const problems = `${stdout}\n${stderr}`
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => validateLine(line));
      if (problems.length > 0) fail(new Error(`JSON lines that events.schema.json refuses:\n${problems.join('\n')}`));
      done({ code, signal, stdout, stderr, container: dir, upper, events });
    });
  });
}

const unpackedLayers = new Map<string, Promise<string>>();

/**
 * A layer unpacked into a directory of its own, once per digest and shared by
 * the images that have it, as an overlay snapshotter keeps layers. Only the
 * first layer of an image may delete anything: a whiteout has no meaning in a
 * directory of its own (overlayfs has another format for it).
 */
function unpackedLayer(blobPath: string, digest: string, first: boolean): Promise<string> {
  let dir = unpackedLayers.get(digest);
  if (!dir) {
    dir = (async () => {
      if (!first && (await readLayerPaths({ kind: 'file', path: blobPath })).some((p) => p.split('/').at(-1)!.startsWith('.wh.'))) {
        throw new Error(`layer ${digest} deletes files; the sandbox cannot stack it as a directory of its own`);
      }
      const target = join(scratch, 'layers', digest.replace(':', '-'));
      mkdirSync(target, { recursive: true });
      chmodSync(target, 0o755);
      await applyLayer(target, blobPath, { absolutePaths: 'root' });
      return target;
    })();
    unpackedLayers.set(digest, dir);
  }
  return dir;
}

/**
 * The overlay `lowerdir` of a container of an image: a directory of the
 * sandbox's own (mount points, and `files`), then the image's layers, top first.
 */
async function containerImage(layoutDir: string, digest: string, name: string, files: Record<string, { text: string; mode: number }> = {}): Promise<string> {
  const { image } = await readLayoutImage(layoutDir, name, digest as Digest);
  const layers = await Promise.all(
    image.layers.map((layer, i) => {
      if (layer.blob?.kind !== 'file') throw new Error(`${layoutDir}: layer ${layer.descriptor.digest} has no blob`);
      return unpackedLayer(layer.blob.path, layer.descriptor.digest, i === 0);
    }),
  );
  const own = join(scratch, name);
  mkdirSync(own);
  chmodSync(own, 0o755);
  // /layers, /workspace, /proc and /dev are part of the Debian images; the other mount points are not
  for (const dir of ['platform', 'kaniko', repo.slice(1)]) mkdirSync(join(own, dir), { recursive: true });
  for (const [path, { text, mode }] of Object.entries(files)) {
    mkdirSync(join(own, path, '..'), { recursive: true });
    writeFileSync(join(own, path), text);
    chmodSync(join(own, path), mode);
  }
  return [own, ...layers.reverse()].join(':');
}

/** Every path below `dir` with type, mode, owner and content hash (or link target), sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const visit = (abs: string, rel: string): void => {
    for (const name of readdirSync(abs).sort()) {
      const path = join(abs, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path);
      const owner = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.push(`${r}/ ${owner}`);
        visit(path, r);
      } else if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(path)}`);
      else if (st.isFile()) out.push(`${r} ${owner} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`);
      else out.push(`${r} special ${st.mode.toString(8)} ${st.rdev}`);
    }
  };
  visit(dir, '');
  return out;
}

/** The paths below `dir`, sorted (directories with a trailing `/`). */
function pathsBelow(dir: string): string[] {
  return listTree(dir).map((line) => line.split(' ')[0]!);
}

function envFile(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}

async function sha256Of(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of source) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

interface CacheMeta {
  version: number;
  createdMs: number;
  empty: boolean;
  diffId?: string;
  descriptor?: Descriptor;
  blob?: string;
}

/**
 * Checks every entry of the in-place layer cache (`<extend>/cache/inplace/<key>/`, see
 * libs/backend-inplace/src/cache.ts, which has no verification of its own): the key is a
 * sha256, `meta.json` is complete, a layer's blob has the recorded size and digest and
 * decompresses to the recorded diff id, and nothing else is in the entry. Returns the
 * entries by key.
 */
async function verifyCache(extendDir: string): Promise<Map<string, CacheMeta & { blobPath?: string }>> {
  const dir = join(extendDir, 'cache', 'inplace');
  const entries = new Map<string, CacheMeta & { blobPath?: string }>();
  for (const key of readdirSync(dir).sort()) {
    expect(key, `cache entry name ${key}`).toMatch(/^[0-9a-f]{64}$/);
    const entryDir = join(dir, key);
    const meta = JSON.parse(readFileSync(join(entryDir, 'meta.json'), 'utf8')) as CacheMeta;
    expect(meta.version, key).toBe(1);
    expect(Number.isFinite(meta.createdMs), key).toBe(true);
    if (meta.empty) {
      expect(readdirSync(entryDir), key).toEqual(['meta.json']);
      entries.set(key, meta);
      continue;
    }
    expect(meta.blob, key).toMatch(/^layer\.tar(\.gz|\.zst)?$/);
    expect(readdirSync(entryDir).sort(), key).toEqual([meta.blob, 'meta.json'].sort());
    const blobPath = join(entryDir, meta.blob!);
    expect(statSync(blobPath).size, key).toBe(meta.descriptor!.size);
    expect(await sha256Of(createReadStream(blobPath)), key).toBe(meta.descriptor!.digest);
    expect(await sha256Of((await decompressLayer(openLayerSource(blobPath))).tar), key).toBe(meta.diffId);
    entries.set(key, { ...meta, blobPath });
  }
  return entries;
}

function eventsOf(run: SandboxRun, type: string): LogRecord[] {
  return run.events.filter((e) => e.event === type);
}

/** Output of a failed run, for the assertion message. */
function transcript(run: SandboxRun): string {
  return `exit ${run.code ?? run.signal}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

let debian: DebianLayouts;
/** Overlay lower dirs of the Debian build image (with the stand-in builder) and run image. */
let buildImage: string;
let runImage: string;

beforeAll(async () => {
  if (!process.execPath.startsWith(`${repo}/`)) throw new Error(`the sandbox runs ${process.execPath} through the repository mount, but it is not inside ${repo}`);
  debian = await ensureDebianLayouts();
  [buildImage, runImage] = await Promise.all([
    containerImage(debian.build.layoutDir, debian.build.manifestDigest, 'debian-build', { 'cnb/lifecycle/builder': { text: BUILDER, mode: 0o755 } }),
    containerImage(debian.run.layoutDir, debian.run.manifestDigest, 'debian-run'),
  ]);
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const TOOLS: WorkspaceExtension = {
  id: 'e2e/tools',
  build: `ARG base_image
FROM \${base_image}
ARG tool_version
USER root
RUN mkdir -p /opt/tools/bin && printf '#!/bin/sh\\necho tool %s\\n' "$tool_version" > /opt/tools/bin/tool && chmod 755 /opt/tools/bin/tool && id -u > /opt/tools/installed-by && echo ran >> /workspace/run-log
COPY tool.conf /opt/tools/etc/tool.conf
ENV PATH=/opt/tools/bin:$PATH TOOL_OPTS="--mode=fast --level=3"
USER 1000:1000
`,
  config: '[[build.args]]\nname = "tool_version"\nvalue = "1.2.3"\n',
  context: { 'tool.conf': 'answer = 42\n' },
};

const SYSTEM: WorkspaceExtension = {
  id: 'e2e/system',
  build: `ARG base_image
FROM \${base_image}
USER root
RUN echo "extended by e2e/system" > /etc/e2e-system
ENV E2E_SYSTEM=on
USER cnb
`,
};

/** What the two build Dockerfiles change in the image, as the container's upper dir shows it. */
const BUILD_CHANGES = [
  'etc/',
  'etc/e2e-system',
  'opt/',
  'opt/tools/',
  'opt/tools/bin/',
  'opt/tools/bin/tool',
  'opt/tools/etc/',
  'opt/tools/etc/tool.conf',
  'opt/tools/installed-by',
];

/** Paths no extension layer may hold: the volumes, the repository mount and the runtime's mounts. */
function outsideImage(): string[] {
  return ['layers', 'workspace', 'platform', 'kaniko', repo.slice(1).split('/')[0]!, 'proc', 'dev', 'sys'];
}

describe('the extender in a sandbox of the Debian build image (in place, root /)', () => {
  it('build kind: extends / in place, then runs the build phase as 1000:1000 with the extended env; its exit code is the extender\'s', async () => {
    const ws = await createWorkspace({
      tempRoot: scratch,
      platformApi: PLATFORM_API,
      extensions: [TOOLS, SYSTEM],
      // not resolvable: the base must come from the extend dir, as the restorer left it
      buildImage: `registry.invalid/debian/build@${debian.build.manifestDigest}`,
      baseLayout: { from: debian.build.layoutDir, digest: debian.build.manifestDigest as Digest, mode: 'full' },
      app: { 'app.txt': 'the app\n' },
    });
    mkdirSync(join(ws.platformDir, 'env'));
    writeFileSync(join(ws.platformDir, 'env', 'BP_SETTING'), 'x=y');
    const volumes: Volumes = { layers: ws.layersDir, app: ws.appDir, platform: ws.platformDir, extend: ws.extendDir };
    const before = { app: listTree(ws.appDir), platform: listTree(ws.platformDir), layers: listTree(ws.layersDir) };

    const first = await runExtenderInSandbox(buildImage, volumes, [], { STANDIN_BUILDER_EXIT: '0' });
    expect(first.code, transcript(first)).toBe(0);
    const standin = join(ws.layersDir, 'standin');
    const report = (name: string): string => readFileSync(join(standin, name), 'utf8').trim();
    expect([report('uid'), report('gid'), report('groups'), report('home'), report('user')]).toEqual(['1000', '1000', '1000', '/home/cnb', 'cnb']);
    const env = envFile(readFileSync(join(standin, 'env'), 'utf8'));
    expect(env.get('TOOL_OPTS')).toBe('--mode=fast --level=3');
    expect(env.get('E2E_SYSTEM')).toBe('on');
    expect(env.get('PATH')).toBe(`/opt/tools/bin:${IMAGE_PATH}`);
    expect(env.get('CNB_STACK_ID')).toBe('io.cnb-extender.testenv.debian'); // the base image's Env stays
    expect(Object.fromEntries([...env].filter(([k]) => ['CNB_LAYERS_DIR', 'CNB_APP_DIR', 'CNB_PLATFORM_DIR', 'CNB_USER_ID', 'CNB_GROUP_ID'].includes(k)))).toEqual({
      CNB_LAYERS_DIR: '/layers',
      CNB_APP_DIR: '/workspace',
      CNB_PLATFORM_DIR: '/platform',
      CNB_USER_ID: '1000',
      CNB_GROUP_ID: '1000',
    });
    // the RUN ran as root with the extend-config arg, the builder found the tool on the extended PATH
    expect(report('tool')).toBe('tool 1.2.3');
    const tool = statSync(join(first.upper, 'opt/tools/bin/tool'));
    expect([tool.uid, tool.gid, tool.mode & 0o7777]).toEqual([0, 0, 0o755]);
    expect(readFileSync(join(first.upper, 'opt/tools/installed-by'), 'utf8')).toBe('0\n');
    expect(readFileSync(join(first.upper, 'opt/tools/etc/tool.conf'), 'utf8')).toBe('answer = 42\n');
    expect(readFileSync(join(first.upper, 'etc/e2e-system'), 'utf8')).toBe('extended by e2e/system\n');
    // the container's changes are the Dockerfiles' and nothing else (no work dirs, no mount points, no repository files)
    expect(pathsBelow(first.upper)).toEqual(BUILD_CHANGES);
    expect(eventsOf(first, 'cache-miss')).toHaveLength(3);
    expect(eventsOf(first, 'cache-hit')).toHaveLength(0);

    // the volumes: a RUN writing to /workspace writes to the volume (never to a layer); /platform untouched;
    // <layers> handed to the CNB user, its inputs unchanged, the builder's report added
    expect(listTree(ws.appDir)).toEqual([...before.app, 'run-log 644 0:0 ' + createHash('sha256').update('ran\n').digest('hex').slice(0, 16)].sort());
    expect(listTree(ws.platformDir)).toEqual(before.platform);
    const ownedByCnb = (lines: string[]) => lines.map((l) => l.replace(/ 0:0( |$)/, ' 1000:1000$1'));
    expect(listTree(ws.layersDir).filter((l) => !l.startsWith('standin'))).toEqual(ownedByCnb(before.layers));
    expect(statSync(ws.layersDir).uid).toBe(1000);
    expect(readdirSync(ws.extendDir)).toEqual(['cache']);
    expect(readdirSync(join(ws.extendDir, 'cache')).sort()).toEqual(['base', 'inplace']);

    // the layers cached for the build image hold the Dockerfiles' changes, never a volume, the repository or a runtime mount
    const entries = await verifyCache(ws.extendDir);
    expect(entries.size).toBe(3);
    const layerPaths: string[] = [];
    for (const entry of entries.values()) if (entry.blobPath) layerPaths.push(...(await readLayerPaths({ kind: 'file', path: entry.blobPath })));
    expect(layerPaths).toEqual(expect.arrayContaining(['opt/tools/bin/tool', 'opt/tools/etc/tool.conf', 'etc/e2e-system']));
    for (const top of outsideImage()) expect(layerPaths.filter((p) => p === top || p.startsWith(`${top}/`)), top).toEqual([]);

    // a new container of the same image, same volumes: served from the cache (the RUN did not run again),
    // same result, and the builder's exit code is the extender's
    rmSync(standin, { recursive: true });
    const second = await runExtenderInSandbox(buildImage, volumes, [], { STANDIN_BUILDER_EXIT: '51' });
    expect(second.code, transcript(second)).toBe(51);
    expect(eventsOf(second, 'cache-hit').map((e) => e.key).sort()).toEqual([...entries.keys()]);
    expect(eventsOf(second, 'cache-miss')).toHaveLength(0);
    expect(readFileSync(join(ws.appDir, 'run-log'), 'utf8')).toBe('ran\n');
    expect([report('uid'), report('gid'), report('home'), report('user'), report('tool')]).toEqual(['1000', '1000', '/home/cnb', 'cnb', 'tool 1.2.3']);
    expect(envFile(readFileSync(join(standin, 'env'), 'utf8')).get('TOOL_OPTS')).toBe('--mode=fast --level=3');
    expect(listTree(second.upper)).toEqual(listTree(first.upper));
    expect(readdirSync(ws.extendDir)).toEqual(['cache']);
    expect(listTree(ws.platformDir)).toEqual(before.platform);
    await ws.remove();
  }, 300_000);
});

const CONCURRENT: WorkspaceExtension = {
  id: 'e2e/concurrent',
  build: `ARG base_image
FROM \${base_image}
USER root
RUN mkdir -p /opt/concurrent && echo build > /opt/concurrent/kind && seq 1 5000 > /opt/concurrent/numbers
COPY marker /opt/concurrent/marker
USER 1000:1000
`,
  run: `ARG base_image
FROM \${base_image}
USER root
RUN mkdir -p /opt/concurrent && echo run > /opt/concurrent/kind && seq 1 5000 > /opt/concurrent/numbers
COPY marker /opt/concurrent/marker
USER 1000:1000
`,
  context: { marker: 'shared context\n' },
};

const ROUNDS = 20;

describe('build and run kind extenders sharing one extend dir', () => {
  it(`run concurrently ${ROUNDS} times without a failure, with consistent layers and intact cache entries`, async () => {
    // one volume for the extend dir, as pack mounts for both containers, with both base images the restorer left there
    const extendDir = join(scratch, 'shared-extend');
    await copyLayoutImage(debian.build.layoutDir, debian.build.manifestDigest as Digest, join(extendDir, 'cache', 'base', debian.build.manifestDigest), 'full');
    await copyLayoutImage(debian.run.layoutDir, debian.run.manifestDigest as Digest, join(extendDir, 'cache', 'base', debian.run.manifestDigest), 'sparse');
    const workspaces: Workspace[] = [];
    const workspace = async (): Promise<Workspace> => {
      const ws = await createWorkspace({
        tempRoot: scratch,
        platformApi: PLATFORM_API,
        extensions: [CONCURRENT],
        buildImage: `registry.invalid/debian/build@${debian.build.manifestDigest}`,
        runImage: `registry.invalid/debian/run@${debian.run.manifestDigest}`,
      });
      workspaces.push(ws);
      return ws;
    };
    const volumesOf = (ws: Workspace): Volumes => ({ layers: ws.layersDir, app: ws.appDir, platform: ws.platformDir, extend: extendDir });

    const rounds: { build: SandboxRun; run: SandboxRun; runWs: Workspace }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [buildWs, runWs] = [await workspace(), await workspace()];
      const [build, run] = await Promise.all([
        runExtenderInSandbox(buildImage, volumesOf(buildWs), []),
        runExtenderInSandbox(runImage, volumesOf(runWs), ['-kind', 'run']),
      ]);
      expect(build.code, `round ${round + 1}, build kind: ${transcript(build)}`).toBe(0);
      expect(run.code, `round ${round + 1}, run kind: ${transcript(run)}`).toBe(0);
      expect(readFileSync(join(buildWs.layersDir, 'standin', 'uid'), 'utf8'), `round ${round + 1}`).toBe('1000\n');
      rounds.push({ build, run, runWs });
      // the containers' upper dirs are no longer needed (and each holds a copy of what the RUNs wrote)
      rmSync(build.container, { recursive: true, force: true });
      rmSync(run.container, { recursive: true, force: true });
    }

    // round 1 filled the cache, every later round was served from it
    const [firstRound, ...later] = rounds;
    for (const kind of ['build', 'run'] as const) {
      expect(eventsOf(firstRound![kind], 'cache-miss'), kind).toHaveLength(2);
      for (const [i, r] of later.entries()) {
        expect(eventsOf(r[kind], 'cache-miss'), `round ${i + 2}, ${kind}`).toHaveLength(0);
        expect(eventsOf(r[kind], 'cache-hit'), `round ${i + 2}, ${kind}`).toHaveLength(2);
      }
      // every round got the same layers
      const layersOf = (r: SandboxRun) => eventsOf(r, 'layer-written').map((e) => `${e.digest} ${e.diffId}`);
      expect(layersOf(firstRound![kind])).toHaveLength(2);
      for (const [i, r] of later.entries()) expect(layersOf(r[kind]), `round ${i + 2}, ${kind}`).toEqual(layersOf(firstRound![kind]));
    }

    // every run-kind output is a valid layout with the same image: base layers unchanged, then the same new layers,
    // whose blobs are there and match their digests
    const baseRun = (await readLayoutImage(debian.run.layoutDir, 'base', debian.run.manifestDigest as Digest)).image;
    const outputs: string[] = [];
    for (const [i, { runWs }] of rounds.entries()) {
      const runDir = join(runWs.extendedDir, 'run');
      const names = readdirSync(runDir);
      expect(names, `round ${i + 1}`).toHaveLength(1);
      const dir = join(runDir, names[0]!);
      const { image } = await readLayoutImage(dir, 'extended');
      expect(names[0]).toBe(image.manifestDigest);
      expect(image.layers.slice(0, baseRun.layers.length).map((l) => l.descriptor.digest)).toEqual(baseRun.layers.map((l) => l.descriptor.digest));
      const added = image.layers.slice(baseRun.layers.length);
      expect(added, `round ${i + 1}`).toHaveLength(2);
      for (const layer of added) {
        expect(layer.blob?.kind, `round ${i + 1}`).toBe('file');
        expect(await sha256Of(createReadStream((layer.blob as { path: string }).path))).toBe(layer.descriptor.digest);
      }
      expect(image.config.config?.User).toBe('1000:1000');
      outputs.push(dir);
    }
    const manifests = await Promise.all(outputs.map(async (dir) => (await readLayoutImage(dir, 'extended')).image.manifestDigest));
    expect(new Set(manifests).size, 'one image in every round').toBe(1);
    // a tool of its own accepts the layout (skopeo's oci: transport cannot take a path with ':')
    const inspectable = join(scratch, 'inspect-run-output');
    symlinkSync(outputs[0]!, inspectable);
    const inspected = await new Promise<{ code: number | null; out: string; err: string }>((done, fail) => {
      const child = spawn('skopeo', ['inspect', `oci:${inspectable}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.on('error', fail);
      child.on('close', (code) => done({ code, out, err }));
    });
    expect(inspected.code, inspected.err).toBe(0);
    const first = (await readLayoutImage(outputs[0]!, 'extended')).image;
    expect((JSON.parse(inspected.out) as { Layers: string[] }).Layers).toEqual(first.layers.map((l) => l.descriptor.digest));

    // the cache: every entry intact, exactly the entries the runs used, and nothing else left in the extend dir
    const entries = await verifyCache(extendDir);
    const used = new Set(rounds.flatMap((r) => [...eventsOf(r.build, 'cache-miss'), ...eventsOf(r.build, 'cache-hit'), ...eventsOf(r.run, 'cache-miss'), ...eventsOf(r.run, 'cache-hit')].map((e) => e.key!)));
    expect([...entries.keys()]).toEqual([...used].sort());
    expect(entries.size).toBe(4);
    expect(readdirSync(extendDir)).toEqual(['cache']);
    expect(readdirSync(join(extendDir, 'cache')).sort()).toEqual(['base', 'inplace']);
    expect(readdirSync(join(extendDir, 'cache', 'base')).sort()).toEqual([debian.build.manifestDigest, debian.run.manifestDigest].sort());
    expect(existsSync(join(extendDir, 'work'))).toBe(false);
    for (const ws of workspaces) await ws.remove();
  }, 600_000);
});
