// Runs inside a chroot whose `/` is an unpacked Debian image (the repository
// bind-mounted at its own path): applies a Dockerfile with the backend in its
// production mode (root `/`) and prints what it produced as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import { readLayerPaths } from '@cnb-extender/extender-core/testing';
import { createInplaceBackend } from '../backend.ts';

const [layoutDir, content] = process.argv.slice(2) as [string, string];
const base = (await readLayoutImage(layoutDir, 'base')).image;
mkdirSync('/kaniko/work', { recursive: true });
mkdirSync('/workspace/ctx', { recursive: true });
writeFileSync('/workspace/ctx/f', 'from the context\n');
const backend = createInplaceBackend({ network: false, cache: false });
const context = { signal: new AbortController().signal, events: new MemorySink(), workDir: '/kaniko/work' };
const result = await backend.apply(
  { extensionId: 'in-place', kind: 'run', path: '/workspace/run.Dockerfile', content, args: [{ name: 'base_image', value: 'base' }], contextDir: '/workspace/ctx' },
  base,
  { buildContext: '/workspace/ctx', ignorePaths: ['/workspace', '/layers', '/platform', '/kaniko/work'], cacheTtlMs: 0, extendDir: '/kaniko' },
  context,
);
const layers = [];
for (const layer of result.layers.slice(base.layers.length)) layers.push((await readLayerPaths(layer.blob!)).sort());
await backend.cleanup(context);
process.stdout.write(`${JSON.stringify({ layers, config: result.config.config, output: context.events.ofType('debug').map((e) => e.message) })}\n`);
