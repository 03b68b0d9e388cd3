/**
 * Cross-backend differential: the same run-kind extension Dockerfiles, applied
 * to the test environment's busybox run image through every backend, must give
 * the same filesystem and the same config after the normalisation of
 * `./index.ts` (see README.md). The in-place backend (unpack mode, no network)
 * is the reference.
 *
 * One `extend()` per backend with every Dockerfile as one extension of the
 * group (group order is the order below). Each Dockerfile works in paths of its
 * own (its `scopes`), so the final tree is compared per Dockerfile by those
 * paths, then as a whole.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForBuildkitd } from '@cnb-extender/testenv';
import { extend, isInstructionEvent, MemorySink, readLayoutImage, type ExtenderBackend, type ExtenderEvent, type ImageDescription } from '@cnb-extender/extender-core';
import { Renderer } from '@cnb-extender/extender-cli';
import { eventLineValidator } from '@cnb-extender/extender-cli/testing';
import { createWorkspace, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import { applyLayer, type Digest, type LayerSource } from '@cnb-extender/oci';
import { describeTree } from '@cnb-extender/oci/testing';
import { createInplaceBackend } from '@cnb-extender/backend-inplace';
import { createBuildahBackend } from '@cnb-extender/backend-buildah';
import { createDockerBackend } from '@cnb-extender/backend-docker';
import { BuildKitBackend } from '@cnb-extender/backend-buildkit';
import { normalizeConfig, normalizeTree, treeDiff, treeScope, type ComparableConfig } from './index.ts';

interface Case {
  /** Extension id (`e2e/<name>`). */
  name: string;
  run: string;
  context?: Record<string, string>;
  /** Paths (relative to the image root) this Dockerfile creates, changes or deletes. */
  scopes: string[];
}

const HEAD = 'ARG base_image\nFROM ${base_image}\nUSER root\n';
const TAIL = 'USER 1000:1000\n';

