/**
 * WORKDIR as Docker does it, through the core's extend() with real buildah: a
 * WORKDIR no later instruction uses still creates its directory, in a layer of
 * its own named by its line, owned as BuildKit and the in-place backend own it
 * (the USER in effect, mode 755); a WORKDIR a later RUN works in gets no layer
 * besides the RUN's.
 */
import { createReadStream } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ExtenderError, MemorySink, extend, readLayoutImage, type LayerDescription } from '@cnb-extender/extender-core';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import { decompressLayer, readTar, type Digest } from '@cnb-extender/oci';
import { createBuildahBackend } from './index.ts';
import { buildahExecutables } from './test-engines.ts';

const workspaces: Workspace[] = [];
afterAll(async () => {
  for (const ws of workspaces) await ws.remove();
});

const TIMESTAMP = 1700000000;

/** Extend the run image with one extension; the new layers' entries (`path type mode uid:gid mtime`) and history. */
async function extendRun(buildah: string, dockerfile: string) {
  const run = testEnv().fixtures.run;
  const ws = await createWorkspace({
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions: [{ id: 'test/wd', run: dockerfile }],
  });
  workspaces.push(ws);
  const events = new MemorySink();
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend: createBuildahBackend({ buildah, timestamp: TIMESTAMP }), events });
  const out = (await readLayoutImage(result.outputDir!, 'out')).image;
  const baseCount = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image.layers.length;
  expect(out.layers.slice(0, baseCount).map((l) => l.diffId)).toEqual(out.config.rootfs.diff_ids.slice(0, baseCount));
  const layers = await Promise.all(out.layers.slice(baseCount).map(entries));
  return { image: out, layers, history: (out.config.history ?? []).slice(baseCount).map((h) => h.created_by), events };
}

async function entries(layer: LayerDescription): Promise<string[]> {
  if (layer.blob?.kind !== 'file') throw new Error(`layer ${layer.descriptor.digest} has no file blob`);
  const { tar } = await decompressLayer(createReadStream(layer.blob.path));
  const out: string[] = [];
  for await (const e of readTar(tar)) out.push(`${e.name.replace(/^\.?\//, '')} ${e.type} ${(e.mode & 0o7777).toString(8)} ${e.uid}:${e.gid} ${e.mtime}`);
  return out;
}

describe.each(buildahExecutables())('buildah backend on $id ($buildah): WORKDIR', ({ buildah }) => {
  it('creates the directories of a WORKDIR nothing uses, in a layer per WORKDIR named by its line, owned by the USER in effect', async () => {
    const { image, layers, history, events } = await extendRun(buildah, `ARG base_image
FROM \${base_image}
USER root
WORKDIR /home/cnb
WORKDIR /wd/by-root
USER cnb
WORKDIR /wd/by-cnb/deep
workdir   sub
USER 1000:1000
`);
    // /home/cnb exists in the base: no layer; the others in order, each with what was missing at its place
    expect(history).toEqual([
      "Layer: 'WORKDIR /wd/by-root', Created by extension: test/wd",
      "Layer: 'WORKDIR /wd/by-cnb/deep', Created by extension: test/wd",
      "Layer: 'workdir   sub', Created by extension: test/wd",
    ]);
    expect(layers).toEqual([
      [`wd directory 755 0:0 ${TIMESTAMP}`, `wd/by-root directory 755 0:0 ${TIMESTAMP}`],
      // /wd is there by now; `cnb` resolved through the image's /etc/passwd
      [`wd/by-cnb directory 755 1000:1000 ${TIMESTAMP}`, `wd/by-cnb/deep directory 755 1000:1000 ${TIMESTAMP}`],
      [`wd/by-cnb/deep/sub directory 755 1000:1000 ${TIMESTAMP}`],
    ]);
    expect(image.config.config?.WorkingDir).toBe('/wd/by-cnb/deep/sub');
    expect(image.config.rootfs.diff_ids).toHaveLength(image.layers.length);
    expect(image.config.history?.filter((h) => h.empty_layer)).toEqual([]);
    expect(events.ofType('layer-written').map((e) => e.instruction)).toEqual(['WORKDIR /wd/by-root', 'WORKDIR /wd/by-cnb/deep', 'workdir   sub']);
  });

  it('adds no layer for a WORKDIR a later RUN works in (buildah creates it there)', async () => {
    const { layers, history } = await extendRun(buildah, `ARG base_image
FROM \${base_image}
USER root
WORKDIR /srv/app
RUN echo hi > hi
USER 1000:1000
`);
    expect(history).toEqual(["Layer: 'RUN echo hi > hi', Created by extension: test/wd"]);
    expect(layers).toHaveLength(1);
    expect(layers[0]).toEqual(expect.arrayContaining([expect.stringMatching(/^srv\/app directory 755 0:0 /), expect.stringMatching(/^srv\/app\/hi file 644 0:0 /)]));
  });

  it('fails on the WORKDIR line when its USER is not in the image', async () => {
    const err = await extendRun(buildah, 'ARG base_image\nFROM ${base_image}\nUSER ghost\nWORKDIR /nowhere\n').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).code).toBe('APPLY_FAILED');
    expect((err as ExtenderError).message).toBe(
      'failed to extend run image: applying Dockerfile for test/wd: WORKDIR /nowhere: creating /nowhere: resolving user "ghost": no user "ghost" in /etc/passwd of the image',
    );
  });
});
