import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import { readLayerPaths, testEnv } from '@cnb-extender/extender-core/testing';
import { OciLayout, type Digest } from '@cnb-extender/oci';
import { attributeLayerInstructions, attributeLayers, layerInstructions, stepIndex, stepInstruction, toolStep } from './instructions.ts';
import { StepReporter } from './progress.ts';
import { normalizeLayer } from './layer.ts';
import { materializeBaseLayout } from './base-layout.ts';

const temps: string[] = [];
async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

describe('layer normalisation', () => {
  it('drops entries under ignore paths (whiteouts and long PAX names included) and keeps the rest byte for byte', async () => {
    const root = await temp('kit-tar-');
    const tree = join(root, 'tree');
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    await mkdir(join(tree, 'workspace', 'deep'), { recursive: true });
    await mkdir(join(tree, 'kept', long.split('/')[0]!), { recursive: true });
    await mkdir(join(tree, 'workspace', long.split('/')[0]!), { recursive: true });
    await writeFile(join(tree, 'workspace', 'deep', 'x'), 'ignored');
    await writeFile(join(tree, 'workspace', long), 'ignored long');
    await writeFile(join(tree, 'kept', long), 'kept long');
    await writeFile(join(tree, 'kept', 'a'), 'a');
    await link(join(tree, 'kept', 'a'), join(tree, 'kept', 'a-link'));
    await symlink('../kept/a', join(tree, 'kept', 'sym'));
    await writeFile(join(tree, '.wh.workspace2'), '');
    await writeFile(join(tree, 'kept', '.wh.gone'), '');
    await writeFile(join(tree, 'workspacefoo'), 'not under /workspace');
    const tar = join(root, 'layer.tar');
    execFileSync('tar', ['--sort=name', '--format=pax', '-C', tree, '-cf', tar, '.']);
    const out = await normalizeLayer(createReadStream(tar), { blobDir: join(root, 'blobs'), ignorePaths: ['/workspace', '/workspace2', '/var/run'] });
    const paths = await readLayerPaths({ kind: 'file', path: out.path });
    expect(paths.filter((p) => p.startsWith('workspace/') || p === 'workspace')).toEqual([]);
    expect(paths).toContain(`kept/${long}`);
    expect(paths).toContain('kept/a-link');
    expect(paths).toContain('kept/sym');
    expect(paths).toContain('kept/.wh.gone');
    expect(paths).toContain('workspacefoo');
    expect(paths).not.toContain('.wh.workspace2');
    expect(out.dropped).toContain('workspace/deep/x');
    // same input, same blob
    const again = await normalizeLayer(createReadStream(tar), { blobDir: join(root, 'blobs2'), ignorePaths: ['/workspace', '/workspace2'] });
    expect(again.digest).toBe(out.digest);
    expect(again.diffId).toBe(out.diffId);
    // extracted with GNU tar: hardlink and symlink intact
    const x = join(root, 'x');
    await mkdir(x);
    execFileSync('tar', ['-xzf', out.path, '-C', x]);
    expect(await readFile(join(x, 'kept', 'a-link'), 'utf8')).toBe('a');
    expect(execFileSync('stat', ['-c', '%h', join(x, 'kept', 'a')]).toString().trim()).toBe('2');
  });
});