const CASES: Case[] = [
  {
    name: 'files',
    // create, modify and delete, also files of the base image
    run: `${HEAD}RUN mkdir -p /e2e/files && echo one > /e2e/files/one && echo two > /e2e/files/two && echo gone > /e2e/files/gone
RUN echo changed > /e2e/files/one && rm /e2e/files/gone && echo appended >> /etc/passwd && rm /etc/cnb-fixture
${TAIL}`,
    scopes: ['e2e/files', 'etc/passwd', 'etc/cnb-fixture'],
  },
  {
    name: 'replace',
    // a directory replaced by a file and a file by a directory, in the same and in a later layer
    run: `${HEAD}RUN mkdir -p /e2e/replace/dir/sub && echo a > /e2e/replace/dir/sub/a && echo f > /e2e/replace/file && mkdir /e2e/replace/same && echo s > /e2e/replace/same/s
RUN rm -r /e2e/replace/dir && echo now-a-file > /e2e/replace/dir && rm /e2e/replace/file && mkdir /e2e/replace/file && echo inside > /e2e/replace/file/inside
RUN rm -r /e2e/replace/same && mkdir /e2e/replace/same && echo fresh > /e2e/replace/same/fresh
${TAIL}`,
    scopes: ['e2e/replace'],
  },
  {
    name: 'hardlinks',
    run: `${HEAD}RUN mkdir -p /e2e/hard/a /e2e/hard/b && echo shared > /e2e/hard/a/one && ln /e2e/hard/a/one /e2e/hard/b/two && ln /e2e/hard/a/one /e2e/hard/three
RUN echo lone > /e2e/hard/lone && ln /e2e/hard/lone /e2e/hard/lone-link && rm /e2e/hard/lone
${TAIL}`,
    scopes: ['e2e/hard'],
  },
  {
    name: 'symlinks',
    run: `${HEAD}RUN mkdir -p /e2e/sym/dir && echo target > /e2e/sym/dir/target && ln -s dir/target /e2e/sym/relative && ln -s /e2e/sym/dir/target /e2e/sym/absolute && ln -s ../nowhere /e2e/sym/dangling && ln -s dir /e2e/sym/dirlink
RUN echo through > /e2e/sym/dirlink/written-through-link && ln -sfn /bin/busybox /e2e/sym/relative
${TAIL}`,
    scopes: ['e2e/sym'],
  },
  {
    name: 'modes',
    // setuid, setgid, sticky, plain chmod, and a chmod of a base file
    run: `${HEAD}RUN mkdir -p /e2e/modes && cp /bin/busybox /e2e/modes/suid && chmod 4755 /e2e/modes/suid && echo g > /e2e/modes/sgid && chmod 2750 /e2e/modes/sgid && mkdir /e2e/modes/sticky && chmod 1777 /e2e/modes/sticky && echo p > /e2e/modes/private && chmod 600 /e2e/modes/private && mkdir /e2e/modes/sgid-dir && chmod 2775 /e2e/modes/sgid-dir
RUN chmod 640 /etc/group
${TAIL}`,
    scopes: ['e2e/modes', 'etc/group'],
  },
  {
    name: 'chown',
    run: `${HEAD}RUN mkdir -p /e2e/chown/dir && echo mine > /e2e/chown/dir/file && chown -R 1000:1000 /e2e/chown/dir && echo half > /e2e/chown/half && chown 0:1000 /e2e/chown/half && ln -s dir/file /e2e/chown/link && chown -h 1000:1000 /e2e/chown/link
${TAIL}`,
    scopes: ['e2e/chown'],
  },
  {
    name: 'user-arg',
    // the core passes the intermediate image's user as user_id/group_id
    run: `ARG base_image
FROM \${base_image}
ARG user_id
ARG group_id
USER root
RUN mkdir -p /e2e/user && chown \${user_id}:\${group_id} /e2e/user && echo "args \${user_id}:\${group_id}" > /e2e/user/args
USER \${user_id}
RUN id -u > /e2e/user/uid && id -g > /e2e/user/gid && echo made-by-user > /e2e/user/made
USER root
RUN echo root-again > /e2e/user/by-root
USER \${user_id}:\${group_id}
`,
    scopes: ['e2e/user'],
  },
  {
    name: 'workdir-only',
    // a WORKDIR that no later instruction uses: Docker creates it all the same
    // (the Dockerfile reference: "even if it's not used in any subsequent
    // Dockerfile instruction"). buildah 1.28 creates none itself; the buildah
    // backend adds the layer, so every backend must give the same tree.
    run: `${HEAD}WORKDIR /e2e/wdonly/new
${TAIL}`,
    scopes: ['e2e/wdonly'],
  },
  {
    name: 'workdir',
    run: `${HEAD}WORKDIR /e2e/workdir/a/b
RUN echo here > here && pwd > pwd
WORKDIR c
RUN pwd > pwd
${TAIL}`,
    scopes: ['e2e/workdir'],
  },
  {
    name: 'copy',
    run: `${HEAD}COPY --chown=1000:1000 ctx/ /e2e/copy/owned/
COPY plain.txt /e2e/copy/plain.txt
COPY --chown=1000 plain.txt /e2e/copy/uid-only.txt
${TAIL}`,
    context: { 'ctx/a.txt': 'a from the context\n', 'ctx/sub/b.txt': 'b from the context\n', 'plain.txt': 'plain\n' },
    scopes: ['e2e/copy'],
  },
  {
    name: 'dockerignore',
    // the context's .dockerignore: what it excludes never reaches COPY (a name, a
    // directory with everything in it, ** at any depth); an exception brings a file
    // back from an excluded directory; the file itself is copied, as it does not list itself
    run: `${HEAD}COPY . /e2e/ignore/
${TAIL}`,
    context: {
      '.dockerignore': '# secrets stay home\nsecret.txt\nlogs\n!logs/keep.log\n**/*.tmp\n/build/\n',
      'secret.txt': 'secret\n',
      'app.txt': 'app\n',
      'logs/a.log': 'a\n',
      'logs/keep.log': 'keep\n',
      'src/main.txt': 'main\n',
      'src/deep/x.tmp': 'tmp\n',
      'build/out.txt': 'out\n',
    },
    scopes: ['e2e/ignore'],
  },
  {
    name: 'env-label',
    run: `${HEAD}ENV E2E_HOME=/e2e/env E2E_EMPTY=
ENV E2E_DERIVED=\${E2E_HOME}/bin:\${PATH}
LABEL io.buildpacks.rebasable=true e2e.label="with space" e2e.other=2
RUN mkdir -p \${E2E_HOME} && echo "$E2E_DERIVED" > \${E2E_HOME}/derived
${TAIL}`,
    scopes: ['e2e/env'],
  },
  {
    name: 'empty-dir',
    run: `${HEAD}RUN mkdir -p /e2e/empty/one /e2e/empty/private && chmod 700 /e2e/empty/private && mkdir /e2e/empty/emptied && echo x > /e2e/empty/emptied/x
RUN rm /e2e/empty/emptied/x
${TAIL}`,
    scopes: ['e2e/empty'],
  },
  {
    name: 'deep-tree',
    // a few hundred files in nested directories, some changed and removed later
    run: `${HEAD}RUN i=0; while [ $i -lt 300 ]; do d=/e2e/deep/d$((i % 7))/e$((i % 5))/f$((i % 3)); mkdir -p $d && echo $i > $d/file$i; i=$((i+1)); done
RUN for f in /e2e/deep/d1/*/*/file1*; do echo more >> $f; done && rm -r /e2e/deep/d2/e3 && rm -f /e2e/deep/d3/*/*/file2*
${TAIL}`,
    scopes: ['e2e/deep'],
  },
];

