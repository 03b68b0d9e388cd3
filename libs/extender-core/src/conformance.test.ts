/**
 * The Go lifecycle's extender acceptance fixtures (../shared/conformance/lifecycle/extender),
 * both Dockerfile layouts, applied with the FakeBackend.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '@cnb-extender/oci';
import { MemorySink } from './events.ts';
import { extend, type ExtendInputs } from './extend.ts';
import { FakeBackend } from './testing/fake-backend.ts';
import { testEnv } from './testing/testenv.ts';
import { createWorkspace, type Workspace } from './testing/workspace.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const fixtureLayers = join(repoRoot, '..', 'shared', 'conformance', 'lifecycle', 'extender', 'container', 'layers');

const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

beforeAll(async () => {
  await access(join(fixtureLayers, 'group.toml')).catch(() => {
    throw new Error(`conformance fixtures missing: expected ${fixtureLayers} (peer data beside the repository)`);
  });
});

async function inputs(platformApi: string, generated: string): Promise<{ ws: Workspace; inputs: ExtendInputs }> {
  const run = testEnv().fixtures.run;
  const ws = await createWorkspace({
    platformApi,
    runImage: run.registryRef,
    buildImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
  });
  workspaces.push(ws);
  return { ws, inputs: { ...ws.inputs, groupPath: join(fixtureLayers, 'group.toml'), generatedDir: join(fixtureLayers, generated) } };
}

const layouts = [
  { platformApi: '0.12', generated: 'generated' },
  { platformApi: '0.13', generated: 'generated-with-contexts' },
];

describe('lifecycle extender fixtures', () => {
  for (const { platformApi, generated } of layouts) {
    describe(`Platform API ${platformApi} (${generated}/)`, () => {
      it('run kind: curl then tree, /workspace writes not captured, rebasable false, user reset, history per layer', async () => {
        const { ws, inputs: extendInputs } = await inputs(platformApi, generated);
        const backend = new FakeBackend({ mounts: { '/workspace': ws.appDir } });
        const events = new MemorySink();
        const result = await extend({ kind: 'run', inputs: extendInputs, backend, events });
        expect(backend.calls.map((c) => c.dockerfile.extensionId)).toEqual(['curl', 'tree']);
        if (platformApi === '0.13') {
          expect(backend.calls.map((c) => c.dockerfile.contextDir)).toEqual([
            join(extendInputs.generatedDir, 'curl', 'context.run'),
            join(extendInputs.generatedDir, 'tree', 'context'),
          ]);
        } else {
          expect(backend.calls.map((c) => c.dockerfile.contextDir)).toEqual([ws.appDir, ws.appDir]);
        }
        const created = (result.image.config.history ?? []).map((h) => h.created_by ?? '').filter((c) => c.includes('Created by extension'));
        const copyCurl = platformApi === '0.13' ? ["Layer: 'COPY run-file /', Created by extension: curl"] : [];
        const copyTree = platformApi === '0.13' ? ["Layer: 'COPY shared-file /shared-run', Created by extension: tree"] : [];
        expect(created).toEqual([
          "Layer: 'RUN apt-get update && apt-get install -y curl', Created by extension: curl",
          ...copyCurl,
          "Layer: 'RUN echo ${build_id}', Created by extension: curl",
          "Layer: 'RUN apt-get update && apt-get install -y tree', Created by extension: tree",
          ...copyTree,
          "Layer: 'RUN echo ${build_id}', Created by extension: tree",
        ]);
        expect(result.image.config.history).toHaveLength(result.image.config.rootfs.diff_ids.length);
        expect(result.rebasable).toBe(false); // only tree sets the label
        expect(result.user).toBe('1000');
        expect(result.envMap['CNB_STACK_ID']).toBe('stack-id-from-ext-tree');
        // Each run Dockerfile resets the user to user_id: no root or changed-user warnings.
        expect(events.ofType('warning').filter((w) => w.code.startsWith('user-'))).toEqual([]);
      });

      it('build kind: env and user handed to the build phase, root user only warned', async () => {
        const { inputs: extendInputs } = await inputs(platformApi, generated);
        const events = new MemorySink();
        const backend = new FakeBackend();
        const result = await extend({ kind: 'build', inputs: extendInputs, backend, events });
        expect(backend.calls.map((c) => c.dockerfile.extensionId)).toEqual(['curl', 'tree']);
        expect(result.envMap['CNB_STACK_ID']).toBe('stack-id-from-ext-tree');
        expect(result.user).toBe('root');
        expect(events.ofType('warning').map((w) => w.code)).toContain('user-changed');
        expect(backend.calls[1]!.dockerfile.args.slice(1, 3)).toEqual([
          { name: 'user_id', value: 'root' },
          { name: 'group_id', value: '' },
        ]);
      });
    });
  }
});