describe('history attribution', () => {
  const dockerfile = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /x && \\\n  echo ${a} > /x/a\nCOPY a.txt /x/\nENV A=1\nWORKDIR /w\nRUN echo two > /x/two\nADD b.tar /y\n';
  const instructions = layerInstructions(dockerfile);
  it('lists the layer-making lines as written, with their position after FROM', () => {
    expect(instructions.map((i) => i.text)).toEqual(['RUN mkdir -p /x &&   echo ${a} > /x/a', 'COPY a.txt /x/', 'WORKDIR /w', 'RUN echo two > /x/two', 'ADD b.tar /y']);
    expect(instructions.map((i) => i.index)).toEqual([1, 2, 4, 5, 6]);
    expect(attributeLayerInstructions(['/bin/sh -c echo two > /x/two', 'something else', 'more'], instructions).map((i) => i?.index)).toEqual([5, 6, undefined]);
  });
  it('matches buildah, classic builder and BuildKit history texts', () => {
    const all = instructions.map((i) => i.text);
    const want = all.filter((t) => !t.startsWith('WORKDIR'));
    // buildah: no layer for a WORKDIR a later RUN works in
    expect(attributeLayers(['|1 a=b /bin/sh -c mkdir -p /x &&   echo ${a} > /x/a', '/bin/sh -c #(nop) COPY file:abc in /x/ ', '/bin/sh -c echo two > /x/two', '/bin/sh -c #(nop) ADD file:def in /y '], instructions)).toEqual(want);
    // classic builder and BuildKit: a layer for the WORKDIR that created its directory
    expect(attributeLayers(['|1 a=b /bin/sh -c mkdir -p /x &&   echo ${a} > /x/a', '/bin/sh -c #(nop) COPY file:abc in /x/ ', '/bin/sh -c #(nop) WORKDIR /w', '/bin/sh -c echo two > /x/two', '/bin/sh -c #(nop) ADD file:def in /y '], instructions)).toEqual(all);
    expect(attributeLayers(['RUN |1 a=b /bin/sh -c mkdir -p /x &&   echo ${a} > /x/a # buildkit', 'COPY a.txt /x/ # buildkit', 'WORKDIR /w', 'RUN /bin/sh -c echo two > /x/two # buildkit', 'ADD b.tar /y # buildkit'], instructions)).toEqual(all);
    // a tool that made no layer for the first RUN: later layers still find their lines
    expect(attributeLayers(['/bin/sh -c #(nop) COPY file:abc in /x/ ', '/bin/sh -c echo two > /x/two'], instructions)).toEqual([want[1], want[2]]);
  });
  it('names a WORKDIR layer by its line among several WORKDIRs (the tool quotes the line as written)', () => {
    const lines = layerInstructions('ARG base_image\nFROM ${base_image}\nWORKDIR /home/cnb\nworkdir   /new\nRUN echo\nWORKDIR rel\n');
    expect(attributeLayers(['/bin/sh -c #(nop) workdir /new', '/bin/sh -c echo', '/bin/sh -c #(nop) WORKDIR rel'], lines)).toEqual(['workdir   /new', 'RUN echo', 'WORKDIR rel']);
    // BuildKit's absolute path for a relative WORKDIR still falls back to the keyword
    expect(attributeLayers(['WORKDIR /home/cnb', 'WORKDIR /new', 'RUN /bin/sh -c echo # buildkit', 'WORKDIR /new/rel'], lines)).toEqual(['WORKDIR /home/cnb', 'workdir   /new', 'RUN echo', 'WORKDIR rel']);
  });
  it('reads the failing step from the tools\' output', () => {
    expect(stepInstruction('STEP 4/5: RUN exit 3')).toBe('RUN exit 3');
    expect(stepInstruction('Step 4/5 : RUN exit 3')).toBe('RUN exit 3');
    expect(stepInstruction('#7 [3/4] RUN exit 3')).toBe('RUN exit 3');
    expect(stepInstruction('[stage-0 3/4] RUN exit 3')).toBe('RUN exit 3');
    expect(stepInstruction('--> 1234')).toBeUndefined();
  });
  it('maps each tool\'s step numbers to the position after FROM', () => {
    // ARG base_image, FROM, then USER root (0), RUN … (1), …: 7 instructions after FROM
    const count = 7;
    // buildah and BuildKit count from FROM
    expect(stepIndex(toolStep('STEP 3/8: RUN mkdir -p /x')!, count)).toBe(1);
    expect(stepIndex(toolStep('[ 3/8] RUN mkdir -p /x')!, count)).toBe(1);
    expect(stepIndex(toolStep('[stage-0 8/8] ADD b.tar /y')!, count)).toBe(6);
    expect(stepIndex(toolStep('[1/8] FROM docker.io/library/base')!, count)).toBeUndefined();
    // the classic builder counts the global ARG too
    expect(stepIndex(toolStep('Step 4/9 : RUN mkdir -p /x')!, count)).toBe(1);
    expect(stepIndex(toolStep('Step 2/9 : FROM base')!, count)).toBeUndefined();
    expect(toolStep('Step 4/9 : RUN a\n')).toEqual({ number: 4, total: 9, instruction: 'RUN a' });
  });
});