/**
 * Differences Docker's own builders show between each other, stated rather
 * than normalised away: `treeDiff(reference, backend)` lines per case and backend.
 */
const EXPECTED_DIFFERENCES: Record<string, Record<string, string[]>> = {
  copy: {
    // `COPY --chown=1000:1000 ctx/ /e2e/copy/owned/` creates the missing parent
    // /e2e/copy. BuildKit, buildah and the in-place backend give that parent the
    // --chown owner; dockerd's classic builder leaves it root-owned. Docker's
    // documentation does not say which owner implicitly created parents get, so
    // both are Docker behaviour; the classic builder is the odd one out.
    'docker-classic': ['+ e2e/copy directory 755 0:0', '- e2e/copy directory 755 1000:1000'],
  },
  dockerignore: {
    // The Docker CLI sends the classic builder a Dockerfile from outside the context
    // (an extension's always is) inside the context tar, and appends its name to the
    // context's .dockerignore to hide it from COPY; a .dockerignore that does not list
    // itself reaches COPY with that extra line. BuildKit reads the Dockerfile apart from
    // the context, and so do buildah and the in-place backend: the file as it is.
    'docker-classic': ['- e2e/ignore/.dockerignore file 644 0:0 68 08f138f029765f1f', '+ e2e/ignore/.dockerignore file 644 0:0 94 e9fa65c762b7eb5d'],
  },
};

/** Paths of the base that must survive unchanged: everything not in a case's scope. */
const ALL_SCOPES = CASES.flatMap((c) => c.scopes);

interface BackendSpec {
  /** `<kind> (<engine set>)`, e.g. `docker-buildkit (current)`; the reference is `inplace`. */
  id: string;
  /** The backend as EXPECTED_DIFFERENCES names it (`docker-classic`), whatever the engine. */
  kind: string;
  make: () => ExtenderBackend | Promise<ExtenderBackend>;
}

interface Outcome {
  /** Every event extend() emitted, in order. */
  events: ExtenderEvent[];
  tree: string[];
  /** Lines normalizeTree left out (runtime mount points). */
  dropped: string[];
  config: ComparableConfig;
  layers: number;
  ms: number;
}

const env = inject('testenv');
/** Every image backend on every engine set (Debian 12's Docker 20.10 and buildah 1.28, the current Docker 28 and buildah 1.43). */
const BACKENDS: BackendSpec[] = [
  { id: 'inplace', kind: 'inplace', make: () => createInplaceBackend({ root: 'unpack', network: false }) },
  ...env.engines.flatMap((engineSet): BackendSpec[] => {
    const { docker } = engineSet;
    const spec = (kind: string, make: () => ExtenderBackend): BackendSpec => ({ id: `${kind} (${engineSet.id})`, kind, make });
    return [
      spec('buildah', () => createBuildahBackend({ buildah: engineSet.buildah.executable })),
      spec('docker-classic', () => createDockerBackend({ host: docker.host, builder: 'classic' })),
      spec('docker-buildkit', () => createDockerBackend({ host: docker.host, builder: 'buildkit' })),
      spec('buildkit', () => new BuildKitBackend({ address: `docker://${docker.socketPath}` })),
      // the session tunnelled through Control/Session, as with a standalone buildkitd
      spec('buildkit-control', () => new BuildKitBackend({ address: `docker://${docker.socketPath}`, sessionTransport: 'control' })),
    ];
  }),
  // a standalone buildkitd over mutual TLS, as a shared Kubernetes deployment is reached; the base goes through the session
  // (last, and waited for only then: on a new machine its binaries are still being built while the others run)
  {
    id: 'buildkit (standalone)',
    kind: 'buildkit',
    make: async () => {
      const standalone = await waitForBuildkitd(env);
      return new BuildKitBackend({ address: standalone.tcpAddress, tls: { ...standalone.tls } });
    },
  },
];
const REFERENCE = 'inplace';

const outcomes = new Map<string, Outcome>();
const summary: string[] = [];
const temps: string[] = [];
const workspaces: Workspace[] = [];

function layerSource(image: ImageDescription, index: number, base: ImageDescription): LayerSource {
  const layer = index < base.layers.length ? base.layers[index]! : image.layers[index]!;
  const blob = layer.blob;
  if (!blob) throw new Error(`layer ${index} (${layer.descriptor.digest}) has no blob in the output or the base layout`);
  // layouts read from disk give file blobs
  if (blob.kind !== 'file') throw new Error(`layer ${index} (${layer.descriptor.digest}) is not a file blob`);
  return blob.path;
}

async function runBackend(spec: BackendSpec, base: ImageDescription): Promise<Outcome> {
  const run = env.fixtures.run;
  const extensions: WorkspaceExtension[] = CASES.map((c) => ({ id: `e2e/${c.name}`, run: c.run, ...(c.context ? { context: c.context } : {}) }));
  const ws = await createWorkspace({
    platformApi: '0.13',
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions,
  });
  workspaces.push(ws);
  const backend = await spec.make();
  const events = new MemorySink();
  const start = performance.now();
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend, events });
  const ms = performance.now() - start;
  if (result.outputDir === undefined) throw new Error(`${spec.id}: extend() wrote no run layout`);
  const out = (await readLayoutImage(result.outputDir, 'out')).image;
  for (let i = 0; i < base.layers.length; i++) {
    expect(out.layers[i]?.descriptor.digest, `${spec.id}: base layer ${i} kept`).toBe(base.layers[i]!.descriptor.digest);
  }
  const rootfs = await mkdtemp(join(tmpdir(), `e2e-${spec.id}-`));
  temps.push(rootfs);
  for (let i = 0; i < out.layers.length; i++) {
    await applyLayer(rootfs, layerSource(out, i, base), { absolutePaths: 'root', expectedDiffId: out.layers[i]!.diffId });
  }
  const raw = await describeTree(rootfs);
  const tree = normalizeTree(raw);
  const kept = new Set(tree);
  return { events: events.events, tree, dropped: raw.filter((l) => !kept.has(l)), config: normalizeConfig(out.config.config), layers: out.layers.length - base.layers.length, ms };
}

beforeAll(async () => {
  const run = env.fixtures.run;
  const base = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
  for (const spec of BACKENDS) outcomes.set(spec.id, await runBackend(spec, base));
});

afterAll(async () => {
  for (const ws of workspaces) await ws.remove();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
  const lines = [`cross-backend differential (reference ${REFERENCE}; ${CASES.length} Dockerfiles):`];
  for (const spec of BACKENDS) {
    const o = outcomes.get(spec.id);
    lines.push(`  ${spec.id.padEnd(28)} ${o ? `${String(o.layers).padStart(3)} new layers, ${String(o.tree.length).padStart(5)} paths, ${(o.ms / 1000).toFixed(1).padStart(5)} s; runtime paths left out: ${o.dropped.map((l) => l.split(' ', 1)[0]).join(', ') || 'none'}` : 'no result'}`);
  }
  lines.push(...summary);
  console.log(lines.join('\n'));
});

function outcome(id: string): Outcome {
  const o = outcomes.get(id);
  if (!o) throw new Error(`no result for backend ${id} (extend() failed in beforeAll)`);
  return o;
}