describe('StepReporter', () => {
  it('reports by position: config-only steps finish when the next starts, layer steps are cached or run once', () => {
    const events = new MemorySink();
    const progress = new StepReporter(events, 'x', 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN a\nRUN a\nENV A=1\n');
    progress.started(0);
    progress.started(1);
    progress.cached(1, 'id1');
    progress.ran(1);
    progress.started(2);
    progress.started(2);
    progress.started(3);
    progress.started(9);
    progress.end();
    expect(events.events.map((e) => `${e.type} ${'index' in e ? e.index : ''}`)).toEqual([
      'instruction-started 0',
      'instruction-finished 0',
      'instruction-started 1',
      'cache-hit 1',
      'instruction-started 2',
      'cache-miss 2',
      'instruction-started 3',
      'instruction-finished 3',
    ]);
    expect(events.ofType('instruction-started').map((e) => e.instruction)).toEqual(['USER root', 'RUN a', 'RUN a', 'ENV A=1']);
    expect(progress.instruction(2)).toBe('RUN a');
    expect(progress.instruction(undefined)).toBeUndefined();
  });

  it('finds the instruction of a BuildKit vertex, whichever steps it numbers, by what it reads like', () => {
    const dockerfile = 'ARG base_image\nFROM ${base_image}\nARG user_id\nUSER root\nRUN mkdir -p /u &&   chown ${user_id} /u\nUSER ${user_id}\nRUN echo same\nRUN echo same\nWORKDIR /w\nUSER 1000\n';
    // BuildKit numbering only the steps with a vertex, variables expanded
    const vertexOnly = new StepReporter(new MemorySink(), 'x', dockerfile);
    const shown = ['[1/5] FROM docker.io/library/base', '[2/5] RUN mkdir -p /u && chown 1000 /u', '[4/5] RUN echo same', '[3/5] RUN echo same', '[5/5] WORKDIR /w'];
    expect(shown.map((name) => vertexOnly.vertexIndex(toolStep(name)!))).toEqual([undefined, 2, 5, 4, 6]);
    // and again for the same step
    expect(vertexOnly.vertexIndex(toolStep('[4/5] RUN echo same')!)).toBe(5);
    // numbering every instruction
    const every = new StepReporter(new MemorySink(), 'x', dockerfile);
    expect(['[ 4/9] RUN mkdir -p /u && chown 1000 /u', '[8/9] WORKDIR /w', '[6/9] RUN echo same'].map((name) => every.vertexIndex(toolStep(name)!))).toEqual([2, 6, 4]);
    // a base from a named context has no FROM vertex: the first RUN is 1, the total still counts the FROM
    const named = new StepReporter(new MemorySink(), 'x', dockerfile);
    const fromContext = ['[4/5] WORKDIR /w', '[3/5] RUN echo same', '[2/5] RUN echo same', '[1/5] RUN mkdir -p /u && chown 1000 /u'];
    expect(named.vertexIndexes(fromContext.map((name) => toolStep(name)))).toEqual([6, 5, 4, 2]);
    // nor with numbered steps alone, whichever vertex comes first
    const runs = 'FROM base\nRUN a\nRUN b\nRUN b\n';
    expect(new StepReporter(new MemorySink(), 'x', runs).vertexIndexes(['[3/4] RUN b', '[2/4] RUN b', '[1/4] RUN a'].map((name) => toolStep(name)))).toEqual([2, 1, 0]);
    expect(new StepReporter(new MemorySink(), 'x', runs).vertexIndexes(['[3/4] RUN b', '[4/4] RUN b', '[1/4] FROM base'].map((name) => toolStep(name)))).toEqual([1, 2, undefined]);
    // a vertex that reads like nothing takes the first of its keyword in its place
    expect(new StepReporter(new MemorySink(), 'x', dockerfile).vertexIndex(toolStep('[2/5] RUN --mount=type=cache,target=/c echo')!)).toBe(2);
    expect(new StepReporter(new MemorySink(), 'x', dockerfile).vertexIndex(toolStep('[2/5] ADD x /y')!)).toBeUndefined();
  });
});

describe('base layout', () => {
  it('fetches the blobs a sparse base lacks from the registry and writes a layout skopeo reads', async () => {
    const fixture = testEnv().fixtures.run;
    const { image } = await readLayoutImage(fixture.layoutDir, fixture.registryRef, fixture.manifestDigest as Digest);
    const sparse = { ...image, layers: image.layers.map(({ descriptor, diffId }) => ({ descriptor, diffId })) };
    const root = await temp('kit-base-');
    const base = await materializeBaseLayout(sparse, { dir: join(root, 'layout'), fetchedBlobDir: join(root, 'fetched') });
    const layout = await OciLayout.open(base.layoutDir);
    const read = await layout.image({ refName: 'base' });
    expect(read.layers.every((l) => l.present)).toBe(true);
    expect(read.layers.map((l) => l.descriptor)).toEqual(image.layers.map((l) => l.descriptor));
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${base.layoutDir}:base`]).toString()) as { layers: unknown[] };
    expect(inspected.layers).toHaveLength(image.layers.length);
    // the second time, from the fetched blobs (no registry needed)
    const again = await materializeBaseLayout(sparse, { dir: join(root, 'layout2'), fetchedBlobDir: join(root, 'fetched'), reference: '127.0.0.1:1/unreachable@sha256:' + '0'.repeat(64) });
    expect(again.manifestDigest).toBe(base.manifestDigest);
  });
});