describe.each(CASES)('Dockerfile $name', (c) => {
  it.each(BACKENDS.filter((b) => b.id !== REFERENCE))(`gives the ${REFERENCE} tree through $id`, ({ id, kind }) => {
    const expected = treeScope(outcome(REFERENCE).tree, c.scopes);
    const actual = treeScope(outcome(id).tree, c.scopes);
    const diff = treeDiff(expected, actual);
    summary.push(`  ${c.name.padEnd(12)} × ${id.padEnd(28)} ${diff.length === 0 ? `equal (${actual.length} paths)` : `DIFFERENT (${diff.length} lines)`}`);
    const allowed = EXPECTED_DIFFERENCES[c.name]?.[kind] ?? [];
    if (allowed.length > 0 && diff.length > 0) summary[summary.length - 1] += ' (the stated difference)';
    expect(diff, `${c.name} through ${id} vs ${REFERENCE}`).toEqual(allowed);
    expect(expected.length).toBeGreaterThan(0);
  });
});

/**
 * What each backend reports of one extension: its instruction events as `<index> <type>`, between
 * `extension-started` and `extension-finished`. Whether a layer-making instruction is `cache-hit`
 * or `cache-miss` depends on each backend's cache (the columns share daemons, and one builds what
 * another built before), so both read `cache`.
 */
function eventTrace(events: readonly ExtenderEvent[], extensionId: string): string[] {
  const trace: string[] = [];
  for (const event of events) {
    if (event.type === 'extension-started' || event.type === 'extension-finished') {
      if (event.extensionId === extensionId) trace.push(event.type);
    } else if (isInstructionEvent(event) && event.extensionId === extensionId) {
      trace.push(`${event.index} ${event.type === 'cache-hit' || event.type === 'cache-miss' ? 'cache' : event.type}`);
    }
  }
  return trace;
}

/**
 * Differences in what backends report, stated with their reason: per case and backend kind,
 * the trace lines the reference has and the backend has not (`-`), and the other way round (`+`).
 */
const EXPECTED_EVENT_DIFFERENCES: Record<string, Record<string, string[]>> = {
  workdir: {
    // buildah makes no layer for a WORKDIR whose directory the next instruction runs in: it
    // creates the directory then, in that instruction's layer (the trees are the same). The
    // in-place backend, BuildKit and the classic builder write a layer for the WORKDIR itself.
    buildah: ['- 1 layer-written', '- 3 layer-written'],
  },
};

function traceDiff(expected: string[], actual: string[]): string[] {
  const out: string[] = [];
  const a = new Set(actual);
  const e = new Set(expected);
  for (const line of expected) if (!a.has(line)) out.push(`- ${line}`);
  for (const line of actual) if (!e.has(line)) out.push(`+ ${line}`);
  return out;
}

describe.each(CASES)('events of Dockerfile $name', (c) => {
  it.each(BACKENDS.filter((b) => b.id !== REFERENCE))(`are the ${REFERENCE} events, in its order, through $id`, ({ id, kind }) => {
    const extensionId = `e2e/${c.name}`;
    const expected = eventTrace(outcome(REFERENCE).events, extensionId);
    const actual = eventTrace(outcome(id).events, extensionId);
    const allowed = EXPECTED_EVENT_DIFFERENCES[c.name]?.[kind] ?? [];
    const diff = traceDiff(expected, actual);
    expect(diff, `${c.name} through ${id} vs ${REFERENCE}: ${actual.join(', ')}`).toEqual(allowed);
    // and in the same order, the stated lines left out
    const stated = new Set(allowed.map((line) => line.slice(2)));
    expect(actual.filter((line) => !stated.has(line))).toEqual(expected.filter((line) => !stated.has(line)));
    expect(expected[0]).toBe('extension-started');
    expect(expected.at(-1)).toBe('extension-finished');
  });
});

describe('events', () => {
  const validate = eventLineValidator();

  it.each(BACKENDS)('every event of $id, as a -log-format json line, validates against events.schema.json', ({ id }) => {
    const out: string[] = [];
    const writer = { write: (chunk: string) => out.push(chunk) };
    const renderer = new Renderer({ stdout: writer, stderr: writer, level: 'debug', format: 'json', color: false, progress: false });
    for (const event of outcome(id).events) renderer.emit(event);
    renderer.close();
    const lines = out.join('').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(CASES.length * 4);
    const problems = lines.flatMap((line) => validate(line));
    expect(problems).toEqual([]);
  });

  it.each(BACKENDS)('$id reports each instruction with the text of the Dockerfile and each new layer once', ({ id }) => {
    const o = outcome(id);
    const layers = o.events.filter((e) => e.type === 'layer-written');
    expect(layers).toHaveLength(o.layers);
    for (const c of CASES) {
      const started = o.events.flatMap((e) => (e.type === 'instruction-started' && e.extensionId === `e2e/${c.name}` ? [e.instruction] : []));
      const lines = c.run.split('\n').filter((l) => l !== '');
      const after = lines.slice(lines.findIndex((l) => l.startsWith('FROM')) + 1);
      expect(started, c.name).toEqual(after);
    }
  });
});

describe('whole image', () => {
  it('the reference tree holds what the Dockerfiles say', () => {
    const tree = outcome(REFERENCE).tree;
    const line = (path: string) => tree.find((l) => l.split(' ', 1)[0]?.replace(/\/$/, '') === path) ?? `(no ${path})`;
    expect(line('e2e/files/one')).toMatch(/^e2e\/files\/one file 644 0:0 8 /);
    expect(tree.some((l) => l.startsWith('etc/cnb-fixture'))).toBe(false);
    expect(line('e2e/replace/dir')).toMatch(/ file /);
    expect(line('e2e/replace/file')).toMatch(/ directory /);
    expect(line('e2e/wdonly/new')).toMatch(/ directory 755 0:0$/);
    expect(line('e2e/hard/b/two')).toContain('hardlink-of=e2e/hard/a/one');
    expect(line('e2e/sym/absolute')).toContain('-> /e2e/sym/dir/target');
    expect(line('e2e/sym/relative')).toContain('-> /bin/busybox');
    expect(line('e2e/modes/suid')).toMatch(/ file 4755 /);
    expect(line('e2e/modes/sgid')).toMatch(/ file 2750 /);
    expect(line('e2e/chown/dir/file')).toMatch(/ 1000:1000 /);
    expect(line('e2e/user/made')).toMatch(/ 1000:1000 /);
    expect(line('e2e/copy/owned/sub/b.txt')).toMatch(/ 1000:1000 /);
    expect(line('e2e/empty/private')).toMatch(/ directory 700 /);
    expect(tree.filter((l) => l.startsWith('e2e/deep/') && l.includes(' file ')).length).toBeGreaterThan(200);
  });

  it('the reference tree has the dockerignore context without what its .dockerignore excludes', () => {
    const paths = outcome(REFERENCE)
      .tree.filter((l) => l.startsWith('e2e/ignore/'))
      .map((l) => l.split(' ', 1)[0]!.replace(/\/$/, ''));
    expect(paths).toEqual(['e2e/ignore/.dockerignore', 'e2e/ignore/app.txt', 'e2e/ignore/logs', 'e2e/ignore/logs/keep.log', 'e2e/ignore/src', 'e2e/ignore/src/deep', 'e2e/ignore/src/main.txt']);
  });

  it.each(BACKENDS.filter((b) => b.id !== REFERENCE))(`everything outside the Dockerfiles' paths is the base, as with ${REFERENCE}: $id`, ({ id }) => {
    const outside = (tree: string[]) => tree.filter((l) => !ALL_SCOPES.some((s) => l.startsWith(`${s} `) || l.startsWith(`${s}/`)));
    const diff = treeDiff(outside(outcome(REFERENCE).tree), outside(outcome(id).tree));
    summary.push(`  ${'(rest)'.padEnd(12)} × ${id.padEnd(28)} ${diff.length === 0 ? 'equal' : `DIFFERENT (${diff.length} lines)`}`);
    expect(diff).toEqual([]);
  });

  it.each(BACKENDS.filter((b) => b.id !== REFERENCE))(`the config (Env, User, WorkingDir, Labels, Entrypoint, Cmd) equals ${REFERENCE}'s: $id`, ({ id }) => {
    const equal = JSON.stringify(outcome(id).config) === JSON.stringify(outcome(REFERENCE).config);
    summary.push(`  ${'(config)'.padEnd(12)} × ${id.padEnd(28)} ${equal ? 'equal' : 'DIFFERENT'}`);
    expect(outcome(id).config).toEqual(outcome(REFERENCE).config);
  });

  it('the reference config has the extensions\' ENV, LABEL, USER and WORKDIR', () => {
    const config = outcome(REFERENCE).config;
    expect(config.User).toBe('1000:1000');
    expect(config.WorkingDir).toBe('/e2e/workdir/a/b/c');
    expect(config.Env).toContain('E2E_HOME=/e2e/env');
    expect(config.Env).toContain('E2E_EMPTY=');
    expect(config.Labels['e2e.label']).toBe('with space');
  });
});
